"""Catalogue for the beam_search kata: common mistakes and correct variants.

Most beam-search mistakes are one changed line in the same loop, so the mistakes share one
loop, `_search`, in which `bug` switches on exactly one wrong line (each marked "bug:").
"""

import heapq
import math

import torch

from reference import mistake, variant
from reference.beam_search import _check_at_least_one


def _search(next_logprobs, prompt, eos_id, beam_width, max_new_tokens, length_penalty, bug):
    if bug != "no_value_error":
        _check_at_least_one("beam_width", beam_width)
        _check_at_least_one("max_new_tokens", max_new_tokens)
    running, finished = [([], 0.0)], []
    for step in range(1, max_new_tokens + 1):
        prefixes = [prompt + tokens for tokens, _ in running]
        if bug == "one_call_per_hypothesis":  # bug: one model call per hypothesis
            logprobs = torch.cat([next_logprobs([p]) for p in prefixes])
        else:
            logprobs = next_logprobs(prefixes)
        vocab = logprobs.shape[-1]
        if bug == "sum_probabilities":  # bug: adds probabilities, not log-probabilities
            totals = torch.tensor([lp for _, lp in running], dtype=logprobs.dtype)[:, None] + logprobs.exp()
        else:
            totals = torch.tensor([lp for _, lp in running], dtype=logprobs.dtype)[:, None] + logprobs
        if bug == "topk_per_beam":  # bug: each hypothesis keeps only its own beam_width best tokens
            per_beam = totals.topk(min(beam_width, vocab), dim=-1).indices  # (n, k)
            pool = [(b, t) for b in range(len(running)) for t in per_beam[b].tolist()]
            order = sorted(pool, key=lambda bt: totals[bt].item(), reverse=True)
        else:
            order = [divmod(f, vocab) for f in totals.flatten().argsort(descending=True).tolist()]
        new_running = []
        for rank, (beam, token) in enumerate(order):
            candidate = (running[beam][0] + [token], totals[beam, token].item())
            if token == eos_id:
                if bug == "finished_lost":  # bug: eos hypotheses leave the beam and are never kept
                    continue
                if rank < beam_width or bug == "eos_any_rank":  # bug: no rank test on eos
                    finished.append(candidate)
                if bug != "finished_kept_running":  # bug: falls through, eos stays in the beam
                    continue
            new_running.append(candidate)
            if len(new_running) == beam_width:
                break
        running = new_running
        if step == max_new_tokens:
            if bug != "old_final_rule" or len(finished) < beam_width:  # bug: transformers < 4.50
                finished += running
        elif (len(finished) >= beam_width and bug != "stop_only_at_max") or not running:
            break

    def length(tokens):
        if bug == "length_counts_prompt":  # bug: len(prompt) + len(tokens)
            return len(prompt) + len(tokens)
        if bug == "length_excludes_eos":  # bug: the eos is not counted
            return len(tokens) - (tokens[-1] == eos_id)
        return len(tokens)

    if bug == "no_length_penalty":  # bug: score = logp
        scored = [(tokens, logp) for tokens, logp in finished]
    else:
        scored = [(tokens, logp / length(tokens) ** length_penalty) for tokens, logp in finished]
    if bug != "unsorted_result":  # bug: returned in the order they finished
        scored.sort(key=lambda hyp: hyp[1], reverse=True)
    if bug == "prompt_in_tokens":  # bug: returns prompt + generated tokens
        scored = [(prompt + tokens, score) for tokens, score in scored]
    return scored[:beam_width]


def _buggy(bug):
    def beam_search(next_logprobs, prompt, eos_id, beam_width, max_new_tokens, length_penalty=1.0):
        return _search(next_logprobs, prompt, eos_id, beam_width, max_new_tokens, length_penalty, bug)

    return beam_search


def _greedy_eos_excluded(next_logprobs, prompt, eos_id, max_new_tokens):
    _check_at_least_one("max_new_tokens", max_new_tokens)
    tokens = []
    for _ in range(max_new_tokens):
        token = int(next_logprobs([prompt + tokens])[0].argmax())
        if token == eos_id:
            break
        tokens.append(token)
    return tokens


def _greedy_ignores_eos(next_logprobs, prompt, eos_id, max_new_tokens):
    _check_at_least_one("max_new_tokens", max_new_tokens)
    tokens = []
    for _ in range(max_new_tokens):
        tokens.append(int(next_logprobs([prompt + tokens])[0].argmax()))
    return tokens


