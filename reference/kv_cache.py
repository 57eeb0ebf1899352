"""Reference solution: a key/value cache and causal self-attention that decodes with it."""

import torch
from torch import Tensor, nn

from reference.attention import scaled_dot_product_attention


class KVCache:
    def __init__(self) -> None:
        self.keys: Tensor | None = None
        self.values: Tensor | None = None

    def update(self, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        if self.keys is None:
            self.keys, self.values = k_new, v_new
        else:
            # Dim -2 is the sequence: the new positions come after the cached ones.
            self.keys = torch.cat([self.keys, k_new], dim=-2)
            self.values = torch.cat([self.values, v_new], dim=-2)
        return self.keys, self.values

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]


class CachedCausalSelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.o_proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: Tensor, cache: KVCache | None = None) -> Tensor:
        B, T, _ = x.shape
        # (B, T, d_model) -> (B, T, H, head_dim) -> (B, H, T, head_dim): each head gets its own
        # slice of the features; the transpose puts the sequence next to head_dim.
        q, k, v = (
            p(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
            for p in (self.q_proj, self.k_proj, self.v_proj)
        )
        if cache is not None:
            # Only the new tokens were projected; the past keys and values come from the cache.
            k, v = cache.update(k, v)
        L, S = q.shape[-2], k.shape[-2]
        # Bottom-right causal: query i is position S - L + i of the sequence and sees keys 0 .. S - L + i.
        mask = torch.ones(L, S, dtype=torch.bool, device=x.device).tril(S - L)
        y = scaled_dot_product_attention(q, k, v, mask)  # (B, H, T, head_dim)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.d_model))
