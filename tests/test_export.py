"""The student template, the Classroom workflow and the Gradescope output.

The template must grade every public check exactly as this repository does, while holding no line
of reference code; the workflow's grading steps, run the way the Actions runner runs them, must
give the points `kata grade` gives.
"""

import base64
import importlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from graders import curriculum, export
from learners import reference_as_learner

ROOT = curriculum.ROOT
KATAS = [k.name for k in curriculum.katas()]
BIN = Path(sys.executable).parent

# Run in a checkout (cwd): the verdict of every public check for the stubs, the reference and every
# catalogued mistake, as {kata: {submission: {check: passed}}}.
VERDICTS = """
import importlib, json, sys
from graders import curriculum, runner
out = {}
for kata in [k.name for k in curriculum.katas()]:
    cat = importlib.import_module(f"reference.{kata}_catalogue")
    runs = {"stub": {}, "reference": {"solutions": sys.argv[1]}}
    runs.update({m.name: {"entry": m.name} for m in cat.MISTAKES})
    out[kata] = {}
    for name, kwargs in runs.items():
        result = runner.grade([kata], **kwargs)["katas"][0]
        out[kata][name] = {c["name"]: c["passed"] for c in result["checks"]}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return export.export_template(tmp_path_factory.mktemp("export") / "template")


def run_in(folder, *args, env=None):
    """A command with `folder`'s graders first on the path, as if installed from there."""
    env = {**os.environ, **(env or {}), "PYTHONPATH": f"{folder}{os.pathsep}{ROOT}"}
    return subprocess.run(args, cwd=folder, env=env, capture_output=True, text=True, timeout=900, check=True)


def test_template_gives_the_same_verdict_on_every_public_check(template, tmp_path):
    reference = reference_as_learner(tmp_path / "solutions")
    ours = json.loads(run_in(ROOT, sys.executable, "-c", VERDICTS, str(reference)).stdout)
    theirs = json.loads(run_in(template, sys.executable, "-c", VERDICTS, str(reference)).stdout)
    hidden = 0
    for kata in KATAS:
        for submission, checks in ours[kata].items():
            public = theirs[kata][submission]
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
def test_workflow_passes_actionlint(template):
    path = template / ".github" / "workflows" / "classroom.yml"
    result = subprocess.run([*actionlint(), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def reporter_points(results: dict) -> tuple:
    """What the Classroom reporter sends: the sum of tests[].score over the sum of max_score."""
    total = sum(t["score"] for r in results.values() for t in r["tests"])
    return total, sum(r["max_score"] for r in results.values())


@pytest.mark.parametrize("submission", ["reference", "mistakes"])
def test_workflow_steps_score_as_kata_grade_does(template, tmp_path, submission):
    """Lay out the runner's workspace, run each grading step's command, decode its result output."""
    learner = reference_as_learner(tmp_path / "submission" / "katas")
    if submission == "mistakes":  # an attention that forgets the scaling, a layer norm that is missing
        text = (learner / "attention.py").read_text().replace("/ math.sqrt(q.shape[-1])", "")
        (learner / "attention.py").write_text(text)
        (learner / "layer_norm.py").unlink()
    graders = tmp_path / "graders"
    shutil.copytree(template, graders)
    results = {}
    for step in workflow(template)["jobs"]["run-autograding-tests"]["steps"]:
        if "id" not in step:
            continue
        output = tmp_path / f"{step['id']}.out"
        command = step["run"].replace("kata ", f"{BIN / 'kata'} ", 1)
        run_in(graders / step["working-directory"].removeprefix("graders"), "bash", "-c", command,
               env={"GITHUB_OUTPUT": str(output)})
        line = output.read_text().strip()
        assert line.startswith("result=")
        results[step["id"]] = json.loads(base64.b64decode(line.removeprefix("result=")))
    expected = json.loads(run_in(graders, str(BIN / "kata"), "grade", "--format", "json", "--solutions", str(learner)).stdout)
    assert reporter_points(results) == (expected["total"], expected["max_score"])
    for kata in expected["katas"]:
        result = results[export.step_id(kata["name"])]
        assert result["version"] == 1 and result["max_score"] == kata["max_score"]
        assert [t["score"] for t in result["tests"]] == [c["score"] for c in kata["checks"]]
        assert result["status"] == ("pass" if kata["score"] == kata["max_score"] else "fail")
    if submission == "mistakes":
        assert 0 < expected["total"] < expected["max_score"]
    else:
        assert expected["total"] == expected["max_score"]


def test_gradescope_results(tmp_path):
    result = subprocess.run([BIN / "kata", "grade", "--kata", "attention", "--format", "gradescope"],
                            capture_output=True, text=True, check=True)
    report = json.loads(result.stdout)
    assert report["score"] == 0 and report["execution_time"] > 0
    tests = report["tests"]
    assert len(tests) == len(curriculum.kata("attention").points)
    assert {t["visibility"] for t in tests} == {"visible", "after_published"}
    assert all({"name", "score", "max_score", "output"} <= set(t) for t in tests)


def test_gradescope_export_runs_the_autograder(tmp_path):
    out = export.export_gradescope(tmp_path / "autograder")
    assert os.access(out / "setup.sh", os.X_OK) and os.access(out / "run_autograder", os.X_OK)
    assert (out / "reference" / "attention.py").exists() and (out / "graders" / "config.toml").exists()
    assert "--format gradescope" in (out / "run_autograder").read_text()
