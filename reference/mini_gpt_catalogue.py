"""Catalogue for the mini_gpt kata: common mistakes and correct variants.

The grader only ever builds m.GPT, so every entry replaces GPT: a subclass of the reference that
changes one thing. A change inside the blocks goes through _gpt, which rebuilds the blocks from
subclasses of the reference's; a change to forward or generate is the reference's code with one
knob turned (_forward, _generate).
"""

import dataclasses
import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn

from reference import mistake, variant
from reference.mini_gpt import GPT, MLP, Block, CausalSelfAttention


def _gpt(attn=CausalSelfAttention, mlp=MLP, block=Block):
    """The reference GPT whose blocks are built from these classes."""
    class Model(GPT):
        def __init__(self, config):
            super().__init__(config)
            self.h = nn.ModuleList(block(config) for _ in range(config.n_layer))
            for b in self.h:
                b.attn, b.mlp = attn(config), mlp(config)
    return Model


# --- inside the blocks ----------------------------------------------------------------------------


def _attend(self, x, *, scale=None, causal=True, attn_dropout=True):
    """The reference attention with one knob turned."""
    B, T, C = x.shape
    q, k, v = self.c_attn(x).split(C, dim=2)
    q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
    att = q @ k.transpose(-2, -1) / math.sqrt(scale or k.shape[-1])
    if causal:
        att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
    att = F.softmax(att, dim=-1)
    if attn_dropout:
        att = self.attn_dropout(att)
    return self.resid_dropout(self.c_proj((att @ v).transpose(1, 2).reshape(B, T, C)))


class _NoMask(CausalSelfAttention):
    def forward(self, x):
        return _attend(self, x, causal=False)


class _ScaleByNEmbd(CausalSelfAttention):
    def forward(self, x):
        return _attend(self, x, scale=x.shape[-1])


class _NoAttentionDropout(CausalSelfAttention):
    def forward(self, x):
        return _attend(self, x, attn_dropout=False)


class _PersistentMask(CausalSelfAttention):
    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("mask", self.mask)  # persistent, nanoGPT's default


class _ExactGELU(MLP):
    def forward(self, x):
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class _PostLN(Block):
    def forward(self, x):
        x = self.ln_1(x + self.attn(x))
        return self.ln_2(x + self.mlp(x))


# --- the model around them ------------------------------------------------------------------------


class _Untied(GPT):
    def __init__(self, config):
        super().__init__(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)


class _DefaultEps(GPT):
    # nn.LayerNorm(n_embd) everywhere, without eps=config.layer_norm_eps.
    def __init__(self, config):
        super().__init__(config)
        for m in self.modules():
            if isinstance(m, nn.LayerNorm):
                m.eps = 1e-5


class _HeadsNotChecked(GPT):
    # Builds without complaint; n_embd % n_head != 0 would only fail later, in forward's view.
    def __init__(self, config):
        super().__init__(dataclasses.replace(config, n_head=1))
        for block in self.h:
            block.attn.n_head = config.n_head
        self.config = config


def _forward(self, idx, targets=None, *, check_length=True, shift=False, loss="cross_entropy"):
    """The reference forward with one knob turned."""
    B, T = idx.shape
    if check_length and T > self.config.block_size:
        raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
    x = self.drop(self.wte(idx) + self.wpe(torch.arange(T, device=idx.device)))
    for block in self.h:
        x = block(x)
    logits = self.lm_head(self.ln_f(x))
    if targets is None:
        return logits, None
    if shift:
        return logits, F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets[:, 1:].reshape(-1))
    logp = F.log_softmax(logits, dim=-1)
    valid = targets != -100
    picked = logp.gather(-1, targets.clamp(min=0)[..., None])[..., 0]  # (B, T)
    if loss == "mean_over_all":
        return logits, -(picked * valid).sum() / (B * T)
    if loss == "mean_over_valid":
        return logits, -(picked * valid).sum() / valid.sum()
    return logits, F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))


