"""Catalogue for the kv_cache kata: common wrong implementations and correct alternatives."""

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from reference import mistake, variant
from reference.attention import scaled_dot_product_attention, softmax
from reference.kv_cache import CachedCausalSelfAttention, KVCache


def _split(t: Tensor, n_heads: int) -> Tensor:
    B, T, C = t.shape
    return t.view(B, T, n_heads, C // n_heads).transpose(1, 2)


def _merge(y: Tensor) -> Tensor:
    B, H, T, D = y.shape
    return y.transpose(1, 2).reshape(B, T, H * D)


def _bottom_right(L: int, S: int, device) -> Tensor:
    return torch.ones(L, S, dtype=torch.bool, device=device).tril(S - L)


# --- mistakes in the cache ------------------------------------------------------------------


class _OverwriteCache(KVCache):
    def update(self, k_new, v_new):
        self.keys, self.values = k_new, v_new
        return self.keys, self.values


class _ConcatHeadsDim(KVCache):
    def update(self, k_new, v_new):
        if self.keys is None:
            self.keys, self.values = k_new, v_new
        else:
            self.keys = torch.cat([self.keys, k_new], dim=1)
            self.values = torch.cat([self.values, v_new], dim=1)
        return self.keys, self.values


class _Prepend(KVCache):
    def update(self, k_new, v_new):
        if self.keys is None:
            self.keys, self.values = k_new, v_new
        else:
            self.keys = torch.cat([k_new, self.keys], dim=-2)
            self.values = torch.cat([v_new, self.values], dim=-2)
        return self.keys, self.values


class _ReturnNewOnly(KVCache):
    def update(self, k_new, v_new):
        super().update(k_new, v_new)
        return k_new, v_new


class _LenCountsUpdates(KVCache):
    def __init__(self):
        super().__init__()
        self.updates = 0

    def update(self, k_new, v_new):
        self.updates += 1
        return super().update(k_new, v_new)

    def __len__(self):
        return self.updates


class _EmptyLenFails(KVCache):
    def __len__(self):
        return self.keys.shape[-2]


# --- mistakes in the attention --------------------------------------------------------------


class _TopLeftCausal(CachedCausalSelfAttention):
    def forward(self, x, cache=None):
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is not None:
            k, v = cache.update(k, v)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.o_proj(_merge(y))


class _NoMaskWithCache(CachedCausalSelfAttention):
    def forward(self, x, cache=None):
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is None:
            mask = _bottom_right(q.shape[-2], k.shape[-2], x.device)
        else:
            k, v = cache.update(k, v)
            mask = None
        return self.o_proj(_merge(scaled_dot_product_attention(q, k, v, mask)))


class _RecomputeEverything(CachedCausalSelfAttention):
    # Keeps the tokens themselves and runs the whole sequence again at every step.
    def forward(self, x, cache=None):
        if cache is None:
            return super().forward(x)
        past = getattr(cache, "tokens", None)
        seq = x if past is None else torch.cat([past, x], dim=1)
        cache.tokens = seq
        cache.update(_split(self.k_proj(x), self.n_heads), _split(self.v_proj(x), self.n_heads))
        return super().forward(seq)[:, -x.shape[1]:]


class _CacheQueries(CachedCausalSelfAttention):
    # Caches the queries too, attends every cached query (a square mask) and keeps the last rows.
    def forward(self, x, cache=None):
        if cache is None:
            return super().forward(x)
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        past_q = getattr(cache, "queries", None)
        q_all = q if past_q is None else torch.cat([past_q, q], dim=-2)
        cache.queries = q_all
        k, v = cache.update(k, v)
        S = k.shape[-2]
        y = scaled_dot_product_attention(q_all, k, v, _bottom_right(S, S, x.device))
        return self.o_proj(_merge(y[:, :, -x.shape[1]:]))


class _TruthyCache(CachedCausalSelfAttention):
    # `if cache:` asks len(cache): a new cache is empty, hence falsy, and is never updated.
    def forward(self, x, cache=None):
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache:
            k, v = cache.update(k, v)
        y = scaled_dot_product_attention(q, k, v, _bottom_right(q.shape[-2], k.shape[-2], x.device))
        return self.o_proj(_merge(y))


class _ReshapeSplit(CachedCausalSelfAttention):
    def forward(self, x, cache=None):
        B, T, C = x.shape
        shape = (B, self.n_heads, T, self.head_dim)
        q, k, v = (p(x).reshape(shape) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is not None:
            k, v = cache.update(k, v)
        y = scaled_dot_product_attention(q, k, v, _bottom_right(T, k.shape[-2], x.device))
        return self.o_proj(y.reshape(B, T, C))


class _ReshapeMerge(CachedCausalSelfAttention):
    def forward(self, x, cache=None):
        B, T, C = x.shape
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is not None:
            k, v = cache.update(k, v)
        y = scaled_dot_product_attention(q, k, v, _bottom_right(T, k.shape[-2], x.device))
        return self.o_proj(y.reshape(B, T, C))


class _ScaleByDModel(CachedCausalSelfAttention):
    def forward(self, x, cache=None):
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is not None:
            k, v = cache.update(k, v)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_model)
        scores = scores.masked_fill(~_bottom_right(q.shape[-2], k.shape[-2], x.device), float("-inf"))
        return self.o_proj(_merge(softmax(scores, dim=-1) @ v))


# --- correct variants -----------------------------------------------------------------------


class _TorchSDPA(CachedCausalSelfAttention):
    def forward(self, x, cache=None):
        q, k, v = (_split(p(x), self.n_heads) for p in (self.q_proj, self.k_proj, self.v_proj))
        if cache is not None:
            k, v = cache.update(k, v)
        mask = _bottom_right(q.shape[-2], k.shape[-2], x.device)
        return self.o_proj(_merge(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))


class _FusedQKVEinsum(CachedCausalSelfAttention):
    # One matmul for q, k and v; the mask from explicit positions; einsum for the attention.
    def forward(self, x, cache=None):
        w = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        q, k, v = (_split(t, self.n_heads) for t in (x @ w.T).chunk(3, dim=-1))
        if cache is not None:
            k, v = cache.update(k, v)
        L, S = q.shape[-2], k.shape[-2]
        q_pos = torch.arange(S - L, S, device=x.device)
        k_pos = torch.arange(S, device=x.device)
        scores = torch.einsum("bhld,bhsd->bhls", q, k) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(k_pos[None, :] > q_pos[:, None], float("-inf"))
        y = torch.einsum("bhls,bhsd->bhld", scores.softmax(dim=-1), v)
        return self.o_proj(_merge(y))


class _PreallocatedCache:
    # Grows a buffer by doubling, as serving engines do, and returns views of its filled part.
    def __init__(self):
        self.k_buf = self.v_buf = None
        self.n = 0

    def update(self, k_new, v_new):
        need = self.n + k_new.shape[-2]
        if self.k_buf is None or need > self.k_buf.shape[-2]:
            cap = max(need, 2 * (0 if self.k_buf is None else self.k_buf.shape[-2]))
            k_buf = k_new.new_empty(*k_new.shape[:-2], cap, k_new.shape[-1])
            v_buf = v_new.new_empty(*v_new.shape[:-2], cap, v_new.shape[-1])
            if self.n:
                k_buf[..., : self.n, :] = self.k_buf[..., : self.n, :]
                v_buf[..., : self.n, :] = self.v_buf[..., : self.n, :]
            self.k_buf, self.v_buf = k_buf, v_buf
        self.k_buf[..., self.n : need, :] = k_new
        self.v_buf[..., self.n : need, :] = v_new
        self.n = need
        return self.k_buf[..., :need, :], self.v_buf[..., :need, :]

    def __len__(self):
        return self.n


class _ChunkListCache:
    def __init__(self):
        self.k_chunks, self.v_chunks = [], []

    def update(self, k_new, v_new):
        self.k_chunks.append(k_new)
        self.v_chunks.append(v_new)
        return torch.cat(self.k_chunks, dim=-2), torch.cat(self.v_chunks, dim=-2)

    def __len__(self):
        return sum(k.shape[-2] for k in self.k_chunks)


# Order matters where two mistakes fail the same check: the diagnosis names the first one that
# reproduces the learner's result, and the FLOP check only bounds from above, so the cheaper
# cache_queries comes before recompute_everything.
MISTAKES = [
    mistake(
        "overwrite_cache",
        "the cache overwrites its keys and values with the new ones instead of appending to them",
        KVCache=_OverwriteCache,
    ),
    mistake(
        "concat_wrong_dim",
        "the cache concatenates along dim 1 (the heads) instead of the sequence dim -2",
        KVCache=_ConcatHeadsDim,
    ),
    mistake(
        "prepend",
        "the cache puts the new keys and values before the cached ones instead of after them",
        KVCache=_Prepend,
    ),
    mistake(
        "update_returns_new_only",
        "update appends to the cache but returns only the new keys and values, so attention never sees the past",
        KVCache=_ReturnNewOnly,
    ),
    mistake(
        "len_counts_updates",
        "len() counts the calls to update instead of the cached positions",
        KVCache=_LenCountsUpdates,
    ),
    mistake(
        "empty_len_fails",
        "len() of an empty cache raises instead of returning 0",
        KVCache=_EmptyLenFails,
    ),
    mistake(
        "top_left_causal",
        "attention uses is_causal=True, a top-left causal mask, which is wrong when there are fewer queries than keys",
        CachedCausalSelfAttention=_TopLeftCausal,
    ),
    mistake(
        "no_mask_with_cache",
        "the causal mask is dropped when a cache is given, which is right only for one new token at a time",
        CachedCausalSelfAttention=_NoMaskWithCache,
    ),
    mistake(
        "cache_queries",
        "the queries are cached too and every past query is attended again at each step; only the new tokens' queries are needed",
        CachedCausalSelfAttention=_CacheQueries,
    ),
    mistake(
        "recompute_everything",
        "every step runs the projections and attention over the whole sequence again instead of reusing the cached keys and values",
        CachedCausalSelfAttention=_RecomputeEverything,
    ),
    mistake(
        "truthy_cache_test",
        "forward tests `if cache:` instead of `if cache is not None:`; a new KVCache has length 0, so it "
        "is falsy and never updated, and every chunk attends only to itself",
        CachedCausalSelfAttention=_TruthyCache,
    ),
    mistake(
        "reshape_split_heads",
        "the heads are split with reshape(B, H, T, head_dim) without the transpose, which mixes positions and features",
        CachedCausalSelfAttention=_ReshapeSplit,
    ),
    mistake(
        "reshape_merge_heads",
        "the heads are merged with reshape(B, T, d_model) without first transposing back to (B, T, H, head_dim)",
        CachedCausalSelfAttention=_ReshapeMerge,
    ),
    mistake(
        "scale_by_d_model",
        "the scores are divided by sqrt(d_model) instead of sqrt(head_dim)",
        CachedCausalSelfAttention=_ScaleByDModel,
    ),
]

VARIANTS = [
    variant(
        "torch_sdpa",
        "attends with torch.nn.functional.scaled_dot_product_attention and an explicit bottom-right attn_mask",
        CachedCausalSelfAttention=_TorchSDPA,
    ),
    variant(
        "fused_qkv_einsum",
        "projects q, k and v with one matmul of the stacked weights and attends with einsum and a mask from positions",
        CachedCausalSelfAttention=_FusedQKVEinsum,
    ),
    variant(
        "preallocated_cache",
        "keeps the cache in a buffer that doubles when full and returns views of its filled part",
        KVCache=_PreallocatedCache,
    ),
    variant(
        "chunk_list_cache",
        "keeps a list of chunks and concatenates them on every update",
        KVCache=_ChunkListCache,
    ),
]


# Mutants of the reference that no check can fail (graders/mutate.py), and why.
_FOUR_DIMS = "keys, values and queries are 4-D by contract, (B, H, T, D): dim 2 is dim -2"
_SWAP = "transpose swaps two dims, in either order"
EQUIVALENT = {
    "KVCache.__init__:statement:3a84df67": "values is read only once keys is set, and the first update sets both",
    "KVCache.update:constant:8494f554": _FOUR_DIMS,
    "KVCache.update:constant:9147b23a": _FOUR_DIMS,
    "KVCache.__len__:constant:520afb88": _FOUR_DIMS,
    "CachedCausalSelfAttention.__init__:constant:73e78ffa": "a bias b on the keys adds the same q . b to every "
                                                            "score of a query, which the softmax cancels",
    "CachedCausalSelfAttention.forward:args:31552601": _SWAP,
    "CachedCausalSelfAttention.forward:constant:65ecb249": "on the (B, T, H, D) view, dim -2 is dim 2",
    "CachedCausalSelfAttention.forward:constant:e7261746": _FOUR_DIMS,
    "CachedCausalSelfAttention.forward:constant:e75cebfb": _FOUR_DIMS,
    "CachedCausalSelfAttention.forward:drop:fc25ad46": "the same on the CPU; on a GPU the mask stays on the CPU and "
                                                       "the masked scores fail, which grading with --device cuda catches",
    "CachedCausalSelfAttention.forward:args:03a2b18a": _SWAP,
    "CachedCausalSelfAttention.forward:constant:5710d36d": "on the (B, H, T, D) output, dim -2 is dim 2",
}
