"""Kata: multi-head attention.

One attention (the attention kata) compares each query with each key through one dot product.
Multi-head attention ("Attention Is All You Need", Vaswani et al. 2017, section 3.2.2) runs H
smaller attentions side by side, each on its own learned projection of the inputs, so that one head
can follow, say, the previous token while another follows the subject of the sentence. Their
outputs are concatenated and mixed by one more linear layer. Every Transformer layer is built
around this module.

The math
--------
    MultiHead(Q, K, V) = Concat(head_1, ..., head_H) W_O
    head_h             = Attention(Q W_Q^h, K W_K^h, V W_V^h)

With d_model = H * D (D = head_dim), the H matrices W_Q^h, each (d_model, D), side by side are one
(d_model, d_model) matrix. So one nn.Linear, q_proj, computes the queries of every head at once,
and head h owns its output features h*D ... (h+1)*D - 1. The same goes for k_proj and v_proj;
out_proj is W_O. Four (d_model, d_model) layers, whatever H is: more heads means narrower heads,
not more parameters.

Shapes (B batch, L queries, S keys, H heads, D = d_model // H)
--------------------------------------------------------------
    query                 (B, L, d_model)
    key, value            (B, S, d_model)
    q_proj(query)         (B, L, d_model)  -> split_heads -> q (B, H, L, D)
    k_proj(key), v_proj   (B, S, d_model)  -> split_heads -> k, v (B, H, S, D)
    scores                (B, H, L, S)     q @ k^T / sqrt(D)
    per-head outputs      (B, H, L, D)     softmax(scores) @ v
    merge_heads           (B, L, d_model)  -> out_proj -> (B, L, d_model)

Self-attention passes the same x as query, key and value (L == S). Cross-attention (a decoder
reading an encoder's output) takes its queries from one sequence and its keys and values from
another, of another length S.

Splitting and merging heads
---------------------------
The last dim of q_proj(x) (B, T, d_model) is H blocks of D features. Cut it into blocks, to
(B, T, H, D), then swap the heads in front of the positions, to (B, H, T, D), so that each head's
(T, D) matrix sits in the last two dims, where matmul works on it. A plain x.reshape(B, H, T, D) has
the same shape and the wrong contents: it refills the memory in order, so head 0 receives the
first T*D numbers, whole tokens' worth of features, and heads and positions are scrambled.
merge_heads is the inverse: (B, H, T, D) back to (B, T, H, D), then flatten the last two dims into
(B, T, H*D). After a transpose the tensor is no longer contiguous: view refuses it, reshape copies.
d_model not divisible by n_heads is an error: raise ValueError (in split_heads and in __init__).

The scale
---------
Each head's dot product has D terms, so its scores are divided by sqrt(D) = sqrt(head_dim), not by
sqrt(d_model). The attention kata's function scales by the size of q's last dim, which after the
split is exactly D.

The mask
--------
mask is optional, bool, broadcastable to (B, H, L, S), True = the query may attend to the key (this
project's convention, as in the attention kata). The same mask applies to every head. Typical shapes:
    (L, S)           the same for every sequence (a causal mask, say)
    (B, 1, L, S)     one per sequence
    (B, 1, 1, S)     key padding: which keys of each sequence are real tokens
Every query row has at least one allowed key.

From torch's nn.MultiheadAttention
----------------------------------
torch packs the three input projections into one parameter: in_proj_weight (3 d_model, d_model)
holds the rows of W_q, W_k and W_v in that order, and in_proj_bias (3 d_model,) their biases (None
when bias=False); out_proj is a Linear. Each block is in nn.Linear's layout, (out, in) with
y = x @ W.T + b, so it copies over as it is, no transpose. from_torch builds a new module holding
copies of these (copy_ under torch.no_grad(); never the torch module's own tensors), with the torch
module's dtype and device, in its training mode (mha.training).

Two traps. torch's bool attn_mask means the opposite of this kata's: True = NOT allowed, so
mha(q, k, v, attn_mask=~mask) computes what yours computes with mask. And torch initialises every
bias to zero, so a from_torch that forgets the biases agrees with a freshly built torch module: the
grader randomises them. torch's module also drops attention weights in training mode, which this
kata's does not: the two agree in eval mode.

Rules
-----
Use your scaled_dot_product_attention from the attention kata (imported below; any leading dims
work) or write the attention here. The grader forbids torch's softmax family, its
scaled_dot_product_attention, F.multi_head_attention_forward and nn.MultiheadAttention's forward,
and checks that nothing changes its inputs in place.

Useful: Tensor.reshape, Tensor.transpose, Tensor.chunk, nn.Linear, torch.no_grad, Tensor.copy_,
nn.Module.to, nn.Module.train.

Run `kata check multi_head_attention` (or `pytest graders/test_multi_head_attention.py`) to see how
you are doing, and `kata hint multi_head_attention` when stuck.
"""

import torch
from torch import Tensor, nn

from katas.attention import scaled_dot_product_attention


def split_heads(x: Tensor, n_heads: int) -> Tensor:
    """x (B, T, d_model) -> (B, n_heads, T, d_model // n_heads); head h holds features h*D ... (h+1)*D - 1.

    Raises ValueError if d_model is not divisible by n_heads.
    """
    raise NotImplementedError("cut the features into n_heads blocks and move the heads in front of the positions")


def merge_heads(x: Tensor) -> Tensor:
    """x (B, H, T, D) -> (B, T, H*D): the inverse of split_heads."""
    raise NotImplementedError("move the heads back behind the positions and flatten them into the features")


class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, split heads, attend per head, merge heads, out_proj."""

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        """Sets:
            self.n_heads    n_heads
            self.head_dim   d_model // n_heads
            self.q_proj, self.k_proj, self.v_proj, self.out_proj
                            each nn.Linear(d_model, d_model, bias=bias)

        Raises ValueError if d_model is not divisible by n_heads.
        """
        raise NotImplementedError("build q_proj, k_proj, v_proj, out_proj and set n_heads, head_dim")

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> Tensor:
        """query (B, L, d_model), key and value (B, S, d_model) -> (B, L, d_model).

        mask: optional bool, broadcastable to (B, n_heads, L, S); True = may attend.
        """
        raise NotImplementedError("project, split heads, attend per head scaled by sqrt(head_dim), merge heads, out_proj")

    @classmethod
    def from_torch(cls, mha: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A new MultiHeadAttention computing what mha(query, key, value, attn_mask=~mask,
        need_weights=False)[0] computes in eval mode, for an nn.MultiheadAttention(embed_dim,
        num_heads, bias=..., batch_first=True): copies of in_proj_weight / in_proj_bias (q, k, v in
        that order) and of out_proj, in mha's dtype and device and training mode."""
        raise NotImplementedError("copy the q, k, v blocks of in_proj_weight and in_proj_bias, and out_proj")
