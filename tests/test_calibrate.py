"""`kata calibrate`: every check's tolerance passes every correct variant and lets no mistake escape.

The calibration runs in-process (trusted code); one test drives the real CLI.
"""

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
def test_every_variant_passes_and_every_mistake_is_caught(kata):
    report = calibrate.calibrate(kata, calibrate.SEEDS)
    assert calibrate.SEEDS >= 20 and report.seeds == calibrate.SEEDS
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


def test_margins_are_thin_below_ten_and_the_suggestion_is_the_geometric_mean():
    case = Case("c", "softmax", lambda g: ())
    row = calibrate.Row(case, dict(TOL), ["float32"], 20, exact=False, variant=(0.2, "v", ""), mistake=(5.0, "m", ""))
    assert row.margins == (5.0, 5.0)
    assert row.flags() == "THIN x2"
    assert row.suggestion() == {"atol": 1e-5, "rtol": 1e-4}  # sqrt(0.2 * 5) = 1: the current one
    row.mistake = (500.0, "m", "")
    assert row.suggestion() == {"atol": 1e-4, "rtol": 1e-3}  # sqrt(0.2 * 500) = 10
    row.variant = (600.0, "v", "")
    assert row.suggestion() is None  # no tolerance separates them


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
    assert "suggested tol" in result.stdout and "attention_basic" in result.stdout
    assert "caught: each of the" in result.stdout
    bad = subprocess.run([KATA, "calibrate", "nope"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == ["kata: no kata named 'nope'; the katas are: " + ", ".join(KATAS)]
