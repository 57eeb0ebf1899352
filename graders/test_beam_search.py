"""Grader for katas/beam_search.py: each Case is one check, learner against reference.

The language models are toy tables, built here: deterministic, no downloads, and tie-free on the
checks' arguments (the gaps between the log-probabilities a search compares are >= 1e-3). Each
hand-built table sets up one situation beam search must handle; the rest of each table, and the
random models, are fixed pseudo-random rows.
"""

import math
import random

import torch

from graders.harness import Case, cases, compare

# ------------------------------------------------------------------------------------ toy models


class RandomLM:
    """next_logprobs from fixed pseudo-random rows: row(generated) = log-softmax(N(0, spread^2) logits)."""

    def __init__(self, vocab_size, seed, prompt, eos_id, *, eos_bias=0.0, spread=2.0, dtype=torch.float64):
        self.vocab_size, self.seed, self.prompt, self.eos_id = vocab_size, seed, list(prompt), eos_id
        self.eos_bias, self.spread, self.dtype = eos_bias, spread, dtype

    def __repr__(self):
        return f"{type(self).__name__}(V={self.vocab_size})"

    def generated(self, prefix):
        n = len(self.prompt)
        if list(prefix[:n]) != self.prompt:
            raise ValueError(f"the model was given the prefix {list(prefix)}, which does not start with "
                             f"the prompt {self.prompt}: pass prompt + generated tokens")
        return tuple(prefix[n:])

    def row(self, generated):
        rng = random.Random(f"RandomLM/{self.seed}/{self.vocab_size}/{generated}")  # str seeds are stable
        logits = [rng.gauss(0.0, self.spread) for _ in range(self.vocab_size)]
        logits[self.eos_id] += self.eos_bias
        weights = [math.exp(x - max(logits)) for x in logits]
        return [math.log(w / math.fsum(weights)) for w in weights]

    def __call__(self, prefixes):
        return torch.tensor([self.row(self.generated(p)) for p in prefixes], dtype=self.dtype)


class TableLM(RandomLM):
    """A hand-built model: table[generated tokens] = {token: probability}.

    A row's other tokens share what is left in unequal fixed proportions; rows not in the table are
    flat-ish pseudo-random rows in which eos is unlikely.
    """

    def __init__(self, vocab_size, prompt, eos_id, table, seed=0):
        super().__init__(vocab_size, seed, prompt, eos_id, eos_bias=-3.0, spread=0.5, dtype=torch.float32)
        self.table = table

    def row(self, generated):
        if generated not in self.table:
            return super().row(generated)
        given = self.table[generated]
        rest = [t for t in range(self.vocab_size) if t not in given]
        share = [1.0 + 0.3 * i for i in range(len(rest))]  # unequal, so that no two tokens tie
        random.Random(f"TableLM/{self.seed}/{generated}").shuffle(share)
        probs = dict(given)
        left = 1.0 - math.fsum(given.values())
        probs.update({t: left * w / math.fsum(share) for t, w in zip(rest, share)})
        return [math.log(probs[t]) for t in range(self.vocab_size)]


class CountingLM:
    """Wraps a model and records every call: the prefixes of each batch."""

    def __init__(self, model):
        self.model, self.calls = model, []

    def __call__(self, prefixes):
        self.calls.append([list(p) for p in prefixes])
        return self.model(prefixes)


# Greedy takes 1 (0.45) over 2 (0.40), but 1 has only weak continuations while 2 -> 4 is near sure.
GREEDY_TRAP = dict(vocab_size=6, prompt=[5, 1], eos_id=0, table={
    (): {1: .45, 2: .40, 0: .03}, (1,): {3: .35, 0: .05}, (2,): {4: .9}, (1, 3): {0: .9}, (2, 4): {0: .95}})

# Step 2 ranks [1, eos], [1, 5], [2, eos], [1, 4], ...: the strong [1] ends, [2, eos] (rank 2) must be
# dropped, and [1, 4] (rank 3) must refill the beam; [1, 4, eos] then finishes at step 3.
EARLY_EOS = dict(vocab_size=6, prompt=[4], eos_id=3, table={
    (): {1: .7, 2: .2, 3: .02}, (1,): {3: .5, 5: .3, 4: .15}, (2,): {3: .6, 5: .3}, (1, 5): {3: .2}, (1, 4): {3: .9}})

