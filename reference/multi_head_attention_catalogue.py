"""Common mistakes and correct variants for the multi_head_attention kata.

A mistake in split_heads or merge_heads replaces that function and, through _mha, the forward that
uses it. Every replaced MultiHeadAttention subclasses the reference and changes one method.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from reference import mistake, variant
from reference.attention import scaled_dot_product_attention, softmax
from reference.multi_head_attention import MultiHeadAttention, merge_heads, split_heads


def _check_divisible(d_model, n_heads):
    if d_model % n_heads:
        raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")


# --- split and merge mistakes -------------------------------------------------------------


def _split_no_transpose(x, n_heads):
    B, T, d_model = x.shape
    _check_divisible(d_model, n_heads)
    return x.reshape(B, n_heads, T, d_model // n_heads)


def _merge_no_transpose(x):
    B, H, T, D = x.shape
    return x.reshape(B, T, H * D)


def _split_strided(x, n_heads):
    B, T, d_model = x.shape
    _check_divisible(d_model, n_heads)
    return x.reshape(B, T, d_model // n_heads, n_heads).permute(0, 3, 1, 2)


def _merge_strided(x):
    B, H, T, D = x.shape
    return x.permute(0, 2, 3, 1).reshape(B, T, D * H)


def _split_unchecked(x, n_heads):
    B, T, d_model = x.shape
    return x.reshape(B, T, n_heads, d_model // n_heads).transpose(1, 2)


# --- forward mistakes ---------------------------------------------------------------------


def _sqrt_head_dim(self):
    return math.sqrt(self.head_dim)


def _mha(*, split=split_heads, merge=merge_heads, scale=_sqrt_head_dim, mask_of=lambda mask: mask,
         sources=lambda query, key, value: (query, key, value), out=True):
    """A MultiHeadAttention whose forward is built from its parts, so that each mistake changes one."""

    class Forward(MultiHeadAttention):
        def forward(self, query, key, value, mask=None):
            query, key, value = sources(query, key, value)
            q = split(self.q_proj(query), self.n_heads)
            k = split(self.k_proj(key), self.n_heads)
            v = split(self.v_proj(value), self.n_heads)
            scores = q @ k.transpose(-2, -1) / scale(self)
            if mask is not None and mask_of(mask) is not None:
                scores = scores.masked_fill(~mask_of(mask), float("-inf"))
            y = merge(softmax(scores, dim=-1) @ v)
            return self.out_proj(y) if out else y

    return Forward


class _NoInitCheck(MultiHeadAttention):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__(d_model, 1, bias)  # one head always divides: the same layers, never a ValueError
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads


class _BiasIgnored(MultiHeadAttention):
    def __init__(self, d_model, n_heads, bias=True):
        super().__init__(d_model, n_heads)


# --- from_torch mistakes ------------------------------------------------------------------


def _from_torch(cls, mha, *, transpose=False, biases=True, share=False, like=True, mode=True):
    """The reference from_torch with one knob turned: each mistake below turns one."""
    weight, bias = mha.in_proj_weight, mha.in_proj_bias
    new = cls(mha.embed_dim, mha.num_heads, bias=bias is not None)
    if like:
        new = new.to(weight.device, weight.dtype)
    projections = (new.q_proj, new.k_proj, new.v_proj)
    if share:
        for proj, w in zip(projections, weight.chunk(3)):
            proj.weight = nn.Parameter(w.detach())
        if bias is not None:
            for proj, b in zip(projections, bias.chunk(3)):
                proj.bias = nn.Parameter(b.detach())
        new.out_proj = mha.out_proj
    else:
        with torch.no_grad():
            for proj, w in zip(projections, weight.chunk(3)):
                proj.weight.copy_(w.T if transpose else w)
            new.out_proj.weight.copy_(mha.out_proj.weight.T if transpose else mha.out_proj.weight)
            if bias is not None and biases:
                for proj, b in zip(projections, bias.chunk(3)):
                    proj.bias.copy_(b)
                new.out_proj.bias.copy_(mha.out_proj.bias)
    return new.train(mha.training) if mode else new


def _from_torch_with(**knob):
    """A MultiHeadAttention whose from_torch turns one knob of _from_torch."""

    class FromTorch(MultiHeadAttention):
        @classmethod
        def from_torch(cls, mha):
            return _from_torch(cls, mha, **knob)

    return FromTorch


# --- correct variants ---------------------------------------------------------------------


class _PerHeadLoop(MultiHeadAttention):
    # Head h is an ordinary attention over rows h*D ... (h+1)*D - 1 of each projection.
    def forward(self, query, key, value, mask=None):
        B, L, _ = query.shape
        S, H, D = key.shape[1], self.n_heads, self.head_dim
        if mask is not None:
            mask = mask.expand(B, H, L, S)
        heads = []
        for h in range(H):
            rows = slice(h * D, (h + 1) * D)
            q, k, v = (
                F.linear(x, p.weight[rows], None if p.bias is None else p.bias[rows])
                for x, p in ((query, self.q_proj), (key, self.k_proj), (value, self.v_proj))
            )
            heads.append(scaled_dot_product_attention(q, k, v, None if mask is None else mask[:, h]))
        return self.out_proj(torch.cat(heads, dim=-1))


def _split_unflatten(x, n_heads):
    _check_divisible(x.shape[-1], n_heads)
    return x.unflatten(-1, (n_heads, x.shape[-1] // n_heads)).permute(0, 2, 1, 3)


def _merge_flatten(x):
    return x.permute(0, 2, 1, 3).flatten(2)


class _EinsumStateDict(MultiHeadAttention):
    # einsum for both products; from_torch renames torch's tensors and loads them as a state dict.
    def forward(self, query, key, value, mask=None):
        q = _split_unflatten(self.q_proj(query), self.n_heads)
        k = _split_unflatten(self.k_proj(key), self.n_heads)
        v = _split_unflatten(self.v_proj(value), self.n_heads)
        scores = torch.einsum("bhld,bhsd->bhls", q, k) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        return self.out_proj(_merge_flatten(torch.einsum("bhls,bhsd->bhld", softmax(scores), v)))

    @classmethod
    def from_torch(cls, mha):
        weight, bias = mha.in_proj_weight, mha.in_proj_bias
        new = cls(mha.embed_dim, mha.num_heads, bias=bias is not None).to(weight.device, weight.dtype)
        state = {f"out_proj.{k}": v for k, v in mha.out_proj.state_dict().items()}
        names = ("q_proj", "k_proj", "v_proj")
        state.update({f"{n}.weight": w for n, w in zip(names, weight.chunk(3))})
        if bias is not None:
            state.update({f"{n}.bias": b for n, b in zip(names, bias.chunk(3))})
        new.load_state_dict(state)
        return new.train(mha.training)


class _AdditiveMask(MultiHeadAttention):
    # The bool mask becomes a float bias, 0 where allowed and -inf where not, added to the scores.
    def forward(self, query, key, value, mask=None):
        q = split_heads(self.q_proj(query), self.n_heads)
        k = split_heads(self.k_proj(key), self.n_heads)
        v = split_heads(self.v_proj(value), self.n_heads)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        if mask is not None:
            scores = scores + torch.where(mask, 0.0, float("-inf")).to(scores.dtype)
        return self.out_proj(merge_heads(softmax(scores) @ v))


class _FusedSelfAttention(MultiHeadAttention):
    # Self-attention projects q, k and v in one matmul, as torch does; from_torch assigns clones.
    def forward(self, query, key, value, mask=None):
        if not (query is key and key is value):
            return super().forward(query, key, value, mask)
        projections = (self.q_proj, self.k_proj, self.v_proj)
        weight = torch.cat([p.weight for p in projections])
        bias = None if self.q_proj.bias is None else torch.cat([p.bias for p in projections])
        q, k, v = (split_heads(t, self.n_heads) for t in F.linear(query, weight, bias).chunk(3, dim=-1))
        return self.out_proj(merge_heads(scaled_dot_product_attention(q, k, v, mask)))

    @classmethod
    def from_torch(cls, mha):
        weight, bias = mha.in_proj_weight, mha.in_proj_bias
        new = cls(mha.embed_dim, mha.num_heads, bias=bias is not None).to(weight.device, weight.dtype)
        projections = (new.q_proj, new.k_proj, new.v_proj)
        for proj, w in zip(projections, weight.detach().clone().chunk(3)):
            proj.weight = nn.Parameter(w)
        new.out_proj.weight = nn.Parameter(mha.out_proj.weight.detach().clone())
        if bias is not None:
            for proj, b in zip(projections, bias.detach().clone().chunk(3)):
                proj.bias = nn.Parameter(b)
            new.out_proj.bias = nn.Parameter(mha.out_proj.bias.detach().clone())
        return new.train(mha.training)


MISTAKES = [
    mistake("split_without_transpose",
            "split_heads reshapes (B, T, d_model) straight to (B, H, T, D) without the transpose, so "
            "each head gets whole tokens' worth of features instead of its block of every token: "
            "reshape to (B, T, H, D), then transpose(1, 2)",
            split_heads=_split_no_transpose, MultiHeadAttention=_mha(split=_split_no_transpose)),
    mistake("merge_without_transpose",
            "merge_heads reshapes (B, H, T, D) straight to (B, T, H*D) without transposing back first, "
            "so heads and positions are scrambled: transpose(1, 2), then reshape",
            merge_heads=_merge_no_transpose, MultiHeadAttention=_mha(merge=_merge_no_transpose)),
    mistake("split_strided",
            "split_heads cuts the features as (head_dim, n_heads) instead of (n_heads, head_dim), so "
            "head h gets features h, h + H, h + 2H, ... instead of the block h*D ... (h+1)*D - 1",
            split_heads=_split_strided, merge_heads=_merge_strided,
            MultiHeadAttention=_mha(split=_split_strided, merge=_merge_strided)),
    mistake("split_no_value_error",
            "split_heads does not check that d_model is divisible by n_heads and fails inside reshape "
            "instead of raising ValueError",
            split_heads=_split_unchecked),
    mistake("init_no_value_error",
            "MultiHeadAttention.__init__ does not check that d_model is divisible by n_heads "
            "(raise ValueError there)",
            MultiHeadAttention=_NoInitCheck),
    mistake("bias_ignored",
            "the bias argument is not passed on to the nn.Linear layers, so bias=False still builds biases",
            MultiHeadAttention=_BiasIgnored),
    mistake("scale_by_d_model",
            "the scores are divided by sqrt(d_model) instead of sqrt(head_dim), the size of one head's dot product",
            MultiHeadAttention=_mha(scale=lambda self: math.sqrt(self.n_heads * self.head_dim))),
    mistake("no_scaling", "the scores are not divided by sqrt(head_dim)",
            MultiHeadAttention=_mha(scale=lambda self: 1.0)),
    mistake("mask_inverted",
            "the mask is read as torch's nn.MultiheadAttention reads it, True = blocked; in this kata "
            "True means the query may attend to the key",
            MultiHeadAttention=_mha(mask_of=lambda mask: ~mask)),
    mistake("mask_ignored", "forward never applies the mask", MultiHeadAttention=_mha(mask_of=lambda mask: None)),
    mistake("keys_values_from_query",
            "keys and values are projected from query instead of from key and value, which only works "
            "for self-attention",
            MultiHeadAttention=_mha(sources=lambda query, key, value: (query, query, query))),
    mistake("key_value_swapped", "k_proj is applied to value and v_proj to key",
            MultiHeadAttention=_mha(sources=lambda query, key, value: (query, value, key))),
    mistake("no_out_proj", "the merged heads are returned without out_proj", MultiHeadAttention=_mha(out=False)),
    mistake("from_torch_no_biases",
            "from_torch copies the weights but not in_proj_bias and out_proj.bias (torch initialises "
            "them to zero, which hides this until they are trained)",
            MultiHeadAttention=_from_torch_with(biases=False)),
    mistake("from_torch_transposed",
            "from_torch transposes the weights it copies; in_proj_weight and out_proj.weight are "
            "already in nn.Linear's (out, in) layout",
            MultiHeadAttention=_from_torch_with(transpose=True)),
    mistake("from_torch_shares_tensors",
            "from_torch puts the torch module's own tensors (views of in_proj_weight, its out_proj) "
            "into the new module instead of copies, so changing one changes the other",
            MultiHeadAttention=_from_torch_with(share=True)),
    mistake("from_torch_default_dtype",
            "from_torch builds the new module in the default dtype instead of the torch module's "
            "dtype and device (call .to(weight.device, weight.dtype) before copying)",
            MultiHeadAttention=_from_torch_with(like=False)),
    mistake("from_torch_training_mode",
            "from_torch returns the new module in training mode whatever mode the torch module is in",
            MultiHeadAttention=_from_torch_with(mode=False)),
]

VARIANTS = [
    variant("per_head_loop", "computes each head as its own attention over a slice of the projection rows",
            MultiHeadAttention=_PerHeadLoop),
    variant("einsum_state_dict",
            "splits with unflatten and permute, attends with torch.einsum, and loads torch's tensors "
            "into the new module as a renamed state dict",
            split_heads=_split_unflatten, merge_heads=_merge_flatten, MultiHeadAttention=_EinsumStateDict),
    variant("additive_mask", "turns the bool mask into an additive 0 / -inf bias on the scores",
            MultiHeadAttention=_AdditiveMask),
    variant("fused_self_attention",
            "projects q, k and v of self-attention in one matmul and builds from_torch's parameters "
            "from clones",
            MultiHeadAttention=_FusedSelfAttention),
]

_SAME_DIMS = "transpose(i, j) and transpose(j, i) swap the same two dims; of a 4-D tensor dim -2 is dim 2"

# Mutants of the reference (kata mutate) that compute exactly what it computes.
EQUIVALENT = {
    "split_heads:args:a6d21386": _SAME_DIMS,
    "split_heads:constant:ff421b17": _SAME_DIMS,
    "merge_heads:args:a433fa80": _SAME_DIMS,
    "merge_heads:constant:1c89fbdc": _SAME_DIMS,
}
