"""Learner submissions built from the reference, for tests that need correct kata files."""

from pathlib import Path

from graders import curriculum

REFERENCE = curriculum.ROOT / "reference"


def reference_as_learner(folder: Path, names=None) -> Path:
    """Writes the reference's kata files to folder, importing each other as `katas.<name>` the way a
    learner's files do (kata code cannot import `reference`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names or [k.name for k in curriculum.katas()]:
        source = curriculum.as_learner_file((REFERENCE / f"{name}.py").read_text())
        (folder / f"{name}.py").write_text(source)
    return folder
