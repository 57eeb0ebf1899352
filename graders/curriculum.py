"""The curriculum (katas/curriculum.toml) and the instructor's knobs (graders/config.toml).

These two files are the only places that list the katas; everything else reads them here. settings()
checks both before anything is graded: each problem is a UsageError of one line that names the key
and what it may hold, so that a broken knob stops the grading instead of grading wrongly.
"""

import difflib
import importlib.util
import json
import math
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
CACHE = ROOT / ".kata" / "cache"  # the reference's outcomes, as judges computed them (graders/harness.py)
MANIFEST = STUBS / "curriculum.toml"
CONFIG = GRADERS / "config.toml"  # KATA_CONFIG names another, e.g. a course's private copy

SETTINGS = ("seed", "check_timeout", "kata_timeout", "memory_mb")  # the config's top-level keys
KATA_KNOBS = ("points", "tolerance", "timeout")  # the keys of a kata's table in the config
ENTRY_KEYS = ("name", "title", "hints", "forbidden")  # the keys of a [[kata]] block in the manifest
_MISSING = object()


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


def _load(path: Path, shown: str = "katas/curriculum.toml", fix: str = "restore it from the repository") -> dict:
    try:
        if path.exists() and not path.is_file():  # a folder, or a pipe that reading would never finish
            raise UsageError(f"{shown} is {'a folder' if path.is_dir() else 'not a regular file'}; {fix}")
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{shown} does not exist; {fix}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{shown} is not a text file; {fix}") from None
    except OSError as e:
        raise UsageError(f"{shown} cannot be read ({e.strerror}); {fix}") from None
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{shown} is not valid TOML ({e}); fix it and run again") from None


def config_path() -> Path:
    return Path(os.environ.get("KATA_CONFIG") or CONFIG)


# ------------------------------------------------------------------------------------ validation


def _toml(value) -> str:
    """A value as the config spells it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return str(value)


def _is_number(value) -> bool:
    """An int or a finite float; TOML's true and false are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _bad(key: str, allowed: str, value) -> str:
    if value is _MISSING:
        return f"{key} is missing; give {allowed}"
    return f"{key} must be {allowed}, not {_toml(value)}"


def _close(word: str, choices) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {found[0]}?)" if found else ""


def _some(names: list) -> str:
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def _manifest_problems(manifest: dict) -> list[str]:
    out = [f"{key} is not a key of the manifest, which holds [[kata]] blocks only" for key in manifest if key != "kata"]
    entries = manifest.get("kata")
    if not isinstance(entries, list) or not entries or not all(isinstance(e, dict) for e in entries):
        return out + ["no [[kata]] block; give each kata one, with its name and title"]
    seen = set()
    for i, entry in enumerate(entries, 1):
        name = entry.get("name", _MISSING)
        if not isinstance(name, str) or not name.isidentifier():
            out.append(_bad(f"kata #{i}'s name", "a Python identifier (its files are katas/NAME.py and "
                                                 "graders/test_NAME.py)", name))
            continue
        if name in seen:
            out.append(f"kata {name} is listed twice")
        seen.add(name)
        out += [f"kata {name}: {key} is not a key{_close(key, ENTRY_KEYS)}; a kata holds {', '.join(ENTRY_KEYS)}"
                for key in entry if key not in ENTRY_KEYS]
        title = entry.get("title", _MISSING)
        if not isinstance(title, str) or not title.strip():
            out.append(_bad(f"kata {name}'s title", "a string that names the kata", title))
        for key in ("hints", "forbidden"):
            value = entry.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                out.append(_bad(f"kata {name}'s {key}", "a list of strings", value))
    return out


