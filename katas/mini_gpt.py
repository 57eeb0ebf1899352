"""Kata: a mini GPT, GPT-2's decoder-only Transformer from token ids to sampled text.

The earlier katas built the parts: attention, the causal mask, layer norm. Here they become a
language model: GPT-2 (Radford et al. 2019, "Language Models are Unsupervised Multitask
Learners"), at any size, with GPT-2's own parameter names, so that a Hugging Face GPT-2
checkpoint loads into it and gives the same logits. Karpathy's nanoGPT (model.py) is the same
model in about 300 lines and a good companion.

The model
---------
B batch, T sequence length (T <= block_size), C = n_embd, H = n_head, D = C / H, V = vocab_size.

    idx (B, T) int64 token ids
    x = drop(wte[idx] + wpe[0 .. T-1])                        (B, T, C)   token + position embeddings
    for block in h:                                                       n_layer times, pre-LN:
        x = x + attn(ln_1(x))                                 (B, T, C)
        x = x + mlp(ln_2(x))                                  (B, T, C)
    logits = lm_head(ln_f(x))                                 (B, T, V)   a score for every next token

Pre-LN means each branch reads a normalised copy of the residual stream x, while x itself is only
ever added to (GPT-2, and most LLMs since). The 2017 Transformer normalised after the addition
(post-LN: x = ln(x + f(x))), which trains worse when deep; GPT-2 moved the norms inside and added
the final ln_f. Every LayerNorm here uses config.layer_norm_eps.

Causal self-attention, one block's `attn`:

    q, k, v = c_attn(x).split(C, dim=-1)     c_attn is ONE nn.Linear(C, 3C): q, k, v in that order
    q, k, v -> (B, H, T, D)                  view(B, T, H, D).transpose(1, 2): head h gets features
                                             h*D ... (h+1)*D - 1 (a plain reshape scrambles them)
    att = q @ k^T / sqrt(D)                  (B, H, T, T), scaled by the head size D, not by C
    att[i, j] = -inf where j > i             the causal mask: position i sees positions 0 .. i only
    att = attn_dropout(softmax(att))         dropout on the attention weights
    y = att @ v -> (B, T, C)                 transpose(1, 2), then reshape (the merge)
    out = resid_dropout(c_proj(y))           c_proj is nn.Linear(C, C)

The mask depends only on block_size; keep it as a buffer created with
register_buffer(name, tensor, persistent=False), or build it in forward. A persistent buffer would
land in the state_dict, which must hold the parameters only (checkpoints carry no mask).

The MLP, one block's `mlp`: c_fc nn.Linear(C, 4C), GELU, c_proj nn.Linear(4C, C), dropout. GPT-2
uses the tanh approximation of GELU,

    gelu(u) = 0.5 * u * (1 + tanh(sqrt(2 / pi) * (u + 0.044715 * u^3)))

(F.gelu(u, approximate="tanh"); Hugging Face calls it "gelu_new"). The exact erf GELU differs by
up to about 5e-4: a small number, but a checkpoint's weights were trained with one and expect it.

Dropout sits where GPT-2 has it (config.dropout, all of them): on the embedding sum (`drop`), on
the attention weights, and after each c_proj. In eval mode all of them are the identity.

Weight tying. lm_head is nn.Linear(C, V, bias=False) and its weight IS wte.weight, one Parameter
(self.lm_head.weight = self.wte.weight): a token's embedding also scores how likely it is to come
next. It saves V * C parameters, the largest single matrix of a small model. With tying, the
parameter count is

    V*C + block_size*C + n_layer * (12*C^2 + 13*C) + 2*C

(model.parameters() yields a shared Parameter once.) Its gradient collects both uses.

forward(idx, targets=None) -> (logits, loss)
--------------------------------------------
T > block_size -> ValueError (wpe has only block_size rows). logits (B, T, V) in the model's dtype.
With targets (B, T), loss is the mean cross-entropy of logits against targets over all positions:
F.cross_entropy(logits.view(B*T, V), targets.view(B*T)). The targets are already the next tokens
(a data loader takes x = data[i : i+T] and y = data[i+1 : i+T+1]), so forward does not shift them.
A target of -100 means "no target here" (padding, a prompt): that position counts neither in the
sum nor in the number of positions the mean divides by. Without targets, loss is None.

generate(idx, max_new_tokens, temperature=1.0, top_k=None, generator=None) -> (B, T + max_new_tokens)
------------------------------------------------------------------------------------------------
Autoregressive sampling, without gradients (torch.no_grad). max_new_tokens times:

    1. crop the context to its last block_size tokens (the model sees no further back);
    2. run the model and keep the last position's logits, (B, V): only it predicts a new token;
    3. temperature 0 means greedy: the argmax. Otherwise divide the logits by temperature (before
       the softmax: < 1 sharpens, > 1 flattens);
    4. top_k given: keep the top_k largest logits and set the rest to -inf (top_k above V keeps
       them all);
    5. softmax to probabilities, in float32, and draw ONE token per row with exactly one call
       torch.multinomial(probs, 1, generator=generator);
    6. append it to idx.

One multinomial call per step on (B, V) float32 probabilities, in this order, is what makes a
seeded generator draw the same tokens as the grader's reference; the checks run in eval mode.

load_hf_state_dict(state_dict) -> self
--------------------------------------
A Hugging Face GPT2LMHeadModel state dict has the same names under a "transformer." prefix
(transformer.wte.weight, transformer.h.0.attn.c_attn.weight, ..., transformer.ln_f.bias) and
lm_head.weight, which equals wte's (Hugging Face ties them too). Older transformers versions also
store the buffers h.{i}.attn.bias and h.{i}.attn.masked_bias: skip them. GPT-2's linear layers are
Conv1D modules whose weight is stored (in, out), the transpose of nn.Linear's (out, in): c_attn,
c_proj and c_fc weights must be transposed. For the square attn.c_proj weight (C, C) a forgotten
transpose raises no shape error; it only gives wrong logits. Copy into the model's own tensors
(under torch.no_grad, with Tensor.copy_), so that wte and lm_head stay one Parameter and the model
keeps its dtype and device; the state dict passed in is left unchanged. Return self.

Useful: nn.Embedding, nn.Linear, nn.LayerNorm, nn.ModuleList, nn.Dropout, F.gelu, F.softmax,
F.cross_entropy, Tensor.masked_fill, torch.topk, torch.multinomial, torch.no_grad,
nn.Module.register_buffer. Forbidden: torch's scaled_dot_product_attention, nn.MultiheadAttention
and nn.TransformerEncoderLayer / nn.TransformerDecoderLayer: the attention is yours.

What you write: CausalSelfAttention, MLP, Block and GPT below (each __init__ and forward), and
GPT.generate and GPT.load_hf_state_dict. GPTConfig is given. The grader builds your GPT from a
GPTConfig and loads its own weights into it by name (model.load_state_dict), so the names and
shapes above matter; how you initialise the weights does not (GPT-2 draws them from N(0, 0.02)).

Run `kata check mini_gpt` (or `pytest graders/test_mini_gpt.py`) to see how you are doing, and
`kata hint mini_gpt` when stuck.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class GPTConfig:
    vocab_size: int  # V: token ids are 0 .. V-1
    block_size: int  # the longest context; wpe has this many rows
    n_layer: int
    n_head: int
    n_embd: int  # C, divisible by n_head
    dropout: float = 0.0
    layer_norm_eps: float = 1e-5


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with GPT-2's fused c_attn and c_proj."""

    def __init__(self, config: GPTConfig):
        """c_attn nn.Linear(C, 3C), c_proj nn.Linear(C, C), dropouts, a non-persistent causal mask
        if you keep one. n_embd not divisible by n_head -> ValueError."""
        raise NotImplementedError("build c_attn, c_proj, the dropouts and the causal mask")

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, C) -> (B, T, C): q, k, v from c_attn, split heads, masked scaled softmax
        attention (with dropout on its weights), merge heads, c_proj, dropout."""
        raise NotImplementedError("attend causally over x, head by head, then c_proj")


class MLP(nn.Module):
    """c_fc (C -> 4C), tanh-approximated GELU, c_proj (4C -> C), dropout."""

    def __init__(self, config: GPTConfig):
        raise NotImplementedError("build c_fc, c_proj and the dropout")

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, C) -> (B, T, C)."""
        raise NotImplementedError("c_fc, GELU (tanh approximation), c_proj, dropout")