def _forwarding(**knobs):
    class Model(GPT):
        def forward(self, idx, targets=None):
            return _forward(self, idx, targets, **knobs)
    return Model


def _generate(self, idx, max_new_tokens, temperature, top_k, generator, *, crop=True, no_grad=True, greedy=True,
              temperature_on="logits", kth="topk", use_generator=True):
    """The reference generate with one knob turned."""
    V = self.config.vocab_size
    with torch.no_grad() if no_grad else nullcontext():
        for _ in range(max_new_tokens):
            logits = self(idx[:, -self.config.block_size:] if crop else idx)[0][:, -1, :]
            if greedy and temperature == 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                if temperature_on == "logits":
                    logits = logits / temperature
                if top_k is not None and kth != "probs":
                    if kth == "topk":
                        threshold = torch.topk(logits, min(top_k, V)).values[:, [-1]]
                    else:  # "sorted index": the value at index top_k of the sorted logits, one too far
                        threshold = logits.sort(dim=-1, descending=True).values[:, [min(top_k, V - 1)]]
                    logits = logits.masked_fill(logits < threshold, float("-inf"))
                probs = F.softmax(logits, dim=-1).float()
                if temperature_on == "probs":
                    probs = probs / temperature
                if top_k is not None and kth == "probs":
                    # Zeroing after the softmax: multinomial renormalises, so the draw is the same.
                    kept = torch.topk(probs, min(top_k, V)).values[:, [-1]]
                    probs = probs.masked_fill(probs < kept, 0.0)
                nxt = torch.multinomial(probs, 1, generator=generator if use_generator else None)
            idx = torch.cat([idx, nxt], dim=1)
    return idx


def _generating(**knobs):
    class Model(GPT):
        def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None):
            return _generate(self, idx, max_new_tokens, temperature, top_k, generator, **knobs)
    return Model


CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
OLD_BUFFERS = (".attn.bias", ".attn.masked_bias")


class _TransposeWhereShapesDiffer(GPT):
    def load_hf_state_dict(self, state_dict):
        own = self.state_dict()
        with torch.no_grad():
            for key, value in state_dict.items():
                name = key.removeprefix("transformer.")
                if not name.endswith(OLD_BUFFERS):
                    own[name].copy_(value if value.shape == own[name].shape else value.t())
        return self


class _AssignsParameters(GPT):
    def load_hf_state_dict(self, state_dict):
        for key, value in state_dict.items():
            name = key.removeprefix("transformer.")
            if not name.endswith(OLD_BUFFERS):
                module, _, attr = name.rpartition(".")
                setattr(self.get_submodule(module), attr, nn.Parameter(value.t() if name.endswith(CONV1D) else value))
        return self


# --- correct variants -----------------------------------------------------------------------------


