"""Catalogue for the causal_mask kata: common mistakes and correct variants."""

import math

import torch

from reference import mistake, variant
from reference.attention import scaled_dot_product_attention, softmax
from reference.causal_mask import causal_mask


def _check(q_len, kv_len):
    if q_len < 1:
        raise ValueError(f"q_len must be >= 1, got {q_len}")
    if kv_len < q_len:
        raise ValueError(f"kv_len must be >= q_len ({q_len}), got {kv_len}")


def _ones(q_len, kv_len, device):
    return torch.ones(q_len, kv_len, dtype=torch.bool, device=device)


# --- mistakes in causal_mask -------------------------------------------------------------


def _top_left(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return _ones(q_len, kv_len, device).tril()


def _offset_sign_flipped(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return _ones(q_len, kv_len, device).tril(diagonal=q_len - kv_len)


def _strict(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len - 1)


def _one_too_many(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len + 1)


def _inverted(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return _ones(q_len, kv_len, device).triu(diagonal=kv_len - q_len + 1)


def _transposed(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    q_pos = torch.arange(kv_len - q_len, kv_len, device=device)
    k_pos = torch.arange(kv_len, device=device)
    return k_pos[:, None] <= q_pos[None, :]  # (kv_len, q_len)


def _float_mask(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return torch.ones(q_len, kv_len, device=device).tril(diagonal=kv_len - q_len)


def _additive_mask(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    blocked = torch.full((q_len, kv_len), float("-inf"), device=device)
    return blocked.triu(diagonal=kv_len - q_len + 1)  # 0 where allowed, -inf where blocked


def _no_kv_len_default(q_len, kv_len=None, *, device=None):
    if q_len < 1:
        raise ValueError(f"q_len must be >= 1, got {q_len}")
    if kv_len is not None and kv_len < q_len:
        raise ValueError(f"kv_len must be >= q_len ({q_len}), got {kv_len}")
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len)


def _kv_len_or_default(q_len, kv_len=None, *, device=None):
    kv_len = kv_len or q_len  # kv_len=0 silently becomes q_len
    _check(q_len, kv_len)
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len)


def _no_checks(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len)


def _no_kv_len_check(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    if q_len < 1:
        raise ValueError(f"q_len must be >= 1, got {q_len}")
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len)


def _no_q_len_check(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    if kv_len < q_len:
        raise ValueError(f"kv_len must be >= q_len ({q_len}), got {kv_len}")
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len)


def _assert_checks(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    assert q_len >= 1, f"q_len must be >= 1, got {q_len}"
    assert kv_len >= q_len, f"kv_len must be >= q_len ({q_len}), got {kv_len}"
    return _ones(q_len, kv_len, device).tril(diagonal=kv_len - q_len)


def _ignores_device(q_len, kv_len=None, *, device=None):
    return causal_mask(q_len, kv_len)  # on the default device, wherever the caller asked for it


def _attention_on_default_device_mask(q, k, v):
    # A learner's causal_attention passes device=q.device to their own causal_mask, which drops it.
    return scaled_dot_product_attention(q, k, v, _ignores_device(q.shape[-2], k.shape[-2], device=q.device))


# --- mistakes in causal_attention (causal_mask itself is right) --------------------------


def _attention_default_device(q, k, v):
    return scaled_dot_product_attention(q, k, v, causal_mask(q.shape[-2], k.shape[-2]))  # no device=q.device



def _attention_top_left(q, k, v):
    L, S = q.shape[-2], k.shape[-2]
    mask = torch.ones(L, S, dtype=torch.bool, device=q.device).tril()
    return scaled_dot_product_attention(q, k, v, mask)


def _attention_inverted(q, k, v):
    mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
    return scaled_dot_product_attention(q, k, v, ~mask)  # read True as "blocked"


def _attention_no_mask(q, k, v):
    return scaled_dot_product_attention(q, k, v)


def _attention_square_mask(q, k, v):
    # causal_mask(L) forgets the cached keys: an (L, L) mask for (L, S) scores.
    return scaled_dot_product_attention(q, k, v, causal_mask(q.shape[-2], device=q.device))


MISTAKES = [
    mistake(
        "top_left_aligned",
        "the mask is a plain tril() on (q_len, kv_len), aligned top-left like is_causal=True, "
        "so with fewer queries than keys the last queries cannot see their recent past",
        causal_mask=_top_left,
    ),
    mistake(
        "offset_sign_flipped",
        "the diagonal offset is q_len - kv_len instead of kv_len - q_len, so queries lose keys they may see",
        causal_mask=_offset_sign_flipped,
    ),
    mistake(
        "strict_diagonal",
        "the diagonal is excluded (an off-by-one): a query may not attend to its own position",
        causal_mask=_strict,
    ),
    mistake(
        "one_too_many",
        "the diagonal offset is one too large (an off-by-one): each query also sees the next token",
        causal_mask=_one_too_many,
    ),
    mistake(
        "inverted_mask",
        "the mask is inverted: True marks the future keys to block instead of the keys that may be attended",
        causal_mask=_inverted,
    ),
    mistake(
        "transposed_mask",
        "the mask has shape (kv_len, q_len), keys by queries, instead of (q_len, kv_len)",
        causal_mask=_transposed,
    ),
    mistake(
        "float_mask",
        "the mask is a float tensor of 0s and 1s instead of a bool tensor",
        causal_mask=_float_mask,
    ),
    mistake(
        "additive_mask",
        "the mask is an additive float mask (0 and -inf) instead of a bool tensor with True = may attend",
        causal_mask=_additive_mask,
    ),
    mistake(
        "no_kv_len_default",
        "kv_len is not defaulted to q_len when it is None",
        causal_mask=_no_kv_len_default,
    ),
    mistake(
        "kv_len_or_default",
        "kv_len is defaulted with `kv_len or q_len`, so kv_len=0 silently becomes q_len instead of a ValueError",
        causal_mask=_kv_len_or_default,
    ),
    mistake(
        "no_kv_len_check",
        "kv_len < q_len is not refused with a ValueError (the first queries would have no key to attend)",
        causal_mask=_no_kv_len_check,
    ),
    mistake(
        "no_q_len_check",
        "q_len < 1 is not refused with a ValueError",
        causal_mask=_no_q_len_check,
    ),
    mistake(
        "no_value_errors",
        "the arguments are not checked: q_len < 1 and kv_len < q_len must raise ValueError",
        causal_mask=_no_checks,
    ),
    mistake(
        "assert_instead_of_value_error",
        "the arguments are checked with assert, which raises AssertionError (and vanishes under python -O), "
        "instead of raising ValueError",
        causal_mask=_assert_checks,
    ),
    mistake(
        "mask_ignores_device",
        "causal_mask ignores device= and builds the mask on the default device",
        causal_mask=_ignores_device,
        causal_attention=_attention_on_default_device_mask,
    ),
    mistake(
        "attention_top_left_mask",
        "causal_attention builds a top-left aligned mask (tril() on (L, S)) instead of using causal_mask(L, S)",
        causal_attention=_attention_top_left,
    ),
    mistake(
        "attention_inverted_mask",
        "causal_attention passes ~mask, reading True as 'blocked' like nn.MultiheadAttention does",
        causal_attention=_attention_inverted,
    ),
    mistake(
        "attention_no_mask",
        "causal_attention does not pass the mask to the attention, so every query sees the future",
        causal_attention=_attention_no_mask,
    ),
    mistake(
        "attention_square_mask",
        "causal_attention builds causal_mask(L) without kv_len, a square mask that does not fit "
        "the (L, S) scores when there are more keys than queries",
        causal_attention=_attention_square_mask,
    ),
    mistake(
        "attention_mask_on_default_device",
        "causal_attention builds the mask without device=q.device, so it is on the default device, not q's",
        causal_attention=_attention_default_device,
    ),
]


# --- correct variants ------------------------------------------------------------------


def _tril_offset(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    return torch.ones(q_len, kv_len, dtype=torch.bool, device=device).tril(diagonal=kv_len - q_len)


def _not_triu(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    future = torch.ones(q_len, kv_len, dtype=torch.bool, device=device).triu(diagonal=kv_len - q_len + 1)
    return ~future


def _square_last_rows(q_len, kv_len=None, *, device=None):
    kv_len = q_len if kv_len is None else kv_len
    _check(q_len, kv_len)
    full = torch.tril(torch.ones(kv_len, kv_len, device=device)).bool()
    return full[kv_len - q_len :].contiguous()


def _attention_by_hand(q, k, v):
    # Additive mask and a hand-written attention instead of the attention kata.
    mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)
    bias = torch.zeros(mask.shape, dtype=q.dtype, device=q.device).masked_fill(~mask, float("-inf"))
    scores = torch.einsum("...le,...se->...ls", q, k) / math.sqrt(q.shape[-1]) + bias
    return torch.einsum("...ls,...sv->...lv", softmax(scores, dim=-1), v)


def _attention_cached_plus_square(q, k, v):
    # Every query sees all S - L cached keys; among the L new ones, the square causal mask.
    L, S = q.shape[-2], k.shape[-2]
    mask = torch.ones(L, S, dtype=torch.bool, device=q.device)
    mask[:, S - L :] = causal_mask(L, device=q.device)
    return scaled_dot_product_attention(q, k, v, mask)


VARIANTS = [
    variant(
        "tril_offset",
        "builds the mask with ones(...).tril(diagonal=kv_len - q_len)",
        causal_mask=_tril_offset,
    ),
    variant(
        "not_triu",
        "builds the mask as the negation of the strictly-future upper triangle, triu(diagonal=kv_len - q_len + 1)",
        causal_mask=_not_triu,
    ),
    variant(
        "square_last_rows",
        "takes the last q_len rows of the square (kv_len, kv_len) lower-triangular mask",
        causal_mask=_square_last_rows,
    ),
    variant(
        "attention_by_hand",
        "writes causal_attention with an additive -inf mask and einsum instead of calling the attention kata",
        causal_attention=_attention_by_hand,
    ),
    variant(
        "attention_cached_plus_square",
        "lets every query see all cached keys and puts the square causal mask on the last L columns",
        causal_attention=_attention_cached_plus_square,
    ),
]
