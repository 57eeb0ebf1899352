"""`kata grade-many`: a class graded in one batch, hostile submissions included, resumable."""

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graders import batch, curriculum, runner
from learners import reference_as_learner

REFERENCE = curriculum.ROOT / "reference"
KATA = str(Path(sys.executable).parent / "kata")
NAMES = ["attention", "layer_norm"]  # two katas keep the batch small: a hostile one, and one untouched
MARKER = "PWNED"  # what a file that must never be taken writes, if it runs

# Each hostile learner: the source of katas/attention.py. Their layer_norm is the reference's.
HOSTILE = {
    "exits": "import os\nos._exit(7)\n",
    "crashes": "import ctypes\nctypes.string_at(0)\n",
    # SIGALRM blocked: a stand-in for a long C call that no signal interrupts; only the kill stops it
    "hangs": "import signal\nsignal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})\nwhile True:\n    pass\n",
    "floods": "print('x' * 10**7)\n" + (REFERENCE / "attention.py").read_text(),
    # Takes all the memory it may, down to the last bytes, so that not even a reply fits.
    "eats_memory": ("import torch\nheap = []\nfor size in (2**30, 2**24, 2**16, 2**10, 64):\n    try:\n"
                    "        while True:\n            heap.append(torch.empty(size, dtype=torch.uint8))\n"
                    "    except RuntimeError:\n        pass\nraise MemoryError\n"),
}
EXPECTED_FLAGS = {
    "exits": "exited: attention",
    "crashes": "crashed: attention",
    "hangs": "timeout: attention",
    "floods": "ok",
    "eats_memory": "memory: attention",
    "honest": "ok",
    "no_katas": "missing: katas/",
    "partial": "ok",
}


def reference_copy(folder: Path, names=NAMES):
    reference_as_learner(folder / "katas", names)


