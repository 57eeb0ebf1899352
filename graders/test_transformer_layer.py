"""Grader for katas/transformer_layer.py: each Case is one check, learner against reference.

Inputs are state dicts under the kata's parameter names (random weights, random biases, and norm
weights and biases far from torch's ones and zeros, so that a swapped or skipped norm shows), the
layer's options, and the sequences; or torch layers with random tensors for from_torch. Every call
builds its own layers and returns tensors or plain data.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from graders.harness import Case, cases, manual_seed

f64 = torch.float64
USES = ("multi_head_attention",)  # every layer runs the learner's MultiHeadAttention
ENCODER = ("self_attn",), 2  # the attention modules and the number of norms of each layer
DECODER = ("self_attn", "cross_attn"), 3


def linear(g, state, name, fan_in, fan_out, dtype):
    state[f"{name}.weight"] = g.randn(fan_out, fan_in, dtype=dtype, scale=1 / math.sqrt(fan_in))
    state[f"{name}.bias"] = g.randn(fan_out, dtype=dtype, scale=0.2)


def layer_state(g, layout, d_model, d_ff, dtype):
    """A random state dict with the kata's parameter names for a layer of that layout."""
    attentions, norms = layout
    state = {}
    for attention in attentions:
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(g, state, f"{attention}.{proj}", d_model, d_model, dtype)
    linear(g, state, "ff.linear1", d_model, d_ff, dtype)
    linear(g, state, "ff.linear2", d_ff, d_model, dtype)
    for i in range(1, norms + 1):
        state[f"norm{i}.weight"] = g.randn(d_model, dtype=dtype, scale=0.3, shift=1.0)
        state[f"norm{i}.bias"] = g.randn(d_model, dtype=dtype, scale=0.3)
    return state


def padding(g, B, S):
    """(B, S) bool, True = a real token: sequence 0 fills all S positions, the others are shorter."""
    lengths = torch.cat([torch.tensor([S]), g.randint(1, S, B - 1)])
    return torch.arange(S)[None, :] < lengths[:, None]


def encoder_inputs(B=2, S=5, d_model=12, n_heads=3, d_ff=20, masked=False, dtype=torch.float32, **opts):
    """(state, n_heads, options, x[, padding_mask]); options are the keyword arguments given (the
    others keep their defaults, which some checks rely on)."""
    def make(g):
        state = layer_state(g, ENCODER, d_model, d_ff, dtype)
        x = g.randn(B, S, d_model, dtype=dtype)
        return state, n_heads, opts, x, *((padding(g, B, S),) if masked else ())
    return make


def decoder_inputs(B=2, L=4, S=6, d_model=12, n_heads=3, d_ff=20, masked=False, dtype=torch.float32, **opts):
    """(state, n_heads, options, x, memory[, memory_padding_mask])."""
    def make(g):
        state = layer_state(g, DECODER, d_model, d_ff, dtype)
        x, memory = g.randn(B, L, d_model, dtype=dtype), g.randn(B, S, d_model, dtype=dtype)
        return state, n_heads, opts, x, memory, *((padding(g, B, S),) if masked else ())
    return make


def with_other(make):
    """make's inputs plus other values for x (the encoder's input), to put in its padded positions."""
    def inputs(g):
        args = make(g)
        return *args, g.randn(*args[3].shape, dtype=args[3].dtype, scale=3.0, shift=1.0)
    return inputs


HIDDEN = [  # (d_model, n_heads, d_ff, options): hidden checks vary the layer, not only the shapes
    (16, 4, 24, dict(norm_first=True, activation="relu", eps=1e-3)),
    (12, 2, 36, dict(norm_first=False, activation="gelu", eps=1e-2)),
    (18, 3, 16, dict(norm_first=True, activation="gelu", eps=1e-4)),
    (20, 5, 20, dict(norm_first=False, activation="relu", eps=3e-3)),
]


