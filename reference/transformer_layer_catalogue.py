"""Common mistakes and correct variants for the transformer_layer kata.

The layers' forwards are rebuilt from their parts by _encode and _decode, and from_torch by _load,
each with one knob per mistake. A mistaken FeedForward is also put into both layers (_with_ff), since
the reference layers build the reference's FeedForward.
"""

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from reference import mistake, variant
from reference.layer_norm import LayerNorm
from reference.multi_head_attention import MultiHeadAttention
from reference.transformer_layer import DecoderLayer, EncoderLayer, FeedForward, _activation_name, _like

# --- FeedForward mistakes -----------------------------------------------------------------


class _TanhGelu(FeedForward):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="gelu"):
        super().__init__(d_model, d_ff, dropout, activation)
        if activation == "gelu":
            self.activation = functools.partial(F.gelu, approximate="tanh")


class _ActivationUnchecked(FeedForward):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="gelu"):
        super().__init__(d_model, d_ff, dropout, "relu")
        self.activation = F.gelu if activation == "gelu" else F.relu


class _DropoutAfterLinear2(FeedForward):
    def forward(self, x):
        return self.dropout(self.linear2(self.activation(self.linear1(x))))


class _AlwaysDropout(nn.Dropout):
    def forward(self, x):
        return F.dropout(x, self.p)  # training defaults to True: still dropping in eval()


class _DropoutInEvalFF(FeedForward):
    def __init__(self, d_model, d_ff, dropout=0.0, activation="gelu"):
        super().__init__(d_model, d_ff, dropout, activation)
        self.dropout = _AlwaysDropout(dropout)


def _with_ff(ff, **layer_attributes):
    """FeedForward=ff, and both layers building it (and the given attributes, called with dropout's p)."""

    def layer(base):
        class WithFF(base):
            def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False, activation="gelu", eps=1e-5):
                super().__init__(d_model, n_heads, d_ff, dropout, norm_first, activation, eps)
                self.ff = ff(d_model, d_ff, dropout, activation)
                for name, make in layer_attributes.items():
                    setattr(self, name, make(dropout))

        return WithFF

    return dict(FeedForward=ff, EncoderLayer=layer(EncoderLayer), DecoderLayer=layer(DecoderLayer))


# --- forward mistakes ---------------------------------------------------------------------


def _key_padding(padding_mask):
    return padding_mask[:, None, None, :]


def _sublayers(x, steps, norm_first, pre_ln):
    """Each step (norm, sublayer, dropout) wrapped post-LN or pre-LN; pre_ln says how."""
    for norm, sublayer, drop in steps:
        if not norm_first:
            x = norm(x + drop(sublayer(x)))
        elif pre_ln == "normalised_residual":
            x = norm(x)
            x = x + drop(sublayer(x))
        elif pre_ln == "in_place":
            x += drop(sublayer(norm(x)))
        else:
            x = x + drop(sublayer(norm(x)))
    return x


def _encode(self, x, padding_mask, *, mask_of=_key_padding, norm_first=None, pre_ln="", norms=(1, 2),
            dropout=True):
    """The reference EncoderLayer.forward with one knob turned: each mistake below turns one."""
    mask = None if padding_mask is None else mask_of(padding_mask)
    n1, n2 = (getattr(self, f"norm{i}") for i in norms)
    d1, d2 = (self.dropout1, self.dropout2) if dropout else (nn.Identity(), nn.Identity())
    steps = [(n1, lambda h: self.self_attn(h, h, h, mask), d1), (n2, self.ff, d2)]
    return _sublayers(x, steps, self.norm_first if norm_first is None else norm_first, pre_ln)


def _decode(self, x, memory, memory_padding_mask, *, causal=True, cross_causal=False, mask_of=_key_padding,
            normalise_memory=False, norm_first=None, pre_ln="", dropout=True):
    """The reference DecoderLayer.forward with one knob turned."""
    L, S = x.shape[1], memory.shape[1]
    self_mask = torch.ones(L, L, dtype=torch.bool, device=x.device).tril() if causal else None
    cross_mask = None if memory_padding_mask is None else mask_of(memory_padding_mask)
    if cross_causal:
        top_left = torch.ones(L, S, dtype=torch.bool, device=x.device).tril()
        cross_mask = top_left if cross_mask is None else cross_mask & top_left
    norm_first = self.norm_first if norm_first is None else norm_first
    if norm_first and normalise_memory:
        memory = self.norm2(memory)
    drops = (self.dropout1, self.dropout2, self.dropout3) if dropout else (nn.Identity(),) * 3
    steps = [(self.norm1, lambda h: self.self_attn(h, h, h, self_mask), drops[0]),
             (self.norm2, lambda h: self.cross_attn(h, memory, memory, cross_mask), drops[1]),
             (self.norm3, self.ff, drops[2])]
    return _sublayers(x, steps, norm_first, pre_ln)


