"""KV cache: generate one token at a time without redoing the past.

A decoder-only language model writes text one token at a time. To pick token t+1 it runs
the whole network on tokens 0..t; to pick token t+2 it runs it again on 0..t+1, and so on.
Done naively, every step recomputes everything the previous step already computed.

Look at what causal self-attention needs at step t. The output for the newest position is

    y_t = softmax(q_t K^T / sqrt(head_dim)) V,   K = [k_0; ...; k_t],   V = [v_0; ...; v_t]

q_t is the newest token's query. The keys and values k_j = x_j W_k and v_j = x_j W_v of the
earlier tokens do not change when a token is added (the mask forbids looking ahead, so nothing
about position j depends on what comes after it). So compute them once, keep them, and at each
step project only the new token:

    without a cache, step t:  project t+1 tokens  -> O(t * d^2);  scores (t+1) x (t+1) -> O(t^2 * d)
    with a cache, step t:     project 1 token     -> O(d^2);      scores 1 x (t+1)     -> O(t * d)

The keys and values are cached; the queries are not: a token's query is used once, by the step
that adds the token, because the older tokens' outputs were produced by earlier steps. That is the
whole trick, and every LLM server does it (Pope et al. 2022, "Efficiently Scaling Transformer
Inference", https://arxiv.org/abs/2211.05102; Hugging Face transformers' `DynamicCache` is this
class, appending with torch.cat along dim -2). The price is memory: 2 * n_layers * B * H * T *
head_dim numbers, which is why long contexts are expensive to serve.

Shapes (B batch, H heads, D = head_dim, d_model = H * D)

    x          (B, T_new, d_model)      the next T_new tokens (1 when decoding, more for a prompt)
    q, k, v    (B, H, T_new, D)         after projecting and splitting heads
    cache      (B, H, T_past, D) each   keys and values of every token seen so far
    K, V       (B, H, T_total, D)       T_total = T_past + T_new, after appending the new ones
    scores     (B, H, T_new, T_total)
    output     (B, T_new, d_model)

Splitting heads. q_proj(x) is (B, T, d_model) and its last dim is H blocks of D features, one
block per head. View it as (B, T, H, D), then transpose(1, 2) to (B, H, T, D). A plain
reshape(B, H, T, D) has the right shape but deals features out to the wrong heads and positions.
Merging is the inverse: transpose back to (B, T, H, D), then reshape to (B, T, d_model).
The scale is 1 / sqrt(D), the width of one head's dot product, not 1 / sqrt(d_model).

The causal mask, bottom-right. With a cache, the T_new queries are the LAST T_new positions of
a T_total-long sequence: query i sits at position T_past + i and may attend keys 0 .. T_past + i.
The mask (True = may attend) is (T_new, T_total):

    T_new = 2, T_total = 5:   [[1 1 1 1 0]
                               [1 1 1 1 1]]

Without a cache T_new == T_total and it is the usual lower triangle. Careful:
torch.nn.functional.scaled_dot_product_attention(..., is_causal=True) builds the TOP-LEFT
triangle (query i sees keys 0 .. i), which is right only when T_new == T_total; with one new
query it would let the newest token see only the first one.

Appending. The cache grows along the sequence dim (-2), new positions after old ones:
torch.cat([old, new], dim=-2). Not dim 1 (that is the heads), not [new, old] (that reverses
time, which the causal mask then gets wrong), not `self.k = k_new` (that forgets the past).

What you write:
- KVCache: __init__ (empty storage), update(k_new, v_new) -> all keys and values so far,
  __len__ -> number of cached positions (0 when empty).
- CachedCausalSelfAttention.forward(x, cache=None). __init__ is given. Use your own
  scaled_dot_product_attention from the attention kata (imported below) with the mask above,
  or torch's with attn_mask=mask. Without a cache, forward is plain causal self-attention.

The check that matters most is counted, not timed: the grader counts the FLOPs of one decode
step (with torch.utils.flop_counter's formulas) and expects the cost to grow like T, not like T^2.
A forward that gives the right numbers by recomputing the whole sequence fails it.
"""

import torch
from torch import Tensor, nn

from katas.attention import scaled_dot_product_attention


class KVCache:
    """The keys and values of every position seen so far, for one attention layer.

    Starts empty; each update appends along the sequence dim (-2).
    """

    def __init__(self) -> None:
        raise NotImplementedError("set up empty storage for the keys and values")

    def update(self, k_new: Tensor, v_new: Tensor) -> tuple[Tensor, Tensor]:
        """Append k_new, v_new (B, H, T_new, D) after the cached positions.

        Returns (keys, values), each (B, H, T_total, D): everything cached so far, the new
        positions last.
        """
        raise NotImplementedError("append k_new and v_new along dim -2 and return all keys and values")

    def __len__(self) -> int:
        """T_total, the number of cached positions (0 when empty)."""
        raise NotImplementedError("return the number of cached positions")


class CachedCausalSelfAttention(nn.Module):
    """Multi-head causal self-attention that can decode incrementally with a KVCache."""

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
        """x (B, T_new, d_model): the next T_new tokens -> (B, T_new, d_model).

        Project x to q, k, v and split heads to (B, H, T_new, head_dim); with a cache, append
        k and v to it and attend over everything it returns; attend the T_new queries under
        a bottom-right causal mask; merge heads; o_proj. Without a cache: plain causal
        self-attention over x.
        """
        raise NotImplementedError(
            "project only x, split heads, append k and v to the cache, "
            "attend under a bottom-right causal mask, merge heads, o_proj"
        )
