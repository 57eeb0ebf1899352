"""`kata calibrate`: every check's tolerance passes every correct variant and lets no mistake escape.

The calibration runs in-process (trusted code); one test drives the real CLI.
"""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from graders import calibrate, curriculum
from graders.harness import Case, Outcome, seed_for

KATAS = [k.name for k in curriculum.katas()]
KATA = str(Path(sys.executable).parent / "kata")
TOL = {"atol": 1e-5, "rtol": 1e-4}


@pytest.mark.parametrize("kata", KATAS)
def test_every_variant_passes_and_every_mistake_is_caught(kata, exhaustive):
    seeds = calibrate.SEEDS if exhaustive else 1  # the grader's own seed, in both dtypes; `kata calibrate`'s depth with --all
    report = calibrate.calibrate(kata, seeds)
    assert calibrate.SEEDS >= 20 and report.seeds == seeds
    assert report.rows, f"graders/test_{kata}.py has no Case to calibrate"
    assert not report.problems()
    text = calibrate.table(report, suggest=True)
    assert all(row.case.name in text for row in report.rows)


@pytest.fixture
def config_with(tmp_path, monkeypatch):
    """Points KATA_CONFIG at a copy of the config whose attention tolerance is replaced."""
    def use(tolerance: str):
        text = curriculum.CONFIG.read_text()
        changed = re.sub(r"(\[attention\.tolerance\]\ndefault = )\{[^}\n]*\}", rf"\g<1>{tolerance}", text)
        assert changed != text, "graders/config.toml no longer has [attention.tolerance] default = {...}"
        path = tmp_path / "config.toml"
        path.write_text(changed)
        monkeypatch.setenv("KATA_CONFIG", str(path))
        curriculum.settings.cache_clear()

    yield use
    monkeypatch.undo()
    curriculum.settings.cache_clear()  # the next user reads the real config again


def test_a_huge_tolerance_lets_mistakes_escape(config_with):
    config_with("{ atol = 1e9, rtol = 1e9 }")
    report = calibrate.calibrate("attention", 3, devices=["cpu"])
    # Off by any finite amount now passes; a wrong dtype or NaN is still caught whatever the tolerance.
    assert "no_scaling" in report.escapes and "dtype_drift" not in report.escapes
    assert report.escapes["no_scaling"] == [(s, "cpu") for s in range(3)]
    assert any("mistake no_scaling passes every check" in p for p in report.problems())
    assert "ESCAPES: mistake no_scaling passes every check on seeds #0, #1, #2" in calibrate.table(report)


def test_a_zero_tolerance_fails_the_variants(config_with):
    config_with("{ atol = 0.0, rtol = 0.0 }")
    report = calibrate.calibrate("attention", 2, devices=["cpu"])
    basic = next(r for r in report.rows if r.case.name == "attention_basic")
    assert any(v.startswith("reference fails") for v in basic.variant_fails)
    assert "VARIANT FAILS" in basic.flags() and basic.margins[0] < 1
    assert any(p.startswith("attention/attention_basic: reference fails") for p in report.problems())


def row(name: str, key: str, variant: float, mistake: float | None = None, exact=False, **kw) -> calibrate.Row:
    """A check's calibration as calibrate_case would leave it: its worst variant and best caught mistake."""
    case = Case(name, "softmax", lambda g: (), tol=key)
    caught = None if mistake is None else (mistake, f"m_{name}", "seed #1, float32")
    return calibrate.Row(case, dict(TOL), ["float32"], 20, exact=exact, variant=(variant, f"v_{name}", "seed #0, float32"),
                         mistake=caught, **kw)


def test_margins_are_thin_below_ten():
    r = row("c", "default", 0.2, 5.0)
    assert r.margins == (5.0, 5.0)
    assert r.flags() == "THIN x2"
    assert row("c", "default", 0.01, 500.0).flags() == ""


def test_one_suggestion_per_tolerance_key_bounded_by_every_check_of_it():
    rows = [row("a", "default", 0.02, 500.0), row("b", "default", 0.2, 80.0), row("c", "grads", 0.001, 20.0),
            row("d", "default", 0.0, exact=True), row("e", "codes", 0.0, 3.0, numeric=False)]
    default, grads, codes = calibrate.suggest_tolerances(rows)
    assert (default.key, default.checks, default.measured) == ("default", 3, 2)
    assert default.variant[:3] == (0.2, "v_b", "b") and default.mistake[:3] == (80.0, "m_b", "b")
    assert default.margins() == (5.0, 80.0)  # the config's value: thin on the variants' side
    assert default.scale == 4 and default.margins(4) == (20.0, 20.0)  # sqrt(0.2 * 80): 20x on each side
    assert default.value == pytest.approx({"atol": 4e-5, "rtol": 4e-4})
    assert grads.scale == 1  # 1000x and 20x already: keep
    assert codes.variant is None and codes.scale is None  # verdict-only: nothing measured
    assert calibrate.suggestion_line(default) == (
        "default = { atol = 4e-05, rtol = 0.0004 }  (now { atol = 1e-05, rtol = 0.0001 })  margins 20x / 20x: "
        "worst variant 0.2 v_b (b, seed #0, float32), best caught mistake 80 m_b (b, seed #1, float32); "
        "1 check of 3 not measured (exact or verdict-only)")
    assert calibrate.suggestion_line(grads).startswith("grads = { atol = 1e-05, rtol = 0.0001 }  keep  margins 1e+03x / 20x: ")
    assert calibrate.suggestion_line(codes) == "codes: n/a: no error measured (1 check, each exact or verdict-only)"