def _forwards(**knobs):
    """Both layers with the knobs turned in their forwards (a knob only one of them has goes to that one)."""
    encoder_knobs = {k: v for k, v in knobs.items() if k in ("mask_of", "norm_first", "pre_ln", "norms", "dropout")}
    decoder_knobs = {k: v for k, v in knobs.items() if k != "norms"}

    class Encoder(EncoderLayer):
        def forward(self, x, padding_mask=None):
            return _encode(self, x, padding_mask, **encoder_knobs)

    class Decoder(DecoderLayer):
        def forward(self, x, memory, memory_padding_mask=None):
            return _decode(self, x, memory, memory_padding_mask, **decoder_knobs)

    return dict(EncoderLayer=Encoder, DecoderLayer=Decoder)


def _eps_ignored(base):
    class EpsIgnored(base):
        def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False, activation="gelu", eps=1e-5):
            super().__init__(d_model, n_heads, d_ff, dropout, norm_first, activation)

    return EpsIgnored


# --- from_torch mistakes ------------------------------------------------------------------


def _load(cls, layer, attention, norms, *, eps=True, norm_first=True, share=False, mode=True,
          activation=_activation_name):
    """The reference from_torch with one knob turned."""
    w = layer.linear1.weight
    new = cls(layer.linear1.in_features, layer.self_attn.num_heads, layer.linear1.out_features,
              dropout=layer.dropout.p, norm_first=layer.norm_first if norm_first else False,
              activation=activation(layer.activation), **({"eps": layer.norm1.eps} if eps else {}))
    new = new.to(w.device, w.dtype)
    for ours, theirs in attention.items():
        setattr(new, ours, MultiHeadAttention.from_torch(getattr(layer, theirs)))
    pieces = [("linear1", new.ff, "linear1"), ("linear2", new.ff, "linear2")]
    pieces += [(f"norm{i}", new, f"norm{i}") for i in range(1, norms + 1)]
    for theirs, parent, ours in pieces:
        if share:
            setattr(parent, ours, getattr(layer, theirs))
        else:
            getattr(parent, ours).load_state_dict(getattr(layer, theirs).state_dict())
    return new.train(layer.training) if mode else new


def _from_torch_with(**knobs):
    class Encoder(EncoderLayer):
        @classmethod
        def from_torch(cls, layer):
            return _load(cls, layer, {"self_attn": "self_attn"}, 2, **knobs)

    class Decoder(DecoderLayer):
        @classmethod
        def from_torch(cls, layer):
            return _load(cls, layer, {"self_attn": "self_attn", "cross_attn": "multihead_attn"}, 3, **knobs)

    return dict(EncoderLayer=Encoder, DecoderLayer=Decoder)


def _gelu_unless_relu(fn):
    return "relu" if fn is F.relu else "gelu"


# --- correct variants ---------------------------------------------------------------------


def _kata_norms(base, count):
    class KataNorms(base):
        def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False, activation="gelu", eps=1e-5):
            super().__init__(d_model, n_heads, d_ff, dropout, norm_first, activation, eps)
            for i in range(1, count + 1):
                setattr(self, f"norm{i}", LayerNorm(d_model, eps=eps))

    return KataNorms


class _ModuleActivation(FeedForward):
    # The activation as a module (nn.GELU, nn.ReLU): it has no parameters, so the state dict is the same.
    def __init__(self, d_model, d_ff, dropout=0.0, activation="gelu"):
        super().__init__(d_model, d_ff, dropout, activation)
        self.activation = {"gelu": nn.GELU, "relu": nn.ReLU}[activation]()


class _TorchStyleEncoder(EncoderLayer):
    # torch's own structure: one method per sub-layer block.
    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, norm_first=False, activation="gelu", eps=1e-5):
        super().__init__(d_model, n_heads, d_ff, dropout, norm_first, activation, eps)
        self.ff = _ModuleActivation(d_model, d_ff, dropout, activation)

    def _sa_block(self, x, mask):
        return self.dropout1(self.self_attn(x, x, x, mask))

    def _ff_block(self, x):
        return self.dropout2(self.ff(x))

    def forward(self, x, padding_mask=None):
        mask = None if padding_mask is None else padding_mask.unsqueeze(1).unsqueeze(2)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), mask)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, mask))
        return self.norm2(x + self._ff_block(x))