def booby_trap(path: Path, marker: Path):
    """A Python file that would leave a marker and kill the grading if anything imported it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"import os\nopen({str(marker)!r}, 'w').close()\nos._exit(9)\n")


def short_limits(tmp: Path) -> Path:
    """The real config with short time limits, so that the hang is cut quickly."""
    text = curriculum.config_path().read_text()
    text = text.replace("check_timeout = 10", "check_timeout = 2").replace("kata_timeout = 60", "kata_timeout = 6")
    config = tmp / "config.toml"
    config.write_text(text)
    return config


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    """A class of honest and hostile learners, graded once for the tests below."""
    tmp = tmp_path_factory.mktemp("batch")
    subs = tmp / "subs"
    marker = tmp / MARKER
    for name, source in HOSTILE.items():
        reference_copy(subs / name)
        (subs / name / "katas" / "attention.py").write_text(source)
    honest = subs / "honest"
    reference_copy(honest)
    # Files outside the kata files, each of which would break the grading if it were taken.
    for trap in ["conftest.py", "graders/conftest.py", "graders/test_attention.py", "graders/harness.py",
                 "katas/__init__.py", "katas/conftest.py", "katas/curriculum.py", "reference/attention.py"]:
        booby_trap(honest / trap, marker)
    (subs / "no_katas").mkdir()
    (subs / "no_katas" / "README.md").write_text("forgot to push\n")
    reference_copy(subs / "partial", ["layer_norm"])
    (subs / ".git").mkdir()  # not a learner
    (subs / "notes.txt").write_text("not a learner either\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KATA_CONFIG", str(short_limits(tmp)))
        curriculum.settings.cache_clear()
        summary = batch.grade_batch(subs, tmp / "grades.csv", names=NAMES)
        yield tmp, subs, summary
    curriculum.settings.cache_clear()


def read_csv(path: Path) -> dict:
    with open(path, newline="") as f:
        return {r["learner"]: r for r in csv.DictReader(f)}


def structure(value):
    """The shape of a report: its keys and the types of its values, with list items compared one by one."""
    if isinstance(value, dict):
        return {k: structure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [structure(v) for v in value]
    return type(value).__name__


def test_one_row_per_learner_with_points_total_and_flag(hostile_batch):
    tmp, subs, summary = hostile_batch
    rows = read_csv(tmp / "grades.csv")
    assert list(rows) == sorted(EXPECTED_FLAGS)
    assert list(next(iter(rows.values()))) == ["learner", *NAMES, "total", "flag"]
    assert {name: r["flag"] for name, r in rows.items()} == EXPECTED_FLAGS
    full = {n: f"{curriculum.kata(n).max_score:g}" for n in NAMES}
    for name, r in rows.items():
        assert float(r["total"]) == sum(float(r[n]) for n in NAMES)
        if name in HOSTILE and name != "floods":
            assert r["attention"] == "0", name  # the hostile kata loses its points ...
            assert r["layer_norm"] == full["layer_norm"], name  # ... and nothing else
    assert rows["honest"]["total"] == rows["floods"]["total"] == f"{sum(curriculum.kata(n).max_score for n in NAMES):g}"
    assert rows["no_katas"]["total"] == "0"
    assert rows["partial"]["attention"] == "0" and rows["partial"]["layer_norm"] == full["layer_norm"]
    assert sorted(summary.graded) == list(rows) and summary.skipped == []


def test_nothing_outside_the_kata_files_is_taken(hostile_batch):
    tmp, _, _ = hostile_batch
    assert not (tmp / MARKER).exists()
    assert not list((tmp / "grades").glob(batch.STAGING + "*"))  # the staging copies are gone


def test_reports_match_kata_grade(hostile_batch):
    """Each JSON report has the schema of `kata grade --format json`; for the learners that grade
    quickly, it is exactly what grading their katas/ folder directly gives."""
    tmp, subs, _ = hostile_batch
    for name in EXPECTED_FLAGS:
        report = json.loads((tmp / "grades" / f"{name}.json").read_text())
        assert set(report) == {"total", "max_score", "katas"}
        assert [k["name"] for k in report["katas"]] == NAMES
        if name in ("honest", "partial", "no_katas", "exits"):
            direct = runner.grade(NAMES, solutions=str(subs / name / "katas"))
            assert report == direct, name
        else:
            assert structure(report) == structure(runner.grade(NAMES, solutions=str(subs / "partial" / "katas"))), name
    honest = json.loads((tmp / "grades" / "honest.json").read_text())
    assert any(c["hidden"] for k in honest["katas"] for c in k["checks"])  # hidden checks ran, and passed
    assert honest["total"] == honest["max_score"]


def test_a_rerun_skips_learners_whose_files_are_unchanged(hostile_batch):
    tmp, subs, _ = hostile_batch
    reports = sorted((tmp / "grades").glob("*.json"))
    stamps = [p.stat().st_mtime_ns for p in reports]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KATA_CONFIG", str(tmp / "config.toml"))
        curriculum.settings.cache_clear()
        summary = batch.grade_batch(subs, tmp / "grades.csv", names=NAMES)
    curriculum.settings.cache_clear()
    assert summary.graded == [] and summary.skipped == sorted(EXPECTED_FLAGS)
    assert [p.stat().st_mtime_ns for p in reports] == stamps
    assert {name: r["flag"] for name, r in read_csv(tmp / "grades.csv").items()} == EXPECTED_FLAGS


@pytest.fixture
def small_class(tmp_path):
    """Three learners on one kata: quick to grade again and again."""
    subs = tmp_path / "subs"
    for name in ("ada", "bob", "cyd"):
        reference_copy(subs / name, ["attention"])
    (subs / "bob" / "katas" / "attention.py").write_text("import os\nos._exit(1)\n")
    return subs, tmp_path / "out" / "grades.csv"


def grade_small(subs, out, **kw):
    return batch.grade_batch(subs, out, names=["attention"], **kw)


def test_force_regrades_everyone_and_a_change_regrades_one(small_class):
    subs, out = small_class
    out.parent.mkdir()
    assert sorted(grade_small(subs, out).graded) == ["ada", "bob", "cyd"]
    assert grade_small(subs, out).graded == []
    assert sorted(grade_small(subs, out, force=True).graded) == ["ada", "bob", "cyd"]
    (subs / "bob" / "katas" / "attention.py").write_text((REFERENCE / "attention.py").read_text())
    (subs / "cyd" / "unrelated.txt").write_text("not a kata file: no regrade\n")
    summary = grade_small(subs, out)
    assert summary.graded == ["bob"] and summary.skipped == ["ada", "cyd"]
    assert read_csv(out)["bob"]["flag"] == "ok"


def test_a_change_of_seed_regrades(small_class, monkeypatch):
    subs, out = small_class
    out.parent.mkdir()
    grade_small(subs, out)
    monkeypatch.setenv("KATA_SEED", "7")
    curriculum.settings.cache_clear()
    try:
        assert sorted(grade_small(subs, out).graded) == ["ada", "bob", "cyd"]
    finally:
        curriculum.settings.cache_clear()


def test_a_lost_report_is_regraded_alone(small_class):
    subs, out = small_class
    out.parent.mkdir()
    grade_small(subs, out)
    (out.parent / "grades" / "cyd.json").unlink()
    summary = grade_small(subs, out)
    assert summary.graded == ["cyd"] and summary.skipped == ["ada", "bob"]
    assert list(read_csv(out)) == ["ada", "bob", "cyd"]


def test_an_interrupted_batch_keeps_what_is_done_and_resumes(small_class, monkeypatch):
    subs, out = small_class
    out.parent.mkdir()
    save = batch.save_report
    saved = []

    def interrupted(reports, learner, report):
        if saved:
            raise KeyboardInterrupt  # Ctrl-C while the second learner's report is being written
        save(reports, learner, report)
        saved.append(learner.name)

    monkeypatch.setattr(batch, "save_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        grade_small(subs, out)
    monkeypatch.setattr(batch, "save_report", save)
    assert len(saved) == 1 and list(read_csv(out)) == saved
    assert sorted(p.name for p in (out.parent / "grades").iterdir()) == [".hashes", f"{saved[0]}.json"]
    assert not _workers_left()
    summary = grade_small(subs, out)
    assert summary.skipped == saved and sorted(summary.graded) == [n for n in ("ada", "bob", "cyd") if n not in saved]
    assert list(read_csv(out)) == ["ada", "bob", "cyd"]


def _workers_left() -> list:
    """This process's live descendants but the sandboxes' zygote, which lives as long as this process:
    the judges and sandboxes it forks must all be gone when grading returns."""
    from graders import sandbox

    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    zygote = sandbox._zygote[0].pid if sandbox._zygote else None
    left, frontier = [], [os.getpid()]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        left += [pid for pid in children if pid != zygote]
        frontier = children
    return left


def test_a_judge_that_ends_early_hands_on_the_learners_it_never_began():
    """A judge grades a kata for several learners in turn: if it ends before finishing, the learner it
    was on keeps what it got, and those after go to a new judge; a judge that failed before any
    learner (a broken grader) is not retried, and one that finished leaves nobody."""
    def left(*events):
        worker = runner._Worker(curriculum.kata("attention"), [4, 7, 9], fd=-1, control=None, deadline=0.0)
        worker.events = [{"event": "collected", "checks": []}, *events]
        return runner._untouched(worker)

    began = [{"event": "start", "submission": 0, "name": "softmax_rows"},
             {"event": "start", "submission": 1, "name": "softmax_rows"}]
    assert left(*began) == [9]
    assert left(*began, {"event": "finished", "error": "MemoryError: "}) == [9]
    assert left(*began, {"event": "finished"}) == []
    assert left({"event": "finished", "error": "ImportError: no graders"}) == []


def test_flag_words():
    def report(*messages):
        checks = [{"name": f"c{i}", "passed": not m, "message": m} for i, m in enumerate(messages)]
        return {"katas": [{"name": "lora", "checks": checks}]}

    learner = batch.Learner("x", Path("x"))
    assert batch.flag(learner, report("", "wrong value")) == "ok"
    assert batch.flag(learner, report("", "this check was running when its grading process crashed (SIGSEGV)",
                                      "not run: its grading process crashed (SIGSEGV)")) == "crashed: lora"
    assert batch.flag(learner, report("took too long and was stopped: is there an endless loop?")) == "timeout: lora"
    # the sandbox's words: the check that says why, then the ones that point at it
    assert batch.flag(learner, report("lora.py could not be imported: importing it ended its process: it exited with "
                                      "status 7: does the code call sys.exit() or os._exit()?",
                                      "not run: lora.py failed to import (see c0)")) == "exited: lora"
    assert batch.flag(learner, report("", "this check ended its process: it crashed (SIGSEGV)")) == "crashed: lora"
    assert batch.flag(learner, report("this check took too long and was stopped: is there an endless loop?",
                                      "not run: this kata's code used up its time limit (12 s) in earlier checks")) == "timeout: lora"
    assert batch.flag(learner, report("lora.py failed to import: SyntaxError: invalid syntax (lora.py, line 3)",
                                      "not run: lora.py failed to import (see c0)")) == "ok"
    assert batch.flag(learner, report("lora.py failed to import: RuntimeError: DefaultCPUAllocator: can't allocate memory",
                                      "not run: lora.py failed to import (see c0)")) == "memory: lora"
    learner.notes.append("missing: katas/")
    assert batch.flag(learner, report("not run: its grader could not run (see ...)")) == "missing: katas/; grader error: lora"


# ------------------------------------------------------------------------------------------ CLI


def kata(*args, cwd=None):
    return subprocess.run([KATA, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("make, args, phrase", [
    (None, ["grade-many", "{tmp}/nowhere", "--out", "{tmp}/g.csv"], "nowhere: no such folder"),
    ("empty", ["grade-many", "{tmp}/subs", "--out", "{tmp}/g.csv"], "holds no learner folders"),
    ("one", ["grade-many", "{tmp}/subs", "--out", "{tmp}/missing/g.csv"], "the folder {tmp}/missing does not exist"),
    ("one", ["grade-many", "{tmp}/subs", "--out", "{tmp}"], "is a folder"),
    ("one", ["grade-many", "{tmp}/subs"], "the following arguments are required: --out"),
    ("one", ["grade-many", "{tmp}/subs", "--shard", "2", "--out", "{tmp}/g.csv"], "--shard 2: give K/N"),
    ("one", ["grade-many", "{tmp}/subs", "--shard", "3/2", "--out", "{tmp}/g.csv"], "--shard 3/2: give K/N"),
    ("one", ["grade-many", "{tmp}/subs", "--shard", "0/2", "--out", "{tmp}/g.csv"], "--shard 0/2: give K/N"),
    ("one", ["grade-many", "{tmp}/subs", "--shard", "0/0", "--out", "{tmp}/g.csv"], "--shard 0/0: give K/N"),
    ("one", ["grade-many", "{tmp}/subs", "--shard", "one/two", "--out", "{tmp}/g.csv"], "--shard one/two: give K/N"),
    (None, ["grade-many", "--merge", "{tmp}/nowhere", "--out", "{tmp}/g.csv"], "--merge {tmp}/nowhere: no such folder"),
    ("one", ["grade-many", "--merge", "{tmp}/subs", "--out", "{tmp}/g.csv"], "--merge {tmp}/subs is not a shard output"),
    ("one", ["grade-many", "{tmp}/subs", "--merge", "{tmp}/subs", "--out", "{tmp}/g.csv"], "give it no SUBMISSIONS_DIR"),
    ("one", ["grade-many", "--merge", "{tmp}/subs", "--shard", "1/2", "--out", "{tmp}/g.csv"], "give it no SUBMISSIONS_DIR"),
    (None, ["grade-many", "--out", "{tmp}/g.csv"], "give SUBMISSIONS_DIR"),
])
def test_bad_input_gets_one_clear_line(tmp_path, make, args, phrase):
    if make:
        (tmp_path / "subs").mkdir()
    if make == "one":
        (tmp_path / "subs" / "ada").mkdir()
    result = kata(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kata: ") and phrase.format(tmp=tmp_path) in lines[0], result.stderr


def test_grade_many_end_to_end(tmp_path):
    subs = tmp_path / "subs"
    reference_copy(subs / "ada", [k.name for k in curriculum.katas()])
    (subs / "bob").mkdir()
    result = kata("grade-many", "subs", "--out", "grades.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2/2 learners" in result.stderr
    assert "2 graded, 0 unchanged" in result.stdout and "bob: missing: katas/" in result.stdout
    rows = read_csv(tmp_path / "grades.csv")
    names = [k.name for k in curriculum.katas()]
    assert list(rows["ada"]) == ["learner", *names, "total", "flag"]
    assert float(rows["ada"]["total"]) == sum(k.max_score for k in curriculum.katas())
    assert rows["ada"]["flag"] == "ok" and rows["bob"]["flag"] == "missing: katas/"
    bob = json.loads((tmp_path / "grades" / "bob.json").read_text())
    assert bob["total"] == 0
    for k in bob["katas"]:  # the messages name the learner's folder, not the copy that was graded
        missing = Path("subs", "bob", "katas", curriculum.kata(k["name"]).file)
        assert {c["message"] for c in k["checks"]} == {f"not started: {missing} does not exist"}
    again = kata("grade-many", "subs", "--out", "grades.csv", cwd=tmp_path)
    assert again.returncode == 0 and "0 graded, 2 unchanged" in again.stdout
    assert again.stderr == ""


# ---------------------------------------------------------------------------------------- shards

# By the hash of their names, ada and bob are in shard 1/2, cyd, dee and eve in shard 2/2.
SHARDED = {"ada": "reference", "bob": "unscaled", "cyd": "reference", "dee": "no katas", "eve": "reference"}


def files_under(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """One class graded in one run, and again as two shards merged."""
    tmp = tmp_path_factory.mktemp("sharded")
    subs = tmp / "subs"
    for name, kind in SHARDED.items():
        if kind == "no katas":
            (subs / name).mkdir(parents=True)
        else:
            reference_copy(subs / name, ["attention"])
    unscaled = subs / "bob" / "katas" / "attention.py"  # forgets to scale the scores: some checks fail
    unscaled.write_text(unscaled.read_text().replace("/ math.sqrt(q.shape[-1])", ""))
    for folder in ("whole", "shard-1", "shard-2", "merged"):
        (tmp / folder).mkdir()
    identity = batch.graders_identity(["attention"], "cpu")
    with pytest.MonkeyPatch.context() as mp:  # the same graders for all three runs, even if the checkout changes
        mp.setattr(batch, "graders_identity", lambda names, device: identity)
        batch.grade_batch(subs, tmp / "whole" / "grades.csv", names=["attention"])
        for k in (1, 2):
            batch.grade_batch(subs, tmp / f"shard-{k}" / "grades.csv", names=["attention"], shard=(k, 2))
    batch.merge_shards([tmp / "shard-1", tmp / "shard-2"], tmp / "merged" / "grades.csv")
    return tmp


def test_two_shards_merged_are_one_run(sharded):
    assert list(read_csv(sharded / "shard-1" / "grades.csv")) == ["ada", "bob"]
    assert list(read_csv(sharded / "shard-2" / "grades.csv")) == ["cyd", "dee", "eve"]
    whole, merged = sharded / "whole", sharded / "merged"
    assert (merged / "grades.csv").read_bytes() == (whole / "grades.csv").read_bytes()
    assert files_under(merged / "grades") == files_under(whole / "grades")
    rows = read_csv(whole / "grades.csv")
    full = f"{curriculum.kata('attention').max_score:g}"
    assert {name: r["total"] for name, r in rows.items() if name != "bob"} == {"ada": full, "cyd": full, "dee": "0", "eve": full}
    assert 0 < float(rows["bob"]["total"]) < float(full) and rows["dee"]["flag"] == "missing: katas/"


def test_a_learners_shard_does_not_depend_on_the_other_folders(tmp_path):
    names = [f"learner-{i}" for i in range(30)]
    for name in names:
        (tmp_path / "all" / name).mkdir(parents=True)
    for name in names[::3]:  # what a machine whose other clones failed holds
        (tmp_path / "some" / name).mkdir(parents=True)

    def shard(folder, k):
        return [learner.name for learner in batch.find_learners(tmp_path / folder, tmp_path / "grades", ["attention"], (k, 3))]

    everyone = [shard("all", k) for k in (1, 2, 3)]
    assert sorted(sum(everyone, [])) == sorted(names) and all(everyone)  # each learner in one shard
    for k, learners in enumerate(everyone, 1):
        assert shard("some", k) == [name for name in learners if name in names[::3]]


def test_merge_from_the_command_line(sharded):
    result = kata("grade-many", "--merge", "shard-1", "shard-2", "--out", "cli.csv", cwd=sharded)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "5 learners from 2 shards" in result.stdout and "dee: missing: katas/" in result.stdout
    assert (sharded / "cli.csv").read_bytes() == (sharded / "whole" / "grades.csv").read_bytes()
    assert files_under(sharded / "cli") == files_under(sharded / "whole" / "grades")


def test_an_empty_shard_from_the_command_line(tmp_path):
    (tmp_path / "subs" / "ada").mkdir(parents=True)  # ada is in shard 1/2: shard 2/2 has nobody
    result = kata("grade-many", "subs", "--shard", "2/2", "--out", "grades.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("shard 2/2: 0 learners: 0 graded")
    assert read_csv(tmp_path / "grades.csv") == {}
    assert json.loads((tmp_path / "grades" / batch.SHARD).read_text())["shard"] == "2/2"


def merge_error(*folders, out):
    result = kata("grade-many", "--merge", *map(str, folders), "--out", str(out))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and result.stdout == "" and len(lines) == 1 and lines[0].startswith("kata: "), result.stderr
    return lines[0]


def test_a_learner_in_two_shards_is_an_error_naming_them(sharded, tmp_path):
    again = tmp_path / "again"
    shutil.copytree(sharded / "shard-1", again)
    line = merge_error(sharded / "shard-1", again, sharded / "shard-2", out=tmp_path / "g.csv")
    assert line == f"kata: graded in more than one shard: ada (in {sharded / 'shard-1'} and {again}); " \
                   f"bob (in {sharded / 'shard-1'} and {again})"
    assert not (tmp_path / "g.csv").exists()


def test_merge_refuses_what_is_not_one_whole_class(sharded, tmp_path):
    one, two = sharded / "shard-1", sharded / "shard-2"
    assert "shard 2/2 missing; merge all 2 shards" in merge_error(one, out=tmp_path / "g.csv")
    assert "would overwrite a shard's own output" in merge_error(one, two, out=one / "grades.csv")
    (tmp_path / "subs" / "ada").mkdir(parents=True)  # ada is in shard 3/3: shard 1/3 is empty, and quick
    (tmp_path / "thirds").mkdir()
    batch.grade_batch(tmp_path / "subs", tmp_path / "thirds" / "grades.csv", names=["attention"], shard=(1, 3))
    assert f"{one} is shard 1/2 but {tmp_path / 'thirds'} is shard 1/3" in merge_error(one, tmp_path / "thirds", out=tmp_path / "g.csv")
    (tmp_path / "seed7").mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KATA_SEED", "7")
        curriculum.settings.cache_clear()
        batch.grade_batch(tmp_path / "subs", tmp_path / "seed7" / "grades.csv", names=["attention"], shard=(1, 2))
    curriculum.settings.cache_clear()
    assert "were graded with different graders, config, seed" in merge_error(tmp_path / "seed7", two, out=tmp_path / "g.csv")
    assert not (tmp_path / "g.csv").exists()


def test_a_shard_interrupted_is_not_a_shard_output(sharded, tmp_path, monkeypatch):
    shard = tmp_path / "shard-1"
    shutil.copytree(sharded / "shard-1", shard)

    def interrupted(reports, learner, report):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "save_report", interrupted)
    with pytest.raises(KeyboardInterrupt):
        batch.grade_batch(sharded / "subs", shard / "grades.csv", names=["attention"], shard=(1, 2), force=True)
    assert "is not a shard output" in merge_error(shard, sharded / "shard-2", out=tmp_path / "g.csv")


def test_uncommitted_graders_are_found(tmp_path):
    """grade-many refuses to grade with graders that differ from a commit (unless --allow-modified)."""
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "graders").mkdir()
    (tmp_path / "graders" / "config.toml").write_text("seed = 1\n")
    (tmp_path / "notes.txt").write_text("not a grader\n")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    assert batch.modified_graders(tmp_path) == ["graders/"]
    git("add", "graders")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "graders")
    assert batch.modified_graders(tmp_path) == []
    (tmp_path / "graders" / "config.toml").write_text("seed = 2\n")
    assert batch.modified_graders(tmp_path) == ["graders/config.toml"]
    assert batch.modified_graders(tmp_path / "graders") == []  # not a checkout: nothing to compare with


def test_an_unreadable_learner_folder_is_flagged(tmp_path, monkeypatch):
    learner = batch.Learner("locked", tmp_path)
    (tmp_path / "katas").mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(batch, "_collect", refuse)
    flagged = batch._collect_or_flag(learner, ["attention"])
    assert flagged.files == {} and flagged.notes == ["unreadable: Permission denied"]
