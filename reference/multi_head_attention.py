"""Reference solution: multi-head attention, and loading torch's nn.MultiheadAttention into it."""

import torch
from torch import Tensor, nn

from reference.attention import scaled_dot_product_attention


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    B, T, d_model = x.shape
    if d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
    # Cut the features into n_heads blocks, then bring the heads in front of the positions so that
    # each head's (T, D) matrix sits in the last two dims, where matmul works.
    return x.reshape(B, T, n_heads, d_model // n_heads).transpose(1, 2)  # (B, H, T, D)


def merge_heads(x: Tensor) -> Tensor:
    B, H, T, D = x.shape
    # transpose leaves a non-contiguous tensor: reshape copies where view would fail.
    return x.transpose(1, 2).reshape(B, T, H * D)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> Tensor:
        q = split_heads(self.q_proj(query), self.n_heads)  # (B, H, L, D)
        k = split_heads(self.k_proj(key), self.n_heads)  # (B, H, S, D)
        v = split_heads(self.v_proj(value), self.n_heads)  # (B, H, S, D)
        # The attention kata scales by sqrt of q's last dim: head_dim, one head's dot product.
        y = scaled_dot_product_attention(q, k, v, mask)  # (B, H, L, D)
        return self.out_proj(merge_heads(y))  # (B, L, d_model)

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        weight, bias = mha.in_proj_weight, mha.in_proj_bias
        new = cls(mha.embed_dim, mha.num_heads, bias=bias is not None).to(weight.device, weight.dtype)
        projections = (new.q_proj, new.k_proj, new.v_proj)
        with torch.no_grad():
            # in_proj_weight (3 d_model, d_model) stacks W_q, W_k, W_v as rows, in nn.Linear's (out, in)
            # layout: each block copies over as it is.
            for proj, w in zip(projections, weight.chunk(3)):
                proj.weight.copy_(w)
            new.out_proj.weight.copy_(mha.out_proj.weight)
            if bias is not None:
                for proj, b in zip(projections, bias.chunk(3)):
                    proj.bias.copy_(b)
                new.out_proj.bias.copy_(mha.out_proj.bias)
        return new.train(mha.training)