def _kata_problems(name: str, knobs: dict) -> list[str]:
    out = [f"[{name}] {key} is not a setting{_close(key, KATA_KNOBS)}; a kata's table holds points, tolerance "
           f"and timeout" for key in knobs if key not in KATA_KNOBS]
    timeout = knobs.get("timeout", 1)
    if not (_is_number(timeout) and timeout > 0):
        out.append(_bad(f"[{name}] timeout", "a number of seconds > 0", timeout))
    points = knobs.get("points", _MISSING)
    if points is _MISSING:
        out.append(f"[{name}.points] is missing; give each check of graders/test_{name}.py its points")
    elif not isinstance(points, dict):
        out.append(_bad(f"[{name}] points", "a table of check = points", points))
    else:
        out += [_bad(f"[{name}.points] {check}", "a number > 0", p) for check, p in points.items()
                if not (_is_number(p) and p > 0)]
    tolerances = knobs.get("tolerance", {})  # a key a check uses and this lacks is told with that check
    if not isinstance(tolerances, dict):
        return out + [_bad(f"[{name}] tolerance", "a table of key = { atol = ..., rtol = ... }", tolerances)]
    for key, tol in tolerances.items():
        where = f"[{name}.tolerance] {key}"
        if not isinstance(tol, dict):
            out.append(_bad(where, "a table { atol = ..., rtol = ... }", tol))
            continue
        bounds = {"atol": tol.get("atol", _MISSING), "rtol": tol.get("rtol", _MISSING), **tol}
        out += [_bad(f"{where}.{k}", "a finite number >= 0", v) for k, v in bounds.items()
                if not (_is_number(v) and v >= 0)]
    return out


def _config_problems(config: dict, names: list) -> list[str]:
    out = []
    for key, value in config.items():
        if key in names or key in SETTINGS:
            continue
        if isinstance(value, dict):
            out.append(f"[{key}] names no kata of katas/curriculum.toml{_close(key, names)}")
        else:
            out.append(f"{key} is not a setting{_close(key, SETTINGS)}; the settings are {', '.join(SETTINGS)}, "
                       f"and a table per kata")
    seed = config.get("seed", 0)
    if not _is_whole(seed):
        out.append(_bad("seed", "a whole number", seed))
    for key in ("check_timeout", "kata_timeout"):
        value = config.get(key, _MISSING)
        if not (_is_number(value) and value > 0):
            out.append(_bad(key, "a number of seconds > 0", value))
    memory = config.get("memory_mb", _MISSING)
    if not (_is_whole(memory) and memory > 0):
        out.append(_bad("memory_mb", "a whole number of megabytes > 0", memory))
    for name in names:
        knobs = config.get(name, _MISSING)
        if knobs is _MISSING:
            out.append(f"[{name}] is missing; give kata {name} its [{name}.points] and [{name}.tolerance]")
        elif not isinstance(knobs, dict):
            out.append(_bad(name, "a table of the kata's points, tolerance and timeout", knobs))
        else:
            out += _kata_problems(name, knobs)
    return out


def _check_problems(katas: list, shown: str) -> list[str]:
    """What the config and the manifest say against the graders' checks and the torch installed, as
    the sandboxes' zygote, which has imported them, reports."""
    from graders import sandbox

    facts = sandbox.grader_facts([k.name for k in katas], sorted({d for k in katas for d in k.forbidden}))
    template = (GRADERS / "snapshots").is_dir()  # a learner's template gives its hidden checks no points
    out = []
    for kata in katas:
        grader = f"graders/test_{kata.name}.py"
        out += [f"katas/curriculum.toml: kata {kata.name} forbids {dotted}, which torch {facts['torch']} does "
                f"not have; name the function as torch spells it" for dotted in kata.forbidden if dotted in facts["unknown"]]
        if kata.name in facts["broken"]:
            out.append(f"{grader} fails to import ({facts['broken'][kata.name]}); `python -c 'import graders.test_{kata.name}'` shows where")
            continue
        if kata.name not in facts["checks"]:  # no such module: the zygote found no file to import
            out.append(f"katas/curriculum.toml: kata {kata.name} has no grader {grader}")
            continue
        cases = facts["checks"][kata.name]
        checks = [name for name, _, _ in cases]
        out += [f"{shown}: [{kata.name}.points] {check} names no check of {grader}{_close(check, checks)}"
                for check in kata.points if check not in checks]
        unscored = [name for name, _, hidden in cases if name not in kata.points and not (template and hidden)]
        if unscored:
            out.append(f"{shown}: [{kata.name}.points] gives no points to {_some(unscored)}; give every check "
                       f"of {grader} a number > 0")
        needed = {tol: name for name, tol, _ in reversed(cases) if name in kata.points}  # key -> its first check
        out += [f"{shown}: [{kata.name}.tolerance] has no entry {key}, which check {check} uses; add "
                f"{key} = {{ atol = ..., rtol = ... }}" for key, check in needed.items() if key not in kata.tolerances]
    return out


