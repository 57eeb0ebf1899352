"""Reference solution: int8 / uint8 quantization and an int8 Linear layer."""

import torch
from torch import Tensor, nn


def _per_slice(reduce, x: Tensor, dim: int | None) -> Tensor:
    """reduce (torch.amax or torch.amin) over the whole tensor (dim None, 0-d result) or over
    every dim but `dim`, keeping dims so that the result broadcasts against x."""
    if dim is None:
        return reduce(x)
    others = [d for d in range(x.ndim) if d != dim % x.ndim]
    if not others:  # 1-D x with dim=0: each element is its own slice (dim=[] would reduce all)
        return x
    return reduce(x, dim=others, keepdim=True)


def quantize_symmetric(x: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
    x = x.float()  # the contract's arithmetic is float32, whatever x's dtype
    scale = _per_slice(torch.amax, x.abs(), dim) / 127
    # An all-zero slice would give 0 / 0 = NaN; any scale quantizes zeros to code 0, so pick 1.
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    q = torch.round(x / scale).clamp(-127, 127)  # -128 is left out so that the range is symmetric
    return q.to(torch.int8), scale


def dequantize_symmetric(q: Tensor, scale: Tensor) -> Tensor:
    return q.float() * scale


def quantize_affine(x: Tensor, dim: int | None = None, bits: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    qmin, qmax = 0, 2**bits - 1
    x = x.float()
    # The range always holds 0, so that 0.0 (padding, ReLU outputs) has an exact code: the zero point.
    lo = _per_slice(torch.amin, x, dim).clamp(max=0)
    hi = _per_slice(torch.amax, x, dim).clamp(min=0)
    scale = (hi - lo) / (qmax - qmin)
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero_point = torch.round(qmin - lo / scale).clamp(qmin, qmax).to(torch.int64)
    # Round first, then shift by the (integer) zero point: rounding after the shift would move ties.
    q = (torch.round(x / scale) + zero_point).clamp(qmin, qmax)
    return q.to(torch.uint8), scale, zero_point


def dequantize_affine(q: Tensor, scale: Tensor, zero_point: Tensor) -> Tensor:
    return (q.float() - zero_point) * scale


class Int8Linear(nn.Module):
    """A Linear layer whose weight is stored as int8 codes with one float32 scale per output channel."""

    def __init__(self, weight_q: Tensor, weight_scale: Tensor, bias: Tensor | None = None):
        super().__init__()
        # Buffers, not Parameters: they are saved in the state_dict and follow .to(device),
        # but they are not trained (int8 tensors cannot require grad anyway).
        self.register_buffer("weight_q", weight_q)
        self.register_buffer("weight_scale", weight_scale)
        self.register_buffer("bias", bias)

    @classmethod
    def from_float(cls, linear: nn.Linear) -> "Int8Linear":
        # weight is (out, in): dim=0 gives every output row its own scale, (out, 1).
        weight_q, weight_scale = quantize_symmetric(linear.weight.detach(), dim=0)
        bias = None if linear.bias is None else linear.bias.detach().float().clone()
        return cls(weight_q, weight_scale, bias)

    def forward(self, x: Tensor) -> Tensor:
        y = x @ dequantize_symmetric(self.weight_q, self.weight_scale).T
        return y if self.bias is None else y + self.bias
