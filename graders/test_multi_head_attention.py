"""Grader for katas/multi_head_attention.py: each Case is one check, learner against reference.

Inputs are plain tensors (the four projections' weights and biases, the inputs, a mask) or a torch
nn.MultiheadAttention with random weights and random biases (torch's own are zero, which would hide
every bias mistake); every call builds its own modules from them and returns tensors or plain data.
"""

import math

import torch
from torch import nn

from graders.harness import Case, cases, manual_seed

f64 = torch.float64
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")
USES = ("attention",)  # the forward runs the learner's attention kata


def projections(g, d_model, bias, dtype):
    """The weights (4, d_model, d_model) and biases (4, d_model) or None of q_proj, k_proj, v_proj, out_proj."""
    W = g.randn(4, d_model, d_model, dtype=dtype, scale=1 / math.sqrt(d_model))  # scores of size ~1
    return W, g.randn(4, d_model, dtype=dtype, scale=0.5) if bias else None


MASKS = {  # the shape of each kind of mask, for B sequences of L queries and S keys
    "shared": lambda B, L, S: (L, S),
    "per_batch": lambda B, L, S: (B, 1, L, S),
    "padding": lambda B, L, S: (B, 1, 1, S),
}


def masked(g, mask, B, L, S):
    """() without a mask, else (a random mask of that kind,), every row with at least one True."""
    return () if mask is None else (g.mask(*MASKS[mask](B, L, S)),)


def mha_inputs(B=2, L=4, S=6, d_model=12, n_heads=3, bias=True, mask=None, dtype=torch.float32):
    """(weights, biases, n_heads, query, key, value[, mask]) for cross-attention (L queries, S keys)."""
    def make(g):
        W, b = projections(g, d_model, bias, dtype)
        query, key, value = (g.randn(B, n, d_model, dtype=dtype) for n in (L, S, S))
        return W, b, n_heads, query, key, value, *masked(g, mask, B, L, S)
    return make


def self_inputs(B=2, T=5, d_model=12, n_heads=3, bias=True, mask=None, dtype=torch.float32):
    """(weights, biases, n_heads, x[, mask]) for self-attention over T positions."""
    def make(g):
        W, b = projections(g, d_model, bias, dtype)
        return W, b, n_heads, g.randn(B, T, d_model, dtype=dtype), *masked(g, mask, B, T, T)
    return make


HIDDEN_SIZES = [(16, 4), (24, 6), (18, 3), (20, 2), (12, 6)]  # (d_model, n_heads)


def hidden(make, **kw):
    """make(...)'s inputs with d_model and n_heads picked by the seed: hidden checks vary the head count."""
    def inputs(g):
        d_model, n_heads = HIDDEN_SIZES[g.seed % len(HIDDEN_SIZES)]
        return make(d_model=d_model, n_heads=n_heads, **kw)(g)
    return inputs


def build(m, W, b, n_heads):
    """The learner's MultiHeadAttention holding the given weights and biases."""
    manual_seed(0)  # a layer that keeps parameters it should not have gets the same ones every run
    mha = m.MultiHeadAttention(W.shape[-1], n_heads, bias=b is not None).to(device=W.device, dtype=W.dtype)
    with torch.no_grad():
        for i, name in enumerate(PROJECTIONS):
            proj = getattr(mha, name)
            proj.weight.copy_(W[i])
            if b is not None:
                proj.bias.copy_(b[i])
    return mha


def cross(m, W, b, n_heads, query, key, value, mask=None):
    return build(m, W, b, n_heads)(query, key, value, mask)


def self_attention(m, W, b, n_heads, x, mask=None):
    return build(m, W, b, n_heads)(x, x, x, mask)


def gradients(m, W, b, n_heads, query, key, value, mask):
    """The gradient of every parameter, q_proj.weight ... out_proj.weight, then the four biases."""
    mha = build(m, W, b, n_heads)
    upstream = torch.linspace(-1, 1, W.shape[-1], dtype=W.dtype, device=W.device)
    (mha(query, key, value, mask) * upstream).sum().backward()
    return tuple(getattr(mha, name).weight.grad for name in PROJECTIONS) + tuple(
        getattr(mha, name).bias.grad for name in PROJECTIONS)


