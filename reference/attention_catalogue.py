"""Common mistakes and correct variants for the attention kata."""

import math

import torch

from reference import attention as ref
from reference import mistake, variant


def _sdpa(scale_of, fill=float("-inf"), after=False, invert=False, softmax=ref.softmax, dim=-1):
    """An attention built from its parts, so that each mistake changes exactly one of them."""

    def attend(q, k, v, mask=None):
        scores = q @ k.transpose(-2, -1) / scale_of(q, k, v)
        if mask is not None and invert:
            mask = ~mask
        if mask is not None and not after:
            scores = scores.masked_fill(~mask, fill)
        weights = softmax(scores, dim=dim)
        if mask is not None and after:
            weights = weights * mask
        return weights @ v

    return attend


def _sqrt_e(q, k, v):
    return math.sqrt(q.shape[-1])


def _naive_softmax(x, dim=-1):
    e = x.exp()
    return e / e.sum(dim=dim, keepdim=True)


def _float64_softmax(x, dim=-1):
    return ref.softmax(x.double(), dim).to(x.dtype)


def _softmax_without_keepdim(x, dim=-1):
    e = (x - x.amax(dim=dim, keepdim=True)).exp()
    return e / e.sum(dim=dim)  # without keepdim the sums broadcast along the wrong axis


def _finfo_min_fill(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return ref.softmax(scores) @ v


def _dtype_drift(q, k, v, mask=None):
    return ref.scaled_dot_product_attention(q.double(), k.double(), v.double(), mask)


def _einsum(q, k, v, mask=None):
    scores = torch.einsum("...le,...se->...ls", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.einsum("...ls,...sv->...lv", ref.softmax(scores), v)


def _float64_inside(q, k, v, mask=None):
    return ref.scaled_dot_product_attention(q.double(), k.double(), v.double(), mask).to(q.dtype)


def _logsumexp_softmax(x, dim=-1):
    return (x - torch.logsumexp(x, dim=dim, keepdim=True)).exp()


MISTAKES = [
    mistake("no_scaling", "the scores are not divided by sqrt(E)",
            scaled_dot_product_attention=_sdpa(lambda q, k, v: 1.0)),
    mistake("scale_by_value_dim", "the scores are divided by sqrt(Ev), the value size, instead of sqrt(E)",
            scaled_dot_product_attention=_sdpa(lambda q, k, v: math.sqrt(v.shape[-1]))),
    mistake("scale_by_trailing_product", "the scores are divided by the square root of the product of q's trailing dims instead of sqrt(E)",
            scaled_dot_product_attention=_sdpa(lambda q, k, v: math.sqrt(q.shape[-1] * q.shape[-2]))),
    mistake("scale_by_e", "the scores are divided by E instead of sqrt(E)",
            scaled_dot_product_attention=_sdpa(lambda q, k, v: q.shape[-1])),
    mistake("softmax_wrong_axis", "the softmax is taken over the queries (dim -2) instead of over the keys (dim -1)",
            scaled_dot_product_attention=_sdpa(_sqrt_e, dim=-2)),
    mistake("naive_softmax", "the softmax does not subtract the max first, so exp() overflows to inf and NaN for large inputs",
            softmax=_naive_softmax, scaled_dot_product_attention=_sdpa(_sqrt_e, softmax=_naive_softmax)),
    mistake("softmax_sum_not_kept", "the softmax's sum drops the reduced dim (no keepdim=True), so it divides along the wrong axis",
            softmax=_softmax_without_keepdim),
    mistake("mask_after_softmax", "the mask zeroes the weights after the softmax, so the rows no longer sum to 1",
            scaled_dot_product_attention=_sdpa(_sqrt_e, after=True)),
    mistake("inverted_mask", "the mask is inverted: True is treated as 'blocked' instead of 'may attend'",
            scaled_dot_product_attention=_sdpa(_sqrt_e, invert=True)),
    mistake("mask_fill_zero", "masked scores are filled with 0 instead of -inf, so blocked keys still get weight",
            scaled_dot_product_attention=_sdpa(_sqrt_e, fill=0.0)),
    mistake("finite_fill", "masked scores are filled with a large finite number (-1e9) instead of -inf, so blocked "
            "keys still get weight wherever the allowed scores are lower still",
            scaled_dot_product_attention=_sdpa(_sqrt_e, fill=-1e9)),
    mistake("dtype_drift", "the output is float64 for float32 inputs: cast back to q's dtype",
            scaled_dot_product_attention=_dtype_drift),
]

VARIANTS = [
    variant("einsum", "computes both products with torch.einsum", scaled_dot_product_attention=_einsum),
    variant("float64_inside", "computes in float64 and casts back to q's dtype",
            softmax=_float64_softmax, scaled_dot_product_attention=_float64_inside),
    variant("finfo_min_fill", "fills masked scores with torch.finfo(dtype).min instead of -inf",
            scaled_dot_product_attention=_finfo_min_fill),
    variant("logsumexp", "softmax as exp(x - logsumexp(x))", softmax=_logsumexp_softmax),
]

# Mutants of reference/attention.py (kata mutate) that no input can tell from it: id -> why.
EQUIVALENT = {
    "scaled_dot_product_attention:args:d9a7eb49": "k.transpose(-1, -2) swaps the same two dims as k.transpose(-2, -1)",
}