def _refuse(problems: list):
    if problems:
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})" if len(problems) > 1 else ""
        raise UsageError(problems[0] + more)


@cache
def settings() -> Settings:
    named = os.environ.get("KATA_CONFIG")
    shown = named or "graders/config.toml"
    manifest = _load(MANIFEST)
    config = _load(config_path(), shown, "KATA_CONFIG must name a copy of graders/config.toml" if named else
                   "restore it from the repository")
    _refuse([f"katas/curriculum.toml: {p}" for p in _manifest_problems(manifest)])
    if not config:
        raise UsageError(f"{shown} is empty; it holds check_timeout, kata_timeout, memory_mb and each kata's points "
                         f"and tolerances: start from a copy of graders/config.toml")
    names = [entry["name"] for entry in manifest["kata"]]
    _refuse([f"{shown}: {p}" for p in _config_problems(config, names)])
    seed = config.get("seed", 0)
    if "KATA_SEED" in os.environ:
        try:
            seed = int(os.environ["KATA_SEED"])
        except ValueError:
            raise UsageError(f"KATA_SEED must be a whole number, not {os.environ['KATA_SEED']!r}") from None
    katas = [
        Kata(
            name=entry["name"],
            title=entry["title"],
            hints=tuple(entry.get("hints", ())),
            forbidden=tuple(entry.get("forbidden", ())),
            points=dict(config[entry["name"]]["points"]),
            tolerances=dict(config[entry["name"]].get("tolerance", {})),
            timeout=float(config[entry["name"]].get("timeout", config["kata_timeout"])),
        )
        for entry in manifest["kata"]
    ]
    _refuse(_check_problems(katas, shown))
    return Settings(seed, float(config["check_timeout"]), float(config["kata_timeout"]), config["memory_mb"], tuple(katas))


def katas() -> tuple[Kata, ...]:
    return settings().katas


def kata(name: str) -> Kata:
    for k in katas():
        if k.name == name:
            return k
    raise _unknown(name)


def _unknown(name: str) -> UsageError:
    known = names()
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return UsageError(f"no kata named {name!r}; {hint}the katas are: {', '.join(known)}")


@dataclass(frozen=True)
class Lesson:
    """A kata as the manifest alone describes it: what hints and reset need, without the config."""

    name: str
    hints: tuple

    @property
    def file(self) -> str:
        return f"{self.name}.py"


def lesson(name: str) -> Lesson:
    for entry in manifest():
        if entry["name"] == name:
            return Lesson(name, tuple(entry.get("hints", ())))
    raise _unknown(name)


@cache
def manifest() -> list:
    """The manifest's entries alone: public, unlike the config (points, tolerances, seed)."""
    return _load(MANIFEST).get("kata", [])


def names() -> list:
    return [entry["name"] for entry in manifest()]


def forbidden(name: str) -> tuple:
    return tuple(next(e for e in manifest() if e["name"] == name).get("forbidden", ()))


def as_learner_file(source: str) -> str:
    """Reference code as a learner's kata file: kata code imports other katas as katas.<name>."""
    return source.replace("from reference.", "from katas.")