class _EinsumAttention(CausalSelfAttention):
    # No buffer: the mask comes from positions on every call; heads by einsum.
    def forward(self, x):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = (t.view(B, T, H, C // H) for t in self.c_attn(x).chunk(3, dim=-1))
        scores = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(C // H)
        pos = torch.arange(T, device=x.device)
        scores = scores.masked_fill(pos[None, :] > pos[:, None], float("-inf"))
        y = torch.einsum("bhts,bshd->bthd", self.attn_dropout(scores.softmax(dim=-1)), v)
        return self.resid_dropout(self.c_proj(y.reshape(B, T, C)))


class _GELUWrittenOut(MLP):
    def forward(self, x):
        u = self.c_fc(x)
        gelu = 0.5 * u * (1 + torch.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))
        return self.dropout(self.c_proj(gelu))


class _LoadStateDict(GPT):
    # Renames and transposes into a new dict, then lets load_state_dict copy it in (strictly).
    def load_hf_state_dict(self, state_dict):
        ours = {}
        for key, value in state_dict.items():
            name = key.removeprefix("transformer.")
            if not name.endswith(OLD_BUFFERS):
                ours[name] = value.t() if name.endswith(CONV1D) else value
        self.load_state_dict(ours)
        return self


MISTAKES = [
    mistake(
        "untied_lm_head",
        "lm_head has a weight of its own; it must be wte.weight itself (self.lm_head.weight = self.wte.weight), "
        "one Parameter for both",
        GPT=_Untied,
    ),
    mistake(
        "no_causal_mask",
        "the attention has no causal mask, so every position also attends to the positions after it",
        GPT=_gpt(attn=_NoMask),
    ),
    mistake(
        "scale_by_n_embd",
        "the attention scores are divided by sqrt(n_embd) instead of sqrt(head_dim) = sqrt(n_embd / n_head)",
        GPT=_gpt(attn=_ScaleByNEmbd),
    ),
    mistake(
        "exact_gelu",
        "the MLP uses the exact (erf) GELU; GPT-2 uses the tanh approximation, F.gelu(x, approximate='tanh')",
        GPT=_gpt(mlp=_ExactGELU),
    ),
    mistake(
        "post_ln",
        "the blocks normalise after the residual addition (post-LN, x = ln(x + f(x))); GPT-2 is pre-LN: "
        "x = x + attn(ln_1(x)), then x = x + mlp(ln_2(x))",
        GPT=_gpt(block=_PostLN),
    ),
    mistake(
        "no_attention_dropout",
        "dropout is missing on the attention weights (softmax output); GPT-2 drops them as well as the embedding sum "
        "and each c_proj output",
        GPT=_gpt(attn=_NoAttentionDropout),
    ),
    mistake(
        "persistent_mask",
        "the causal mask is a persistent buffer, so it appears in the state_dict; register it with persistent=False "
        "(or build it in forward)",
        GPT=_gpt(attn=_PersistentMask),
    ),
    mistake(
        "default_layer_norm_eps",
        "the layer norms use their default eps instead of config.layer_norm_eps",
        GPT=_DefaultEps,
    ),
    mistake(
        "heads_not_checked",
        "GPT(config) does not raise ValueError when n_embd is not divisible by n_head",
        GPT=_HeadsNotChecked,
    ),
    mistake(
        "length_not_checked",
        "forward does not raise ValueError when T > block_size (wpe has only block_size rows)",
        GPT=_forwarding(check_length=False),
    ),
    mistake(
        "shift_inside_forward",
        "forward shifts the targets (logits[:, :-1] against targets[:, 1:]); the targets are already the next "
        "tokens, so compare every position with its own target",
        GPT=_forwarding(shift=True),
    ),
    mistake(
        "ignored_targets_counted",
        "the loss divides by every position, the ones whose target is -100 included; the mean is over the targets "
        "that are not -100",
        GPT=_forwarding(loss="mean_over_all"),
    ),
    mistake(
        "greedy_divides_by_zero",
        "temperature 0 is divided by instead of meaning greedy decoding: take the argmax of the logits before "
        "dividing by the temperature",
        GPT=_generating(greedy=False),
    ),
    mistake(
        "generate_records_gradients",
        "generate runs the model with gradients enabled; decorate it with @torch.no_grad() (or use a with block)",
        GPT=_generating(no_grad=False),
    ),
    mistake(
        "temperature_after_softmax",
        "the temperature divides the probabilities after the softmax, which multinomial renormalises away; "
        "divide the logits before the softmax",
        GPT=_generating(temperature_on="probs"),
    ),
    mistake(
        "top_k_keeps_one_more",
        "top_k keeps k + 1 tokens: the threshold is the value at index k of the sorted logits; the k-th largest is "
        "at index k - 1 (torch.topk(logits, k).values[:, -1])",
        GPT=_generating(kth="sorted index"),
    ),
    mistake(
        "no_context_crop",
        "generate feeds the whole sequence to the model, which fails once it is longer than block_size; "
        "crop it to the last block_size tokens first",
        GPT=_generating(crop=False),
    ),
    mistake(
        "generator_ignored",
        "torch.multinomial is called without generator=generator, so the draws come from the global "
        "random state instead of the generator passed in",
        GPT=_generating(use_generator=False),
    ),
    mistake(
        "square_c_proj_not_transposed",
        "load_hf_state_dict transposes only the weights whose shapes differ; every Conv1D weight (c_attn, both "
        "c_proj, c_fc) is stored (in, out), so the square attn.c_proj needs the transpose too",
        GPT=_TransposeWhereShapesDiffer,
    ),
    mistake(
        "load_assigns_parameters",
        "load_hf_state_dict assigns new nn.Parameters instead of copying into the model's own tensors: wte and "
        "lm_head come untied and the model shares memory with the state dict; copy_ under torch.no_grad()",
        GPT=_AssignsParameters,
    ),
]

VARIANTS = [
    variant(
        "einsum_attention",
        "attention with einsum over (B, T, H, D) views and a mask built from positions on every call",
        GPT=_gpt(attn=_EinsumAttention),
    ),
    variant(
        "gelu_written_out",
        "the tanh GELU written out as 0.5 u (1 + tanh(sqrt(2/pi) (u + 0.044715 u^3)))",
        GPT=_gpt(mlp=_GELUWrittenOut),
    ),
    variant(
        "loss_from_log_softmax",
        "the loss picked from log_softmax at the targets and averaged over the ones that are not -100",
        GPT=_forwarding(loss="mean_over_valid"),
    ),
    variant(
        "top_k_on_probabilities",
        "top_k applied after the softmax by zeroing the smaller probabilities (multinomial renormalises)",
        GPT=_generating(kth="probs"),
    ),
    variant(
        "load_via_load_state_dict",
        "load_hf_state_dict renames and transposes into a new dict and copies it in with load_state_dict",
        GPT=_LoadStateDict,
    ),
]

# Mutants of reference/mini_gpt.py (kata mutate) that no check can tell from it: id -> why.
EQUIVALENT = {
    "CausalSelfAttention.forward:args:c8468ed9": "transpose(2, 1) swaps the same two dims as transpose(1, 2)",
    "CausalSelfAttention.forward:constant:6b212115": "on the 4-D (B, T, H, D) view, dim -2 is dim 2",
    "CausalSelfAttention.forward:args:8c9bf173": "k.transpose(-1, -2) swaps the same two dims as k.transpose(-2, -1)",
    "CausalSelfAttention.forward:constant:72835c4e": "on the 4-D (B, H, T, D) keys, dim 2 is dim -2",
    "CausalSelfAttention.forward:args:3a209fd5": "transpose(2, 1) swaps the same two dims as transpose(1, 2)",
    "CausalSelfAttention.forward:constant:9dd3753c": "on the 4-D (B, H, T, D) output, dim -2 is dim 2",
    "CausalSelfAttention.forward:constant:dcac0b38": "the scores of these models are a few units, so a future "
                                                     "position filled with -1e9 gets exactly 0 after the softmax, "
                                                     "as with -inf",
    "GPT.forward:drop:eba8480e": "the positions land on the CPU, the only device every machine has; grading with "
                                 "--device cuda catches it (wpe's weight is on the GPU)",
    "GPT.generate:constant:c6be2259": "the last-position logits are 2-D (B, vocab_size): dim 1 is dim -1",
    "GPT.generate:args:19fcc964": "min(vocab_size, top_k) is min(top_k, vocab_size)",
    "GPT.generate:constant:b22dacb5": "logits of a few units filled with -1e9 give exactly 0 after the softmax, "
                                      "as -inf does, so the probabilities are the same",
    "GPT.generate:drop:bf28001c": "the checks' models are float32, whose probabilities are float32 already; a float64 "
                                  "model's probabilities draw the same tokens, as multinomial's exponential noise consumes the "
                                  "generator alike in both dtypes",
    "GPT.generate:constant:126409df": "the probabilities are 2-D (B, vocab_size): dim 1 is dim -1",
    "GPT.generate:constant:96d142f6": "the tokens are 2-D (B, T): dim -1 is dim 1",
}
