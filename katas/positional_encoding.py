"""Kata: positional encodings, the sinusoidal table and rotary position embedding (RoPE).

Why positions
-------------
Attention by itself is blind to order. Each query scores every key by content alone, so if you
permute the tokens, the outputs are permuted the same way: "dog bites man" and "man bites dog" look
alike. Something has to tell the model where each token sits. Two answers have stuck:

* add a position vector to each token's embedding before the first layer: the sinusoidal table of
  the 2017 paper (GPT-2 learns its table instead);
* rotate every query and key by an angle proportional to its position, inside every attention
  layer: rotary position embedding, used by GPT-NeoX, Llama, Mistral, Qwen and most recent LLMs.

The sinusoidal table
--------------------
Vaswani et al., 2017, "Attention Is All You Need", section 3.5. For position p = 0 ... T - 1 and
pair i = 0 ... d_model/2 - 1:

    w_i           = 1 / base ** (2i / d_model)        (d_model/2,)   base = 10000
    PE[p, 2i]     = sin(p * w_i)                      (T, d_model)
    PE[p, 2i + 1] = cos(p * w_i)

The frequencies fall geometrically from 1 (a wavelength of 2 pi) to nearly 1 / base (a wavelength
of 2 pi * base): the fast pairs tell neighbours apart, the slow ones place a token in a long text.
Each pair (PE[p, 2i], PE[p, 2i + 1]) is a point on the unit circle that turns by w_i per position,
so PE[p + k] is a fixed rotation of PE[p] whatever p is: the paper's reason to expect that relative
offsets are easy to learn. Three details are classic bugs:

* sin goes in the even features and cos in the odd ones, interleaved: sin, cos, sin, cos, ...
  (tensor2tensor concatenates all the sines, then all the cosines: that is another table.)
* The exponent is 2i / d_model, where 2i is the index of the pair's even feature: both features
  of pair i share one frequency. Not i / d_model, and not j / d_model for every feature j.
* Positions start at 0, so PE[0] = (0, 1, 0, 1, ...).

Numerics. The angle p * w_i grows with p, and float32's numbers near 4000 are 2.4e-4 apart: there
the angle, and with it its sine and cosine, is only known to about 1e-4. Computing in float32, or
in float64 and casting at the end, are both right; the checks allow the rounding that grows with
the position. The table is float32.

Rotary position embedding
-------------------------
Su et al., 2021, "RoFormer: Enhanced Transformer with Rotary Position Embedding", arXiv:2104.09864.
Take the query (or key) vector of one head, head_dim = D features, D even. Group its features into
D/2 pairs, give pair j the frequency inv_freq[j] = 1 / base ** (2j / D), and for a token at
position m rotate the pair, seen as a point (a, b) in the plane, by the angle t = m * inv_freq[j]:

    a' = a * cos(t) - b * sin(t)
    b' = b * cos(t) + a * sin(t)

Why rotate: a rotation keeps lengths (|(a', b')| = |(a, b)|), and rotations compose, so
<R(m) q, R(n) k> = <q, R(n - m) k>. The attention score of a query at m and a key at n depends on
their contents and on n - m only, never on m and n themselves: relative positions for free, and
nothing is added to the residual stream. Position 0 is the identity.

The angles depend on the positions only, never on the content, so they are tabulated once for all
heads and layers (T positions, D features):

    angles[p, j] = positions[p] * inv_freq[j mod D/2]            (T, D)
    cos, sin     = cos(angles), sin(angles)                      (T, D) each
    rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2])            (..., T, D)
    apply_rope(x, cos, sin) = x * cos + rotate_half(x) * sin     (..., T, D)

Written out for j < D/2: out[j] = x[j] cos - x[j + D/2] sin and out[j + D/2] = x[j + D/2] cos +
x[j] sin, the rotation above with a = x[j] and b = x[j + D/2].

Two layouts, one rotation
-------------------------
Which two features form a pair is a convention, and two are in use:

* interleaved: pair j is features (2j, 2j + 1). The RoFormer paper, GPT-J (rotate_every_two), and
  Meta's original Llama code, which views each pair as one complex number.
* rotate-half: pair j is features (j, j + D/2). GPT-NeoX, and Hugging Face's Llama, Mistral and
  Qwen. This kata's layout: it is why the table repeats its D/2 frequencies as a second half,
  f0 f1 ... f0 f1 ..., where the interleaved table repeats each one twice, f0 f0 f1 f1 ...

Both are equally good rotations, and a model trains as well with either. But a checkpoint only
works with its own. The features of q and k are whatever the trained W_q and W_k produce, and
training taught those weights to put the two coordinates that turn together at frequency j in
exactly the features its layout pairs. Apply the other layout and other features are turned
together, at other frequencies: the scores no longer carry relative position the way the model
learned to read it, and its outputs are garbage, with no error (the shapes are the same). This is
why Hugging Face's script that converts Meta's Llama weights permutes the rows of every head of
q_proj and k_proj: rotate-half on the permuted weights computes what interleaved did on the
originals.

The API
-------
rope_cos_sin reproduces Hugging Face's LlamaRotaryEmbedding exactly, in float32:

    inv_freq = 1.0 / base ** (torch.arange(0, D, 2).float() / D)     (D/2,)
    angles   = positions.float()[:, None] * inv_freq[None, :]        (T, D/2)

then the two halves (T, D), then cos and sin. A mathematically equal formula (exp and log, or
float64) may differ by an ulp of the angle, which the checks allow. positions are the tokens'
absolute positions, not always 0 ... T - 1: with a KV cache, the new tokens of a decoding step sit
at past_len, past_len + 1, ...; use the values given, and build the tables on positions.device.

apply_rope takes x (..., T, D), for instance (B, H, T, D), and tables (T, D) that broadcast over the
leading dims. Cast cos and sin to x's dtype first: a bfloat16 x times float32 tables would be
promoted to float32, and the result must keep x's dtype. Use the whole of both tables; the checks
pass tables whose two halves differ, so do not rebuild one half from the other.

Rules: seq_len < 1, and d_model or head_dim odd or below 2, raise ValueError. Nothing is modified
in place. torch.onnx.ops.rotary_embedding, a library RoPE, is forbidden: build it yourself.

Reference implementations to compare with afterwards: LlamaRotaryEmbedding, rotate_half and
apply_rotary_pos_emb in Hugging Face transformers (models/llama/modeling_llama.py), rotate_every_two
in models/gptj/modeling_gptj.py, and PositionalEncoding in The Annotated Transformer.
"""

