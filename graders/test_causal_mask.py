"""Grader for katas/causal_mask.py: each Case is one check, learner against reference."""

import torch

from graders.harness import Case, cases, describe

f64 = torch.float64


# ------------------------------------------------------------------------------ causal_mask


def sizes(q_len, kv_len=None):
    return lambda g: (q_len,) if kv_len is None else (q_len, kv_len)


def hidden_sizes(g):
    q_len = 2 + g.seed % 5
    return q_len, q_len + 3 + (g.seed // 5) % 6


# A device no machine has. Asked for it, a mask must fail to be made, as torch's own factories fail;
# and while it is torch's default device, code that makes its tensors on q's device runs as before.
# (The "meta" device would tell too, but its first use imports about a second of torch.)
MISSING = "cuda:99"


def mask_on_missing_device(m):
    m.causal_mask(3, 5)  # code that cannot make a mask at all fails here, not by failing below
    try:
        mask = m.causal_mask(3, 5, device=MISSING)
    except NotImplementedError:
        raise
    except Exception:
        return "could not be made there"
    return f"was made on {mask.device}" if isinstance(mask, torch.Tensor) else f"is a {type(mask).__name__}"


def compare_missing_device(actual, expected, like, tol, where):
    if actual == like:
        return None
    return f'the mask {actual}, but this machine has no device "{MISSING}": pass device= on to the tensors you make'


BAD_CALLS = [((0,), "q_len"), ((-3, 2), "q_len"), ((0, 4), "q_len"), ((4, 2), "kv_len"), ((3, 0), "kv_len")]


def bad_calls(m):
    """What causal_mask does with each bad argument list, in words that are equal when the behaviour is."""
    seen = []
    for args, name in BAD_CALLS:
        try:
            got = m.causal_mask(*args)
        except NotImplementedError:
            raise
        except ValueError as e:
            seen.append(f"raised ValueError naming {name}" if name in str(e) else f"raised ValueError without naming {name}")
        except Exception as e:
            seen.append(f"raised {type(e).__name__}")
        else:
            seen.append(f"returned {describe(got)}")
    return tuple(seen)


def compare_bad_calls(actual, expected, like, tol, where):
    for (args, _), got, want in zip(BAD_CALLS, actual, like):
        if got != want:
            call = f"causal_mask({', '.join(map(str, args))})"
            return f"{call} should have {want}, but it {got}"
    return None


# ------------------------------------------------------------------------- causal_attention


def attention_inputs(*lead, L, S, E=8, Ev=6, dtype=torch.float32):
    def make(g):
        q, k = g.randn(*lead, L, E, dtype=dtype), g.randn(*lead, S, E, dtype=dtype)
        return q, k, g.randn(*lead, S, Ev, dtype=dtype)
    return make


def attention_case(name, inputs, **kw):
    return Case(name, "causal_attention", inputs, uses=("attention",), **kw)


def hidden_attention(g):
    L = int(g.randint(1, 7))
    return attention_inputs(2, 2, L=L, S=L + int(g.randint(0, 9)), E=12, Ev=6)(g)


def attention_under_missing_default_device(m, q, k, v):
    with torch.device(MISSING):
        return m.causal_attention(q, k, v)


def future_change(m, q, k, v):
    """For each position p of a query: how much the outputs of the queries at or before p move when
    only the keys and values after p change. Causality means: not at all."""
    L, S = q.shape[-2], k.shape[-2]
    base = m.causal_attention(q, k, v)
    moved = []
    for p in range(S - L, S - 1):
        k2, v2 = k.clone(), v.clone()
        k2[..., p + 1:, :] = -3.0 * k2[..., p + 1:, :] + 1.0
        v2[..., p + 1:, :] = 5.0 * v2[..., p + 1:, :] - 2.0
        n = p - (S - L) + 1  # queries 0 .. n - 1 sit at positions <= p
        moved.append(m.causal_attention(q, k2, v2)[..., :n, :] - base[..., :n, :])
    return tuple(moved)


test_case = cases([
    Case("mask_square", "causal_mask", sizes(5, 5)),
    Case("mask_default_kv_len", "causal_mask", sizes(4)),
    Case("mask_fewer_queries", "causal_mask", sizes(3, 7), what="causal_mask(3, 7), three new queries after four cached tokens"),
    Case("mask_one_query", "causal_mask", sizes(1, 6), what="causal_mask(1, 6), one decoding step after five cached tokens"),
    Case("mask_device", lambda m, x: m.causal_mask(3, 5, device=x.device), lambda g: (g.randn(1),),
         what="causal_mask(3, 5, device=...) on the grading device"),
    Case("mask_missing_device", mask_on_missing_device, lambda g: (), compare=compare_missing_device,
         what=f'causal_mask(3, 5, device="{MISSING}"), a device this machine does not have'),
    Case("value_error_q_len_zero", "causal_mask", sizes(0)),
    Case("value_error_q_len_negative", "causal_mask", sizes(-2, 3)),
    Case("value_error_kv_len_short", "causal_mask", sizes(5, 3)),
    Case("value_error_kv_len_zero", "causal_mask", sizes(2, 0)),
    Case("value_error_messages", bad_calls, lambda g: (), compare=compare_bad_calls,
         what="causal_mask with bad arguments (q_len < 1, kv_len < q_len)"),
    attention_case("attention_square", attention_inputs(2, L=6, S=6), what="causal_attention with L == S == 6"),
    attention_case("attention_fewer_queries", attention_inputs(2, 3, L=4, S=9, E=8, Ev=5),
                   what="causal_attention with L = 4 queries over S = 9 keys"),
    attention_case("attention_decode_one", attention_inputs(L=1, S=7, E=16, Ev=4),
                   what="causal_attention with one query over S = 7 keys"),
    attention_case("attention_float64", attention_inputs(3, L=3, S=5, E=6, Ev=7, dtype=f64),
                   what="causal_attention in float64 with L = 3, S = 5"),
    Case("attention_future_invariant", future_change, attention_inputs(2, L=4, S=8), uses=("attention",),
         what="the change of the earlier queries' outputs when only later tokens' keys and values change (must be 0)"),
    Case("attention_default_device_elsewhere", attention_under_missing_default_device, attention_inputs(2, L=3, S=5),
         uses=("attention",),
         what=f'causal_attention on the CPU while torch\'s default device is "{MISSING}", which this machine does '
              f"not have: the mask must be made on q's device"),
    Case("mask_hidden", "causal_mask", hidden_sizes, hidden=True),
    attention_case("attention_hidden", hidden_attention, hidden=True),
])