# Two mediocre hypotheses end at step 3, which stops the search; a long, sure one would come later.
EARLY_STOP = dict(vocab_size=6, prompt=[3], eos_id=0, table={
    (): {1: .5, 2: .4, 0: .02}, (1,): {5: .9}, (2,): {4: .9}, (1, 5): {0: .6, 3: .35}, (2, 4): {0: .5},
    (1, 5, 3): {3: .95}, (1, 5, 3, 3): {3: .95}, (1, 5, 3, 3, 3): {0: .95}})

# [eos] ends at step 1 and [1, eos] at the last step, which fills the finished set; the running
# [1, 3] still beats [eos] and must count.
LAST_STEP = dict(vocab_size=5, prompt=[1], eos_id=0, table={
    (): {1: .5, 0: .3, 2: .15}, (1,): {0: .6, 3: .3}, (2,): {4: .9}})

# Finished hypotheses of lengths 1, 2 and 4 with logp -1.0, -1.6 and -3.34: length_penalty 0 picks
# [eos], 1 picks [1, eos] (-0.8 per token), 2 picks [1, 3, 4, 4].
LENGTHS = dict(vocab_size=5, prompt=[2, 2], eos_id=0, table={
    (): {1: .45, 0: math.exp(-1.0), 2: .1}, (1,): {0: math.exp(-1.6) / .45, 3: .5},
    (1, 3): {4: .35, 0: .05, 2: .3}, (1, 3, 4): {4: .45, 0: .05, 1: .2}})


def table(spec, *rest):
    """Inputs: the model built from spec, then prompt and eos_id, then the rest of the arguments."""
    return lambda g: (TableLM(**spec), list(spec["prompt"]), spec["eos_id"], *rest)


def random_model(V, beam_width, max_new_tokens, length_penalty, eos_bias):
    def make(g):
        prompt, eos_id = [1, 2, 3], 1
        # tests/test_beam_search_models.py proves these models tie-free under the seeds they get
        model = RandomLM(V, g.seed, prompt, eos_id, eos_bias=eos_bias)
        return model, prompt, eos_id, beam_width, max_new_tokens, length_penalty
    return make


def random_hidden(V, beam_width, max_new_tokens, length_penalty, eos_bias):
    """A random model and the search's hyperparameters, all from the seed: each (low, high) range is
    drawn from, high excluded; length_penalty in steps of 0.25."""
    def make(g):
        ints = [int(g.randint(*bounds)) for bounds in (V, beam_width, max_new_tokens)]
        penalty = length_penalty[0] + 0.25 * int(g.randint(0, int(4 * (length_penalty[1] - length_penalty[0]))))
        bias = eos_bias[0] + (eos_bias[1] - eos_bias[0]) * float(g.rand(1))
        return random_model(*ints, penalty, bias)(g)
    return make


# ------------------------------------------------------------------------------------ comparisons


def show(hyps) -> str:
    try:
        return "[" + ", ".join(f"({list(t)}, {float(s):.4g})" for t, s in hyps) + "]"
    except Exception:
        return repr(hyps)[:200]


def hypotheses(actual, expected, like, tol, where):
    problem = compare(actual, expected, like, tol, where)
    return problem and f"{problem}; it returned {show(actual)}, expected {show(like)}"


def calls(actual, expected, like, tol, where):
    sizes = [len(c) for c in actual]
    if sizes != [len(c) for c in like]:
        return (f"next_logprobs was called with batches of sizes {sizes}, expected {[len(c) for c in like]}: "
                f"one call per step, with every running prefix")
    for step, (got, want) in enumerate(zip(actual, like), 1):
        if sorted(got) != sorted(want):
            return f"call {step} of next_logprobs got the prefixes {got}, expected {want} (in any order)"
    return None


def counted(m, model, *args):
    counter = CountingLM(model)
    m.beam_search(counter, *args)
    return counter.calls


def beam_vs_greedy(m, model, prompt, eos_id, max_new_tokens):
    return m.greedy_decode(model, prompt, eos_id, max_new_tokens), m.beam_search(model, prompt, eos_id, 1, max_new_tokens)[0][0]


def best(m, model, prompt, eos_id, max_new_tokens, length_penalty):
    # A beam wide enough to keep every hypothesis must find the brute-force best (the reference does:
    # every hypothesis ends up finished and the best score comes first).
    width = model.vocab_size ** max_new_tokens
    return m.beam_search(model, prompt, eos_id, width, max_new_tokens, length_penalty)[:1]


