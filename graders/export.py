"""Instructor tools that build what learners and course platforms receive.

export-template DIR: the repository learners get. Stubs, public graders, the harness, a Classroom
  workflow and a learner README. No reference solutions and no catalogue: the public checks compare
  against snapshots, the reference's outcomes recorded on the checks' fixed inputs. Hidden checks,
  their tolerances and the instructor's seed stay here.
export-gradescope DIR: the autograder's files (setup.sh, run_autograder and this repository) that
  grade /autograder/submission the same way `kata grade` does, hidden checks included.
"""

import shutil
from pathlib import Path

import torch

from graders import curriculum, harness
from graders.curriculum import ROOT, UsageError

STUDENT = ROOT / "graders" / "student"

# What the template shares with this repository, besides each kata's stub and grader.
SHARED = [
    ".gitignore", "pyproject.toml", "scripts/kata", "scripts/_venv.sh", "katas/__init__.py", "katas/curriculum.toml",
    "graders/__init__.py", "graders/cli.py", "graders/conftest.py", "graders/plugin.py", "graders/curriculum.py", "graders/formats.py",
    "graders/harness.py", "graders/runner.py",
]


def _empty_folder(path: str) -> Path:
    folder = Path(path)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise UsageError(f"{folder} already exists and is not an empty folder; name a new one")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _copy(rel: str, out: Path):
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / rel, out / rel)


def export_template(path: str, with_hidden: bool = False) -> Path:
    """with_hidden: also record the hidden checks (under the instructor's seed), for the private copy
    a course's workflow can check out to grade hidden checks in CI."""
    out = _empty_folder(path)
    katas = curriculum.katas()
    for rel in SHARED + [f"katas/{k.name}.py" for k in katas] + [f"graders/test_{k.name}.py" for k in katas]:
        _copy(rel, out)
    (out / "graders" / "snapshots").mkdir()
    recorded = {}
    for kata in katas:
        snapshots = harness.record_snapshots(kata.name, with_hidden)
        torch.save(snapshots, out / "graders" / "snapshots" / f"{kata.name}.pt")
        recorded[kata.name] = [c for c in harness.kata_cases(kata.name) if c.name in snapshots]
    (out / "graders" / "config.toml").write_text(exported_config(recorded, with_hidden))
    shutil.copy2(STUDENT / "README.md", out / "README.md")
    workflow = out / ".github" / "workflows" / "classroom.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text(classroom_workflow())
    return out


def exported_config(recorded: dict, with_hidden: bool) -> str:
    """The instructor's config cut down to the recorded checks; the seed only goes with hidden checks."""
    s = curriculum.settings()
    lines = ["# The graders' settings for the checks recorded in graders/snapshots/."]
    if with_hidden:
        lines.append(f"seed = {s.seed}")
    lines += [f"check_timeout = {s.check_timeout:g}", f"kata_timeout = {s.kata_timeout:g}", f"memory_mb = {s.memory_mb}"]
    for kata in s.katas:
        cases = recorded[kata.name]
        lines += ["", f"[{kata.name}]", f"timeout = {kata.timeout:g}", "", f"[{kata.name}.tolerance]"]
        for key in sorted({c.tol for c in cases}):
            entry = ", ".join(f"{k} = {v!r}" for k, v in kata.tolerances[key].items())
            lines.append(f"{key} = {{ {entry} }}")
        lines += ["", f"[{kata.name}.points]"]
        lines += [f"{c.name} = {kata.points[c.name]:g}" for c in cases]
    return "\n".join(lines) + "\n"


def step_id(kata: str) -> str:
    """Classroom's reporter takes runner ids of letters and digits only."""
    return "".join(ch for ch in kata if ch.isalnum())


def classroom_workflow() -> str:
    names = [k.name for k in curriculum.katas()]
    steps = "".join(
        f"      - name: {name}\n"
        f"        id: {step_id(name)}\n"
        f"        working-directory: graders\n"
        f"        run: kata grade --kata {name} --format classroom --solutions ../submission/katas\n"
        for name in names
    )
    env = "".join(f"          {step_id(n).upper()}_RESULTS: \"${{{{ steps.{step_id(n)}.outputs.result }}}}\"\n" for n in names)
    runners = ",".join(step_id(n) for n in names)
    template = (STUDENT / "classroom.yml").read_text()
    return template.replace("@STEPS@\n", steps).replace("@ENV@", env).replace("@RUNNERS@", runners)


def export_gradescope(path: str) -> Path:
    """The zip's contents: this repository (hidden checks and all) plus Gradescope's two entry points."""
    out = _empty_folder(path)
    ignore = shutil.ignore_patterns(".git", ".venv", ".kata", "__pycache__", "*.egg-info", ".ci")
    shutil.copytree(ROOT, out, ignore=ignore, dirs_exist_ok=True)
    for name in ("setup.sh", "run_autograder"):
        shutil.copy2(STUDENT / name, out / name)
    return out
