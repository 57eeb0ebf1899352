"""The beam search grader's random models are tie-free, so that any correct tie-breaking passes.

This proof lives here rather than in the grader: it walks the ranking itself, which would hand the
learners a beam search if it shipped with the student template.
"""

import math

import pytest

from graders import curriculum
from graders.harness import Gen, kata_cases, seed_for
from graders.test_beam_search import RandomLM

MARGIN = 1e-3  # far above float32 rounding of the scores
FLOAT32_SAFE = 1e-5  # still above float32 rounding of a sum of a few log-probabilities (~1e-6)


def ranking_margin(model, prompt, eos_id, beam_width, max_new_tokens, length_penalty=1.0):
    """The smallest gap between two values beam search orders (candidates, then final scores)."""
    gaps, running, finished = [], [((), 0.0)], []
    for step in range(1, max_new_tokens + 1):
        rows = model([list(prompt) + list(g) for g, _ in running]).double().tolist()
        cands = sorted(((lp + x, g + (t,)) for (g, lp), row in zip(running, rows) for t, x in enumerate(row)),
                       reverse=True)
        new, last = [], len(cands) - 1
        for rank, (lp, g) in enumerate(cands):
            if g[-1] != eos_id:
                new.append((g, lp))
            elif rank < beam_width:
                finished.append((g, lp))
            if len(new) == beam_width:
                last = rank
                break
        gaps += [a[0] - b[0] for a, b in zip(cands[: last + 1], cands[1: last + 2])]
        running = new
        if step == max_new_tokens:
            finished += running
        elif len(finished) >= beam_width or not running:
            break
    scores = sorted((lp / len(g) ** length_penalty for g, lp in finished), reverse=True)
    return min(gaps + [a - b for a, b in zip(scores, scores[1:])], default=math.inf)


def searches(seed_of):
    """(case name, margin) for every check that runs beam search on a RandomLM."""
    for case in kata_cases("beam_search"):
        args = case.inputs(Gen(seed_of(case)))
        if not isinstance(args[0], RandomLM) or type(args[0]) is not RandomLM:
            continue
        model, prompt, eos_id, *rest = args
        if len(rest) == 2:  # the wide beam: every hypothesis kept
            rest = [model.vocab_size ** rest[0], *rest]
        yield case.name, ranking_margin(model, prompt, eos_id, *rest)


def test_models_under_the_configured_seed_are_tie_free():
    margins = dict(searches(lambda c: seed_for("beam_search", c.name, c.hidden)))
    assert len(margins) >= 4 and min(margins.values()) > MARGIN, margins


@pytest.mark.parametrize("seed", range(1, 21))
def test_hidden_models_stay_tie_free_under_other_seeds(monkeypatch, seed):
    monkeypatch.setenv("KATA_SEED", str(seed))
    curriculum.settings.cache_clear()
    try:
        margins = dict(searches(lambda c: seed_for("beam_search", c.name, c.hidden)))
    finally:
        curriculum.settings.cache_clear()
    assert min(margins.values()) > FLOAT32_SAFE, margins
