"""Kata: the causal mask, and causal attention.

A language model predicts token t+1 from tokens 0..t. In training we run every position
of a sequence through attention at once, so something must stop the query at position p
from looking at the keys of positions after p: the answer it is being trained to
predict. That something is the causal mask (Vaswani et al. 2017, "Attention Is All You
Need", section 3.2.3: "We need to prevent leftward information flow in the decoder").

The mask
--------
A bool tensor of shape (q_len, kv_len): one row per query, one column per key, and

    mask[i, j] = True   query i may attend to key j
    mask[i, j] = False  it may not (its score becomes -inf, so its weight becomes 0)

This is the convention of the attention kata and of torch's scaled_dot_product_attention
with a bool attn_mask. (Careful: nn.MultiheadAttention's bool attn_mask means the
opposite, True = blocked. Always check which way a library reads a bool mask.)

With as many queries as keys (q_len == kv_len == 4, training on a whole sequence) it is
the lower triangle, diagonal included: every token sees itself and its past.

            key  0  1  2  3
    query 0      1  0  0  0
    query 1      1  1  0  0
    query 2      1  1  1  0
    query 3      1  1  1  1

Fewer queries than keys: decoding
---------------------------------
When a model generates text it does not recompute the past: the keys and values of the
tokens it has already seen sit in a cache, and only the newest q_len tokens are fed in
as queries (q_len = 1 when generating one token at a time, q_len > 1 when a prompt is
"prefilled" in chunks). Then the queries are the LAST q_len positions of a kv_len-long
sequence: query i is the token at position

    p_i = kv_len - q_len + i

and it may attend to keys 0 .. p_i. So

    mask[i, j] = (j <= i + (kv_len - q_len))

For q_len = 2, kv_len = 5 (three tokens cached, two new ones):

            key  0  1  2  3  4
    query 0      1  1  1  1  0     (position 3)
    query 1      1  1  1  1  1     (position 4)

The diagonal of the triangle ends in the bottom-right corner, hence the name
"bottom-right aligned". It is the square mask's last q_len rows.

The trap: "top-left" alignment
------------------------------
torch.ones(q_len, kv_len).tril() and torch's own is_causal=True both pin the triangle
to the top-left corner instead:

            key  0  1  2  3  4
    query 0      1  0  0  0  0
    query 1      1  1  0  0  0

Now the newest token sees two keys out of five: it has forgotten most of its context,
silently, with no error and plausible-looking output. The two alignments agree only
when q_len == kv_len, which is why the bug survives every test that uses square inputs.
(torch documents is_causal as top-left and offers
torch.nn.attention.bias.causal_lower_right for the other one; FlashAttention switched
its causal mask to bottom-right in version 2.1 for exactly this reason.)

Why kv_len >= q_len
-------------------
With kv_len < q_len, bottom-right alignment would leave the first queries with no key
at all: a row of -inf scores, and softmax of that is 0/0 = NaN. A query's own key is
always among the keys, so kv_len < q_len means the caller made a mistake: refuse it
with a ValueError. Likewise q_len must be at least 1. Every valid row has at least one
True (query i sees kv_len - q_len + i + 1 keys), so causal attention never makes a NaN.

Causal attention
----------------
    causal_attention(q, k, v) = softmax(q k^T / sqrt(E) masked by causal_mask(L, S)) v

    q (..., L, E)    k (..., S, E)    v (..., S, Ev)    S >= L
    mask (L, S)      broadcasts over the leading dims
    out (..., L, Ev)

Use your own scaled_dot_product_attention from the attention kata (imported below);
build the mask on q's device. The property that makes it causal, and that the grader
checks: changing the keys and values of positions after p leaves the outputs of every
query at or before p unchanged.

Not allowed here: torch's scaled_dot_product_attention (is_causal included) and the
softmax family (torch.softmax, Tensor.softmax, F.softmax, log_softmax, ...).

Further reading: nanoGPT's model.py (the `bias` buffer, torch.tril(torch.ones(T, T)));
the PyTorch docs of torch.nn.functional.scaled_dot_product_attention and
torch.nn.attention.bias.
"""

import torch
from torch import Tensor

from katas.attention import scaled_dot_product_attention


def causal_mask(q_len: int, kv_len: int | None = None, *, device=None) -> Tensor:
    """The bottom-right aligned causal mask.

    Args:
        q_len: the number of queries, the LAST q_len positions of the sequence; >= 1.
        kv_len: the number of keys, the whole sequence; defaults to q_len; >= q_len.
        device: where to create the mask (None: torch's default device).

    Returns:
        bool tensor (q_len, kv_len) with mask[i, j] = (j <= i + kv_len - q_len);
        True = may attend.

    Raises:
        ValueError: q_len < 1, or kv_len < q_len; the message names the bad argument.
    """
    raise NotImplementedError("build the bool (q_len, kv_len) mask: True where key j <= i + kv_len - q_len")


def causal_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Scaled dot-product attention under causal_mask(L, S).

    Args:
        q: (..., L, E) queries, the last L positions.
        k: (..., S, E) keys, S >= L.
        v: (..., S, Ev) values.

    Returns:
        (..., L, Ev): query i attends to keys 0 .. S - L + i only.
    """
    raise NotImplementedError("attend with scaled_dot_product_attention under causal_mask(L, S) on q's device")
