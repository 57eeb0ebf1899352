"""GitHub Classroom and Gradescope, run as the platforms run them, score as `kata grade` does.

Classroom: the workflow `kata export-template` writes is read with PyYAML and run as the Actions runner
runs it. The checkouts are laid out as actions/checkout lays them out (the learner's repository in
submission/, the template in graders/, the private copy with hidden checks over it when the workflow's
condition holds), a fresh virtual environment stands in for setup-python (its bin/ first on PATH),
then every `run:` step runs in order, in its working-directory, as `bash --noprofile --norc -eo
pipefail`, with the workflow's env and a fresh GITHUB_OUTPUT file, and a step that fails stops the
job. Gradescope: the folder `kata export-gradescope` writes is the zip's contents; setup.sh runs once
and run_autograder once per submission, under a folder standing in for /autograder.

One thing differs from a real runner: where pip finds packages. Where this machine configures a
package index (PIP_INDEX_URL or PIP_EXTRA_INDEX_URL, in its environment or pip's config files), its
value replaces the platform's, so that an offline machine installs torch from its own mirror. Both
platforms share one virtual environment, so that torch installs once: Gradescope's setup.sh finds it
where it would create it.

The points: Classroom's come from its reporter, classroom-resources/autograding-grading-reporter, a
JavaScript action. Nothing of it is vendored here, and a test may not depend on files outside the
repository, so `reporter_points` reproduces what its src/main.js and src/notify-classroom.js do, and
always runs. Where node is present and KATA_CLASSROOM_REPORTER names the action's bundled dist/main.js
(the project's CI checks the action out for that), the reporter itself also runs on the same step
outputs, and its "Autograding report" must say the same; elsewhere that test is skipped, saying why.
"""

import base64
import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from graders import curriculum, export
from learners import reference_as_learner

KATAS = [k.name for k in curriculum.katas()]
KATA = Path(sys.executable).parent / "kata"
HIDDEN_REPOSITORY = "course/llm-katas-hidden"  # the repository variable KATA_HIDDEN_REPOSITORY, when set
REPORTER = os.environ.get("KATA_CLASSROOM_REPORTER")
SUBMISSIONS = ["stubs", "half", "full", "hostile"]
QUICK = [("half", False), ("hostile", False)]  # the Classroom runs without --all
# The hostile learner's kata files: attacks from tests/hostile/ on what a Classroom job shares between
# steps (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, the graders' checkout, processes that outlive a step).
HOSTILE = {"attention": "forge_outputs", "causal_mask": "daemon", "layer_norm": "rewrite_graders",
           "lora": "read_answers", "kv_cache": "forge_pipe", "quantization": "environment"}


def write_submission(name: str, katas: Path) -> Path:
    """The kata files of a learner: the stubs; half the katas solved (one of them with a mistake that
    costs some of its checks); every kata solved; or attacks in place of some stubs."""
    katas.mkdir(parents=True, exist_ok=True)
    for kata in KATAS:
        shutil.copy2(curriculum.STUBS / f"{kata}.py", katas)
    if name in ("half", "full"):
        reference_as_learner(katas, KATAS[::2] if name == "half" else KATAS)
    if name == "hostile":
        for kata, attack in HOSTILE.items():
            shutil.copy2(Path(__file__).parent / "hostile" / f"{attack}.py", katas / f"{kata}.py")
    if name == "half":  # an attention that forgets to scale the scores
        path = katas / "attention.py"
        text = path.read_text()
        assert "/ math.sqrt(q.shape[-1])" in text
        path.write_text(text.replace("/ math.sqrt(q.shape[-1])", ""))
    return katas


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("platforms")


@pytest.fixture(scope="module")
def expected(work):
    """`kata grade --format json` of this repository on a submission, hidden checks included (each
    graded on first use)."""
    @functools.cache
    def report(name: str) -> dict:
        katas = write_submission(name, work / "kata-files" / name)
        result = subprocess.run([KATA, "grade", "--format", "json", "--solutions", katas],
                                capture_output=True, text=True, timeout=900, check=True)
        return json.loads(result.stdout)
    return report


def assert_safe(message: str):
    """A hidden check's message: passed, the runner's own words, or the kind of problem with no number
    (the notes after it name a catalogued mistake or the kata to fix first)."""
    if message in ("", "passed") or message.startswith(("not run", "not started", "this check was running when")):
        return
    assert message.startswith("hidden check: "), message
    kind = re.split(r"\. (?:Looks like a common mistake|Note: this builds on)", message)[0]
    assert not re.search(r"\d", kind), message


def points(report: dict, hidden: bool) -> tuple:
    checks = [c for k in report["katas"] for c in k["checks"] if hidden or not c["hidden"]]
    return sum(c["score"] for c in checks), sum(c["max_score"] for c in checks)


