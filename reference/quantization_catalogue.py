"""Catalogue for the quantization kata: common mistakes and correct variants."""

import torch
from torch import Tensor

from reference import mistake, variant
from reference.quantization import Int8Linear, _per_slice, dequantize_symmetric, quantize_symmetric


# --- mistakes: quantize_symmetric ------------------------------------------------------------

def _symmetric_with(rounding=torch.round, divisor=127, guard=True, dtype=torch.int8, cast=True):
    """quantize_symmetric with one ingredient swapped."""

    def quantize(x: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
        x = x.float() if cast else x
        scale = _per_slice(torch.amax, x.abs(), dim) / divisor
        if guard:
            scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        q = rounding(x / scale).clamp(-127, 127)
        return (q if dtype is None else q.to(dtype)), scale

    return quantize


def _half_away_from_zero(y: Tensor) -> Tensor:
    return torch.sign(y) * torch.floor(y.abs() + 0.5)


def _half_up(y: Tensor) -> Tensor:
    return torch.floor(y + 0.5)


def _per_tensor(x: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
    x = x.float()
    scale = x.abs().amax() / 127  # dim ignored
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale


def _reduces_over_dim(x: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
    x = x.float()
    absmax = x.abs().amax() if dim is None else x.abs().amax(dim=dim, keepdim=True)
    scale = absmax / 127
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale


# --- mistakes: quantize_affine / dequantize_affine -------------------------------------------

def _affine_with(rounding=torch.round, zero_point_sign=-1, round_after_shift=False, include_zero=True,
                 guard=True, dtype=torch.uint8, qmax_of=lambda bits: 2**bits - 1, check_bits=True,
                 cast_first=False, cast=True):
    """quantize_affine with one ingredient swapped."""

    def quantize(x: Tensor, dim: int | None = None, bits: int = 8) -> tuple[Tensor, Tensor, Tensor]:
        if check_bits and not 2 <= bits <= 8:
            raise ValueError(f"bits must be in 2..8, got {bits}")
        qmin, qmax = 0, qmax_of(bits)
        x = x.float() if cast else x
        lo, hi = _per_slice(torch.amin, x, dim), _per_slice(torch.amax, x, dim)
        if include_zero:
            lo, hi = lo.clamp(max=0), hi.clamp(min=0)
        scale = (hi - lo) / (qmax - qmin)
        if guard:
            scale = torch.where(scale == 0, torch.ones_like(scale), scale)
        zero_point = rounding(qmin + zero_point_sign * lo / scale).clamp(qmin, qmax).to(torch.int64)
        q = rounding(x / scale + zero_point) if round_after_shift else rounding(x / scale) + zero_point
        if cast_first:
            return q.to(dtype).clamp(qmin, qmax), scale, zero_point
        q = q.clamp(qmin, qmax)
        return (q if dtype is None else q.to(dtype)), scale, zero_point

    return quantize


def _dequantize_affine_no_zero_point(q: Tensor, scale: Tensor, zero_point: Tensor) -> Tensor:
    return q.float() * scale


# --- mistakes: Int8Linear ----------------------------------------------------------------------

def _int8_linear_with(quantize=quantize_symmetric, dim=0, detach=True):
    """Int8Linear whose from_float has one ingredient swapped; quantize is the learner's own
    quantize_symmetric, which a learner's from_float calls."""

    class Int8LinearWith(Int8Linear):
        @classmethod
        def from_float(cls, linear):
            weight, bias = linear.weight, linear.bias
            if detach:
                weight, bias = weight.detach(), None if bias is None else bias.detach()
            weight_q, weight_scale = quantize(weight, dim)
            return cls(weight_q, weight_scale, None if bias is None else bias.float().clone())

    return Int8LinearWith


def _own(quantize) -> dict:
    """A quantize_symmetric and the Int8Linear that uses it, as a learner's from_float uses the
    learner's own quantize_symmetric."""
    return dict(quantize_symmetric=quantize, Int8Linear=_int8_linear_with(quantize))


class _Int8LinearFloatWeight(Int8Linear):
    # Quantizes, but also keeps the float weight and computes with it: nothing is saved.
    @classmethod
    def from_float(cls, linear):
        module = super().from_float(linear)
        module.register_buffer("weight", linear.weight.detach().clone())
        return module

    def forward(self, x):
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


MISTAKES = [
    mistake("floor", "the codes are rounded down with torch.floor instead of to the nearest integer with "
            "torch.round",
            **_own(_symmetric_with(rounding=torch.floor))),
    mistake("truncation", "x / scale is cast to int8 without rounding, which truncates toward zero",
            **_own(_symmetric_with(rounding=lambda y: y, dtype=torch.int8))),
    mistake("half_away_from_zero",
            "ties are rounded half away from zero (2.5 -> 3, -2.5 -> -3) instead of half to even "
            "with torch.round (2.5 -> 2, -2.5 -> -2)",
            **_own(_symmetric_with(rounding=_half_away_from_zero))),
    mistake("half_up", "the codes are rounded with floor(y + 0.5), which sends every tie up (2.5 -> 3, "
            "-2.5 -> -2) instead of to the even neighbour as torch.round does",
            **_own(_symmetric_with(rounding=_half_up))),
    mistake("absmax_over_128", "the scale is absmax / 128 instead of absmax / 127, so the largest value "
            "saturates and every code is slightly off",
            **_own(_symmetric_with(divisor=128))),
    mistake("per_tensor_scale", "dim is ignored: one scale for the whole tensor where one per slice "
            "along dim is asked",
            **_own(_per_tensor)),
    mistake("reduces_over_dim", "the absmax is taken along dim instead of over all the other dims, so "
            "there is one scale per index of the wrong axis",
            **_own(_reduces_over_dim)),
    mistake("no_zero_guard", "an all-zero slice gives scale 0 and 0 / 0 = NaN instead of scale 1.0 and "
            "code 0",
            **_own(_symmetric_with(guard=False)),
            quantize_affine=_affine_with(guard=False)),
    mistake("codes_int32", "the codes are returned as int32 instead of int8 (symmetric) and uint8 (affine)",
            **_own(_symmetric_with(dtype=torch.int32)),
            quantize_affine=_affine_with(dtype=torch.int32)),
    mistake("codes_float", "the codes are returned as rounded floats instead of int8 (symmetric) and "
            "uint8 (affine) integers",
            **_own(_symmetric_with(dtype=None)),
            quantize_affine=_affine_with(dtype=None)),
    mistake("input_dtype_arithmetic", "the arithmetic is done in x's dtype instead of float32, so a "
            "float64 input gives a float64 scale (in quantize_symmetric and quantize_affine)",
            **_own(_symmetric_with(cast=False)), quantize_affine=_affine_with(cast=False)),
    mistake("affine_half_away_from_zero",
            "quantize_affine rounds ties half away from zero (2.5 -> 3) instead of half to even with "
            "torch.round (2.5 -> 2), in the codes and in the zero point",
            quantize_affine=_affine_with(rounding=_half_away_from_zero)),
    mistake("zero_point_sign", "the zero point is qmin + lo / scale instead of qmin - lo / scale, so it "
            "clamps to 0 and every negative value saturates",
            quantize_affine=_affine_with(zero_point_sign=+1)),
    mistake("zero_point_before_rounding", "the zero point is added before rounding, round(x / scale + "
            "zero_point), which moves ties when the zero point is odd; the contract rounds x / scale first",
            quantize_affine=_affine_with(round_after_shift=True)),
    mistake("range_without_zero", "the range is [x.min(), x.max()] instead of being widened to hold 0, "
            "so all-positive or all-negative data gets the wrong scale and zero point",
            quantize_affine=_affine_with(include_zero=False)),
    mistake("qmax_off_by_one", "qmax is 2**bits instead of 2**bits - 1, so the top code overflows uint8",
            quantize_affine=_affine_with(qmax_of=lambda bits: 2**bits)),
    mistake("cast_before_clamp",
            "the codes are cast to uint8 before the clamp, so a code just above qmax (256 for 8 bits) wraps "
            "around to 0 instead of clamping to qmax",
            quantize_affine=_affine_with(cast_first=True)),
    mistake("no_bits_check", "bits outside 2..8 are accepted instead of raising ValueError",
            quantize_affine=_affine_with(check_bits=False)),
    mistake("dequantize_without_zero_point", "dequantize_affine forgets the zero point: q * scale instead "
            "of (q - zero_point) * scale",
            dequantize_affine=_dequantize_affine_no_zero_point),
    mistake("keeps_float_weight", "Int8Linear keeps the float weight and computes with it, so it saves "
            "no memory",
            Int8Linear=_Int8LinearFloatWeight),
    mistake("linear_per_tensor_scale", "Int8Linear uses one scale for the whole weight instead of one per "
            "output channel, (out, 1)",
            Int8Linear=_int8_linear_with(dim=None)),
    mistake("linear_per_input_channel", "Int8Linear's scales are per input channel (dim=1, shape (1, in)) "
            "instead of per output channel (dim=0, shape (out, 1))",
            Int8Linear=_int8_linear_with(dim=1)),
    mistake("from_float_no_detach",
            "from_float quantizes linear.weight and copies linear.bias without .detach(), so weight_scale and "
            "bias keep the float layer's autograd history: a backward pass reaches the float layer, and "
            "copy.deepcopy of the module fails",
            Int8Linear=_int8_linear_with(detach=False)),
]


# --- variants -----------------------------------------------------------------------------------

def _reciprocal_symmetric(x: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
    x = x.float()
    scale = _per_slice(torch.amax, x.abs(), dim) / 127
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    # x * (1 / scale) can differ from x / scale in the last bit, hence by one code on rare elements.
    return torch.round(x * (1 / scale)).clamp(-127, 127).to(torch.int8), scale


def _reciprocal_affine(x: Tensor, dim: int | None = None, bits: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    if not 2 <= bits <= 8:
        raise ValueError(f"bits must be in 2..8, got {bits}")
    qmax = 2**bits - 1
    x = x.float()
    lo = _per_slice(torch.amin, x, dim).clamp(max=0)
    hi = _per_slice(torch.amax, x, dim).clamp(min=0)
    scale = (hi - lo) / qmax
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero_point = torch.round(-lo / scale).clamp(0, qmax).to(torch.int64)
    inv_scale = 1 / scale
    q = (torch.round(x * inv_scale) + zero_point).clamp(0, qmax)
    return q.to(torch.uint8), scale, zero_point


def _aminmax_per_slice(x: Tensor, dim: int | None) -> tuple[Tensor, Tensor]:
    """(min, max) with torch.aminmax over the tensor or per index along dim: move dim to the front,
    flatten the rest, reduce each row, and reshape to broadcast against x."""
    if dim is None:
        return torch.aminmax(x)
    dim = dim % x.ndim
    rows = x.movedim(dim, 0).reshape(x.shape[dim], -1)
    lo, hi = torch.aminmax(rows, dim=1)
    shape = [1] * x.ndim
    shape[dim] = x.shape[dim]
    return lo.reshape(shape), hi.reshape(shape)


def _aminmax_symmetric(x: Tensor, dim: int | None = None) -> tuple[Tensor, Tensor]:
    x = x.float()
    lo, hi = _aminmax_per_slice(x, dim)
    scale = torch.maximum(-lo, hi) / 127
    scale = scale.masked_fill(scale == 0, 1.0)
    return torch.round(x / scale).clamp(-127, 127).to(torch.int8), scale


def _aminmax_affine(x: Tensor, dim: int | None = None, bits: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    if bits not in range(2, 9):
        raise ValueError(f"bits must be in 2..8, got {bits}")
    qmin, qmax = 0, 2**bits - 1
    x = x.float()
    lo, hi = _aminmax_per_slice(x, dim)
    lo, hi = torch.minimum(lo, torch.zeros_like(lo)), torch.maximum(hi, torch.zeros_like(hi))
    scale = (hi - lo) / (qmax - qmin)
    scale = scale.masked_fill(scale == 0, 1.0)
    zero_point = torch.round(qmin - lo / scale).clamp(qmin, qmax).long()
    q = torch.clamp(torch.round(x / scale) + zero_point, qmin, qmax)
    return q.to(torch.uint8), scale, zero_point


def _round_half_even(y: Tensor) -> Tensor:
    # floor(y + 0.5) is wrong twice: ties go up, and y + 0.5 itself can round (0.49999997 + 0.5 == 1.0).
    # y - floor(y) is exact, so compare the fractional part instead.
    down = torch.floor(y)
    frac = y - down
    odd = torch.remainder(down, 2) == 1
    return down + ((frac > 0.5) | ((frac == 0.5) & odd)).to(y.dtype)


class _Int8LinearScaleOutputs(Int8Linear):
    # (x @ (q * s).T)[..., o] = s[o] * (x @ q.T)[..., o]: multiply the outputs by the scales instead.
    def forward(self, x):
        y = (x @ self.weight_q.float().T) * self.weight_scale.T
        return y if self.bias is None else y + self.bias


class _Int8LinearFLinear(Int8Linear):
    def forward(self, x):
        weight = dequantize_symmetric(self.weight_q, self.weight_scale)
        return torch.nn.functional.linear(x, weight, self.bias)


VARIANTS = [
    variant("reciprocal", "multiplies by 1 / scale instead of dividing by scale (the codes may differ by "
            "one on about one element in a million)",
            **_own(_reciprocal_symmetric), quantize_affine=_reciprocal_affine),
    variant("aminmax", "takes each slice's min and max with torch.aminmax on the tensor reshaped to "
            "(slices, -1), and the absmax as max(-min, max)",
            **_own(_aminmax_symmetric), quantize_affine=_aminmax_affine),
    variant("explicit_round_half_even", "rounds half to even by hand from floor and the fractional part",
            **_own(_symmetric_with(rounding=_round_half_even)),
            quantize_affine=_affine_with(rounding=_round_half_even)),
    variant("scale_outputs", "Int8Linear multiplies the integer-weight matmul's outputs by the "
            "per-channel scales instead of dequantising the weight",
            Int8Linear=_Int8LinearScaleOutputs),
    variant("functional_linear", "Int8Linear calls F.linear on the dequantised weight",
            Int8Linear=_Int8LinearFLinear),
]


# Mutants of the reference that no check can fail (graders/mutate.py), and why.
_CLAMP_IDLE = ("|x| <= absmax, so |x / scale| <= 127 up to one ulp and rounds to at most 127: the "
               "symmetric clamp never binds, wherever its bounds are")
_INTEGER_BOUNDS = "qmin and qmax are integers, so rounding and clamping to them commute"
EQUIVALENT = {
    "quantize_symmetric:reorder:692205f5": _CLAMP_IDLE,
    "quantize_symmetric:constant:966b972e": _CLAMP_IDLE,
    "quantize_symmetric:constant:0c5b0758": _CLAMP_IDLE,
    "quantize_symmetric:constant:d88411b7": _CLAMP_IDLE,
    "quantize_symmetric:constant:9e699f34": _CLAMP_IDLE,
    "dequantize_symmetric:drop:2f54c0aa": "int8 codes times the float32 scale promote to float32: the same product",
    "quantize_affine:arith:d948a1ec": "qmin is 0, so qmax + qmin is qmax - qmin",
    "quantize_affine:reorder:02db558c": "the rounded zero point is integral, so casting it to int64 before the "
                                        "clamp gives the same integers",
    "quantize_affine:reorder:8ed254a8": _INTEGER_BOUNDS,
    "dequantize_affine:drop:8f5ef65d": "uint8 codes minus the int64 zero point are exact int64 differences, which the "
                                       "float32 scale turns into the same float32 values",
    "Int8Linear.forward:args:5e0ba0fe": "dequantize_symmetric(scale, q) is scale.float() * q, the same product as "
                                        "q.float() * scale",
}
