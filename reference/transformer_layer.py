"""Reference solution: the Transformer's encoder and decoder layers, post-LN and pre-LN, and
loading torch's nn.TransformerEncoderLayer / nn.TransformerDecoderLayer into them."""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from reference.multi_head_attention import MultiHeadAttention

ACTIVATIONS = {"gelu": F.gelu, "relu": F.relu}  # F.gelu is the exact one, x * Phi(x) with erf


class FeedForward(nn.Module):
    def __init__(self, d_model: int, d_ff: int, dropout: float = 0.0, activation: str = "gelu"):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be 'gelu' or 'relu', got {activation!r}")
        self.linear1 = nn.Linear(d_model, d_ff)
        self.linear2 = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)
        self.activation = ACTIVATIONS[activation]

    def forward(self, x: Tensor) -> Tensor:
        return self.linear2(self.dropout(self.activation(self.linear1(x))))  # (..., d_model)


def _activation_name(fn) -> str:
    """The name of a torch layer's activation; torch turns the strings "gelu" and "relu" into these."""
    for name, f in ACTIVATIONS.items():
        if fn is f:
            return name
    raise ValueError(f"only F.gelu and F.relu activations can be loaded, got {fn!r}")


def _like(cls, layer):
    """A new cls with a torch layer's sizes and options, in its dtype and on its device."""
    w = layer.linear1.weight  # (d_ff, d_model)
    return cls(w.shape[1], layer.self_attn.num_heads, w.shape[0], dropout=layer.dropout.p,
               norm_first=layer.norm_first, activation=_activation_name(layer.activation),
               eps=layer.norm1.eps).to(w.device, w.dtype)


def _from_torch(cls, layer, attention: dict, norms: int):
    """A new cls holding copies of a torch layer's tensors, in its dtype, device and training mode.
    attention maps this kata's attention names to the torch layer's."""
    new = _like(cls, layer)
    for ours, theirs in attention.items():
        setattr(new, ours, MultiHeadAttention.from_torch(getattr(layer, theirs)))
    # load_state_dict copies into the new module's own tensors, already in the right dtype.
    new.ff.linear1.load_state_dict(layer.linear1.state_dict())
    new.ff.linear2.load_state_dict(layer.linear2.state_dict())
    for i in range(1, norms + 1):
        getattr(new, f"norm{i}").load_state_dict(getattr(layer, f"norm{i}").state_dict())
    return new.train(layer.training)


class EncoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False,
                 activation: str = "gelu", eps: float = 1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        # (B, S) -> (B, 1, 1, S): the same keys are blocked for every head and every query.
        mask = None if padding_mask is None else padding_mask[:, None, None, :]
        if self.norm_first:
            # Pre-LN: each sub-layer sees a normalised copy; the residual stream itself is never normalised.
            n = self.norm1(x)
            x = x + self.dropout1(self.self_attn(n, n, n, mask))
            return x + self.dropout2(self.ff(self.norm2(x)))
        # Post-LN: normalise after adding each sub-layer's output to its input.
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, mask)))
        return self.norm2(x + self.dropout2(self.ff(x)))  # (B, S, d_model)

    @classmethod
    def from_torch(cls, layer: nn.TransformerEncoderLayer) -> "EncoderLayer":
        return _from_torch(cls, layer, {"self_attn": "self_attn"}, norms=2)


class DecoderLayer(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.0, norm_first: bool = False,
                 activation: str = "gelu", eps: float = 1e-5):
        super().__init__()
        self.norm_first = norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads)
        self.cross_attn = MultiHeadAttention(d_model, n_heads)
        self.ff = FeedForward(d_model, d_ff, dropout, activation)
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)
        self.norm3 = nn.LayerNorm(d_model, eps=eps)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def forward(self, x: Tensor, memory: Tensor, memory_padding_mask: Tensor | None = None) -> Tensor:
        L = x.shape[1]
        causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()  # (L, L): position i sees 0 .. i
        # Cross-attention needs no causal mask: the whole memory (the encoded source) is known.
        mask = None if memory_padding_mask is None else memory_padding_mask[:, None, None, :]  # (B, 1, 1, S)
        if self.norm_first:
            n = self.norm1(x)
            x = x + self.dropout1(self.self_attn(n, n, n, causal))
            n = self.norm2(x)
            x = x + self.dropout2(self.cross_attn(n, memory, memory, mask))
            return x + self.dropout3(self.ff(self.norm3(x)))
        x = self.norm1(x + self.dropout1(self.self_attn(x, x, x, causal)))
        x = self.norm2(x + self.dropout2(self.cross_attn(x, memory, memory, mask)))
        return self.norm3(x + self.dropout3(self.ff(x)))  # (B, L, d_model)

    @classmethod
    def from_torch(cls, layer: nn.TransformerDecoderLayer) -> "DecoderLayer":
        return _from_torch(cls, layer, {"self_attn": "self_attn", "cross_attn": "multihead_attn"}, norms=3)