def init(*args):
    def call(m):
        mha = m.MultiHeadAttention(*args)
        return {"n_heads": mha.n_heads, "head_dim": mha.head_dim, "head_dim is an int": isinstance(mha.head_dim, int),
                "parameters (name, shape)": sorted((n, tuple(p.shape)) for n, p in mha.named_parameters())}
    return call


def bad_init(m):
    return m.MultiHeadAttention(10, 4).head_dim


# ---------------------------------------------------------------------------------- from_torch


def torch_mha(g, d_model, n_heads, bias=True, dtype=torch.float32, training=False):
    """nn.MultiheadAttention(d_model, n_heads, batch_first=True) with random weights and biases."""
    mha = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True, dtype=dtype)
    with torch.no_grad():
        mha.in_proj_weight.copy_(g.randn(3 * d_model, d_model, dtype=dtype, scale=1 / math.sqrt(d_model)))
        mha.out_proj.weight.copy_(g.randn(d_model, d_model, dtype=dtype, scale=1 / math.sqrt(d_model)))
        if bias:
            mha.in_proj_bias.copy_(g.randn(3 * d_model, dtype=dtype, scale=0.5))
            mha.out_proj.bias.copy_(g.randn(d_model, dtype=dtype, scale=0.5))
    return mha.train(training)


def torch_inputs(B=2, L=4, S=6, d_model=12, n_heads=3, bias=True, mask=None, dtype=torch.float32):
    """(torch_module, query, key, value[, mask]) for cross-attention."""
    def make(g):
        mha = torch_mha(g, d_model, n_heads, bias, dtype)
        query, key, value = (g.randn(B, n, d_model, dtype=dtype) for n in (L, S, S))
        return mha, query, key, value, *masked(g, mask, B, L, S)
    return make


def torch_self_inputs(B=2, T=5, d_model=12, n_heads=3):
    def make(g):
        return torch_mha(g, d_model, n_heads), g.randn(B, T, d_model)
    return make


def from_torch(m, mha, query, key, value, mask=None):
    manual_seed(0)  # a parameter from_torch forgets to copy keeps the same initial values every run
    return m.MultiHeadAttention.from_torch(mha)(query, key, value, mask)


def from_torch_self(m, mha, x):
    manual_seed(0)
    return m.MultiHeadAttention.from_torch(mha)(x, x, x)


def from_torch_modes(m, in_eval, in_train):
    ours = [m.MultiHeadAttention.from_torch(mha) for mha in (in_eval, in_train)]
    return {"a MultiHeadAttention": all(isinstance(new, m.MultiHeadAttention) for new in ours),
            "training, from a module in eval mode": ours[0].training,
            "training, from a module in train mode": ours[1].training}


def from_torch_independent(m, mha):
    new = m.MultiHeadAttention.from_torch(mha)
    theirs = {t.untyped_storage().data_ptr() for t in mha.state_dict().values()}
    return {"a new module": new is not mha,
            "shares a tensor with the torch module": any(
                t.untyped_storage().data_ptr() in theirs for t in new.state_dict().values())}


def modes_inputs(g):
    return torch_mha(g, 12, 3), torch_mha(g, 12, 3, training=True)


