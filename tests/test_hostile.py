"""The hostile corpus: tests/hostile/*.py, one kata file per attack on the verdict, each graded in
every setting where it applies, beside honest peers. Each must score 0 on its kata and leave the
instructor's files, the peers' scores, the platform's files and the report intact, show no secret, and
leave no process behind. (The Classroom workflow, run as written, is in test_platforms.py.)

The corpus stands for confined grading: on a machine without Landlock these tests are skipped.
"""

import csv
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from graders import batch, curriculum, harness, runner, sandbox
from learners import reference_as_learner

HOSTILE = sorted(p.stem for p in (Path(__file__).parent / "hostile").glob("*.py"))
SEED = "8675309123"  # a seed no report can show by chance
TOKEN = "ghs_kataHostileCorpusSecretToken0123456789"

# What each attack's feedback shows when the boundary holds: the attack ran and the system refused it
# (not a failure for some other reason).
EVIDENCE = {
    "daemon": "process creation: ['PermissionError', 'PermissionError', 'PermissionError']",
    "environment": "'/proc/self/environ': 'PermissionError'",
    "fill_disk": "PermissionError after 0 files",
    "forge_outputs": "'GITHUB_OUTPUT=None', 'GITHUB_ENV=None', 'GITHUB_PATH=None'",
    "forge_pipe": "could not be imported",
    "forge_reply": "sent the grader something that is not its reply",
    "network": "network: ['PermissionError', 'PermissionError', 'PermissionError']",
    "patch_judge": "your code replaced",
    "peers": "'/proc: PermissionError', 'kill -1: PermissionError'",
    "read_answers": "{'attention.py': 'PermissionError', 'config.toml': 'PermissionError', 'cache': 'PermissionError'",
    "rewrite_graders": "rewriting the graders: ['PermissionError', 'PermissionError'",
    "steal_memory": "entries are off",
}

pytestmark = pytest.mark.skipif(sandbox.confinement() is not None, reason=str(sandbox.confinement()))


def tree_digest(*folders: Path) -> str:
    """Every file beneath the folders, names and bytes."""
    h = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                h.update(str(path).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def daemons() -> list:
    """Processes a hostile kata tried to leave behind (their command lines carry a marker)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and b"kata-hostile-daemon" in (entry / "cmdline").read_bytes():
                found.append(entry.name)
        except OSError:
            pass
    return found


@pytest.fixture
def judge_secrets(monkeypatch, tmp_path):
    """The judge's environment as a platform gives it: a token, a seed, the Actions output files."""
    files = {var: tmp_path / var.lower() for var in ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH")}
    for var, path in files.items():
        path.write_text("")
        monkeypatch.setenv(var, str(path))
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("KATA_HIDDEN_TOKEN", TOKEN)
    monkeypatch.setenv("KATA_SEED", SEED)
    curriculum.settings.cache_clear()
    harness.CACHE.mkdir(parents=True, exist_ok=True)  # the reference's outcomes, as an earlier run leaves them
    instructor = tree_digest(curriculum.GRADERS, curriculum.ROOT / "reference", curriculum.STUBS)
    yield files
    curriculum.settings.cache_clear()
    assert all(path.read_text() == "" for path in files.values())
    assert tree_digest(curriculum.GRADERS, curriculum.ROOT / "reference", curriculum.STUBS) == instructor
    assert not daemons()


def shows_no_secret(report: dict):
    text = json.dumps(report)
    assert TOKEN not in text and SEED not in text
    assert "seed =" not in text and "[attention.points]" not in text


def test_every_attack_has_its_evidence():
    assert sorted(EVIDENCE) == HOSTILE


@pytest.mark.parametrize("name", HOSTILE)
def test_kata_grade(tmp_path, judge_secrets, name):
    folder = tmp_path / "solutions"
    folder.mkdir()
    shutil.copy(Path(__file__).parent / "hostile" / f"{name}.py", folder / "attention.py")
    report = runner.grade(["attention"], solutions=folder)
    assert report["katas"][0]["score"] == 0, report
    assert EVIDENCE[name] in json.dumps(report)
    shows_no_secret(report)
    assert sorted(p.name for p in folder.iterdir()) == ["attention.py"]  # nothing written beside it


def test_grade_many_beside_honest_peers(tmp_path, judge_secrets):
    submissions = tmp_path / "class"
    for name in HOSTILE:
        katas = submissions / name / "katas"
        katas.mkdir(parents=True)
        shutil.copy(Path(__file__).parent / "hostile" / f"{name}.py", katas / "attention.py")
    honest = ["honest_a", "honest_z"]  # sorted before and after every hostile learner
    for name in honest:
        reference_as_learner(submissions / name / "katas", ["attention"])
    learners = tree_digest(submissions)
    out = tmp_path / "grades.csv"
    summary = batch.grade_batch(submissions, out, names=["attention"])
    assert sorted(summary.graded) == sorted(HOSTILE + honest)
    assert tree_digest(submissions) == learners
    rows = {r["learner"]: r for r in csv.DictReader(out.open())}
    maximum = curriculum.kata("attention").max_score
    for name in honest:
        assert float(rows[name]["attention"]) == maximum and rows[name]["flag"] == "ok"
    for name in HOSTILE:
        assert float(rows[name]["attention"]) == 0, name
    for report in (tmp_path / "grades").glob("*.json"):
        shows_no_secret(json.loads(report.read_text()))
    assert {r["learner"]: r for r in csv.DictReader(out.open())} == rows  # nothing rewrote it afterwards
