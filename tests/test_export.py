"""The student template, the Classroom workflow, the Gradescope export and the platforms' formats.

The template must grade every public check exactly as this repository does, while holding no line
of reference code. (tests/test_platforms.py runs the exported workflow and autograder as the platforms
run them.)
"""

import base64
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from graders import curriculum, export, formats, harness
from learners import reference_as_learner

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = curriculum.ROOT
KATAS = [k.name for k in curriculum.katas()]
PIN = Path(__file__).parent / "data" / "verdicts.json"
BIN = Path(sys.executable).parent

# Run in a checkout (cwd): the verdict of every public check for the stubs, the reference and every
# catalogued mistake, as {kata: {submission: {check: passed}}}.
VERDICTS = """
import importlib, json, sys
from graders import curriculum, runner
out = {}
for kata in [k.name for k in curriculum.katas()]:
    mistakes = [m.name for m in importlib.import_module(f"reference.{kata}_catalogue").MISTAKES]
    names = ["stub", "reference", *mistakes]
    reports = runner.grade_many([None, sys.argv[1]] + [None] * len(mistakes), [kata], entries=[None, None, *mistakes])
    out[kata] = {name: {c["name"]: c["passed"] for c in r["katas"][0]["checks"]} for name, r in zip(names, reports)}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return export.export_template(tmp_path_factory.mktemp("export") / "template")


def run_in(folder, *args, env=None):
    """A command with `folder`'s graders first on the path, as if installed from there."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}
    return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=True)


@pytest.mark.slow
def test_template_gives_the_same_verdict_on_every_public_check(template, tmp_path):
    reference = reference_as_learner(tmp_path / "solutions")
    ours = json.loads(PIN.read_text())  # this repository's verdicts, which tests/test_katas.py holds to the pin
    theirs = json.loads(run_in(template, sys.executable, "-c", VERDICTS, str(reference)).stdout)
    hidden = 0
    for kata in KATAS:
        assert set(theirs[kata]) <= set(ours[kata]), kata
        for submission, public in theirs[kata].items():
            checks = ours[kata][submission]
            hidden += len(set(checks) - set(public))
            assert public == {name: checks[name] for name in public}, (kata, submission)
        assert theirs[kata]["reference"] and all(theirs[kata]["reference"].values())
    assert hidden > 0  # the hidden checks stayed behind


def code_lines(text: str) -> list:
    """The lines that carry code: stripped, without blanks, comments, imports and docstring quotes."""
    lines = (line.strip() for line in text.splitlines())
    return [c for c in lines if c and not c.startswith(("#", "import ", "from ", '"""'))]


def test_template_holds_no_reference_code(template):
    """No long line of a reference solution, and no two of its lines in a row, is in the template
    (the API and the hints are shared by design)."""
    files = [p for p in template.rglob("*") if p.is_file()]
    assert not [p for p in files if "reference" in p.relative_to(template).parts or "catalogue" in p.name]
    exported = "\n".join(code_lines("\n".join(p.read_text(errors="ignore") for p in files if p.suffix != ".pt")))
    lessons = "\n".join((ROOT / "katas" / f"{k}.py").read_text() for k in KATAS)
    lessons += (ROOT / "katas" / "curriculum.toml").read_text()
    for kata in KATAS:
        lines = [c for c in code_lines((ROOT / "reference" / f"{kata}.py").read_text()) if c not in lessons]
        for line in lines:
            assert len(line) < 45 or line not in exported, f"{kata}: {line}"
        for pair in zip(lines, lines[1:]):
            assert "\n".join(pair) not in exported, f"{kata}: {pair}"


def test_snapshots_are_plain_data(template):
    for kata in KATAS:
        torch.load(template / "graders" / "snapshots" / f"{kata}.pt", weights_only=True)


def test_template_config_keeps_the_seed_and_hidden_checks_here(template):
    text = (template / "graders" / "config.toml").read_text()
    assert "seed" not in text
    hidden = [c.name for k in KATAS for c in importlib.import_module(f"graders.test_{k}").test_case.cases if c.hidden]
    assert hidden and not any(f"\n{name} = " in text for name in hidden)