# ------------------------------------------------------------------------------- the machine


def machine_path() -> str:
    """This machine's PATH without virtual environments, as a runner's would be before setup-python."""
    return os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and not (Path(p).parent / "pyvenv.cfg").exists())


@pytest.fixture(scope="module")
def python(work) -> Path:
    """The one fresh virtual environment: setup-python's stand-in and Gradescope's /autograder/venv."""
    venv = work / "autograder" / "venv"
    subprocess.run(["python3", "-m", "venv", venv], env={**os.environ, "PATH": machine_path()}, check=True)
    return venv


@pytest.fixture(scope="module")
def machine_env(python) -> dict:
    """What every platform step gets from this machine: its PATH, HOME and pip's settings, with this
    machine's package index in place of the platform's (see the module's docstring)."""
    env = {k: v for k, v in os.environ.items() if k in ("HOME", "LANG", "TMPDIR") or k.startswith("PIP_")}
    listing = subprocess.run([python / "bin" / "python", "-m", "pip", "config", "list"], capture_output=True,
                             text=True, check=True).stdout
    found = dict(((section, key), value) for section, key, value in re.findall(r"^(\S+?)\.([\w-]+)='(.*)'$", listing, re.M))
    for key in ("index-url", "extra-index-url"):
        for section in (":env:", "install", "global"):  # pip's precedence: environment, then the command's section
            if (section, key) in found:
                env["PIP_" + key.upper().replace("-", "_")] = found[section, key]
                break
    return {**env, "PATH": machine_path()}


def index_of(machine_env: dict) -> dict:
    return {k: v for k, v in machine_env.items() if k in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")}


# ------------------------------------------------------------------------------- Classroom


EXPRESSION = re.compile(r"\$\{\{\s*(\w+)\.([\w-]+)(?:\.outputs\.([\w-]+))?\s*\}\}")


def expand(text: str, context: dict) -> str:
    """${{ env.X }}, ${{ vars.X }}, ${{ secrets.X }} and ${{ steps.ID.outputs.KEY }}: what the workflow uses."""
    def value(m):
        scope, name, output = m.groups()
        if scope == "steps":
            return context["steps"].get(name, {}).get(output, "")
        return context[scope].get(name, "")
    return EXPRESSION.sub(value, str(text))


def condition(text: str, context: dict) -> bool:
    """A step's `if:`; the workflow only compares a context value with ''."""
    found = re.fullmatch(r"(\w+)\.(\w+) (!=|==) ''", text.strip())
    assert found, f"a step condition this test cannot evaluate: {text}"
    scope, name, op = found.groups()
    return (context[scope].get(name, "") != "") == (op == "!=")


def read_outputs(path: Path) -> dict:
    """A step's GITHUB_OUTPUT: `key=value` lines and `key<<DELIMITER` blocks; a key set twice keeps the last."""
    outputs, lines = {}, iter(path.read_text().splitlines())
    for line in lines:
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            block = []
            for row in lines:
                if row == delimiter:
                    break
                block.append(row)
            outputs[key] = "\n".join(block)
        elif line:
            key, value = line.split("=", 1)
            outputs[key] = value
    return outputs


def run_workflow(path: Path, repositories: dict, variables: dict, workspace: Path, python: Path, machine: dict) -> tuple:
    """Runs the workflow's one job. Returns the reporter step's environment (INPUT_RUNNERS and the
    <ID>_RESULTS it reads), as the runner would hand it to the action, and each step's log by id."""
    flow = yaml.safe_load(path.read_text())
    (job,) = flow["jobs"].values()
    context = {"env": {}, "vars": variables, "secrets": {}, "steps": {}}
    context["env"] = {k: expand(v, context) for k, v in {**flow.get("env", {}), **job.get("env", {})}.items()}
    scratch = workspace.parent / "runner"
    scratch.mkdir()
    step_path, logs = machine["PATH"], {}
    for i, step in enumerate(job["steps"]):
        if "if" in step and not condition(step["if"], context):
            continue
        uses = step.get("uses", "")
        if uses.startswith("actions/checkout@"):
            options = {k: expand(v, context) for k, v in step.get("with", {}).items()}
            target = workspace / options.get("path", "")
            shutil.rmtree(target, ignore_errors=True)  # another repository into the same path replaces it
            shutil.copytree(repositories[options.get("repository", "")], target)
            context.setdefault("checkouts", {})[target] = repositories[options.get("repository", "")]
        elif uses.startswith("actions/setup-python@"):
            step_path = f"{python / 'bin'}{os.pathsep}{step_path}"
        elif uses.startswith("classroom-resources/autograding-grading-reporter@"):
            env = {k: expand(v, context) for k, v in step["env"].items()}
            checkout, source = workspace / "graders", context["checkouts"][workspace / "graders"]
            changed = [str(p.relative_to(source)) for p in source.rglob("*") if p.suffix in (".py", ".toml", ".pt")
                       and (checkout / p.relative_to(source)).read_bytes() != p.read_bytes()]
            return {**env, **{f"INPUT_{k.upper()}": expand(v, context) for k, v in step["with"].items()},
                    "SHARED": "".join(context.get("shared", [])), "GRADERS_CHANGED": " ".join(changed)}, logs
        else:
            assert "run" in step, f"a step this test cannot run: {step}"
            assert "${{" not in step["run"], "the runner would expand this expression before bash sees it"
            script, output = scratch / f"step{i}.sh", scratch / f"step{i}.output"
            later_env, later_path = scratch / f"step{i}.env", scratch / f"step{i}.path"
            script.write_text(step["run"])
            for path in (output, later_env, later_path):
                path.touch()
            env = {**context["env"], **{k: expand(v, context) for k, v in step.get("env", {}).items()}}
            env = {**machine, **env, **index_of(machine), "PATH": step_path, "CI": "true", "GITHUB_ACTIONS": "true",
                   "GITHUB_WORKSPACE": str(workspace), "GITHUB_OUTPUT": str(output), "GITHUB_ENV": str(later_env),
                   "GITHUB_PATH": str(later_path), "RUNNER_TEMP": str(scratch)}
            result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", script],
                                    cwd=workspace / step.get("working-directory", ""), env=env,
                                    capture_output=True, text=True, timeout=900)
            assert result.returncode == 0, f"step {step.get('name', i)} failed, which stops the job:\n{result.stdout}\n{result.stderr}"
            if "id" in step:
                context["steps"][step["id"]] = read_outputs(output)
                logs[step["id"]] = result.stdout
            # What the runner hands the later steps: GITHUB_ENV's lines as variables, GITHUB_PATH's on PATH.
            context["env"].update(line.split("=", 1) for line in later_env.read_text().splitlines() if "=" in line)
            step_path = os.pathsep.join([*reversed(later_path.read_text().split()), step_path])
            context.setdefault("shared", []).append(later_env.read_text() + later_path.read_text())
    raise AssertionError("the workflow has no reporter step")


