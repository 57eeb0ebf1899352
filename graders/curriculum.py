"""The curriculum (katas/curriculum.toml) and the instructor's knobs (graders/config.toml).

These two files are the only places that list the katas; everything else reads them here.
"""

import difflib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

# Everything grading needs is found beside these two packages, so that a plain (non-editable)
# install grades exactly as a checkout does.
GRADERS = Path(__file__).resolve().parent  # the harness, the checks, config.toml, snapshots/ in a template
STUBS = Path(importlib.util.find_spec("katas").origin).resolve().parent  # the kata stubs and the manifest
ROOT = GRADERS.parent  # the repository, in a checkout
MANIFEST = STUBS / "curriculum.toml"
CONFIG = GRADERS / "config.toml"  # KATA_CONFIG names another, e.g. a course's private copy


class UsageError(Exception):
    """A problem with what the user asked for; the CLI prints it as one line."""


@dataclass(frozen=True)
class Kata:
    name: str
    title: str
    hints: tuple[str, ...]
    forbidden: tuple[str, ...]
    points: dict  # check name -> points, in the order the checks run
    tolerances: dict  # tolerance key -> {"atol": ..., "rtol": ..., ...}
    timeout: float  # wall-clock seconds for the whole kata's grading

    @property
    def max_score(self) -> float:
        return float(sum(self.points.values()))

    @property
    def file(self) -> str:
        return f"{self.name}.py"


@dataclass(frozen=True)
class Settings:
    seed: int  # the instructor's seed: it picks the inputs of hidden checks
    check_timeout: float
    kata_timeout: float
    memory_mb: int
    katas: tuple[Kata, ...]


def _load(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"{path} is missing; restore it from the repository") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path} is not valid TOML ({e}); fix it and run again") from None


def config_path() -> Path:
    return Path(os.environ.get("KATA_CONFIG", CONFIG))


@cache
def settings() -> Settings:
    manifest, config = _load(MANIFEST), _load(config_path())
    katas = []
    for entry in manifest.get("kata", []):
        name = entry["name"]
        knobs = config.get(name, {})
        katas.append(
            Kata(
                name=name,
                title=entry["title"],
                hints=tuple(entry.get("hints", ())),
                forbidden=tuple(entry.get("forbidden", ())),
                points=dict(knobs.get("points", {})),
                tolerances=dict(knobs.get("tolerance", {})),
                timeout=float(knobs.get("timeout", config["kata_timeout"])),
            )
        )
    seed = os.environ.get("KATA_SEED", config.get("seed", 0))
    try:
        seed = int(seed)
    except ValueError:
        raise UsageError(f"KATA_SEED must be a whole number, not {seed!r}") from None
    return Settings(seed, float(config["check_timeout"]), float(config["kata_timeout"]), int(config["memory_mb"]), tuple(katas))


def katas() -> tuple[Kata, ...]:
    return settings().katas


def kata(name: str) -> Kata:
    for k in katas():
        if k.name == name:
            return k
    known = [k.name for k in katas()]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"no kata named {name!r}; {hint}the katas are: {', '.join(known)}")


@cache
def manifest() -> list:
    """The manifest's entries alone: public, unlike the config (points, tolerances, seed)."""
    return _load(MANIFEST).get("kata", [])


def names() -> list:
    return [entry["name"] for entry in manifest()]


def forbidden(name: str) -> tuple:
    return tuple(next(e for e in manifest() if e["name"] == name).get("forbidden", ()))