class _ArangeMaskDecoder(DecoderLayer):
    # The causal mask from positions; memory's padding mask as a view.
    def forward(self, x, memory, memory_padding_mask=None):
        B, L, _ = x.shape
        pos = torch.arange(L, device=x.device)
        causal = pos[None, :] <= pos[:, None]
        mask = None if memory_padding_mask is None else memory_padding_mask.view(B, 1, 1, -1)
        sa = lambda h: self.dropout1(self.self_attn(h, h, h, causal))
        ca = lambda h: self.dropout2(self.cross_attn(h, memory, memory, mask))
        ff = lambda h: self.dropout3(self.ff(h))
        for norm, sublayer in ((self.norm1, sa), (self.norm2, ca), (self.norm3, ff)):
            x = x + sublayer(norm(x)) if self.norm_first else norm(x + sublayer(x))
        return x


def _state_from_torch(layer, attention: dict) -> dict:
    """The torch layer's tensors under this kata's names."""
    state = {}
    for ours, theirs in attention.items():
        mha = getattr(layer, theirs)
        for i, proj in enumerate(("q_proj", "k_proj", "v_proj")):
            state[f"{ours}.{proj}.weight"] = mha.in_proj_weight.chunk(3)[i]
            state[f"{ours}.{proj}.bias"] = mha.in_proj_bias.chunk(3)[i]
        state.update({f"{ours}.out_proj.{k}": v for k, v in mha.out_proj.state_dict().items()})
    for name, t in layer.state_dict().items():
        if name.startswith(("linear", "norm")):
            state[f"ff.{name}" if name.startswith("linear") else name] = t
    return state


def _state_dict_loader(base, attention):
    class StateDict(base):
        # from_torch renames every tensor of the torch layer and loads them all at once.
        @classmethod
        def from_torch(cls, layer):
            new = _like(cls, layer)
            new.load_state_dict(_state_from_torch(layer, attention))
            return new.train(layer.training)

    return StateDict


def _deepcopy_loader(base, attention, norms):
    class DeepCopy(base):
        # from_torch deep-copies torch's linear and norm modules: copies with their own tensors.
        @classmethod
        def from_torch(cls, layer):
            new = _like(cls, layer)
            for ours, theirs in attention.items():
                setattr(new, ours, MultiHeadAttention.from_torch(getattr(layer, theirs)))
            new.ff.linear1, new.ff.linear2 = copy.deepcopy(layer.linear1), copy.deepcopy(layer.linear2)
            for i in range(1, norms + 1):
                setattr(new, f"norm{i}", copy.deepcopy(getattr(layer, f"norm{i}")))
            return new.train(layer.training)

    return DeepCopy


ENCODER_ATTENTION = {"self_attn": "self_attn"}
DECODER_ATTENTION = {"self_attn": "self_attn", "cross_attn": "multihead_attn"}