def hidden(make, **kw):
    def inputs(g):
        d_model, n_heads, d_ff, opts = HIDDEN[g.seed % len(HIDDEN)]
        return make(d_model=d_model, n_heads=n_heads, d_ff=d_ff, **opts, **kw)(g)
    return inputs


# --------------------------------------------------------------------------------- the layers


def build(m, kind, state, n_heads, opts):
    """The learner's layer of that kind holding the state dict, in train mode."""
    w = state["ff.linear1.weight"]  # (d_ff, d_model)
    manual_seed(0)
    layer = getattr(m, kind)(w.shape[1], n_heads, w.shape[0], **opts).to(device=w.device, dtype=w.dtype)
    layer.load_state_dict(state)
    return layer


def encode(m, state, n_heads, opts, x, padding_mask=None):
    return build(m, "EncoderLayer", state, n_heads, opts).eval()(x, padding_mask)


def decode(m, state, n_heads, opts, x, memory, memory_padding_mask=None):
    return build(m, "DecoderLayer", state, n_heads, opts).eval()(x, memory, memory_padding_mask)


def in_training(kind):
    """The layer's output in train mode, dropout drawn after torch.manual_seed(0), as the reference draws it."""
    def call(m, state, n_heads, opts, *inputs):
        layer = build(m, kind, state, n_heads, opts).train()
        manual_seed(0)
        return layer(*inputs)
    return call


def padding_invariance(m, state, n_heads, opts, x, padding_mask, other):
    """How much the real positions' outputs move when only the padded positions' values change."""
    layer = build(m, "EncoderLayer", state, n_heads, opts).eval()
    changed = torch.where(padding_mask[..., None], x, other)
    return (layer(changed, padding_mask) - layer(x, padding_mask))[padding_mask]


def causality(m, state, n_heads, opts, x, memory):
    """For each position p: how much the outputs at positions <= p move when only x after p changes."""
    layer = build(m, "DecoderLayer", state, n_heads, opts).eval()
    base = layer(x, memory)
    moved = []
    for p in range(x.shape[1] - 1):
        later = x.clone()
        later[:, p + 1:] = -2.0 * later[:, p + 1:] + 1.0
        moved.append((layer(later, memory) - base)[:, :p + 1])
    return tuple(moved)


def gradients(kind):
    """The gradient of every parameter, in the order of the sorted state dict keys."""
    def call(m, state, n_heads, opts, *inputs):
        layer = build(m, kind, state, n_heads, opts)
        out = layer(*inputs)
        upstream = torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype, device=out.device)
        params = [layer.get_parameter(name) for name in sorted(state)]
        grads = torch.autograd.grad((out * upstream).sum(), params, allow_unused=True)
        return tuple(torch.zeros_like(p) if d is None else d for p, d in zip(params, grads))
    return call


def parameters(kind):
    def call(m):
        layer = getattr(m, kind)(12, 3, 20)
        return sorted((name, tuple(t.shape)) for name, t in layer.state_dict().items())
    return call


# --------------------------------------------------------------------------------- FeedForward


def ff_inputs(d_model=8, d_ff=16, dtype=torch.float32):
    """(state, x): x large enough that the activation's curve matters."""
    def make(g):
        state = {}
        linear(g, state, "linear1", d_model, d_ff, dtype)
        linear(g, state, "linear2", d_ff, d_model, dtype)
        return state, g.randn(2, 3, d_model, dtype=dtype, scale=2.0)
    return make


def feed_forward(activation):
    def call(m, state, x):
        d_ff, d_model = state["linear1.weight"].shape
        ff = m.FeedForward(d_model, d_ff, activation=activation).to(device=x.device, dtype=x.dtype)
        ff.load_state_dict(state)
        return ff(x)
    return call


def bad_activation(m):
    return m.FeedForward(8, 16, activation="silu").linear1.out_features


# ---------------------------------------------------------------------------------- from_torch


