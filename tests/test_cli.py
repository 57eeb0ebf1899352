"""The `kata` command as a learner meets it: clear lines for bad input, a stable JSON schema."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graders import curriculum

KATA = str(Path(sys.executable).parent / "kata")


def kata(*args, env=None):
    return subprocess.run([KATA, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("args, phrase", [
    (["check", "no_such_kata"], "no kata named 'no_such_kata'; the katas are: attention"),
    (["check", "atention"], "no kata named 'atention'; did you mean 'attention'?"),
    (["reset"], "the following arguments are required: name"),
    (["grade", "--kata", "attention", "nope"], "no kata named 'nope'"),
    (["grade", "--solutions", "/no/such/folder"], "--solutions /no/such/folder: no such folder"),
    (["grade", "--format", "xml"], "invalid choice: 'xml'"),
    (["grade", "--bogus"], "unrecognized arguments: --bogus"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
    ([], "the following arguments are required: command"),
    (["hint"], "the following arguments are required: name"),
])
def test_bad_input_gets_one_clear_line(args, phrase):
    result = kata(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kata: ") and phrase in lines[0], result.stderr


def test_bad_seed_gets_one_clear_line(monkeypatch):
    import os

    result = kata("status", env={**os.environ, "KATA_SEED": "abc"})
    assert result.returncode == 2
    assert result.stderr.strip() == "kata: KATA_SEED must be a whole number, not 'abc'"


def test_fresh_clone_status_shows_every_kata_not_started():
    result = kata("status")
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line[:3].strip().isdigit()]
    assert [row.split()[1] for row in rows] == [k.name for k in curriculum.katas()]
    assert all("not started" in row and " 0 / " in row for row in rows)


def test_grade_json_schema_and_exit_status():
    result = kata("grade", "--kata", "attention", "--format", "json")
    assert result.returncode == 0  # failing checks are a score, not an error
    report = json.loads(result.stdout)
    assert set(report) == {"total", "max_score", "katas"}
    assert isinstance(report["total"], float) and isinstance(report["max_score"], float)
    (k,) = report["katas"]
    assert {"name", "score", "max_score", "checks"} <= set(k)
    for c in k["checks"]:
        assert {"name": str, "passed": bool, "score": float, "max_score": float, "message": str}.items() <= {
            key: type(c[key]) for key in ("name", "passed", "score", "max_score", "message")}.items()
    assert report["max_score"] == k["max_score"] == curriculum.kata("attention").max_score


def test_check_prints_one_line_per_check():
    result = kata("check", "attention", "--solutions", str(curriculum.ROOT / "reference"))
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 + len(curriculum.kata("attention").points)
    assert all("PASS" in line for line in lines[1:])


def test_hints_come_one_at_a_time(tmp_path):
    import os

    env = {**os.environ, "KATA_STATE": str(tmp_path)}
    hints = curriculum.kata("attention").hints
    shown = [kata("hint", "attention", env=env).stdout for _ in range(len(hints) + 1)]
    for i, hint in enumerate(hints):
        assert shown[i].startswith(f"Hint {i + 1}/{len(hints)}: {hint}")
    assert shown[-1].startswith(f"Hint {len(hints)}/{len(hints)}")
    everything = kata("hint", "attention", "--all", env=env).stdout
    assert all(h in everything for h in hints)


def test_a_damaged_hint_record_starts_over(tmp_path):
    import os

    (tmp_path / "hints.json").write_text("{not json")
    result = kata("hint", "attention", env={**os.environ, "KATA_STATE": str(tmp_path)})
    assert result.returncode == 0 and result.stdout.startswith("Hint 1/")
    assert json.loads((tmp_path / "hints.json").read_text()) == {"attention": 1}


def test_reset_puts_back_the_stub_and_keeps_the_learners_file(tmp_path):
    import os
    import shutil

    repo = tmp_path / "repo"
    for folder in ("katas", "graders"):
        shutil.copytree(curriculum.ROOT / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-q", "-m", "template"], check=True)
    stub = (repo / "katas" / "attention.py").read_text()
    (repo / "katas" / "attention.py").write_text("# my work\n")
    env = {**os.environ, "PYTHONPATH": str(repo), "KATA_STATE": str(repo / ".kata")}
    result = subprocess.run([sys.executable, "-m", "graders.cli", "reset", "attention"], cwd=repo, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (repo / "katas" / "attention.py").read_text() == stub
    kept = list((repo / ".kata" / "reset").glob("attention-*.py"))
    assert [p.read_text() for p in kept] == ["# my work\n"]


@pytest.mark.timeout(120)  # a watch that never prints the expected line must not hang the suite
def test_watch_reruns_the_checks_when_the_file_is_saved(tmp_path):
    import time

    from learners import reference_as_learner

    path = tmp_path / "attention.py"
    path.write_text("def softmax(x, dim=-1):\n    raise NotImplementedError('softmax')\n")
    watch = subprocess.Popen([KATA, "watch", "attention", "--solutions", str(tmp_path)],
                             stdout=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("FAIL softmax_rows" in line for line in lines):
            lines.append(watch.stdout.readline())
        time.sleep(1.1)  # a new modification time, even on file systems that keep whole seconds
        reference_as_learner(tmp_path, ["attention"])
        while not any("PASS softmax_rows" in line for line in lines):
            lines.append(watch.stdout.readline())
    finally:
        watch.kill()
    assert lines[0].startswith(f"Watching {path}")


def test_watch_also_watches_the_katas_a_kata_builds_on(tmp_path):
    from graders import cli

    assert cli._watched("causal_mask", tmp_path) == [tmp_path / "causal_mask.py", tmp_path / "attention.py"]