MISTAKES = [
    mistake("finished_kept_running",
            "a hypothesis that ended in eos stays in the beam and keeps being extended",
            beam_search=_buggy("finished_kept_running")),
    mistake("stop_only_at_max",
            "the search runs until max_new_tokens; it should stop as soon as beam_width hypotheses have finished",
            beam_search=_buggy("stop_only_at_max")),
    mistake("finished_lost",
            "hypotheses that end in eos are dropped instead of kept as finished, so only the "
            "ones still running at max_new_tokens are returned",
            beam_search=_buggy("finished_lost")),
    mistake("no_length_penalty",
            "the score is logp itself; it should be logp / len ** length_penalty",
            beam_search=_buggy("no_length_penalty")),
    mistake("length_counts_prompt",
            "the length in the length penalty counts the prompt; it should count the generated tokens only",
            beam_search=_buggy("length_counts_prompt")),
    mistake("length_excludes_eos",
            "the length in the length penalty leaves out the eos token; it should count it",
            beam_search=_buggy("length_excludes_eos")),
    mistake("topk_per_beam",
            "each hypothesis keeps only its own beam_width best tokens before the ranking, so when its "
            "eos finishes, the continuation that should refill the beam is already gone; rank all "
            "candidates of all hypotheses together",
            beam_search=_buggy("topk_per_beam")),
    mistake("sum_probabilities",
            "hypotheses are ranked by the sum of their tokens' probabilities; add log-probabilities",
            beam_search=_buggy("sum_probabilities")),
    mistake("eos_any_rank",
            "an eos candidate is accepted as finished at any rank; only ranks below beam_width may finish",
            beam_search=_buggy("eos_any_rank")),
    mistake("unsorted_result",
            "the finished hypotheses are returned in the order they finished, not best score first",
            beam_search=_buggy("unsorted_result")),
    mistake("prompt_in_tokens",
            "the returned tokens include the prompt; return the generated tokens only",
            beam_search=_buggy("prompt_in_tokens")),
    mistake("old_final_rule",
            "after the last step the running hypotheses are kept only when fewer than beam_width have "
            "finished (the rule of transformers before 4.50); they always count as finished",
            beam_search=_buggy("old_final_rule")),
    mistake("one_call_per_hypothesis",
            "the model is called once per hypothesis; call it once per step with all running prefixes",
            beam_search=_buggy("one_call_per_hypothesis")),
    mistake("no_value_error",
            "beam_width < 1 or max_new_tokens < 1 is not rejected with a ValueError",
            beam_search=_buggy("no_value_error")),
    mistake("greedy_eos_excluded",
            "greedy decoding stops at eos but leaves the eos token out of the result",
            greedy_decode=_greedy_eos_excluded),
    mistake("greedy_ignores_eos",
            "greedy decoding does not stop after emitting eos",
            greedy_decode=_greedy_ignores_eos),
]


# ---------------------------------------------------------------- variants


def _finish(finished, beam_width, length_penalty):
    scored = [(tokens, logp / len(tokens) ** length_penalty) for tokens, logp in finished]
    return sorted(scored, key=lambda hyp: -hyp[1])[:beam_width]


def _topk_flat(next_logprobs, prompt, eos_id, beam_width, max_new_tokens, length_penalty=1.0):
    # As transformers does it: torch.topk over the flattened (n * V) scores keeps 2 * beam_width
    # candidates, enough to refill the beam since each hypothesis has one eos candidate; the
    # finished pool is capped at beam_width by score after every step.
    _check_at_least_one("beam_width", beam_width)
    _check_at_least_one("max_new_tokens", max_new_tokens)
    seqs, logps = [[]], torch.zeros(1, dtype=torch.float64)
    pool = []  # (score, tokens, logp), best first, at most beam_width
    for step in range(1, max_new_tokens + 1):
        logprobs = next_logprobs([prompt + s for s in seqs]).double()  # (n, V)
        vocab = logprobs.shape[1]
        flat = (logps[:, None] + logprobs).reshape(-1)
        top = torch.topk(flat, k=min(2 * beam_width, flat.numel()))
        beam_idx, token_idx = top.indices // vocab, top.indices % vocab
        is_eos = token_idx == eos_id
        done = is_eos & (torch.arange(top.indices.numel()) < beam_width)  # rank < beam_width
        keep = (~is_eos).nonzero().flatten()[:beam_width]
        new = [(seqs[b] + [t], lp) for b, t, lp, d in zip(beam_idx.tolist(), token_idx.tolist(),
                                                         top.values.tolist(), done.tolist()) if d]
        seqs = [seqs[b] + [t] for b, t in zip(beam_idx[keep].tolist(), token_idx[keep].tolist())]
        logps = top.values[keep]
        if step == max_new_tokens:
            new += list(zip(seqs, logps.tolist()))
        count = len(pool) + len(new)
        pool += [(lp / len(s) ** length_penalty, s, lp) for s, lp in new]
        pool = sorted(pool, key=lambda e: -e[0])[:beam_width]
        if count >= beam_width or not seqs:
            break
    return [(s, score) for score, s, _ in pool]


