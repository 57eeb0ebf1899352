"""Kata 1 — Scaled dot-product attention.

Attention lets every position of a sequence look at every other position and take a weighted
average of what it finds there. It is the one operation a Transformer is built around
("Attention Is All You Need", Vaswani et al., 2017, section 3.2.1).

Shapes
------
    q : (..., L, E)    L queries, each a vector of size E
    k : (..., S, E)    S keys, same size E as the queries
    v : (..., S, Ev)   one value per key, of size Ev (often, but not always, equal to E)
    out: (..., L, Ev)  for each query, a weighted average of the values

The leading dims `...` (batch, heads) are the same for q, k and v and are carried along.

The math
--------
    scores  = q @ k^T / sqrt(E)          (..., L, S)   how well query i matches key j
    weights = softmax(scores, dim=-1)    (..., L, S)   each row sums to 1
    out     = weights @ v                (..., L, Ev)

Why divide by sqrt(E)? If the entries of q and k have variance 1, a dot product of length E has
variance E. Large scores push the softmax into a near one-hot corner where its gradient vanishes;
dividing by sqrt(E) brings the variance back to 1. Note that it is E, the size of q and k — not
Ev, the size of the values.

Softmax, stably
---------------
    softmax(x)_i = exp(x_i) / sum_j exp(x_j)

exp(1000.) is inf in float32 and float64 alike, so the textbook formula returns NaN for large
inputs. Since softmax(x) == softmax(x - c) for any constant c, subtract the maximum along `dim`
first: every exponent is then <= 0 and the largest term is exactly exp(0) = 1.
An entry of -inf means "impossible": exp(-inf) = 0, so it gets probability 0.

Masking
-------
`mask` is a bool tensor broadcastable to (..., L, S); True means "query i may attend to key j".
A disallowed score must not take part in the softmax at all: set it to -inf BEFORE the softmax,
so the remaining weights of the row still sum to 1. (Zeroing weights after the softmax leaves
rows that no longer sum to 1; filling scores with 0 still gives them weight exp(0), and so does
any finite fill such as -1e9 in a row whose allowed scores are lower still.)
Every row of a mask in this kata has at least one True.

Rules
-----
Build it from tensor arithmetic (matmul, exp, max, sum, masked_fill, ...). The grader forbids
torch's own softmax family and F.scaled_dot_product_attention, and checks that your functions
do not change their inputs in place and return the dtype of their input.

Run `kata check attention` (or `pytest graders/test_attention.py`) to see how you are doing, and
`kata hint attention` when stuck.
"""

import torch
from torch import Tensor


def softmax(x: Tensor, dim: int = -1) -> Tensor:
    """Numerically stable softmax of x along dim.

    x: any shape. Returns a tensor of the same shape and dtype whose slices along dim sum to 1.
    Must stay finite for entries of magnitude 1e3-1e4; entries equal to -inf get probability 0
    (each slice has at least one finite entry).
    """
    raise NotImplementedError("softmax (katas/attention.py)")


def scaled_dot_product_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
    """softmax(q @ k^T / sqrt(E), disallowed scores removed) @ v.

    q: (..., L, E)   k: (..., S, E)   v: (..., S, Ev)
    mask: optional bool, broadcastable to (..., L, S); True = may attend.
    Returns (..., L, Ev) in the dtype of q.
    """
    raise NotImplementedError("scaled_dot_product_attention (katas/attention.py)")