def beam(what, **kw):
    return dict(call="beam_search", upcast=False, compare=hypotheses, what=what, **kw)


test_case = cases([
    Case("greedy", "greedy_decode", table(GREEDY_TRAP, 5), upcast=False,
         what="greedy_decode(max_new_tokens=5) on a model whose most likely sequence greedy misses"),
    Case("greedy_vs_beam", inputs=table(GREEDY_TRAP, 2, 5), **beam(
         "beam_search(beam_width=2, max_new_tokens=5) on a model whose first token greedy gets wrong")),
    Case("early_eos", inputs=table(EARLY_EOS, 2, 5), **beam(
         "beam_search(beam_width=2, max_new_tokens=5) where eos ends the strongest hypothesis at step 2")),
    Case("early_stop", inputs=table(EARLY_STOP, 2, 6), **beam(
         "beam_search(beam_width=2, max_new_tokens=6) where two hypotheses finish at step 3")),
    Case("last_step", inputs=table(LAST_STEP, 2, 2), **beam(
         "beam_search(beam_width=2, max_new_tokens=2) where the finished set fills up at the last step")),
    Case("length_penalty_0", inputs=table(LENGTHS, 3, 4, 0.0), **beam(
         "beam_search(beam_width=3, max_new_tokens=4, length_penalty=0.0), hypotheses of lengths 1, 2 and 4")),
    Case("length_penalty_1", inputs=table(LENGTHS, 3, 4, 1.0), **beam(
         "beam_search(beam_width=3, max_new_tokens=4, length_penalty=1.0), hypotheses of lengths 1, 2 and 4")),
    Case("length_penalty_2", inputs=table(LENGTHS, 3, 4, 2.0), **beam(
         "beam_search(beam_width=3, max_new_tokens=4, length_penalty=2.0), hypotheses of lengths 1, 2 and 4")),
    Case("random_model", inputs=random_model(6, 3, 5, 1.0, 1.0), **beam(
         "beam_search(beam_width=3, max_new_tokens=5) on a random model with V=6")),
    Case("beam_width_1_is_greedy", beam_vs_greedy, table(EARLY_STOP, 6), upcast=False,
         what="(greedy_decode, beam_search(beam_width=1)[0] tokens): they must be the same tokens"),
    Case("wide_beam_finds_best", best, lambda g: (*random_model(4, 64, 3, 1.0, 0.0)(g)[:3], 3, 1.0), upcast=False,
         compare=hypotheses, what="beam_search with a beam wide enough to keep every hypothesis: the brute-force best first"),
    Case("batched_calls", counted, table(EARLY_EOS, 2, 5), upcast=False, compare=calls,
         what="the calls to next_logprobs that beam_search(beam_width=2, max_new_tokens=5) makes"),
    Case("calls_until_max_new_tokens", counted, random_model(5, 2, 4, 1.0, -8.0), upcast=False, compare=calls,
         what="the calls to next_logprobs that beam_search(beam_width=2, max_new_tokens=4) makes on a random model "
              "with V=5 in which eos is unlikely: no hypothesis ends before the last step"),
    Case("beam_width_0", "beam_search", table(GREEDY_TRAP, 0, 3), upcast=False, what="beam_search(beam_width=0)"),
    Case("max_new_tokens_0", "beam_search", table(GREEDY_TRAP, 2, 0), upcast=False, what="beam_search(max_new_tokens=0)"),
    Case("greedy_max_new_tokens_0", "greedy_decode", table(GREEDY_TRAP, 0), upcast=False,
         what="greedy_decode(max_new_tokens=0)"),
    Case("random_hidden", inputs=random_hidden((4, 8), (2, 4), (3, 6), (0.0, 2.0), (0.0, 1.0)), hidden=True, **beam(
         "beam_search on a random model, its V, beam_width, max_new_tokens and length_penalty drawn at random")),
    Case("random_long_hidden", inputs=random_hidden((6, 9), (3, 5), (5, 8), (1.0, 2.5), (1.0, 2.0)), hidden=True, **beam(
         "beam_search on a random model with longer hypotheses, its V, beam_width, max_new_tokens and "
         "length_penalty drawn at random")),
])