def test_export_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "x").write_text("mine")
    result = subprocess.run([BIN / "kata", "export-template", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"kata: {tmp_path} already exists and is not an empty folder; name a new one"


def workflow(template) -> dict:
    return yaml.safe_load((template / ".github" / "workflows" / "classroom.yml").read_text())


def test_workflow_has_classrooms_shape(template):
    flow = workflow(template)
    assert set(flow[True]) == {"push", "workflow_dispatch", "repository_dispatch"}  # YAML reads `on` as True
    assert flow["permissions"] == {"contents": "read", "actions": "read"}
    (job,) = flow["jobs"].values()
    assert job["if"] == "github.actor != 'github-classroom[bot]'"
    ids = [s["id"] for s in job["steps"] if "id" in s]
    assert ids == [export.step_id(k) for k in KATAS] and all(i.isalnum() for i in ids)
    reporter = job["steps"][-1]
    assert reporter["uses"] == "classroom-resources/autograding-grading-reporter@v1"
    assert reporter["with"]["runners"] == ",".join(ids)
    assert reporter["env"] == {f"{i.upper()}_RESULTS": f"${{{{ steps.{i}.outputs.result }}}}" for i in ids}


def actionlint() -> list | None:
    if shutil.which("actionlint"):
        return ["actionlint"]
    wasm = ROOT / ".ci" / "node" / "node_modules" / "@tktco" / "node-actionlint" / "bin" / "node-actionlint.js"
    if shutil.which("node") and wasm.exists():
        return ["node", str(wasm)]
    return None


@pytest.mark.skipif(actionlint() is None, reason="no actionlint here: .ci/run installs one with npm")
@pytest.mark.parametrize("workflow", ["template's classroom.yml", "ci.yml"])
def test_workflow_passes_actionlint(template, workflow):
    folder = template if workflow.startswith("template") else ROOT
    path = folder / ".github" / "workflows" / workflow.split()[-1]
    result = subprocess.run([*actionlint(), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ci_runs_the_project_tests_on_the_oldest_and_newest_python():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    assert set(flow[True]) == {"push", "pull_request"}
    (job,) = flow["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    oldest = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"].removeprefix(">=")
    assert job["strategy"]["matrix"]["python-version"][0] == oldest
    assert job["env"]["PIP_EXTRA_INDEX_URL"] == "https://download.pytorch.org/whl/cpu"
    assert [s["run"] for s in job["steps"] if "run" in s] == [".ci/run"]


def test_gradescope_results_show_only_the_visible_points():
    result = subprocess.run([BIN / "kata", "grade", "--kata", "attention", "--format", "gradescope"],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert report["score"] == 0 and report["execution_time"] > 0
    tests = report["tests"]
    assert len(tests) == len(curriculum.kata("attention").points)
    assert {t["visibility"] for t in tests} == {"visible", "after_published"}
    assert all({"name", "score", "max_score", "output"} <= set(t) for t in tests)
    visible = sum(t["max_score"] for t in tests if t["visibility"] == "visible")
    assert visible < curriculum.kata("attention").max_score
    assert report["output"] == f"0 / {visible:g} points on the visible checks; more checks are scored, and shown once the grades are published"


def _messages():
    """What the harness says about wrong outputs, one message per kind of problem, with (kind) what a
    hidden check may say instead."""
    tol = {"atol": 1e-5, "rtol": 1e-4}
    x = torch.arange(12.0).reshape(3, 4) / 7
    wrong = [
        (torch.zeros(3, 5), x, "the output has the wrong shape"),
        (x.double(), x, "the output has the wrong dtype"),
        (torch.full((3, 4), float("nan")), x, "the output contains NaN where the expected values are finite"),
        (x + 0.25, x, "some entries of the output are wrong"),
        (torch.tensor([1, 2]), torch.tensor([1, 3]), "some entries of the output are wrong"),
        ((x,), (x, x), "the output has the wrong type or number of items"),
        (1.5, 2.0, "the output has the wrong value"),
        (3, 4, "the output has the wrong value"),
    ]
    return [(harness.compare(got, want, want, tol, "the output"), kind) for got, want, kind in wrong]


def test_hidden_checks_tell_the_kind_of_problem_and_no_values():
    mistake = "Looks like a common mistake: the scores are divided by sqrt(Ev) instead of sqrt(E)"
    cases = _messages() + [
        (f"attention(float32 (5, 16)): {_messages()[3][0]}. {mistake}.", f"some entries of the output are wrong. {mistake}"),
        ("softmax(float32 (3, 4)): raised ValueError: got 3 rows (katas/attention.py, line 9, in softmax)", "it raised ValueError"),
        ("f(float32 (3,)): expected ValueError to be raised, but it returned float32 (3,)", "it returned where ValueError should be raised"),
        ("softmax(float32 (2, 7)) changed its input x in place; compute a new tensor instead", "it changed its input x in place"),
    ]
    for message, kind in cases:
        assert re.search(r"\d", message.split(". Looks like")[0])  # the message had numbers to hide
        shown = formats.hidden_message(message)
        assert shown == f"hidden check: {kind}."
        assert formats.hidden_message(shown) == shown
    report = {"total": 0, "max_score": 2, "katas": [{"name": "k", "title": "K", "complete": True, "checks": [
        {"name": "a", "passed": False, "score": 0, "max_score": 1, "message": cases[0][0], "hidden": False},
        {"name": "b", "passed": False, "score": 0, "max_score": 1, "message": cases[0][0], "hidden": True},
        {"name": "c", "passed": False, "score": 0, "max_score": 1, "message": "not run: its grader could not run", "hidden": True}]}]}
    a, b, c = formats.for_learners(report)["katas"][0]["checks"]
    assert (a["message"], b["message"], c["message"]) == (cases[0][0], "hidden check: the output has the wrong shape.", "not run: its grader could not run")
    classroom = json.loads(base64.b64decode(formats.classroom(report)))
    gradescope = json.loads(formats.gradescope(report, 1.0))
    assert [t["message"] for t in classroom["tests"]] == [t["output"] for t in gradescope["tests"]] == [a["message"], b["message"], c["message"]]


@pytest.fixture
def instructor_checkout(tmp_path):
    """A copy of this repository as an instructor's checkout is after grading a class: grades, reports,
    hint state and notes of their own beside the packages, and a private config elsewhere."""
    checkout = tmp_path / "course"
    for rel in export.PACKAGES:
        shutil.copytree(ROOT / rel, checkout / rel, ignore=shutil.ignore_patterns("__pycache__"))
    for rel in export.BUILD_FILES:
        shutil.copy2(ROOT / rel, checkout / rel)
    (checkout / "grades.csv").write_text("learner,total\nada,10\n")
    (checkout / "grades").mkdir()
    (checkout / "grades" / "ada.json").write_text("{}")
    (checkout / ".kata").mkdir()
    (checkout / ".kata" / "hints.json").write_text("{}")
    (checkout / "notes.txt").write_text("mine")
    config = (ROOT / "graders" / "config.toml").read_text()
    assert re.search(r"^seed = \d+", config, re.M) and re.search(r"^softmax_rows = 1$", config, re.M)
    private = tmp_path / "private.toml"
    private.write_text(re.sub(r"^softmax_rows = 1$", "softmax_rows = 3", re.sub(r"^seed = \d+", "seed = 424242", config, flags=re.M), flags=re.M))
    return checkout, private


def test_gradescope_export_holds_what_grading_needs_under_the_config_in_use(instructor_checkout, tmp_path):
    checkout, private = instructor_checkout
    out = tmp_path / "autograder"
    run_in(checkout, sys.executable, "-m", "graders.cli", "export-gradescope", str(out), env={"KATA_CONFIG": str(private)})
    assert {p.name for p in out.iterdir()} == {"graders", "katas", "reference", "pyproject.toml", "README.md", "setup.sh", "run_autograder"}
    assert os.access(out / "setup.sh", os.X_OK) and os.access(out / "run_autograder", os.X_OK)
    for kata in KATAS:
        for rel in (f"katas/{kata}.py", f"graders/test_{kata}.py", f"reference/{kata}.py", f"reference/{kata}_catalogue.py"):
            assert (out / rel).is_file(), rel
    assert not list(out.rglob("__pycache__"))
    config = tomllib.loads((out / "graders" / "config.toml").read_text())
    assert config["seed"] == 424242 and config["attention"]["points"]["softmax_rows"] == 3


@pytest.mark.parametrize("kind", ["template", "gradescope"])
def test_a_failed_export_leaves_nothing_and_a_retry_works(tmp_path, monkeypatch, kind):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    write = export.export_template if kind == "template" else export.export_gradescope
    with monkeypatch.context() as patch:  # it fails once files are written
        patch.setattr(export.harness, "record_snapshots", broken)
        patch.setattr(export, "exported_config", broken)
        with pytest.raises(RuntimeError):
            write(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []
    if kind == "gradescope":  # a template takes a while to record; the same code moves both into place
        assert (write(tmp_path / "out") / "run_autograder").is_file()
        assert [p.name for p in tmp_path.iterdir()] == ["out"]
