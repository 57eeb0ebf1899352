"""Kata: the Transformer's encoder and decoder layers.

A Transformer is a stack of identical layers ("Attention Is All You Need", Vaswani et al. 2017,
section 3.1). Each layer is two or three sub-layers (attention, and a position-wise feed-forward
network), and every sub-layer is wrapped the same way: its output goes through dropout, is added
back to its input (a residual connection) and is layer-normalised. Here you assemble them from the
MultiHeadAttention of your multi_head_attention kata and a layer norm.

The feed-forward network
------------------------
    FFN(x) = linear2(dropout(activation(linear1(x))))     linear1: d_model -> d_ff, linear2: d_ff -> d_model

It works on every position separately (attention is the only place where positions meet); d_ff is
usually 4 * d_model. activation is "relu" (the 2017 paper) or "gelu" (BERT, GPT and most models
since): GELU(x) = x * Phi(x) = x / 2 * (1 + erf(x / sqrt(2))), the exact form, which is F.gelu's
default. GPT-2 uses the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) instead;
the two differ by up to 5e-4, small enough to look right and large enough to fail the grader's
float64 probe: this kata's "gelu" is the exact one. Any other activation: ValueError.

Residuals and where the norm goes
---------------------------------
A residual connection, x + sublayer(x), gives every layer an identity path: gradients reach the
first layers undiminished, and a layer only has to learn a correction to its input. The norm can go
in two places.

    Post-LN (norm_first=False; the 2017 paper, BERT):
        x = norm1(x + dropout1(self_attn(x, x, x)))
        x = norm2(x + dropout2(ff(x)))

    Pre-LN (norm_first=True; GPT-2 and most LLMs):
        n = norm1(x);  x = x + dropout1(self_attn(n, n, n))
        x = x + dropout2(ff(norm2(x)))

In pre-LN only the sub-layers' inputs are normalised; the residual stream x itself is not (it
keeps adding up, which is why pre-LN models put one last norm after the final layer). That keeps
the identity path clean, and pre-LN stacks train stably without the learning-rate warm-up that
post-LN stacks need (Xiong et al. 2020, "On Layer Normalization in the Transformer Architecture").
Mixing the two up, e.g. x = norm1(x) followed by x = x + self_attn(x, x, x), still trains, but it is
neither: its residual stream starts from the normalised x, not from x.

The encoder layer: self-attention over a padded batch
-----------------------------------------------------
    x             (B, S, d_model)
    padding_mask  (B, S) bool, True = a real token, False = padding; each row has a True

Sequences of different lengths are padded to one length S to make a batch. No query may attend to
a padding key, so padding_mask becomes an attention mask of shape (B, 1, 1, S) (True = may attend),
which broadcasts over heads and queries. The outputs at padded positions are computed too and are
meaningless; what matters is that changing the padded positions' values changes no real position's
output, which the grader checks. The encoder is bidirectional: no causal mask.

The decoder layer: causal self-attention, then cross-attention
--------------------------------------------------------------
    x                    (B, L, d_model)   the target sequence so far
    memory               (B, S, d_model)   the encoder's output, of another length S
    memory_padding_mask  (B, S) bool, as above, for memory

    Post-LN:  x = norm1(x + dropout1(self_attn(x, x, x, causal)))
              x = norm2(x + dropout2(cross_attn(x, memory, memory, memory_mask)))
              x = norm3(x + dropout3(ff(x)))
    Pre-LN:   n = norm1(x);  x = x + dropout1(self_attn(n, n, n, causal))
              n = norm2(x);  x = x + dropout2(cross_attn(n, memory, memory, memory_mask))
              x = x + dropout3(ff(norm3(x)))

Self-attention is causal: causal is the lower triangle (L, L), so position i sees positions 0 .. i
of x. In cross-attention the queries come from x and the keys and values from memory: there is
nothing in the future to hide, so no causal mask, only memory_mask, the memory's padding mask
shaped (B, 1, 1, S). In pre-LN memory is used as it is: the encoder normalised its own output.

Dropout
-------
dropout1, dropout2 (dropout3) act on each sub-layer's output before it is added to the residual, and
ff.dropout after the activation, all with the same p. nn.Dropout zeroes entries with probability p
and scales the rest by 1 / (1 - p) in training mode, and is the identity in eval mode (module.eval()).
This kata's attention has no dropout of its own.

From torch's layers
-------------------
from_torch builds a layer computing what torch's nn.TransformerEncoderLayer(d_model, nhead,
dim_feedforward, dropout, activation, layer_norm_eps, batch_first=True, norm_first) computes with
src_key_padding_mask=~padding_mask, and what nn.TransformerDecoderLayer computes with a causal
tgt_mask and memory_key_padding_mask=~memory_padding_mask. torch's key padding masks mean True =
padding: the opposite of yours. Where the pieces are:

    torch                                   yours
    self_attn (nn.MultiheadAttention)       self_attn, via MultiHeadAttention.from_torch
    multihead_attn (decoder only)           cross_attn, the same way
    linear1, linear2                        ff.linear1, ff.linear2
    norm1, norm2 (norm3)                    norm1, norm2 (norm3)
    dropout.p, norm_first, norm1.eps        dropout, norm_first, eps
    self_attn.num_heads, linear1.out_features  n_heads, d_ff
    activation                              F.gelu -> "gelu", F.relu -> "relu", anything else ValueError
                                            (torch turns the strings "gelu" and "relu" into those)

The new layer has its own tensors (copies), the torch layer's dtype and device, and its training
mode. torch's layers also drop attention weights in training, which yours do not, so the two agree
in eval mode only.

Names
-----
The state_dict keys are part of the API (checkpoints are loaded by name):
    EncoderLayer: self_attn.{q,k,v,out}_proj.{weight,bias}, ff.linear1.*, ff.linear2.*, norm1.*, norm2.*
    DecoderLayer: the same plus cross_attn.{q,k,v,out}_proj.* and norm3.*
norm1, norm2, norm3 are layer norms over d_model with parameters weight and bias and the given
eps: torch's nn.LayerNorm(d_model, eps=eps) or LayerNorm from your layer_norm kata.

Rules
-----
The grader forbids what the multi_head_attention kata forbids, and the forward of torch's encoder
and decoder layers; nothing may change its inputs in place (careful with x += ...).

Useful: nn.LayerNorm, nn.Dropout, F.gelu, F.relu, torch.ones(...).tril(), Tensor.unsqueeze or
None-indexing, nn.Module.load_state_dict, nn.Module.to, nn.Module.train.

Run `kata check transformer_layer` (or `pytest graders/test_transformer_layer.py`) to see how you are
doing, and `kata hint transformer_layer` when stuck.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from katas.multi_head_attention import MultiHeadAttention


class FeedForward(nn.Module):
    """The position-wise feed-forward network: linear2(dropout(activation(linear1(x))))."""

    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu"):
        """Sets self.linear1 nn.Linear(d_model, d_ff), self.linear2 nn.Linear(d_ff, d_model) and
        self.dropout nn.Dropout(dropout). activation: "gelu" (exact, erf) or "relu"; anything else
        raises ValueError."""
        raise NotImplementedError("build linear1, linear2, dropout and pick the activation")

    def forward(self, x: Tensor) -> Tensor:
        """x (..., d_model) -> (..., d_model)."""
        raise NotImplementedError("linear1, activation, dropout, linear2")


class EncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each with dropout, a residual and a layer norm."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False,
                 activation: str = "gelu", eps: float = 1e-5):
        """Sets self.self_attn (MultiHeadAttention(d_model, n_heads)), self.ff (FeedForward(d_model,
        d_ff, dropout, activation)), self.norm1, self.norm2 (layer norms over d_model with this eps),
        self.dropout1, self.dropout2 (nn.Dropout(dropout))."""
        raise NotImplementedError("build self_attn, ff, norm1, norm2, dropout1, dropout2")

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """x (B, S, d_model), padding_mask (B, S) bool with True = a real token -> (B, S, d_model).
        Post-LN when norm_first is False, pre-LN when it is True."""
        raise NotImplementedError("self-attention under the padding mask, then the feed-forward network, "
                                  "each with dropout, a residual and a norm, in the order norm_first says")

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "EncoderLayer":
        """A new EncoderLayer computing what layer(x, src_key_padding_mask=~padding_mask) computes in
        eval mode, for nn.TransformerEncoderLayer(..., batch_first=True): copies of its tensors, in its
        dtype, device and training mode."""
        raise NotImplementedError("read the sizes and options off the torch layer, then copy its tensors")


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention over memory and a feed-forward network."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False,
                 activation: str = "gelu", eps: float = 1e-5):
        """Sets self.self_attn, self.cross_attn (MultiHeadAttention(d_model, n_heads) each), self.ff,
        self.norm1, self.norm2, self.norm3 and self.dropout1, self.dropout2, self.dropout3."""
        raise NotImplementedError("build self_attn, cross_attn, ff, norm1-3 and dropout1-3")

    def forward(self, x: Tensor, memory: Tensor, memory_padding_mask: Tensor | None = None) -> Tensor:
        """x (B, L, d_model), memory (B, S, d_model), memory_padding_mask (B, S) bool with True = a real
        token -> (B, L, d_model)."""
        raise NotImplementedError("causal self-attention, cross-attention over memory, then the "
                                  "feed-forward network, in the order norm_first says")

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> "DecoderLayer":
        """A new DecoderLayer computing what layer(x, memory, tgt_mask=<causal>,
        memory_key_padding_mask=~memory_padding_mask) computes in eval mode, for
        nn.TransformerDecoderLayer(..., batch_first=True)."""
        raise NotImplementedError("read the sizes and options off the torch layer, then copy its tensors")