def _heap(next_logprobs, prompt, eos_id, beam_width, max_new_tokens, length_penalty=1.0):
    # Pops candidates off a max-heap (heapq with negated logp) only as far as the walk needs.
    _check_at_least_one("beam_width", beam_width)
    _check_at_least_one("max_new_tokens", max_new_tokens)
    running, finished = [((), 0.0)], []
    for step in range(1, max_new_tokens + 1):
        rows = next_logprobs([prompt + list(g) for g, _ in running]).tolist()
        heap = [(-(lp + x), b, t) for b, ((_, lp), row) in enumerate(zip(running, rows)) for t, x in enumerate(row)]
        heapq.heapify(heap)
        new_running, rank = [], 0
        while heap and len(new_running) < beam_width:
            neg, b, t = heapq.heappop(heap)
            hyp = (running[b][0] + (t,), -neg)
            if t != eos_id:
                new_running.append(hyp)
            elif rank < beam_width:
                finished.append(hyp)
            rank += 1
        running = new_running
        if step == max_new_tokens:
            finished += running
        elif len(finished) >= beam_width or not running:
            break
    return _finish([(list(g), lp) for g, lp in finished], beam_width, length_penalty)


def _sorted_lists(next_logprobs, prompt, eos_id, beam_width, max_new_tokens, length_penalty=1.0):
    # Plain Python: candidates as (logp, tokens) tuples in a list, math.fsum over each
    # hypothesis's own token log-probabilities.
    _check_at_least_one("beam_width", beam_width)
    _check_at_least_one("max_new_tokens", max_new_tokens)
    running, finished = [([], [])], []  # (tokens, per-token log-probabilities)
    for step in range(1, max_new_tokens + 1):
        rows = next_logprobs([prompt + toks for toks, _ in running]).tolist()
        cands = [(math.fsum(lps + [x]), toks + [t], lps + [x])
                 for (toks, lps), row in zip(running, rows) for t, x in enumerate(row)]
        cands.sort(key=lambda c: c[0], reverse=True)
        eos_top = [c for c in cands[:beam_width] if c[1][-1] == eos_id]
        finished += [(toks, logp) for logp, toks, _ in eos_top]
        running = [(toks, lps) for _, toks, lps in cands if toks[-1] != eos_id][:beam_width]
        if step == max_new_tokens:
            finished += [(toks, math.fsum(lps)) for toks, lps in running]
        elif len(finished) >= beam_width or not running:
            break
    return _finish(finished, beam_width, length_penalty)


def _greedy_as_beam(next_logprobs, prompt, eos_id, max_new_tokens):
    # Greedy decoding is beam search with a single beam.
    return _sorted_lists(next_logprobs, prompt, eos_id, 1, max_new_tokens)[0][0]


def _greedy_python_max(next_logprobs, prompt, eos_id, max_new_tokens):
    _check_at_least_one("max_new_tokens", max_new_tokens)
    tokens = []
    while len(tokens) < max_new_tokens and (not tokens or tokens[-1] != eos_id):
        row = next_logprobs([prompt + tokens])[0].tolist()
        tokens.append(max(range(len(row)), key=row.__getitem__))
    return tokens


VARIANTS = [
    variant("topk_flat", "torch.topk over the flattened scores of all hypotheses, 2 * beam_width "
            "candidates per step and a finished pool capped at beam_width, as transformers does",
            beam_search=_topk_flat),
    variant("heap", "pops candidates off a heap only as far as the beam needs; greedy with max() "
            "over a Python list", beam_search=_heap, greedy_decode=_greedy_python_max),
    variant("sorted_lists", "plain Python lists of candidates sorted by logp; greedy as beam search "
            "with one beam", beam_search=_sorted_lists, greedy_decode=_greedy_as_beam),
]

# Mutants of reference/beam_search.py (kata mutate) that no input can tell from it: id -> why.
EQUIVALENT = {
    "greedy_decode:constant:2827d7a9": "greedy asks for one prefix at a time, so row [-1] of the (1, V) "
                                       "log-probabilities is row [0]",
    "beam_search:constant:9a4f7711": "next_logprobs returns (n, V) by contract: shape[1] is shape[-1]",
    "beam_search:constant:0af88dea": "a hypothesis is a (tokens, score) pair: hyp[-1] is hyp[1]",
    "beam_search:drop:9089c360": "the running log-probabilities kept in float32 instead of the model's dtype: "
                                 "their rounding (~1e-6) is far below both the tolerance and the 1e-5 gap "
                                 "between any two candidates of the checks' models",
}
