"""Grader for katas/kv_cache.py: each Case is one check, learner against reference."""

import math

import torch
from torch.utils import flop_counter
from torch.utils._python_dispatch import TorchDispatchMode

from graders.harness import Case, cases

f64 = torch.float64


class FlopCount(TorchDispatchMode):
    """Adds up FLOPs with the formulas of torch.utils.flop_counter, exactly as its FlopCounterMode does.

    FlopCounterMode's first use imports torch._dynamo (seconds); this plain mode counts the same ops
    with the same formulas without it. FlopCounterMode has no formula for the CPU kernel of torch's
    scaled_dot_product_attention and counts it as free; here it counts like the GPU kernels, so that
    attention is seen whichever way it is computed.
    """

    formulas = {
        **flop_counter.flop_registry,
        torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: flop_counter.shape_wrapper(
            lambda q, k, v, *args, out_shape=None, **kwargs: flop_counter.sdpa_flop_count(q, k, v)
        ),
    }

    @classmethod
    def _should_skip_dynamo(cls):
        return False

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = self.formulas.get(func.overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


def projections(g, B, T, d_model, n_heads, dtype=torch.float32):
    """x (B, T, d_model), the four projection weights stacked (4, d_model, d_model) in the order
    q, k, v, o, and n_heads."""
    x = g.randn(B, T, d_model, dtype=dtype)
    w = g.randn(4, d_model, d_model, dtype=dtype, scale=1 / math.sqrt(d_model))  # q.k / sqrt(head_dim) ~ 1
    return x, w, n_heads


def attn_inputs(B=2, T=7, d_model=32, n_heads=4, dtype=torch.float32):
    return lambda g: projections(g, B, T, d_model, n_heads, dtype)


def chunk_inputs(sizes, **kw):
    """attn_inputs over sum(sizes) tokens, and the chunk sizes."""
    return lambda g: (*attn_inputs(T=sum(sizes), **kw)(g), sizes)


def hidden_chunk_inputs(g):
    """Heads, head size, batch and chunk sizes from the instructor's seed."""
    n_heads, head_dim, B = int(g.randint(1, 7)), int(g.randint(2, 9)), int(g.randint(1, 4))
    sizes = tuple(int(n) for n in g.randint(1, 4, int(g.randint(3, 7))))
    return (*projections(g, B, sum(sizes), n_heads * head_dim, n_heads), sizes)


def _layer(m, w, n_heads):
    layer = m.CachedCausalSelfAttention(w.shape[-1], n_heads).to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        for proj, weight in zip((layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj), w):
            proj.weight.copy_(weight)
    return layer


def full_forward(m, x, w, n_heads):
    return _layer(m, w, n_heads)(x)


def chunked(m, x, w, n_heads, sizes):
    """Feeds x to a fresh cache in chunks of these sizes; the outputs of all chunks, concatenated."""
    layer, cache = _layer(m, w, n_heads), m.KVCache()
    outs, start = [], 0
    for n in sizes:
        outs.append(layer(x[:, start:start + n], cache))
        start += n
    return torch.cat(outs, dim=1)


def kv_inputs(B=2, H=3, D=4, sizes=(3, 1, 2)):
    def make(g):
        return tuple(g.randn(B, H, n, D) for n in sizes for _ in "kv")
    return make


def hidden_kv_inputs(g):
    """Shapes and update sizes from the instructor's seed."""
    B, H, D = (int(n) for n in g.randint(1, 6, 3))
    sizes = [int(n) for n in g.randint(1, 5, int(g.randint(2, 6)))]
    return kv_inputs(B, H, D, sizes)(g)


def cache_updates(m, *kv):
    """len() of the fresh cache, then for each update: the keys and values it returns and len() after."""
    cache = m.KVCache()
    seen = [len(cache)]
    for k, v in zip(kv[0::2], kv[1::2]):
        keys, values = cache.update(k, v)
        seen += [keys, values, len(cache)]
    return tuple(seen)


def empty_len(m):
    return len(m.KVCache())


# ------------------------------------------------------------------------------------------ FLOPs

STEPS = (16, 32, 64)


def decode_flops(m, x, w, n_heads):
    """For each T in STEPS: (T, FLOPs of one decode step on a cache of length T, FLOPs of a full forward of T + 1 tokens)."""
    layer = _layer(m, w, n_heads)
    counts = []
    with torch.no_grad():
        for T in STEPS:
            cache = m.KVCache()
            layer(x[:, :T], cache)
            with FlopCount() as step:
                layer(x[:, T:T + 1], cache)
            with FlopCount() as full:
                layer(x[:, :T + 1])
            counts.append((T, step.total, full.total))
    return tuple(counts)


def flops_within(actual, expected, like, tol, where):
    """Each decode step may cost at most max_ratio times the reference's step; fewer FLOPs are fine."""
    for (T, got, full), (_, want, _) in zip(actual, expected):
        if got > tol["max_ratio"] * want:
            first, last = actual[0], actual[-1]
            return (
                f"one decode step with {T} cached positions counts {got} FLOPs (torch.utils.flop_counter's formulas), "
                f"{got / want:.1f} times the reference's {want}; a forward over all {T + 1} positions counts "
                f"{full}. From T={first[0]} to T={last[0]} your step grew {last[1] / max(first[1], 1):.1f}x "
                f"(the reference's {expected[-1][1] / expected[0][1]:.1f}x): a cached step must cost O(T*d), "
                f"not O(T^2*d), so project only the new token and attend only its query over the cached "
                f"keys and values"
            )
    return None


test_case = cases([
    Case("full_forward", full_forward, attn_inputs(T=7), uses=("attention",),
         what="the forward of 7 tokens without a cache"),
    Case("decode_token_by_token", chunked, chunk_inputs((1,) * 7), uses=("attention",),
         what="decoding 7 tokens one at a time with a cache, against the full causal forward"),
    Case("chunked_prefill", chunked, chunk_inputs((4, 1, 3, 2)), uses=("attention",),
         what="feeding 10 tokens in chunks of 4, 1, 3, 2 through one cache, against the full causal forward"),
    Case("cache_update", cache_updates, kv_inputs(), what="KVCache: len(), then update() with 3, 1 and 2 new "
         "positions, returning (len, keys, values, len, ...)"),
    Case("cache_empty_len", empty_len, lambda g: (), what="len(KVCache()) of a new cache"),
    Case("decode_flops", decode_flops, attn_inputs(B=1, T=65, d_model=64, n_heads=4), tol="flops", upcast=False,
         compare=flops_within, what="the FLOPs of one decode step with 16, 32 and 64 cached positions"),
    Case("decode_float64", chunked, chunk_inputs((3, 1, 2), d_model=16, n_heads=2, dtype=f64), uses=("attention",),
         what="decoding in chunks of 3, 1, 2 with a float64 layer and input"),
    Case("decode_hidden", chunked, hidden_chunk_inputs, uses=("attention",), hidden=True,
         what="decoding in hidden chunks, with hidden numbers of heads and head sizes, against the full causal forward"),
    Case("cache_hidden", cache_updates, hidden_kv_inputs, hidden=True,
         what="KVCache: len(), then update() with hidden shapes and numbers of new positions"),
])
