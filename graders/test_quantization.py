"""Grader for katas/quantization.py: each Case is one check, learner against reference.

Integer codes must equal the reference's, except that a small fraction of +-1 differences is
tolerated (the `fraction` knob of the "codes" tolerance): x / scale and x * (1 / scale) can differ
in the last bit and round to neighbouring codes, about once in a million elements of random data.
Random data almost never holds an exact tie, so the rounding checks use inputs whose scale is a
power of two (x / scale is then exact) and whose values sit exactly half-way between two codes;
on those tiny tensors the fraction allows no difference at all.
"""

import copy

import torch
from torch import nn

from graders.harness import Case, cases, compare, plain

f64 = torch.float64

# absmax 127 -> scale exactly 1.0: torch.round gives [127, 2, -2, 0, 2, 0, -2, 4, -127];
# half away from zero gives 3, -3, 1, -1; floor(y + 0.5) gives 3, 1, -1.
TIES = [127.0, 2.5, -2.5, 0.5, 1.5, -0.5, -1.5, 3.5, -127.0]
# bits 8, lo -51, hi 204: scale 1.0, zero point 51 (odd). Rounding after adding the zero point
# (torch.ao's order) moves every tie: 2.5 -> 54 instead of round(2.5) + 51 = 53.
AFFINE_TIES = [-51.0, 204.0, 2.5, -2.5, 0.5, 1.5, 3.5, -0.5]
# bits 8, lo -2.5, hi 252.5: scale 1.0, zero point round(2.5) = 2 (half away from zero: 3).
ZERO_POINT_TIE = [-2.5, 252.5, 0.0, 1.0, -1.5]
# bits 8, lo -51.5, hi 203.5: scale 1.0, zero point round(51.5) = 52. The top value's code is
# round(203.5) + 52 = 256 before the clamp: cast to uint8 first, it wraps to 0.
TOP_CODE = [-51.5, 203.5, 203.0, 0.0, 100.0]
# bits 2, lo -1, hi 2: scale 1.0, zero point 1.
AFFINE_TIES_2BIT = [-1.0, 2.0, 0.5, -0.5, 1.5]


