"""Reference solution: bottom-right aligned causal mask and causal attention."""

import torch
from torch import Tensor

from reference.attention import scaled_dot_product_attention


def causal_mask(q_len: int, kv_len: int | None = None, *, device=None) -> Tensor:
    if kv_len is None:
        kv_len = q_len
    if q_len < 1:
        raise ValueError(f"q_len must be >= 1, got {q_len}")
    if kv_len < q_len:
        raise ValueError(f"kv_len must be >= q_len ({q_len}), got {kv_len}")
    # Query i is the token at absolute position kv_len - q_len + i: the queries are the
    # newest q_len tokens, the keys are everything seen so far.
    q_pos = torch.arange(kv_len - q_len, kv_len, device=device)  # (q_len,)
    k_pos = torch.arange(kv_len, device=device)  # (kv_len,)
    return k_pos[None, :] <= q_pos[:, None]  # (q_len, kv_len), bool


def causal_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)  # (L, S) broadcasts over batch dims
    return scaled_dot_product_attention(q, k, v, mask)
