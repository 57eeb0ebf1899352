"""Reference solution: layer normalisation, RMS normalisation and the LayerNorm module."""

import torch
from torch import Tensor, nn


def _norm_dims(weight: Tensor) -> tuple[int, ...]:
    # The trailing weight.ndim dims of x are the normalised ones: (-2, -1) for a 2-D weight.
    return tuple(range(-weight.ndim, 0))


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float = 1e-5) -> Tensor:
    dims = _norm_dims(weight)
    mean = x.mean(dim=dims, keepdim=True)
    centred = x - mean
    # Two passes (centre first, then square) avoid the cancellation of E[x^2] - E[x]^2.
    # Dividing by N, not N - 1: the biased variance is what the paper and torch use.
    var = (centred * centred).mean(dim=dims, keepdim=True)
    # eps inside the root keeps the scale finite and smooth even for a constant input.
    return centred / torch.sqrt(var + eps) * weight + bias


def rms_norm(x: Tensor, weight: Tensor, eps: float = 1e-6) -> Tensor:
    dims = _norm_dims(weight)
    # No centring: RMSNorm rescales by the root mean square, the mean is left where it is.
    mean_square = (x * x).mean(dim=dims, keepdim=True)
    return x / torch.sqrt(mean_square + eps) * weight


class LayerNorm(nn.Module):
    def __init__(self, normalized_shape: int | tuple[int, ...], eps: float = 1e-5):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        # Same names and shapes as torch.nn.LayerNorm, so state_dicts move both ways;
        # ones and zeros make a freshly built layer a pure normaliser.
        self.weight = nn.Parameter(torch.ones(self.normalized_shape))
        self.bias = nn.Parameter(torch.zeros(self.normalized_shape))

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)