def reporter_points(env: dict) -> tuple:
    """(totalPoints, maxPoints, failed) as the reporter computes them: main.js reads each runner's
    <ID>_RESULTS (base64 of JSON); notify-classroom.js skips runners whose max_score is 0 or missing and
    sums tests[].score over them; the job fails when a runner's status is fail or error."""
    runs = [json.loads(base64.b64decode(env[f"{r.strip().upper()}_RESULTS"])) for r in env["INPUT_RUNNERS"].split(",")]
    counted = [r for r in runs if r.get("max_score")]
    total = sum(t["score"] for r in counted for t in r["tests"])
    return total, sum(r["max_score"] for r in counted), any(r["status"] in ("fail", "error") for r in runs)


@pytest.fixture(scope="module")
def templates(work):
    return {"public": export.export_template(work / "template"),
            "hidden": export.export_template(work / "template-hidden", with_hidden=True)}


# (submission, with hidden checks): the public checks on every submission, the hidden ones on one;
# without --all, the half-solved and the hostile submissions.
RUNS = [pytest.param(name, hidden, marks=[] if (name, hidden) in QUICK else [pytest.mark.slow])
        for name, hidden in [(name, False) for name in SUBMISSIONS] + [("half", True)]]


@pytest.fixture(scope="module")
def classroom(work, templates, python, machine_env):
    """The reporter's environment and the steps' logs after the workflow ran on (submission, hidden),
    run on first use."""
    @functools.cache
    def run(name: str, hidden: bool) -> tuple:
        folder = work / "classroom" / f"{name}-{'hidden' if hidden else 'public'}"
        learner = folder / "learner"  # the learner's repository: the template, with their kata files
        shutil.copytree(templates["public"], learner)
        write_submission(name, learner / "katas")
        workflow = templates["public"] / ".github" / "workflows" / "classroom.yml"
        graders = yaml.safe_load(workflow.read_text())["env"]["GRADERS_REPOSITORY"]
        repositories = {"": learner, graders: templates["public"], HIDDEN_REPOSITORY: templates["hidden"]}
        variables = {"KATA_HIDDEN_REPOSITORY": HIDDEN_REPOSITORY} if hidden else {}
        return run_workflow(workflow, repositories, variables, folder / "workspace", python, machine_env)
    return run


