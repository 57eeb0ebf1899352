"""Common mistakes and correct variants for the positional_encoding kata."""

import math

import torch

from reference import mistake, variant
from reference.positional_encoding import rope_cos_sin


def _check_sinusoidal(seq_len, d_model):
    if seq_len < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"bad sizes: seq_len {seq_len}, d_model {d_model}")


def _check_head_dim(head_dim):
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be even and at least 2, got {head_dim}")


def _interleave(even, odd):
    """(T, d/2) and (T, d/2) -> (T, d): even[:, i] in column 2i, odd[:, i] in column 2i + 1."""
    return torch.stack((even, odd), dim=-1).flatten(-2)


def _sinusoidal(position, exponent, base):
    """The correct interleaved table from the positions (T, 1) and each pair's exponent (d/2,)."""
    angle = position / base**exponent
    return _interleave(torch.sin(angle), torch.cos(angle)).float()


def _pairs(seq_len, d_model):
    return torch.arange(seq_len, dtype=torch.float64)[:, None], torch.arange(0, d_model, 2, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------
# Mistakes: sinusoidal_encoding


def _sin_cos_swapped(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    angle = position / base ** (two_i / d_model)
    return _interleave(torch.cos(angle), torch.sin(angle)).float()


def _exponent_i_over_d(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    return _sinusoidal(position, (two_i / 2) / d_model, base)  # the pair index i, not 2i


def _exponent_per_column(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position = torch.arange(seq_len, dtype=torch.float64)[:, None]
    j = torch.arange(d_model, dtype=torch.float64)
    angle = position / base ** (j / d_model)  # column 2i + 1 gets its own, lower frequency
    return torch.where(j % 2 == 0, torch.sin(angle), torch.cos(angle)).float()


def _concatenated_halves(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    angle = position / base ** (two_i / d_model)
    return torch.cat((torch.sin(angle), torch.cos(angle)), dim=-1).float()


def _sinusoidal_fixed_base(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    return _sinusoidal(position, two_i / d_model, 10000.0)


def _positions_from_one(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    return _sinusoidal(position + 1, two_i / d_model, base)


def _float64_table(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    angle = position / base ** (two_i / d_model)
    return _interleave(torch.sin(angle), torch.cos(angle))  # never cast to float32


def _sinusoidal_unchecked(seq_len, d_model, base=10000.0):
    # The Annotated Transformer's construction with no checks: odd widths break a slice assignment,
    # empty sizes give empty tables.
    position = torch.arange(seq_len, dtype=torch.float64)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * -(math.log(base) / d_model))
    pe = torch.zeros(seq_len, d_model, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.float()


# ---------------------------------------------------------------------------------------------
# Mistakes: rope_cos_sin


def _rope(positions, inv_freq):
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


def _even_indices(positions, head_dim):
    return torch.arange(0, head_dim, 2, device=positions.device).float()


def _rope_interleaved_frequencies(positions, head_dim, base=10000.0):
    _check_head_dim(head_dim)
    inv_freq = 1.0 / base ** (_even_indices(positions, head_dim) / head_dim)
    angles = (positions.float()[:, None] * inv_freq[None, :]).repeat_interleave(2, dim=-1)  # f0 f0 f1 f1 ...
    return angles.cos(), angles.sin()


def _rope_exponent_i_over_d(positions, head_dim, base=10000.0):
    _check_head_dim(head_dim)
    i = torch.arange(head_dim // 2, device=positions.device).float()
    return _rope(positions, 1.0 / base ** (i / head_dim))


def _rope_fixed_base(positions, head_dim, base=10000.0):
    return rope_cos_sin(positions, head_dim)


def _rope_sin_cos_swapped(positions, head_dim, base=10000.0):
    cos, sin = rope_cos_sin(positions, head_dim, base)
    return sin, cos


def _rope_positions_ignored(positions, head_dim, base=10000.0):
    return rope_cos_sin(torch.arange(len(positions), device=positions.device), head_dim, base)


def _rope_half_tables(positions, head_dim, base=10000.0):
    cos, sin = rope_cos_sin(positions, head_dim, base)
    return cos[:, : head_dim // 2], sin[:, : head_dim // 2]


def _rope_not_inverted(positions, head_dim, base=10000.0):
    _check_head_dim(head_dim)
    return _rope(positions, base ** (_even_indices(positions, head_dim) / head_dim))


def _rope_unchecked(positions, head_dim, base=10000.0):
    return _rope(positions, 1.0 / base ** (_even_indices(positions, head_dim) / head_dim))


# ---------------------------------------------------------------------------------------------
# Mistakes: apply_rope


def _apply(x, cos, sin, rotate):
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate(x) * sin


def _interleaved_pairing(x, cos, sin):
    # GPT-J's rotate_every_two: pairs (2j, 2j + 1), with tables made for pairs (j, j + D/2).
    return _apply(x, cos, sin, lambda x: torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2))


def _rotate_half_sign(x, cos, sin):
    half = x.shape[-1] // 2
    return _apply(x, cos, sin, lambda x: torch.cat((x[..., half:], -x[..., :half]), dim=-1))


def _rotate_half_no_negation(x, cos, sin):
    half = x.shape[-1] // 2
    return _apply(x, cos, sin, lambda x: torch.cat((x[..., half:], x[..., :half]), dim=-1))


def _first_half_of_tables(x, cos, sin):
    half = x.shape[-1] // 2
    cos, sin = cos[..., :half].to(x.dtype), sin[..., :half].to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def _tables_not_cast(x, cos, sin):
    half = x.shape[-1] // 2
    return x * cos + torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin


def _rotates_in_place(x, cos, sin):
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    x *= cos.to(x.dtype)
    return x + rotated * sin.to(x.dtype)


MISTAKES = [
    mistake(
        "sin_cos_swapped",
        "cos is in the even features and sin in the odd ones; PE[p, 2i] is the sine",
        sinusoidal_encoding=_sin_cos_swapped,
    ),
    mistake(
        "exponent_i_over_d",
        "the exponent is i / d_model with i the pair's number; it is 2i / d_model, "
        "2i being the index of the pair's even feature",
        sinusoidal_encoding=_exponent_i_over_d,
    ),
    mistake(
        "exponent_per_column",
        "every feature j gets its own frequency base ** (-j / d_model); the two features of a pair "
        "(2i and 2i + 1) must share the frequency of 2i",
        sinusoidal_encoding=_exponent_per_column,
    ),
    mistake(
        "concatenated_halves",
        "all the sines come first and all the cosines after them; the table interleaves them, "
        "sin in the even features and cos in the odd ones",
        sinusoidal_encoding=_concatenated_halves,
    ),
    mistake(
        "sinusoidal_ignores_base",
        "sinusoidal_encoding always uses 10000 instead of its base argument",
        sinusoidal_encoding=_sinusoidal_fixed_base,
    ),
    mistake(
        "positions_from_one",
        "the positions start at 1; the first row is position 0, (0, 1, 0, 1, ...)",
        sinusoidal_encoding=_positions_from_one,
    ),
    mistake(
        "float64_table",
        "the table is returned in float64; compute in float64 if you like, but return float32",
        sinusoidal_encoding=_float64_table,
    ),
    mistake(
        "sinusoidal_unchecked",
        "sinusoidal_encoding never checks its sizes; raise ValueError for seq_len < 1 and for "
        "d_model odd or below 2",
        sinusoidal_encoding=_sinusoidal_unchecked,
    ),
    mistake(
        "rope_interleaved_frequencies",
        "rope_cos_sin repeats each frequency twice in a row (f0 f0 f1 f1 ..., the interleaved layout's "
        "table); the rotate-half layout repeats the D/2 frequencies as a second half (f0 f1 ... f0 f1 ...)",
        rope_cos_sin=_rope_interleaved_frequencies,
    ),
    mistake(
        "rope_exponent_i_over_d",
        "rope_cos_sin's exponent is j / head_dim for pair j; it is 2j / head_dim, from arange(0, head_dim, 2)",
        rope_cos_sin=_rope_exponent_i_over_d,
    ),
    mistake(
        "rope_ignores_base",
        "rope_cos_sin always uses 10000 instead of its base argument",
        rope_cos_sin=_rope_fixed_base,
    ),
    mistake(
        "rope_sin_cos_swapped",
        "rope_cos_sin returns (sin, cos) instead of (cos, sin)",
        rope_cos_sin=_rope_sin_cos_swapped,
    ),
    mistake(
        "rope_positions_ignored",
        "rope_cos_sin uses 0 ... T - 1 instead of the positions it is given, "
        "so tokens after a KV cache's past are rotated as if they came first",
        rope_cos_sin=_rope_positions_ignored,
    ),
    mistake(
        "rope_half_tables",
        "rope_cos_sin returns tables of head_dim / 2 columns; they are (T, head_dim), "
        "the D/2 angles repeated as a second half",
        rope_cos_sin=_rope_half_tables,
    ),
    mistake(
        "rope_frequencies_not_inverted",
        "rope_cos_sin multiplies the positions by base ** (2j / head_dim) instead of dividing by it "
        "(inv_freq is 1.0 / base ** ...)",
        rope_cos_sin=_rope_not_inverted,
    ),
    mistake(
        "rope_unchecked",
        "rope_cos_sin never checks head_dim; raise ValueError when it is odd or below 2",
        rope_cos_sin=_rope_unchecked,
    ),
    mistake(
        "interleaved_pairing",
        "apply_rope rotates the pairs (2j, 2j + 1), the interleaved layout of RoFormer and GPT-J; "
        "this kata's rotate-half layout pairs feature j with j + D/2",
        apply_rope=_interleaved_pairing,
    ),
    mistake(
        "rotate_half_sign",
        "rotate_half negates the wrong half, cat(x2, -x1) instead of cat(-x2, x1), "
        "so every pair turns backwards",
        apply_rope=_rotate_half_sign,
    ),
    mistake(
        "rotate_half_no_negation",
        "rotate_half swaps the halves without negating one, cat(x2, x1), which is not a rotation",
        apply_rope=_rotate_half_no_negation,
    ),
    mistake(
        "first_half_of_tables",
        "apply_rope uses only the first half of cos and sin for both halves of x; "
        "use every column of the tables it is given",
        apply_rope=_first_half_of_tables,
    ),
    mistake(
        "tables_not_cast",
        "apply_rope does not cast cos and sin to x's dtype, so a bfloat16 x comes back as float32",
        apply_rope=_tables_not_cast,
    ),
    mistake(
        "rotates_in_place",
        "apply_rope multiplies x by cos in place (x *= cos), which changes the caller's tensor",
        apply_rope=_rotates_in_place,
    ),
]


# ---------------------------------------------------------------------------------------------
# Variants


def _sinusoidal_exp_log_float32(seq_len, d_model, base=10000.0):
    # The Annotated Transformer's formula, in float32 throughout.
    _check_sinusoidal(seq_len, d_model)
    position = torch.arange(seq_len, dtype=torch.float32)[:, None]
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * -(math.log(base) / d_model))
    return _interleave(torch.sin(position * div_term), torch.cos(position * div_term))


def _sinusoidal_stack_flatten(seq_len, d_model, base=10000.0):
    _check_sinusoidal(seq_len, d_model)
    position, two_i = _pairs(seq_len, d_model)
    return _sinusoidal(position, two_i / d_model, base)


def _rope_float64(positions, head_dim, base=10000.0):
    _check_head_dim(head_dim)
    inv_freq = base ** -(torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)
    angles = torch.outer(positions.double(), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().float(), angles.sin().float()


def _rope_exp_log(positions, head_dim, base=10000.0):
    _check_head_dim(head_dim)
    inv_freq = torch.exp(_even_indices(positions, head_dim) * (-math.log(base) / head_dim))
    angles = torch.outer(positions.float(), inv_freq).repeat(1, 2)
    return angles.cos(), angles.sin()


def _apply_rope_halves(x, cos, sin):
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    x1, x2 = x.chunk(2, dim=-1)
    c1, c2 = cos.chunk(2, dim=-1)
    s1, s2 = sin.chunk(2, dim=-1)
    return torch.cat((x1 * c1 - x2 * s1, x2 * c2 + x1 * s2), dim=-1)


def _apply_rope_roll(x, cos, sin):
    # Rolling by D/2 swaps the halves; the sign vector negates the one moved to the front.
    half = x.shape[-1] // 2
    sign = torch.cat((-torch.ones(half), torch.ones(half))).to(device=x.device, dtype=x.dtype)
    return x * cos.to(x.dtype) + torch.roll(x, half, dims=-1) * sign * sin.to(x.dtype)


VARIANTS = [
    variant(
        "sinusoidal_exp_log_float32",
        "computes the frequencies as exp(-2i * log(base) / d_model) and the whole table in float32",
        sinusoidal_encoding=_sinusoidal_exp_log_float32,
    ),
    variant(
        "sinusoidal_stack_flatten",
        "interleaves sin and cos with torch.stack(..., dim=-1).flatten(-2)",
        sinusoidal_encoding=_sinusoidal_stack_flatten,
    ),
    variant(
        "rope_float64",
        "computes RoPE's angles in float64 with torch.outer and casts cos and sin to float32",
        rope_cos_sin=_rope_float64,
    ),
    variant(
        "rope_exp_log",
        "computes inv_freq as exp(-2j * log(base) / head_dim) and repeats the angles with repeat(1, 2)",
        rope_cos_sin=_rope_exp_log,
    ),
    variant(
        "apply_rope_halves",
        "rotates the two halves explicitly, each with its own half of cos and sin",
        apply_rope=_apply_rope_halves,
    ),
    variant(
        "apply_rope_roll",
        "builds rotate_half with torch.roll and a sign vector",
        apply_rope=_apply_rope_roll,
    ),
]


# ---------------------------------------------------------------------------------------------
# Mutants of the reference that `kata mutate` finds with full marks because they compute the same.

_ONE_IS_ODD = "1 is odd, so `< 1 or odd` rejects exactly the sizes `< 2 or odd` does"
_NEGATIVE_MODULUS = "n % -2 is nonzero exactly when n is odd"

EQUIVALENT = {
    "sinusoidal_encoding:constant:5d0c074f": _ONE_IS_ODD,
    "sinusoidal_encoding:constant:62bbc359": _NEGATIVE_MODULUS,
    "sinusoidal_encoding:drop:01faaf66": "int64 positions divided by float64 frequencies are float64 all the same",
    "sinusoidal_encoding:drop:92729b8d": "the exponents 2i / d_model come out in float32 (an integer tensor divided "
                                         "by an int): a float32 rounding of the frequencies, which the lesson allows",
    "sinusoidal_encoding:drop:97ae5f55": "the float64 sines and cosines are rounded to float32 when stored "
                                         "instead of by .float(): the same values",
    "rope_cos_sin:constant:5ce28c1c": _ONE_IS_ODD,
    "rope_cos_sin:constant:43c4f2ba": _NEGATIVE_MODULUS,
    "rope_cos_sin:drop:7a321140": "an integer tensor divided by an int is float32 true division: the same values",
    "rope_cos_sin:drop:e07c0a9f": "the same on the CPU; on a GPU the tables' frequencies stay on the CPU and the "
                                  "product with the positions fails, which grading with --device cuda catches",
    "rope_cos_sin:drop:7d37e761": "integer positions times float32 frequencies are promoted to float32: the same values",
    "rope_cos_sin:constant:d9d31853": "the angles are 2-D, so dim 1 is dim -1",
    "_rotate_half:constant:900bf372": "for an even D, x[..., -D/2:] and x[..., :-D/2] are the same two halves",
}
