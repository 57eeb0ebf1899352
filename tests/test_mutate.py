"""`kata mutate`: every mutant of every kata's reference is killed by some check or recorded as
equivalent, and every recorded equivalent agrees with the reference on many seeds and dtypes."""

import subprocess
import sys
from pathlib import Path

import pytest

from graders import curriculum, mutate

KATAS = [k.name for k in curriculum.katas()]
KATA = str(Path(sys.executable).parent / "kata")
SEEDS = 8  # per check, each in two dtypes: a recorded equivalent runs hundreds of times per kata

SOURCE = '''\
import torch


def f(x, y, eps=1e-5, *, device=None):
    s = x.sum(dim=-1, keepdim=True) / 2
    if s.shape[0] < 3:
        return torch.round(x / s).clamp(0, 3).to(torch.int8)
    return torch.arange(3, device=device).masked_fill(x > 0, float("-inf")), y.T.detach(), y.transpose(1, 1)


def g(n):
    total = 0

    def add():
        nonlocal total
        total += n

    add()
    return total
'''


def added_lines(mutants) -> set:
    return {line[1:].strip() for m in mutants for line in m.diff.splitlines() if line.startswith("+")}


def test_each_operator_makes_its_mutants():
    found = mutate.mutants("attention", SOURCE)
    added = added_lines(found)
    for line in [
        "s = x.sum(dim=-1, keepdim=True) * 2",  # arith
        "s = x.sum(dim=-1, keepdim=True) // 2",  # floordiv
        "if s.shape[0] <= 3:", "if s.shape[0] >= 3:",  # compare: the boundary and the negation
        "s = x.sum(dim=-1, keepdim=True) / 3", "if s.shape[0] < -3:", "if s.shape[-1] < 3:",  # constant
        "def f(x, y, eps=0.0, *, device=None):", "def f(x, y, eps=-1e-05, *, device=None):",  # default
        "s = x.sum() / 2", "s = x.sum(dim=-1) / 2", "s = x.sum(dim=-1, keepdim=False) / 2",  # reduction
        "return (torch.arange(3).masked_fill(x > 0, float('-inf')), y.T.detach(), y.transpose(1, 1))",  # drop device=
        "return (torch.arange(3, device=device).masked_fill(x > 0, -1000000000.0), y.T.detach(), y.transpose(1, 1))",
        "return (torch.arange(3, device=device).masked_fill(x > 0, float('inf')), y.T.detach(), y.transpose(1, 1))",
        "return (torch.arange(3, device=device).masked_fill(x > 0, float('-inf')), y.detach(), y.transpose(1, 1))",
        "return (torch.arange(3, device=device).masked_fill(x > 0, float('-inf')), y.T, y.transpose(1, 1))",
        "return (torch.arange(3, device=device).masked_fill(x > 0, float('-inf')), y.T.detach(), y)",
        "return torch.round(x / s).clamp(0, 3)",  # drop a cast
        "return torch.round(x / s).to(torch.int8).clamp(0, 3)", "return torch.round((x / s).clamp(0, 3)).to(torch.int8)",  # reorder
        "return torch.round(x / s).clamp(3, 0).to(torch.int8)",  # args
        "pass",  # the only statement of the if removed
    ]:
        assert line in added, line
    removed = [m.diff for m in found if m.operator == "statement"]
    assert any("-    s = x.sum(dim=-1, keepdim=True) / 2" in d for d in removed)
    assert len({m.id for m in found}) == len(found)
    for m in found:
        compile(m.source, m.id, "exec")
    # Removing `total = 0` leaves `nonlocal total` without a binding, which does not compile, and
    # transpose(1, 1) with its arguments swapped reads the same as the reference: both are left out.
    assert not any("-    total = 0" in d for d in removed) and any("-    add()" in d for d in removed)
    assert not [m for m in mutate.mutants("attention", "def k(y):\n    return y.transpose(1, 1)\n") if m.operator == "args"]


def test_ids_do_not_change_when_unrelated_code_moves():
    moved = SOURCE.replace("import torch\n", "import torch\n\nLIMIT = 7\n\n\ndef h(a):\n    return a + LIMIT\n", 1)
    before = {m.id for m in mutate.mutants("attention", SOURCE)}
    after = {m.id for m in mutate.mutants("attention", moved)}
    assert before < after and all(i.startswith(("h:", "<module>:")) for i in after - before)
    changed = SOURCE.replace("total += n", "total += 2 * n")
    assert {i for i in before if i.startswith("f:")} <= {m.id for m in mutate.mutants("attention", changed)}


def test_the_screen_kills_only_what_the_runner_kills():
    """Mutants settled in-process (the screen) are ones the runner fails too: the screen saves time,
    it does not decide. causal_mask builds on attention and raises ValueErrors: both paths are used."""
    found = mutate.mutants("causal_mask")
    with mutate.one_thread():
        screen = mutate._Screen("causal_mask", (mutate.REFERENCE / "causal_mask.py").read_text())
        killed = [m for m in found if screen.kills(m)]
    assert len(killed) > len(found) / 2
    assert mutate.full_marks("causal_mask", killed) == []


@pytest.mark.parametrize("kata", KATAS)
def test_every_mutant_is_killed_or_recorded_as_equivalent(kata):
    result = mutate.grade(kata)
    assert result.mutants
    assert not (result.survivors or result.wrongly_recorded or result.stale), mutate.report(result)


@pytest.mark.slow
@pytest.mark.parametrize("kata", [k for k in KATAS if mutate.recorded(k)])
def test_recorded_equivalents_agree_with_the_reference_on_many_seeds_and_dtypes(kata):
    """Each check's inputs under many seeds (which vary the shapes and the hidden checks'
    hyperparameters), in float32 and float64 and on CUDA where there is one, compared by the check's
    own comparison: a recorded equivalent must pass them all, as a correct variant does."""
    records = mutate.recorded(kata)
    assert all(len(reason) > 20 for reason in records.values()), "say why the mutant cannot differ from the reference"
    existing = {m.id for m in mutate.mutants(kata)}
    assert not mutate.disagreements(kata, [i for i in records if i in existing], SEEDS)


def test_cli_reports_the_score_and_rejects_unknown_katas():
    result = subprocess.run([KATA, "mutate", "attention"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    n = len(mutate.mutants("attention"))
    equivalent = len(mutate.recorded("attention"))
    assert (f"(attention): {n} mutants, {n - equivalent} killed, {equivalent} recorded equivalent, 0 surviving; "
            f"mutation score {n - equivalent}/{n}") in result.stdout
    bad = subprocess.run([KATA, "mutate", "nope"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stdout == "" and "no kata named 'nope'" in bad.stderr