import torch
from torch import Tensor


def sinusoidal_encoding(seq_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    """The sinusoidal table of "Attention Is All You Need".

    Returns float32 (seq_len, d_model) with PE[p, 2i] = sin(p / base ** (2i / d_model)) and
    PE[p, 2i + 1] = cos(p / base ** (2i / d_model)). seq_len < 1, d_model odd or < 2 -> ValueError.
    """
    raise NotImplementedError("sinusoidal_encoding: one frequency per pair, sin in even features, cos in odd")


def rope_cos_sin(positions: Tensor, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """The rotary tables of Hugging Face's Llama for the given positions.

    positions: 1-D integer tensor (T,). Returns (cos, sin), each float32 (T, head_dim) on
    positions.device, of angles positions[p] * inv_freq[j mod head_dim/2].
    head_dim odd or < 2 -> ValueError.
    """
    raise NotImplementedError("rope_cos_sin: inv_freq in float32, angles (T, D/2), the halves repeated")


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x in the rotate-half layout: pairs (j, j + D/2).

    x: (..., T, D); cos, sin: (T, D), cast to x's dtype. Returns x * cos + rotate_half(x) * sin,
    shape and dtype of x, with rotate_half(x) = cat(-x[..., D/2:], x[..., :D/2]).
    """
    raise NotImplementedError("apply_rope: cast the tables, then x * cos + rotate_half(x) * sin")