@pytest.mark.parametrize("name, hidden", RUNS)
def test_classroom_points_are_kata_grades(classroom, expected, name, hidden):
    (env, logs), report = classroom(name, hidden), expected(name)
    total, maximum, failed = reporter_points(env)
    assert (total, maximum) == points(report, hidden)
    assert failed == (total < maximum)
    for kata in report["katas"]:  # and check by check, hidden ones only when the hidden copy was checked out
        result = json.loads(base64.b64decode(env[f"{export.step_id(kata['name']).upper()}_RESULTS"]))
        checks = [c for c in kata["checks"] if hidden or not c["hidden"]]
        assert [(t["name"], t["score"]) for t in result["tests"]] == [(f"{kata['name']}: {c['name']}", c["score"]) for c in checks]
        log = logs[export.step_id(kata["name"])]
        for test, check in zip(result["tests"], checks):
            if check["hidden"]:  # in the result and in the Actions log, which the learner reads
                assert_safe(test["message"])
                assert_safe(re.search(rf"^  (?:PASS|FAIL) {check['name']} \([^)]*\)(?:: (.*))?$", log, re.M).group(1) or "")
    if name == "hostile":  # nothing reached the later steps, and the graders' checkout is as it was
        assert env["SHARED"] == ""
        assert env["GRADERS_CHANGED"] == ""
    if name == "half":
        assert 0 < total < maximum
        assert any(0 < k["score"] < k["max_score"] for k in report["katas"])  # partial credit within a kata
    else:
        assert total == (maximum if name == "full" else 0)


@pytest.mark.skipif(not (shutil.which("node") and REPORTER and Path(REPORTER).is_file()),
                    reason="the Classroom reporter itself runs where node is present and KATA_CLASSROOM_REPORTER "
                           "names its dist/main.js (the project's CI sets both)")
@pytest.mark.parametrize("name, hidden", RUNS)
def test_the_classroom_reporter_itself_agrees(classroom, expected, name, hidden):
    env = {"PATH": os.environ["PATH"], **classroom(name, hidden)[0]}
    result = subprocess.run(["node", REPORTER], env=env, capture_output=True, text=True, timeout=120)
    summary = re.search(r"^::notice title=Autograding report::(.*)$", result.stdout, re.M)
    assert summary, result.stdout + result.stderr
    total, maximum = points(expected(name), hidden)
    assert json.loads(summary.group(1)) == {"totalPoints": total, "maxPoints": maximum}
    assert result.returncode == (0 if total == maximum else 1)  # core.setFailed when a check fails


# ------------------------------------------------------------------------------- Gradescope


@pytest.fixture(scope="module")
def autograder(work, python, machine_env):
    """/autograder after Gradescope built the image: the export in source/, setup.sh run from there."""
    root = python.parent
    source = export.export_gradescope(root / "source")
    env = {**machine_env, **index_of(machine_env), "AUTOGRADER_ROOT": str(root)}
    subprocess.run(["bash", source / "setup.sh"], cwd=source, env=env, check=True, timeout=900)
    shutil.copy2(source / "run_autograder", root / "run_autograder")
    return root, env


@pytest.mark.parametrize("name, layout", [("half", "repository"), pytest.param("full", "kata files", marks=pytest.mark.slow)])
def test_gradescope_scores_as_kata_grade(autograder, templates, expected, name, layout):
    root, env = autograder
    submission = root / "submission"
    shutil.rmtree(submission, ignore_errors=True)
    shutil.rmtree(root / "results", ignore_errors=True)
    if layout == "repository":  # the learner's whole repository: the template, with their kata files
        shutil.copytree(templates["public"], submission)
        write_submission(name, submission / "katas")
    else:
        write_submission(name, submission)
    subprocess.run([root / "run_autograder"], cwd=root, env=env, check=True, timeout=900)
    results = json.loads((root / "results" / "results.json").read_text())
    report = expected(name)
    assert results["score"] == report["total"]
    assert set(results) == {"score", "execution_time", "output", "visibility", "tests"}
    assert results["visibility"] == "visible" and results["execution_time"] > 0
    checks = [c for k in report["katas"] for c in k["checks"]]
    assert [(t["score"], t["max_score"]) for t in results["tests"]] == [(c["score"], c["max_score"]) for c in checks]
    assert [t["visibility"] for t in results["tests"]] == ["after_published" if c["hidden"] else "visible" for c in checks]
    # Before publication the learner sees the visible checks' points alone, and no hidden check's values.
    visible = points(report, hidden=False)
    assert results["output"].startswith(f"{visible[0]:g} / {visible[1]:g} points on the visible checks;")
    for test, check in zip(results["tests"], checks):
        if check["hidden"]:
            assert_safe(test["output"])
