"""Grader for katas/positional_encoding.py: each Case is one check, learner against reference.

apply_rope's own checks get their tables from this file (computed in float64 in the rotate-half
layout), so that a mistake in rope_cos_sin cannot hide one in apply_rope or the other way round;
the checks of RoPE's properties run the learner's two functions together.
"""

import torch

from graders.harness import Case, cases

f64 = torch.float64


def tables(positions, D, base=10000.0, dtype=torch.float32):
    """(cos, sin), each (T, D): angles positions[p] / base ** (2j / D), the D/2 frequencies repeated."""
    inv_freq = base ** -(torch.arange(0, D, 2, dtype=f64) / D)
    angles = positions.to(f64)[:, None] * inv_freq[None, :]
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def hidden_base(g):
    return (500.0, 10000.0, 1e6)[g.seed % 3]


# ------------------------------------------------------------------------------ sinusoidal_encoding


def hidden_sinusoidal(g):
    return 3 + g.seed % 9, 2 * (2 + (g.seed // 9) % 5), hidden_base(g)


# ------------------------------------------------------------------------------------ rope_cos_sin


def positions(*values, dtype=torch.int64):
    return torch.tensor(values, dtype=dtype)


def span(start, stop):
    return torch.arange(start, stop)


def hidden_tables(g):
    start = 1 + g.seed % 23
    return span(start, start + 3 + (g.seed // 23) % 4), 2 * (2 + (g.seed // 7) % 5), hidden_base(g)


# -------------------------------------------------------------------------------------- apply_rope


def rope_inputs(*lead, T, D, start=0, dtype=torch.float32, tables_dtype=torch.float32):
    """x (*lead, T, D) and the tables of positions start ... start + T - 1."""
    def make(g):
        return (g.randn(*lead, T, D, dtype=dtype), *tables(span(start, start + T), D, dtype=tables_dtype))
    return make


def unequal_halves(g):
    """Tables whose two halves hold different values: each half must act on its own features."""
    return g.randn(3, 4, 8), g.rand(4, 8) * 2 - 1, g.rand(4, 8) * 2 - 1


def basis_vectors(g):
    """The D basis vectors e_j as x (D, 1, D), at one position: the output rows form the rotation matrix."""
    D = 8
    return (torch.eye(D)[:, None, :], *tables(positions(3), D))


# ------------------------------------------------------------------------- RoPE, both functions


def rope(m, x, pos, base=10000.0):
    """The learner's RoPE end to end: rope_cos_sin's tables applied by apply_rope."""
    cos, sin = m.rope_cos_sin(pos.to(x.device), x.shape[-1], base)
    return m.apply_rope(x, cos, sin)


def position_zero(m, x):
    return rope(m, x, torch.zeros(x.shape[-2], dtype=torch.int64))


def pair_norms(m, x):
    """The length of every rotated pair (j, j + D/2), which a rotation keeps."""
    y = rope(m, x, span(2, 2 + x.shape[-2]))
    half = x.shape[-1] // 2
    return torch.sqrt(y[..., :half] ** 2 + y[..., half:] ** 2)


SHIFTS = (3, 11)


def relative_scores(m, q, k):
    """How far the scores of q at positions 0 .. T-1 against k at 0 .. T-1 move when every position
    is shifted by the same amount: RoPE's scores depend on m - n only, so not at all."""
    T = q.shape[-2]
    scores = [rope(m, q, span(s, s + T)) @ rope(m, k, span(s, s + T)).transpose(-2, -1) for s in (0, *SHIFTS)]
    return tuple(s - scores[0] for s in scores[1:])


def two_vectors(T, D):
    return lambda g: (g.randn(T, D), g.randn(T, D))


def hidden_pipeline(g):
    D = 2 * (2 + g.seed % 4)
    start = g.seed % 29
    return g.randn(2, 2, 3, D), span(start, start + 3), hidden_base(g)


test_case = cases([
    Case("sinusoidal_basic", "sinusoidal_encoding", lambda g: (12, 8)),
    Case("sinusoidal_base", "sinusoidal_encoding", lambda g: (10, 6, 100.0)),
    Case("sinusoidal_long", "sinusoidal_encoding", lambda g: (4096, 16), tol="large_positions",
         what="sinusoidal_encoding(4096, 16), positions up to 4095"),
    Case("sinusoidal_smallest", "sinusoidal_encoding", lambda g: (1, 2),
         what="sinusoidal_encoding(1, 2), the smallest valid table"),
    Case("sinusoidal_seq_len_zero", "sinusoidal_encoding", lambda g: (0, 8)),
    Case("sinusoidal_d_model_odd", "sinusoidal_encoding", lambda g: (5, 7)),
    Case("sinusoidal_d_model_zero", "sinusoidal_encoding", lambda g: (5, 0)),
    Case("rope_tables_basic", "rope_cos_sin", lambda g: (span(0, 6), 8)),
    Case("rope_tables_base", "rope_cos_sin", lambda g: (span(0, 5), 6, 500.0)),
    Case("rope_tables_offset", "rope_cos_sin", lambda g: (span(9, 13), 8),
         what="rope_cos_sin(positions 9 ... 12, 8): four new tokens after nine cached ones"),
    Case("rope_tables_positions", "rope_cos_sin", lambda g: (positions(3, 0, 7, 7, 1, dtype=torch.int32), 4),
         what="rope_cos_sin(int32 positions [3, 0, 7, 7, 1], 4)"),
    Case("rope_tables_large_positions", "rope_cos_sin", lambda g: (span(4090, 4098), 32), tol="large_positions",
         what="rope_cos_sin(positions 4090 ... 4097, 32)"),
    Case("rope_tables_head_dim_two", "rope_cos_sin", lambda g: (span(0, 4), 2),
         what="rope_cos_sin(positions 0 ... 3, 2), the smallest valid head"),
    Case("rope_head_dim_odd", "rope_cos_sin", lambda g: (span(0, 3), 5)),
    Case("rope_head_dim_zero", "rope_cos_sin", lambda g: (span(0, 3), 0)),
    Case("apply_rope_basic", "apply_rope", rope_inputs(T=5, D=8)),
    Case("apply_rope_float64", "apply_rope", rope_inputs(2, T=4, D=6, start=3, dtype=f64, tables_dtype=f64),
         tol="float64"),
    Case("apply_rope_broadcast", "apply_rope", rope_inputs(2, 3, T=5, D=8),
         what="apply_rope(x (B, H, T, D) = (2, 3, 5, 8), cos and sin (5, 8))"),
    Case("apply_rope_bfloat16", "apply_rope", rope_inputs(2, T=4, D=8, start=20, dtype=torch.bfloat16), tol="bfloat16",
         what="apply_rope(bfloat16 x (2, 4, 8), float32 cos and sin (4, 8))"),
    Case("apply_rope_unequal_halves", "apply_rope", unequal_halves,
         what="apply_rope(x (3, 4, 8), cos and sin (4, 8) whose two halves differ)"),
    Case("apply_rope_pairs", "apply_rope", basis_vectors,
         what="apply_rope of each basis vector e_j of size 8 at position 3 (the rows of the rotation matrix)"),
    Case("rope_position_zero", position_zero, lambda g: (g.randn(2, 3, 8),),
         what="apply_rope(x, *rope_cos_sin(positions all 0, 8)), which must give x back"),
    Case("rope_pair_norms", pair_norms, lambda g: (g.randn(2, 6, 8),),
         what="the length of each pair (j, j + 4) of apply_rope(x, *rope_cos_sin(positions 2 ... 7, 8))"),
    Case("rope_relative", relative_scores, two_vectors(4, 8),
         what=f"the change of the scores q_m . k_n (positions 0 ... 3) when every position is shifted by "
              f"{' and by '.join(map(str, SHIFTS))} (must be 0)"),
    Case("sinusoidal_hidden", "sinusoidal_encoding", hidden_sinusoidal, hidden=True),
    Case("rope_tables_hidden", "rope_cos_sin", hidden_tables, hidden=True),
    Case("rope_hidden", rope, hidden_pipeline, hidden=True,
         what="apply_rope(x, *rope_cos_sin(positions, head_dim, base)) on hidden inputs"),
])