def torch_layer(g, kind, d_model=12, n_heads=3, d_ff=20, norm_first=False, activation="gelu", eps=1e-5,
                dtype=torch.float32, training=False):
    """torch's nn.TransformerEncoderLayer or nn.TransformerDecoderLayer (batch_first) with random tensors."""
    cls = nn.TransformerEncoderLayer if kind == "EncoderLayer" else nn.TransformerDecoderLayer
    layer = cls(d_model, n_heads, d_ff, dropout=0.1, activation=activation, layer_norm_eps=eps,
                batch_first=True, norm_first=norm_first, dtype=dtype)
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("norm") and name.endswith("weight"):
                p.copy_(g.randn(*p.shape, dtype=dtype, scale=0.3, shift=1.0))
            elif p.ndim == 2:
                p.copy_(g.randn(*p.shape, dtype=dtype, scale=1 / math.sqrt(p.shape[1])))
            else:
                p.copy_(g.randn(*p.shape, dtype=dtype, scale=0.2))
    return layer.train(training)


def torch_inputs(kind, B=2, L=4, S=6, dtype=torch.float32, **layer_options):
    """(torch_layer, x, padding_mask) for an encoder; (torch_layer, x, memory, memory_padding_mask) for a decoder."""
    def make(g):
        layer = torch_layer(g, kind, dtype=dtype, **layer_options)
        d_model = layer.linear1.in_features
        if kind == "EncoderLayer":
            return layer, g.randn(B, S, d_model, dtype=dtype), padding(g, B, S)
        return layer, g.randn(B, L, d_model, dtype=dtype), g.randn(B, S, d_model, dtype=dtype), padding(g, B, S)
    return make


def hidden_torch(kind):
    def inputs(g):
        d_model, n_heads, d_ff, opts = HIDDEN[g.seed % len(HIDDEN)]
        return torch_inputs(kind, d_model=d_model, n_heads=n_heads, d_ff=d_ff, norm_first=opts["norm_first"],
                            activation=opts["activation"], eps=opts["eps"])(g)
    return inputs


def from_torch(kind):
    def call(m, layer, *inputs):
        manual_seed(0)  # a tensor from_torch forgets to copy keeps the same initial values every run
        return getattr(m, kind).from_torch(layer)(*inputs)
    return call


def from_torch_modes(m, *layers):
    """The training mode of from_torch's layers, from torch layers in eval and in train mode, and their dropout."""
    seen = {}
    for layer in layers:
        kind = "EncoderLayer" if isinstance(layer, nn.TransformerEncoderLayer) else "DecoderLayer"
        new = getattr(m, kind).from_torch(layer)
        mode = "train" if layer.training else "eval"
        seen[f"{kind} from a torch layer in {mode} mode: training"] = new.training
        seen[f"{kind} from a torch layer in {mode} mode: dropout1.p"] = float(new.dropout1.p)
    return seen


def modes_inputs(g):
    return tuple(torch_layer(g, kind, training=training)
                 for kind in ("EncoderLayer", "DecoderLayer") for training in (False, True))


def from_torch_independent(m, encoder, decoder):
    seen = {}
    for kind, layer in (("EncoderLayer", encoder), ("DecoderLayer", decoder)):
        new = getattr(m, kind).from_torch(layer)
        theirs = {t.untyped_storage().data_ptr() for t in layer.state_dict().values()}
        seen[f"{kind}: shares a tensor with the torch layer"] = any(
            t.untyped_storage().data_ptr() in theirs for t in new.state_dict().values())
    return seen


def bad_torch_activation(g):
    layer = torch_layer(g, "EncoderLayer", activation=F.silu)
    return layer, g.randn(2, 5, 12)