def codes(actual, expected, like, tol, where):
    """harness.compare, except that integer codes may differ by one on a `fraction` of the entries."""
    if isinstance(like, (tuple, list)) and isinstance(actual, (tuple, list)) and len(actual) == len(like):
        for i in range(len(like)):
            problem = codes(actual[i], expected[i], like[i], tol, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if (isinstance(like, torch.Tensor) and isinstance(actual, torch.Tensor) and not like.is_floating_point()
            and actual.dtype == like.dtype and actual.shape == like.shape and actual.device == like.device):
        diff = (plain(actual).cpu().long() - plain(expected).cpu().long()).abs()
        if diff.numel() == 0 or (diff.max() <= 1 and (diff != 0).sum() <= tol["fraction"] * diff.numel()):
            return None
    return compare(actual, expected, like, tol, where)


def tensor(values, dtype=torch.float32):
    return lambda g: (torch.tensor(values, dtype=dtype),)


def with_zero_slices(g, dtype=torch.float32):
    x = g.randn(6, 40, scale=2.0, dtype=dtype)
    x[2] = 0
    x[:, 5] = 0
    return x


def bfloat16_without_half_absmax(g):
    """bfloat16 data, but no entry is exactly +-absmax / 2: with 8 mantissa bits that collision is
    common, and x / scale is then 63.5 give or take the last bit, where x / scale and x * (1 / scale)
    legitimately round to different codes."""
    x = g.randn(8, 32, dtype=torch.bfloat16)
    half = x.abs() == x.abs().max() / 2
    return x.masked_fill(half, 0.25)


def symmetric_roundtrip_ok(m, x, dim):
    """Every value is off by at most scale / 2 after quantize_symmetric then dequantize_symmetric."""
    q, scale = m.quantize_symmetric(x, dim)
    err = (m.dequantize_symmetric(q, scale) - x).abs()
    return bool((err <= scale * 0.5 * (1 + 1e-5)).all())


def affine_roundtrip_ok(m, x, dim, bits):
    q, scale, zero_point = m.quantize_affine(x, dim, bits)
    err = (m.dequantize_affine(q, scale, zero_point) - x).abs()
    return bool((err <= scale * 0.5 * (1 + 1e-5)).all())


def linear(in_features, out_features, bias=True, dtype=torch.float32):
    """A Linear whose rows have very different magnitudes (as trained weights do), and an input."""
    def make(g):
        layer = nn.Linear(in_features, out_features, bias=bias, dtype=dtype)
        with torch.no_grad():
            rows = g.rand(out_features, 1) * 4 + 0.1
            layer.weight.copy_(g.randn(out_features, in_features) * rows / in_features**0.5)
            if bias:
                layer.bias.copy_(g.randn(out_features, scale=0.1))
        return (layer, g.randn(5, in_features, dtype=dtype))
    return make


def int8_buffers(m, lin, x):
    q = m.Int8Linear.from_float(lin)
    return q.weight_q, q.weight_scale, q.bias


def int8_state_dict_keys(m, lin, x):
    return sorted(m.Int8Linear.from_float(lin).state_dict())


def int8_forward(m, lin, x):
    return m.Int8Linear.from_float(lin)(x)


def int8_storage_ok(m, lin, x):
    """The quantized layer's state_dict takes at most 0.3 of the float layer's bytes."""
    nbytes = lambda module: sum(t.numel() * t.element_size() for t in module.state_dict().values())  # noqa: E731
    return nbytes(m.Int8Linear.from_float(lin)) <= 0.3 * nbytes(lin)


def int8_close_to_float(m, lin, x):
    """The quantized layer's output is within 2% (of the output's scale) of the float layer's."""
    with torch.no_grad():
        want = lin(x)
        got = m.Int8Linear.from_float(lin)(x)
    return bool((got - want).abs().max() <= 0.02 * want.abs().max())


def int8_independent(m, lin, x):
    """from_float's module owns its tensors: changing the float layer afterwards leaves it alone."""
    lin = copy.deepcopy(lin)
    q = m.Int8Linear.from_float(lin)
    before = [t.clone() for t in q.state_dict().values()]
    with torch.no_grad():
        for p in lin.parameters():
            p.add_(1.0)
    return all(torch.equal(a, b) for a, b in zip(before, q.state_dict().values()))


def symmetric(m, x, dim):
    """quantize_symmetric, with dim passed only when it is not the default."""
    return m.quantize_symmetric(x) if dim is None else m.quantize_symmetric(x, dim=dim)


def affine(m, x, dim, bits):
    """quantize_affine, with dim and bits passed only when they are not the defaults."""
    kw = {} if dim is None else {"dim": dim}
    if bits != 8:
        kw["bits"] = bits
    return m.quantize_affine(x, **kw)


def sym_case(name, inputs, dim=None, what=""):
    return Case(name, symmetric, lambda g: (*inputs(g), dim), tol="codes", upcast=False, compare=codes, what=what)


def affine_case(name, inputs, dim=None, bits=8, what=""):
    return Case(name, affine, lambda g: (*inputs(g), dim, bits), tol="codes", upcast=False, compare=codes, what=what)


def int8_detached(m, lin, x):
    """from_float's module holds no autograd history of the float layer: no buffer requires grad,
    and a backward pass through it does not reach the float layer's weight."""
    q = m.Int8Linear.from_float(lin)
    history = sorted(name for name, t in q.named_buffers() if t.requires_grad)
    y = q(x)
    if y.requires_grad:
        y.sum().backward()
    return {"buffers that require grad": history,
            "a backward pass reaches the float layer's weight": lin.weight.grad is not None}


def symmetric_hidden(g):
    """x (6, 40) in float64 with an all-zero row and column, and a dim drawn from the seed."""
    return with_zero_slices(g, f64), [None, 0, 1, -1, -2][int(g.randint(0, 5))]


def affine_hidden(g):
    """x (4, 9, 7), and a dim and bits drawn from the seed."""
    x = g.randn(4, 9, 7, scale=3.0, shift=1.0)
    return x, [None, 0, 1, 2, -1, -2, -3][int(g.randint(0, 7))], int(g.randint(2, 9))


def linear_hidden(g):
    """A Linear whose shape is drawn from the seed, and an input."""
    return linear(int(g.randint(16, 97)), int(g.randint(4, 33)))(g)


test_case = cases([
    # symmetric int8
    sym_case("symmetric_ties", tensor(TIES),
             what=f"quantize_symmetric({TIES}) (scale 1.0: the codes of the ties show the rounding mode)"),
    sym_case("symmetric_ties_per_channel", tensor([TIES, [v / 2 for v in TIES]]), dim=0,
             what="quantize_symmetric(x, dim=0) of two rows of ties, scales 1.0 and 0.5"),
    sym_case("symmetric_per_tensor", lambda g: (g.randn(16, 48, scale=3.0),),
             what="quantize_symmetric(x (16, 48)), dim left at its default"),
    sym_case("symmetric_dim0", lambda g: (g.randn(16, 48, scale=3.0),), dim=0,
             what="quantize_symmetric(x (16, 48), dim=0): one scale per row, shape (16, 1)"),
    sym_case("symmetric_dim1", lambda g: (g.randn(16, 48),), dim=1,
             what="quantize_symmetric(x (16, 48), dim=1): one scale per column, shape (1, 48)"),
    sym_case("symmetric_3d_dim_negative", lambda g: (g.randn(3, 10, 12, scale=0.1),), dim=-2,
             what="quantize_symmetric(x (3, 10, 12), dim=-2): scale (1, 10, 1)"),
    sym_case("symmetric_1d_dim0", tensor([0.3, -2.0, 0.0, 5.0, -0.01, 1.0]), dim=0,
             what="quantize_symmetric(x (6,), dim=0): each element is its own slice, so its own scale"),
    sym_case("symmetric_all_zero", lambda g: (torch.zeros(4, 6),),
             what="quantize_symmetric(zeros (4, 6)): scale 1.0 and codes 0, never NaN"),
    sym_case("symmetric_zero_slices", lambda g: (with_zero_slices(g),), dim=0,
             what="quantize_symmetric(x (6, 40) with an all-zero row, dim=0)"),
    sym_case("symmetric_float64_input", lambda g: (g.randn(8, 32, dtype=f64),), dim=0,
             what="quantize_symmetric(float64 x (8, 32), dim=0): float32 arithmetic and a float32 scale"),
    sym_case("symmetric_bfloat16_input", lambda g: (bfloat16_without_half_absmax(g),),
             what="quantize_symmetric(bfloat16 x (8, 32)): float32 arithmetic and a float32 scale"),
    Case("symmetric_roundtrip_error", symmetric_roundtrip_ok, lambda g: (g.randn(12, 40, scale=2.0), 0),
         upcast=False, what="|dequantize_symmetric(quantize_symmetric(x, dim=0)) - x| <= scale / 2 for every entry"),
    Case("dequantize_symmetric", "dequantize_symmetric",
         lambda g: (g.randint(-127, 128, 8, 16).to(torch.int8), g.rand(8, 1) + 0.01), upcast=False),
    # affine uint8
    affine_case("affine_ties", tensor(AFFINE_TIES),
                what=f"quantize_affine({AFFINE_TIES}) (scale 1.0, zero point 51: round x / scale, then add the "
                     "zero point)"),
    affine_case("affine_zero_point_tie", tensor(ZERO_POINT_TIE),
                what=f"quantize_affine({ZERO_POINT_TIE}) (scale 1.0, zero point round(2.5))"),
    affine_case("affine_ties_2bit", tensor(AFFINE_TIES_2BIT), bits=2,
                what=f"quantize_affine({AFFINE_TIES_2BIT}, bits=2) (scale 1.0, zero point 1)"),
    affine_case("affine_top_code", tensor(TOP_CODE),
                what=f"quantize_affine({TOP_CODE}) (scale 1.0, zero point 52: round(203.5) + 52 is 256, "
                     "which the clamp must bring to 255)"),
    affine_case("affine_per_tensor", lambda g: (g.randn(16, 48, scale=2.0, shift=0.5),),
                what="quantize_affine(x (16, 48)), dim and bits left at their defaults"),
    affine_case("affine_dim0", lambda g: (g.randn(16, 48, scale=2.0, shift=-0.5),), dim=0,
                what="quantize_affine(x (16, 48), dim=0): scale and zero point (16, 1)"),
    affine_case("affine_dim1_4bit", lambda g: (g.randn(16, 48),), dim=1, bits=4,
                what="quantize_affine(x (16, 48), dim=1, bits=4): codes 0..15, scale and zero point (1, 48)"),
    affine_case("affine_3d_dim_negative", lambda g: (g.randn(3, 5, 8, shift=0.5),), dim=-1, bits=3,
                what="quantize_affine(x (3, 5, 8), dim=-1, bits=3): scale and zero point (1, 1, 8)"),
    affine_case("affine_positive", lambda g: (g.rand(8, 24) + 1.0,), dim=0,
                what="quantize_affine(x in [1, 2), dim=0): the range is widened to hold 0"),
    affine_case("affine_negative", lambda g: (-g.rand(8, 24) - 1.0,),
                what="quantize_affine(x in (-2, -1]): the range is widened to hold 0"),
    affine_case("affine_zero_slices", lambda g: (with_zero_slices(g),), dim=0,
                what="quantize_affine(x (6, 40) with an all-zero row, dim=0)"),
    affine_case("affine_float64_input", lambda g: (g.randn(8, 32, shift=0.5, dtype=f64),), dim=0, bits=6,
                what="quantize_affine(float64 x (8, 32), dim=0, bits=6): float32 arithmetic and a float32 scale"),
    Case("affine_roundtrip_error", affine_roundtrip_ok, lambda g: (g.randn(12, 40, shift=0.3), 1, 6), upcast=False,
         what="|dequantize_affine(quantize_affine(x, dim=1, bits=6)) - x| <= scale / 2 for every entry"),
    Case("affine_roundtrip_values", lambda m, x: m.dequantize_affine(*m.quantize_affine(x, dim=0)),
         lambda g: (g.randn(10, 30, scale=2.0),), upcast=False,
         what="dequantize_affine(*quantize_affine(x (10, 30), dim=0))"),
    Case("dequantize_affine", "dequantize_affine",
         lambda g: (g.randint(0, 256, 8, 16).to(torch.uint8), g.rand(8, 1) + 0.01, g.randint(0, 256, 8, 1)),
         upcast=False),
    Case("affine_bits_9", lambda m, x: m.quantize_affine(x, bits=9), lambda g: (g.randn(4, 4),), upcast=False,
         what="quantize_affine(x, bits=9)"),
    Case("affine_bits_1", lambda m, x: m.quantize_affine(x, bits=1), lambda g: (g.randn(4, 4),), upcast=False,
         what="quantize_affine(x, bits=1)"),
    # Int8Linear
    Case("int8_linear_buffers", int8_buffers, linear(64, 24), upcast=False, compare=codes, tol="codes",
         what="Int8Linear.from_float(Linear(64, 24)): (weight_q, weight_scale, bias)"),
    Case("int8_linear_no_bias", int8_buffers, linear(32, 8, bias=False), upcast=False, compare=codes, tol="codes",
         what="Int8Linear.from_float(Linear(32, 8, bias=False)): (weight_q, weight_scale, bias)"),
    Case("int8_linear_float64", int8_buffers, linear(32, 8, dtype=f64), upcast=False, compare=codes, tol="codes",
         what="Int8Linear.from_float(a float64 Linear(32, 8)): (weight_q, weight_scale, bias), all but the codes float32"),
    Case("int8_linear_state_dict", int8_state_dict_keys, linear(64, 24), upcast=False,
         what="the state_dict keys of Int8Linear.from_float(Linear(64, 24))"),
    Case("int8_linear_forward", int8_forward, linear(64, 24), upcast=False,
         what="Int8Linear.from_float(Linear(64, 24))(x (5, 64))"),
    Case("int8_linear_storage", int8_storage_ok, linear(128, 48), upcast=False,
         what="Int8Linear.from_float(Linear(128, 48)) stores at most 0.3 of the float layer's state_dict bytes"),
    Case("int8_linear_close_to_float", int8_close_to_float, linear(96, 32), upcast=False,
         what="Int8Linear.from_float(Linear(96, 32))(x) is within 2% of the float layer's output"),
    Case("int8_linear_independent", int8_independent, linear(16, 8), upcast=False,
         what="Int8Linear.from_float(linear) is unchanged when linear's weight and bias change afterwards"),
    Case("int8_linear_detached", int8_detached, linear(16, 8), upcast=False,
         what="Int8Linear.from_float(linear) of a linear whose parameters require grad, and a backward pass "
              "through it"),
    # hidden: the instructor's inputs, dims, bits and shapes
    Case("symmetric_hidden", symmetric, symmetric_hidden, tol="codes", upcast=False, compare=codes, hidden=True,
         what="quantize_symmetric(float64 x (6, 40) with an all-zero row and column, hidden dim)"),
    Case("affine_hidden", affine, affine_hidden, tol="codes", upcast=False, compare=codes, hidden=True,
         what="quantize_affine(x (4, 9, 7), hidden dim and bits)"),
    Case("int8_linear_hidden", int8_forward, linear_hidden, upcast=False, hidden=True,
         what="Int8Linear.from_float(a hidden Linear)(x)"),
])
