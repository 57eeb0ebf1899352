"""The judge's cache of the reference's and the mistakes' outcomes: a later run reads what an earlier
one computed, gives the same reports, and any change to the code, the seed or the device names
another file."""

import shutil

import pytest

from graders import curriculum, harness, runner, wire
from learners import reference_as_learner


SEED = 4242424242


@pytest.fixture
def seed(monkeypatch):
    """A seed of this test's own, so that its cache files are no other test's: attention's file."""
    monkeypatch.setenv("KATA_SEED", str(SEED))
    curriculum.settings.cache_clear()
    paths = [harness._cache_file(kata, "cpu", SEED) for kata in ("attention", "causal_mask")]
    for path in paths:
        path.unlink(missing_ok=True)
    yield paths[0]
    for path in paths:
        path.unlink(missing_ok=True)
    curriculum.settings.cache_clear()


def test_a_later_run_gives_the_same_reports_from_the_cache(tmp_path, seed):
    folder = reference_as_learner(tmp_path / "katas", ["attention"])
    cold = runner.grade(["attention"], solutions=folder)
    assert seed.is_file()
    assert runner.grade(["attention"], solutions=folder) == cold
    mistaken = runner.grade(["attention"], entry="no_scaling")
    assert "Looks like a common mistake: the scores are not divided by sqrt(E)" in str(mistaken)
    stored = wire.decode_plain(seed.read_bytes())
    assert any(m == "no_scaling" for m, *_ in stored["mistakes"])  # its outcomes were kept too
    assert runner.grade(["attention"], entry="no_scaling") == mistaken


def test_a_mistake_computed_now_is_named_beside_outcomes_from_the_cache(tmp_path, seed):
    """The reference's outcomes read back, the mistakes' computed in this run: diagnosis still agrees."""
    runner.grade(["causal_mask"], solutions=reference_as_learner(tmp_path / "katas", ["attention", "causal_mask"]))
    stored = wire.decode_plain(harness._cache_file("causal_mask", "cpu", SEED).read_bytes())
    assert stored["mistakes"] == [] and stored["references"]
    report = runner.grade(["causal_mask"], entry="top_left_aligned")
    assert "Looks like a common mistake: the mask is a plain tril()" in str(report)


def test_the_judge_reads_the_cache(tmp_path, seed):
    """An outcome changed in the file changes the verdict: the judge took it from there."""
    folder = reference_as_learner(tmp_path / "katas", ["attention"])
    runner.grade(["attention"], solutions=folder)
    stored = wire.decode_plain(seed.read_bytes())
    like, expected = stored["references"]["softmax_rows"]
    stored["references"]["softmax_rows"] = [like, expected + 1]
    seed.write_bytes(wire.encode(stored))
    checks = {c["name"]: c for c in runner.grade(["attention"], solutions=folder)["katas"][0]["checks"]}
    assert not checks["softmax_rows"]["passed"] and "entries are off" in checks["softmax_rows"]["message"]
    assert all(c["passed"] for name, c in checks.items() if name != "softmax_rows")


def test_a_damaged_cache_is_computed_again(tmp_path, seed):
    folder = reference_as_learner(tmp_path / "katas", ["attention"])
    seed.parent.mkdir(parents=True, exist_ok=True)
    seed.write_bytes(b"\x80\x05not a frame")
    report = runner.grade(["attention"], solutions=folder)
    assert report["total"] == report["max_score"]
    assert "softmax_rows" in wire.decode_plain(seed.read_bytes())["references"]


def test_the_cache_file_is_named_by_the_code_the_seed_and_the_device(tmp_path, monkeypatch):
    for folder in ("graders", "reference"):
        (tmp_path / folder).mkdir()
        for path in (curriculum.ROOT / folder).glob("*.py"):
            shutil.copy(path, tmp_path / folder)
    monkeypatch.setattr(curriculum, "ROOT", tmp_path)

    def name(*key):
        monkeypatch.setattr(harness, "_GRADERS_DIGEST", harness._digest(tmp_path / "graders"))  # as a zygote reads it
        harness._cache_file.cache_clear()
        return harness._cache_file(*key).name

    first = name("attention", "cpu", 0)
    assert first.startswith("attention-")
    assert name("attention", "cpu", 1) != first and name("attention", "cuda", 0) != first
    for edited in ("reference/layer_norm.py", "graders/harness.py", "graders/test_attention.py"):
        path = tmp_path / edited
        original = path.read_text()
        path.write_text(original + "\n# an edit\n")
        assert name("attention", "cpu", 0) != first, edited
        path.write_text(original)
    assert name("attention", "cpu", 0) == first
    harness._cache_file.cache_clear()


def test_only_values_are_kept_not_errors_that_may_be_a_runs_limits():
    import torch

    try:
        torch.empty(2**62, dtype=torch.uint8)  # the CPU allocator's RuntimeError, not a MemoryError
    except RuntimeError as e:
        allocator = e
    for error in (MemoryError(), allocator, RecursionError(), ValueError("q_len must be >= 1")):
        assert not harness._lasting(harness.Outcome(error=error))
    assert harness._lasting(harness.Outcome(torch.zeros(2)))