test_case = cases([
    Case("ff_gelu", feed_forward("gelu"), ff_inputs(), what="FeedForward(8, 16)(x) with random weights"),
    Case("ff_relu", feed_forward("relu"), ff_inputs(), what="FeedForward(8, 16, activation='relu')(x)"),
    Case("ff_gelu_float64", feed_forward("gelu"), ff_inputs(dtype=f64), tol="float64",
         what="a float64 FeedForward(8, 16)(x), precise enough to tell the exact GELU from its tanh approximation"),
    Case("ff_bad_activation", bad_activation, lambda g: (), upcast=False,
         what="FeedForward(8, 16, activation='silu').linear1.out_features"),
    Case("encoder_parameters", parameters("EncoderLayer"), lambda g: (), upcast=False,
         what="the state_dict keys and shapes of EncoderLayer(12, 3, 20)"),
    Case("encoder_post_ln", encode, encoder_inputs(), uses=USES,
         what="EncoderLayer(12, 3, 20) (post-LN, GELU) in eval mode on x (2, 5, 12)"),
    Case("encoder_pre_ln", encode, encoder_inputs(norm_first=True), uses=USES,
         what="EncoderLayer(12, 3, 20, norm_first=True) in eval mode on x (2, 5, 12)"),
    Case("encoder_relu_eps", encode, encoder_inputs(S=6, n_heads=4, activation="relu", eps=0.1), uses=USES,
         what="EncoderLayer(12, 4, 20, activation='relu', eps=0.1) in eval mode on x (2, 6, 12)"),
    Case("encoder_padding", encode, encoder_inputs(B=3, masked=True), uses=USES,
         what="EncoderLayer(12, 3, 20) on x (3, 5, 12) with a padding mask (3, 5)"),
    Case("encoder_padding_invariance", padding_invariance, with_other(encoder_inputs(B=3, norm_first=True, masked=True)),
         uses=USES, what="the change of the real positions' outputs of EncoderLayer(12, 3, 20, norm_first=True) "
                         "when only the padded positions' values change (must be 0)"),
    Case("encoder_float64", encode, encoder_inputs(norm_first=True, masked=True, dtype=f64), tol="float64",
         uses=USES, what="a float64 EncoderLayer(12, 3, 20, norm_first=True) on float64 x with a padding mask"),
    Case("encoder_gradients", gradients("EncoderLayer"), encoder_inputs(masked=True), tol="grads", uses=USES,
         what="the gradients of EncoderLayer(12, 3, 20)'s parameters (sorted by name) in train mode, with a "
              "padding mask"),
    Case("encoder_dropout_eval", encode, encoder_inputs(dropout=0.5), uses=USES,
         what="EncoderLayer(12, 3, 20, dropout=0.5) in eval mode"),
    Case("encoder_dropout_train", in_training("EncoderLayer"), encoder_inputs(dropout=0.5), upcast=False, uses=USES,
         what="EncoderLayer(12, 3, 20, dropout=0.5) in train mode after torch.manual_seed(0)"),
    Case("decoder_parameters", parameters("DecoderLayer"), lambda g: (), upcast=False,
         what="the state_dict keys and shapes of DecoderLayer(12, 3, 20)"),
    Case("decoder_post_ln", decode, decoder_inputs(), uses=USES,
         what="DecoderLayer(12, 3, 20) (post-LN, GELU) in eval mode on x (2, 4, 12) and memory (2, 6, 12)"),
    Case("decoder_pre_ln", decode, decoder_inputs(norm_first=True, masked=True), uses=USES,
         what="DecoderLayer(12, 3, 20, norm_first=True) on x (2, 4, 12), memory (2, 6, 12) and a memory padding mask"),
    Case("decoder_memory_padding", decode, decoder_inputs(B=3, S=7, masked=True), uses=USES,
         what="DecoderLayer(12, 3, 20) on x (3, 4, 12), memory (3, 7, 12) and a memory padding mask (3, 7)"),
    Case("decoder_causal", causality, decoder_inputs(L=5, S=3, activation="relu"), uses=USES,
         what="the change of DecoderLayer's outputs at positions <= p when only x after p changes (must be 0)"),
    Case("decoder_float64", decode, decoder_inputs(L=3, S=5, norm_first=True, masked=True, dtype=f64),
         tol="float64", uses=USES,
         what="a float64 DecoderLayer(12, 3, 20, norm_first=True) on float64 inputs with a memory padding mask"),
    Case("decoder_gradients", gradients("DecoderLayer"), decoder_inputs(norm_first=True, masked=True), tol="grads",
         uses=USES, what="the gradients of DecoderLayer(12, 3, 20, norm_first=True)'s parameters (sorted by name) "
                         "in train mode"),
    Case("decoder_dropout_train", in_training("DecoderLayer"), decoder_inputs(norm_first=True, dropout=0.5),
         upcast=False, uses=USES, what="DecoderLayer(12, 3, 20, dropout=0.5, norm_first=True) in train mode after "
                                       "torch.manual_seed(0)"),
    Case("encoder_from_torch", from_torch("EncoderLayer"), torch_inputs("EncoderLayer"), uses=USES,
         what="EncoderLayer.from_torch(nn.TransformerEncoderLayer(12, 3, 20) in eval mode) on x (2, 6, 12) with a "
              "padding mask"),
    Case("encoder_from_torch_pre_ln", from_torch("EncoderLayer"),
         torch_inputs("EncoderLayer", S=5, n_heads=2, norm_first=True, activation="relu", eps=1e-2), uses=USES,
         what="EncoderLayer.from_torch(nn.TransformerEncoderLayer(12, 2, 20, activation='relu', layer_norm_eps=0.01, "
              "norm_first=True))"),
    Case("decoder_from_torch", from_torch("DecoderLayer"), torch_inputs("DecoderLayer", activation="relu"),
         uses=USES, what="DecoderLayer.from_torch(nn.TransformerDecoderLayer(12, 3, 20, activation='relu'))"),
    Case("decoder_from_torch_pre_ln", from_torch("DecoderLayer"),
         torch_inputs("DecoderLayer", L=3, S=5, norm_first=True, activation=F.gelu, eps=1e-3), uses=USES,
         what="DecoderLayer.from_torch(nn.TransformerDecoderLayer(12, 3, 20, activation=F.gelu, "
              "layer_norm_eps=0.001, norm_first=True))"),
    Case("from_torch_float64", from_torch("DecoderLayer"),
         torch_inputs("DecoderLayer", norm_first=True, activation="relu", dtype=f64), uses=USES,
         what="DecoderLayer.from_torch of a float64 nn.TransformerDecoderLayer(12, 3, 20, norm_first=True)"),
    Case("from_torch_modes", from_torch_modes, modes_inputs, upcast=False,
         what="from_torch of torch encoder and decoder layers in eval and in train mode (dropout 0.1)"),
    Case("from_torch_independent", from_torch_independent,
         lambda g: (torch_layer(g, "EncoderLayer"), torch_layer(g, "DecoderLayer")), upcast=False,
         what="the layers EncoderLayer.from_torch and DecoderLayer.from_torch return"),
    Case("from_torch_bad_activation", from_torch("EncoderLayer"), bad_torch_activation, upcast=False,
         what="EncoderLayer.from_torch of a torch layer built with activation=F.silu"),
    Case("encoder_hidden", encode, hidden(encoder_inputs, B=3, S=6, masked=True), hidden=True, uses=USES,
         what="EncoderLayer with a padding mask on hidden inputs and options"),
    Case("decoder_hidden", decode, hidden(decoder_inputs, L=5, S=4, masked=True), hidden=True, uses=USES,
         what="DecoderLayer with a memory padding mask on hidden inputs and options"),
    Case("from_torch_hidden", from_torch("DecoderLayer"), hidden_torch("DecoderLayer"), hidden=True, uses=USES,
         what="DecoderLayer.from_torch on hidden inputs and options"),
])