MISTAKES = [
    mistake("tanh_gelu",
            "the GELU is the tanh approximation (GPT-2's); this kata's 'gelu' is the exact one, "
            "x * Phi(x) with erf, which is F.gelu's default",
            **_with_ff(_TanhGelu)),
    mistake("activation_unchecked",
            "an activation other than 'gelu' or 'relu' is quietly replaced instead of raising ValueError",
            **_with_ff(_ActivationUnchecked)),
    mistake("ff_dropout_after_linear2",
            "the feed-forward network's dropout comes after linear2 instead of between the activation and linear2",
            **_with_ff(_DropoutAfterLinear2)),
    mistake("dropout_in_eval",
            "dropout is F.dropout without training=self.training, so it keeps dropping in eval mode",
            **_with_ff(_DropoutInEvalFF, dropout1=_AlwaysDropout, dropout2=_AlwaysDropout, dropout3=_AlwaysDropout)),
    mistake("no_sublayer_dropout",
            "the sub-layers' outputs are added to the residual without dropout1, dropout2 (and dropout3)",
            **_forwards(dropout=False)),
    mistake("norm_first_ignored", "norm_first is ignored: the layer is always post-LN",
            **_forwards(norm_first=False)),
    mistake("pre_ln_normalised_residual",
            "pre-LN normalises the residual stream itself (x = norm(x), then x = x + sublayer(x)); only "
            "the sub-layer's input is normalised: x = x + sublayer(norm(x))",
            **_forwards(pre_ln="normalised_residual")),
    mistake("encoder_norms_swapped",
            "the encoder uses norm2 around self-attention and norm1 around the feed-forward network",
            EncoderLayer=_forwards(norms=(2, 1))["EncoderLayer"]),
    mistake("eps_ignored", "the layer norms are built with the default eps instead of the eps argument",
            EncoderLayer=_eps_ignored(EncoderLayer), DecoderLayer=_eps_ignored(DecoderLayer)),
    mistake("padding_mask_inverted",
            "the padding mask is read as torch's key padding masks are, True = padding; in this kata "
            "True means a real token that may be attended",
            **_forwards(mask_of=lambda padding_mask: ~_key_padding(padding_mask))),
    mistake("padding_mask_on_queries",
            "the padding mask is shaped (B, 1, S, 1), which blocks the padded queries' rows instead of "
            "the padded keys' columns: it must be (B, 1, 1, S)",
            **_forwards(mask_of=lambda padding_mask: padding_mask[:, None, :, None])),
    mistake("memory_mask_ignored", "the decoder never applies memory_padding_mask to cross-attention",
            DecoderLayer=_forwards(mask_of=lambda padding_mask: None)["DecoderLayer"]),
    mistake("decoder_not_causal",
            "the decoder's self-attention has no causal mask, so every position sees the positions after it",
            DecoderLayer=_forwards(causal=False)["DecoderLayer"]),
    mistake("cross_attention_causal",
            "cross-attention is masked causally too; the whole memory is known, so only its padding is masked",
            DecoderLayer=_forwards(cross_causal=True)["DecoderLayer"]),
    mistake("pre_ln_normalises_memory",
            "pre-LN cross-attention also normalises memory with norm2; memory goes in as it is",
            DecoderLayer=_forwards(normalise_memory=True)["DecoderLayer"]),
    mistake("from_torch_default_eps",
            "from_torch does not pass the torch layer's eps (norm1.eps) on, so the norms keep the default 1e-5",
            **_from_torch_with(eps=False)),
    mistake("from_torch_norm_first_ignored",
            "from_torch does not pass the torch layer's norm_first on, so a pre-LN layer becomes post-LN",
            **_from_torch_with(norm_first=False)),
    mistake("from_torch_shares_tensors",
            "from_torch puts the torch layer's own linear and norm modules into the new layer instead "
            "of copies, so changing one changes the other",
            **_from_torch_with(share=True)),
    mistake("from_torch_training_mode",
            "from_torch returns the new layer in training mode whatever mode the torch layer is in",
            **_from_torch_with(mode=False)),
    mistake("from_torch_activation_fallback",
            "from_torch treats every activation other than F.relu as GELU instead of raising ValueError",
            **_from_torch_with(activation=_gelu_unless_relu)),
    # Last: diagnosis runs each mistake on the check's own inputs, which this one changes.
    mistake("residual_in_place",
            "pre-LN adds to the residual with x += ..., which changes the caller's input tensor in place",
            **_forwards(pre_ln="in_place")),
]

VARIANTS = [
    variant("kata_layer_norm", "uses the LayerNorm of the layer_norm kata for norm1, norm2 (and norm3)",
            EncoderLayer=_kata_norms(EncoderLayer, 2), DecoderLayer=_kata_norms(DecoderLayer, 3)),
    variant("torch_style_blocks",
            "an encoder with torch's _sa_block and _ff_block methods and the activation as an nn.GELU / "
            "nn.ReLU module",
            EncoderLayer=_TorchStyleEncoder),
    variant("arange_causal_mask",
            "a decoder that builds the causal mask from torch.arange positions and loops over its three sub-layers",
            DecoderLayer=_ArangeMaskDecoder),
    variant("state_dict_from_torch", "from_torch loads one renamed state dict of every torch tensor",
            EncoderLayer=_state_dict_loader(EncoderLayer, ENCODER_ATTENTION),
            DecoderLayer=_state_dict_loader(DecoderLayer, DECODER_ATTENTION)),
    variant("deepcopy_from_torch", "from_torch deep-copies torch's linear and norm modules into the new layer",
            EncoderLayer=_deepcopy_loader(EncoderLayer, ENCODER_ATTENTION, 2),
            DecoderLayer=_deepcopy_loader(DecoderLayer, DECODER_ATTENTION, 3)),
]

# Mutants of the reference (kata mutate) that compute what it computes.
EQUIVALENT = {
    "_activation_name:statement:bc93c6d2": "without the raise it returns None, for which FeedForward raises the "
                                           "same ValueError",
    "_like:constant:d07383e3": "of linear1's 2-D weight, dim -1 is dim 1",
    "DecoderLayer.forward:drop:0628a2b3": "the same on the CPU; on a GPU the causal mask stays on the CPU and "
                                          "masking the scores with it fails, which grading with --device cuda catches",
}