test_case = cases([
    Case("split_heads", "split_heads", lambda g: (g.randn(2, 5, 12), 3)),
    Case("split_heads_value_error", "split_heads", lambda g: (g.randn(2, 3, 10), 4),
         what="split_heads(x (2, 3, 10), n_heads=4)"),
    Case("merge_heads", "merge_heads", lambda g: (g.randn(2, 3, 5, 4),)),
    Case("init", init(12, 3), lambda g: (), upcast=False,
         what="MultiHeadAttention(12, 3): n_heads, head_dim and its parameters"),
    Case("init_no_bias", init(12, 4, False), lambda g: (), upcast=False,
         what="MultiHeadAttention(12, 4, bias=False): n_heads, head_dim and its parameters"),
    Case("init_value_error", bad_init, lambda g: (), upcast=False, what="MultiHeadAttention(10, 4).head_dim"),
    Case("self_attention", self_attention, self_inputs(), uses=USES,
         what="MultiHeadAttention(12, 3)(x, x, x), x (2, 5, 12), random weights and biases"),
    Case("cross_attention", cross, mha_inputs(), uses=USES,
         what="MultiHeadAttention(12, 3)(query (2, 4, 12), key (2, 6, 12), value (2, 6, 12))"),
    Case("no_bias", cross, mha_inputs(n_heads=4, bias=False), uses=USES,
         what="MultiHeadAttention(12, 4, bias=False) on cross-attention, L = 4, S = 6"),
    Case("one_head", self_attention, self_inputs(d_model=8, n_heads=1, mask="shared"), uses=USES,
         what="MultiHeadAttention(8, 1)(x, x, x, mask (5, 5)): a single head"),
    Case("mask_shared", cross, mha_inputs(mask="shared"), uses=USES,
         what="MultiHeadAttention(12, 3) on cross-attention with a mask (4, 6) shared by the batch"),
    Case("mask_per_batch", cross, mha_inputs(mask="per_batch"), uses=USES,
         what="MultiHeadAttention(12, 3) on cross-attention with a mask (2, 1, 4, 6), one per sequence"),
    Case("mask_padding", cross, mha_inputs(S=7, mask="padding"), uses=USES,
         what="MultiHeadAttention(12, 3) on cross-attention with a key padding mask (2, 1, 1, 7)"),
    Case("float64", cross, mha_inputs(L=3, S=5, d_model=8, n_heads=2, mask="per_batch", dtype=f64), uses=USES,
         what="a float64 MultiHeadAttention(8, 2) on float64 inputs with a mask (2, 1, 3, 5)"),
    Case("gradients", gradients, mha_inputs(mask="per_batch"), tol="grads", uses=USES,
         what="the gradients of q_proj, k_proj, v_proj and out_proj's weights, then of their biases, "
              "after a backward through MultiHeadAttention(12, 3) with a mask"),
    Case("from_torch", from_torch_self, torch_self_inputs(), uses=USES,
         what="MultiHeadAttention.from_torch(nn.MultiheadAttention(12, 3, batch_first=True) in eval mode, "
              "random biases)(x, x, x)"),
    Case("from_torch_mask", from_torch, torch_inputs(mask="shared"), uses=USES,
         what="MultiHeadAttention.from_torch(nn.MultiheadAttention(12, 3)) on cross-attention with a mask (4, 6)"),
    Case("from_torch_no_bias", from_torch, torch_inputs(n_heads=2, bias=False, mask="per_batch"), uses=USES,
         what="MultiHeadAttention.from_torch(nn.MultiheadAttention(12, 2, bias=False)) with a mask (2, 1, 4, 6)"),
    Case("from_torch_float64", from_torch, torch_inputs(d_model=8, n_heads=4, mask="padding", dtype=f64),
         uses=USES, what="MultiHeadAttention.from_torch of a float64 nn.MultiheadAttention(8, 4), on float64 "
                         "inputs with a key padding mask"),
    Case("from_torch_modes", from_torch_modes, modes_inputs, upcast=False,
         what="MultiHeadAttention.from_torch of a torch module in eval mode, and of one in train mode"),
    Case("from_torch_independent", from_torch_independent, lambda g: (torch_mha(g, 12, 3),), upcast=False,
         what="the module MultiHeadAttention.from_torch(mha) returns"),
    Case("self_attention_hidden", self_attention, hidden(self_inputs, T=6, mask="padding"), hidden=True, uses=USES,
         what="self-attention with a key padding mask on hidden inputs"),
    Case("cross_attention_hidden", cross, hidden(mha_inputs, L=3, S=8, mask="shared"), hidden=True, uses=USES,
         what="cross-attention with a mask on hidden inputs"),
    Case("from_torch_hidden", from_torch, hidden(torch_inputs, L=5, S=4, mask="per_batch"), hidden=True, uses=USES,
         what="MultiHeadAttention.from_torch on hidden inputs"),
])