class Block(nn.Module):
    """One pre-LN Transformer block: ln_1, attn, ln_2, mlp."""

    def __init__(self, config: GPTConfig):
        raise NotImplementedError("build ln_1, attn, ln_2 and mlp")

    def forward(self, x: Tensor) -> Tensor:
        """x (B, T, C) -> (B, T, C): x + attn(ln_1(x)), then + mlp(ln_2(x))."""
        raise NotImplementedError("add the attention branch, then the MLP branch, to the residual stream")


class GPT(nn.Module):
    """GPT-2: wte, wpe, drop, h (n_layer Blocks), ln_f, and lm_head tied to wte."""

    def __init__(self, config: GPTConfig):
        raise NotImplementedError("build wte, wpe, drop, h, ln_f and lm_head, and tie lm_head to wte")

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """idx (B, T) int64, T <= block_size (else ValueError) -> (logits (B, T, V), loss).

        loss: the mean cross-entropy against targets (B, T), the next tokens already, leaving out
        targets equal to -100; None without targets.
        """
        raise NotImplementedError("embed tokens and positions, run the blocks, ln_f, lm_head, and the loss")

    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """idx (B, T) -> (B, T + max_new_tokens), without gradients: crop to block_size, last
        position's logits, argmax if temperature == 0, else / temperature, top_k, softmax (float32)
        and one torch.multinomial(probs, 1, generator=generator) per step."""
        raise NotImplementedError("sample max_new_tokens tokens one at a time")

    def load_hf_state_dict(self, state_dict: dict) -> "GPT":
        """Copy a Hugging Face GPT2LMHeadModel state dict into this model's own tensors, in place
        (Conv1D weights transposed, attn.bias / attn.masked_bias skipped, wte and lm_head kept tied);
        return self."""
        raise NotImplementedError("map the keys, transpose the Conv1D weights and copy_ them in")
