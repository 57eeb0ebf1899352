"""Instructor tools that build what learners and course platforms receive.

export-template DIR: the repository learners get. Stubs, public graders, the harness, a Classroom
  workflow and a learner README. No reference solutions and no catalogue: the public checks compare
  against snapshots, the reference's outcomes recorded on the checks' fixed inputs. Hidden checks,
  their tolerances and the instructor's seed stay here.
export-gradescope DIR: the autograder's files (setup.sh, run_autograder and the packages that grade)
  that grade /autograder/submission the same way `kata grade` does, hidden checks included.

Both write into a temporary folder beside DIR and move it into place at the end, so that a failed
export leaves nothing behind.
"""

import contextlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

import torch

from graders import curriculum, harness
from graders.curriculum import ROOT, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

STUDENT = curriculum.GRADERS / "student"

# What the template shares with this repository, besides each kata's stub and grader.
SHARED = [
    ".gitignore", "pyproject.toml", "scripts/kata", "scripts/_venv.sh", "katas/__init__.py", "katas/curriculum.toml",
    "graders/__init__.py", "graders/cli.py", "graders/conftest.py", "graders/plugin.py", "graders/curriculum.py", "graders/formats.py",
    "graders/harness.py", "graders/runner.py", "graders/sandbox.py", "graders/wire.py",
]

# What Gradescope's autograder needs besides its two entry points: what `pip install` of this repository
# installs, and the files its build reads.
PACKAGES = ["graders", "katas", "reference"]
BUILD_FILES = ["pyproject.toml", "README.md"]


@contextlib.contextmanager
def _writing(path) -> Path:
    """A fresh folder to fill, moved to path (which must not exist or be an empty folder) at the end."""
    target = Path(path)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target} already exists and is not an empty folder; name a new one")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        work.chmod(0o777 & ~umask)  # as a plain mkdir would have made it
        yield work
        work.replace(target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _copy(rel: str, out: Path):
    (out / rel).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(ROOT / rel, out / rel)


def export_template(path, with_hidden: bool = False) -> Path:
    """with_hidden: also record the hidden checks (under the instructor's seed), for the private copy
    a course's workflow can check out to grade hidden checks in CI."""
    with _writing(path) as out:
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
    return Path(path)


def exported_config(recorded: dict, with_hidden: bool) -> str:
    """The config in use (KATA_CONFIG, KATA_SEED) cut down to the recorded checks; the seed only goes
    with hidden checks."""
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


def _package_files() -> list:
    """The files `pip install` of this repository installs: the packages' modules and their package data."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    files = []
    for package in PACKAGES:
        folder = ROOT / package
        files += [p for p in folder.rglob("*.py") if "__pycache__" not in p.parts]
        files += [p for pattern in data.get(package, ()) for p in folder.glob(pattern) if p.is_file()]
    return sorted({p.relative_to(ROOT).as_posix() for p in files})


def export_gradescope(path) -> Path:
    """The zip's contents: the packages that grade (hidden checks and all) under the config in use,
    plus Gradescope's two entry points."""
    with _writing(path) as out:
        for rel in BUILD_FILES + _package_files():
            _copy(rel, out)
        cases = {k.name: harness.kata_cases(k.name) for k in curriculum.katas()}
        (out / "graders" / "config.toml").write_text(exported_config(cases, with_hidden=True))
        for name in ("setup.sh", "run_autograder"):
            shutil.copy2(STUDENT / name, out / name)
    return Path(path)
