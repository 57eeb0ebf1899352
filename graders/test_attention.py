"""Grader for katas/attention.py: each Case is one check, learner against reference."""

import torch

from graders.harness import Case, cases

f64 = torch.float64


def attention_inputs(*lead, L=5, S=7, E=8, Ev=6, dtype=torch.float32, mask=None, scale=1.0):
    def make(g):
        q, k = g.randn(*lead, L, E, dtype=dtype, scale=scale), g.randn(*lead, S, E, dtype=dtype, scale=scale)
        v = g.randn(*lead, S, Ev, dtype=dtype)
        return (q, k, v) if mask is None else (q, k, v, g.mask(*mask, L, S))
    return make


def with_very_negative_scores(g):
    """q and k point opposite ways, so that every score is about -1e30: blocked scores filled with
    any finite number above that would outweigh all the allowed ones."""
    q = (g.rand(2, 4, 8) + 0.5) * 1e15
    k = -(g.rand(2, 6, 8) + 0.5) * 1e15
    return q, k, g.randn(2, 6, 5), g.mask(2, 4, 6)


def hidden_softmax(g):
    shape = tuple(int(n) for n in g.randint(2, 9, 3))
    return g.randn(*shape, scale=10.0), int(g.randint(-3, 3))  # any dim, negative ones included


def hidden_attention(g):
    L, S, E, Ev = (int(n) for n in g.randint(1, 13, 4))
    return attention_inputs(2, 2, L=L, S=S, E=E, Ev=Ev, mask=(2, 1))(g)


def with_neg_inf(g):
    x = g.randn(4, 9)
    x[:, 2] = float("-inf")
    x[1, 5:] = float("-inf")
    return (x,)


test_case = cases([
    Case("softmax_rows", "softmax", lambda g: (g.randn(4, 7),)),
    Case("softmax_square", "softmax", lambda g: (g.randn(6, 6, scale=3.0),)),
    Case("softmax_dim0", "softmax", lambda g: (g.randn(5, 3), 0)),
    Case("softmax_large_values", "softmax", lambda g: (g.randn(3, 8, scale=5e3),), what="softmax of entries around 1e3-1e4"),
    Case("softmax_neg_inf", "softmax", with_neg_inf, what="softmax of rows containing -inf"),
    Case("softmax_float64", "softmax", lambda g: (g.randn(2, 3, 10, dtype=f64, scale=4.0),)),
    Case("attention_basic", "scaled_dot_product_attention", attention_inputs(L=4, S=4, E=8, Ev=8)),
    Case("attention_l_ne_s", "scaled_dot_product_attention", attention_inputs(L=3, S=9, E=16, Ev=16)),
    Case("attention_e_ne_ev", "scaled_dot_product_attention", attention_inputs(L=5, S=7, E=16, Ev=4)),
    Case("attention_batch_heads", "scaled_dot_product_attention", attention_inputs(2, 3, L=6, S=6, E=12, Ev=5)),
    Case("attention_mask", "scaled_dot_product_attention", attention_inputs(2, L=5, S=7, E=8, Ev=3, mask=(2,))),
    Case("attention_broadcast_mask", "scaled_dot_product_attention", attention_inputs(2, 3, L=4, S=6, E=8, Ev=8, mask=()),
         what="attention with a (L, S) mask broadcast over batch and heads"),
    Case("attention_large_scores", "scaled_dot_product_attention", attention_inputs(L=4, S=5, E=32, Ev=8, scale=10.0),
         what="attention whose scores reach the hundreds"),
    Case("attention_float64", "scaled_dot_product_attention", attention_inputs(2, L=3, S=5, E=6, Ev=7, dtype=f64, mask=(2,))),
    Case("attention_mask_very_negative_scores", "scaled_dot_product_attention", with_very_negative_scores,
         what="attention with a mask, every allowed score about -1e30 (blocked keys must still get no weight)"),
    Case("softmax_hidden", "softmax", hidden_softmax, hidden=True),
    Case("attention_hidden", "scaled_dot_product_attention", hidden_attention, hidden=True),
])