def test_no_suggestion_leaves_under_three_times_on_either_side():
    for lo in [0.0, 1e-7, 1e-3, 0.03, 0.5, 1.0, 2.0, 7.0, 130.0]:
        for apart in [0.5, 1.0, 2.0, 5.0, 8.9, 9.0, 9.5, 10.0, 13.0, 14.0, 30.0, 1e4, math.inf]:
            hi = None if apart == math.inf else (lo * apart if lo else apart * 1e-3)
            s = calibrate.suggest_tolerances([row("a", "k", lo, hi)])[0]
            if s.scale is None:
                assert lo and apart < 10, (lo, apart)  # 10x apart always leaves 3x on each side
                line = calibrate.suggestion_line(s)
                assert line.startswith("k: none: ") and "change a check, not the tolerance" in line
            else:
                assert min(s.margins(s.scale)) >= calibrate.SAFE, (lo, apart, s.scale)
                assert s.scale == 1 or min(s.margins()) < calibrate.THIN  # a config value with room is kept
    s = calibrate.suggest_tolerances([row("a", "k", 0.2, 1.0)])[0]
    assert s.scale is None and calibrate.suggestion_line(s).startswith(
        "k: none: the best caught mistake is only 5x beyond the worst variant, and 3x each side takes 9x; ")
    assert calibrate.suggest_tolerances([row("a", "k", math.inf, 5.0)])[0].scale is None


def test_the_error_is_normalised_and_infinite_for_what_no_tolerance_passes():
    want = torch.tensor([1.0, -2.0, 0.0], dtype=torch.float64)
    bound = TOL["atol"] + TOL["rtol"] * want.abs()
    like = Outcome(want.float())

    def err(got):
        return calibrate.normalised_error(got if isinstance(got, Outcome) else Outcome(got), Outcome(want), like, TOL)

    assert err(want.float()) == pytest.approx(0.0, abs=1e-2)
    assert err((want + 0.5 * bound).float()) == pytest.approx(0.5, rel=1e-2)
    assert err((want + 3 * bound).float()) == pytest.approx(3.0, rel=1e-2)
    assert err(want) == err(want.float()[:2]) == err(torch.tensor([float("nan"), -2.0, 0.0])) == float("inf")
    assert err(Outcome(error=ValueError("no"))) == float("inf")


def test_seed_zero_is_the_graders_and_seedless_inputs_run_once():
    seeded = Case("rows", "softmax", lambda g: (g.randn(2, 3),))
    seeds = calibrate.seeds_of("attention", seeded, 20)
    assert len(set(seeds)) == 20 and seeds[0] == seed_for("attention", "rows", False)
    assert calibrate.seeds_of("attention", Case("fixed", "softmax", lambda g: (torch.ones(2, 3),)), 20) == [
        seed_for("attention", "fixed", False)]
    assert len(calibrate.seeds_of("attention", Case("by_seed", "softmax", lambda g: (g.seed % 5,)), 20)) == 20


def test_cast_goes_to_the_other_float_dtype_only():
    x32, x64, codes = torch.ones(2), torch.ones(2, dtype=torch.float64), torch.ones(2, dtype=torch.int8)
    assert calibrate.cast_target((x32, codes)) == torch.float64
    assert calibrate.cast_target((x64,)) == torch.float32
    assert calibrate.cast_target((codes,)) is None and calibrate.cast_target((x32, x64)) is None
    cast = calibrate.cast((x32, codes, torch.nn.Linear(2, 2)), torch.float64)
    assert cast[0].dtype == torch.float64 and cast[1].dtype == torch.int8 and cast[2].weight.dtype == torch.float64


def test_cli_prints_a_table_and_rejects_unknown_katas():
    result = subprocess.run([KATA, "calibrate", "attention", "--suggest"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "suggested [attention.tolerance]" in result.stdout and "\n  default = { atol = " in result.stdout
    assert "keep: the config's value, which" in result.stdout and "attention_basic" in result.stdout
    assert "caught: each of the" in result.stdout
    bad = subprocess.run([KATA, "calibrate", "nope"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["kata: no kata named 'nope'; the katas are: " + ", ".join(KATAS)]
