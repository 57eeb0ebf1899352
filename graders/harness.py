"""The grading harness every kata's checks share.

A check runs the learner's code and the reference on the same inputs and compares the two. The
judge's side (Learner) builds the inputs, computes the reference, compares and diagnoses; it never
runs learner code. The sandbox's side (Submission) imports the learner's kata in a sandbox process
(graders/sandbox.py) and runs each check's probe on it, under teaching guards: forbidden APIs
(functions wrapped where they live, operators given a kernel that records them), inputs changed in
place, libraries patched. What crosses back is plain data only.
Feedback says what is wrong (type, shape, dtype, device, NaN, which entries, how far off, which
common mistake it looks like) and never shows a tolerance.
"""

import builtins
import copy
import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import math
import operator
import os
import sys
import textwrap
import time
import traceback
import types
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy
import torch
import torch.nn.functional

from graders import curriculum

# The harness's own handles on library functions, taken at import, before any learner code runs.
_isinstance, _type, _len, _repr = builtins.isinstance, builtins.type, builtins.len, builtins.repr
_Tensor = torch.Tensor
_as_subclass = torch.Tensor.as_subclass
_no_subclass = torch._C.DisableTorchFunctionSubclass
_abs, _isnan, _isfinite, _where = torch.abs, torch.isnan, torch.isfinite, torch.where
_argmax, _nonzero, _unravel = torch.argmax, torch.nonzero, numpy.unravel_index
_clone, _detach, _to = torch.Tensor.clone, torch.Tensor.detach, torch.Tensor.to
_eq, _ne, _gt, _and, _or = torch.eq, torch.ne, torch.gt, torch.logical_and, torch.logical_or
_sum, _item = torch.sum, torch.Tensor.item
_numel, _float64 = torch.Tensor.numel, torch.float64

# A student template ships recorded reference outcomes here instead of the reference solutions.
SNAPSHOTS = curriculum.GRADERS / "snapshots"

# Every function and module reachable from these namespaces is snapshotted before the learner's code
# is imported; a check fails if any of them was replaced.
_WATCHED = [builtins, math, numpy, numpy.testing, torch, torch.Tensor, torch.nn.functional, torch.testing]


def _snapshot() -> list:
    """(namespace's name, its live dict, names, values) of every function and module in a watched
    namespace: checked after every call, so comparing them is one loop in C."""
    names = [m for m in sys.modules if m == "graders" or m.startswith("graders.")]
    found = []
    for space in _WATCHED + [sys.modules[m] for m in names]:
        live = vars(space)
        keys = [k for k, v in list(live.items()) if callable(v) or _isinstance(v, types.ModuleType)]
        found.append((space.__name__, live, keys, [live[k] for k in keys]))
    return found


def use_solutions(folder: str):
    """Make `katas.<name>` import from folder, so that a submission's katas import each other."""
    for name in [m for m in sys.modules if m == "katas" or m.startswith("katas.")]:
        del sys.modules[name]
    package = types.ModuleType("katas")
    package.__path__ = [str(Path(folder).resolve())]
    sys.modules["katas"] = package


class _NoReference:
    """An import hook that keeps the reference solutions out of reach of the code being graded."""

    def find_spec(self, name, path=None, target=None):
        if name == "reference" or name.startswith("reference."):
            raise ImportError("kata code cannot import the reference solutions")
        return None


class Fail(Exception):
    """A check's verdict: the learner's code is wrong, and the message says how."""


def fail(message: str):
    raise Fail(message)


# ----------------------------------------------------------------------------------------- inputs


class Gen:
    """Seeded input factory: the same seed gives the same inputs on every run and machine."""

    def __init__(self, seed: int):
        self.seed = seed
        self.g = torch.Generator().manual_seed(seed)

    def randn(self, *shape, dtype=torch.float32, scale=1.0, shift=0.0):
        return torch.randn(shape, generator=self.g, dtype=torch.float64).mul(scale).add(shift).to(dtype)

    def rand(self, *shape, dtype=torch.float32):
        return torch.rand(shape, generator=self.g, dtype=torch.float64).to(dtype)

    def randint(self, low, high, *shape):
        return torch.randint(low, high, shape, generator=self.g)

    def mask(self, *shape, p=0.5):
        """A random bool mask whose last-dim slices each keep at least one True."""
        m = torch.rand(shape, generator=self.g) < p
        m[..., 0] |= ~m.any(dim=-1)
        return m


def manual_seed(seed: int):
    """torch.manual_seed. Where CUDA is not available, only the CPU's generator: torch.manual_seed
    would also queue seeding CUDA for later, recording a stack trace each time (about a millisecond,
    in checks that seed dozens of times)."""
    if torch.cuda.is_available():
        torch.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)


def seed_for(kata: str, case: str, hidden: bool) -> int:
    key = f"{kata}/{case}" + (f"/{curriculum.settings().seed}" if hidden else "")
    return zlib.crc32(key.encode())


def _map(fn, x):
    """Apply fn to every tensor and module inside nested tuples, lists and dicts."""
    if _isinstance(x, (torch.Tensor, torch.nn.Module)):
        return fn(x)
    if _isinstance(x, (tuple, list)):
        return _type(x)(_map(fn, v) for v in x)
    if _isinstance(x, dict):
        return {k: _map(fn, v) for k, v in x.items()}
    return x


def to_device(x, device):
    return _map(lambda t: t.to(device), x)


def clone(x):
    return _map(lambda t: copy.deepcopy(t) if _isinstance(t, torch.nn.Module) else _clone(_detach(t)).requires_grad_(t.requires_grad), x)


def upcast(x):
    """float tensors and modules -> float64 on the CPU, where the reference's values are exact enough."""
    def one(t):
        t = copy.deepcopy(t) if _isinstance(t, torch.nn.Module) else t
        if _isinstance(t, torch.nn.Module):
            return t.to("cpu", _float64)
        t = _to(_detach(t), "cpu")
        return (_to(t, _float64) if t.is_floating_point() else t).requires_grad_(t.requires_grad)
    return _map(one, x)


def describe(x) -> str:
    if _isinstance(x, torch.Tensor):
        dev = "" if x.device.type == "cpu" else f" on {x.device}"
        return f"{str(x.dtype).removeprefix('torch.')} {tuple(x.shape)}{dev}"
    if _isinstance(x, torch.nn.Module):
        return _type(x).__name__
    if _isinstance(x, (tuple, list)) and _len(x) > 4:
        return f"{_type(x).__name__} of {_len(x)}"
    if _isinstance(x, (tuple, list)):
        inner = ", ".join(describe(v) for v in x)
        return f"({inner})" if _isinstance(x, tuple) else f"[{inner}]"
    if callable(x):
        return getattr(x, "__name__", "a function")
    return _repr(x)


# ------------------------------------------------------------------------------------- comparison


def plain(t: torch.Tensor) -> torch.Tensor:
    """The tensor's data as a plain, detached torch.Tensor: a subclass cannot lie about itself here."""
    with _no_subclass():
        return _detach(_as_subclass(t, _Tensor))


def _index(flat: int, shape) -> tuple:
    return tuple(int(i) for i in _unravel(flat, tuple(shape))) if _len(shape) else ()


def _fmt(v) -> str:
    return f"{v:.6g}" if _isinstance(v, float) else _repr(v)


def _fmt_pair(got, want) -> tuple:
    """The two values with enough digits to tell them apart."""
    for digits in (6, 9, 12, 17):
        a, b = (f"{v:.{digits}g}" if _isinstance(v, float) else _repr(v) for v in (got, want))
        if a != b:
            break
    return a, b


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def compare(actual, expected, like, tol: dict, where: str) -> str | None:
    """None when actual matches; otherwise what is wrong, in words.

    expected holds the values to match (often computed in float64); like is the reference's output on
    the learner's own dtype and device, whose type, dtype, device and shape the learner must reproduce.
    """
    if _isinstance(like, torch.Tensor):
        if not _isinstance(actual, torch.Tensor):
            return f"{where} should be a tensor ({describe(like)}), got {_type(actual).__name__}"
        a, e, want = plain(actual), plain(expected), plain(like)
        if tuple(a.shape) != tuple(want.shape):
            return f"{where} has shape {tuple(a.shape)}, expected {tuple(want.shape)}"
        if a.dtype != want.dtype:
            return f"{where} has dtype {a.dtype}, expected {want.dtype}"
        if a.device != want.device:
            return f"{where} is on {a.device}, expected {want.device}"
        return _compare_values(a, e, tol, where)
    if _isinstance(like, (tuple, list)):
        if not _isinstance(actual, (tuple, list)):
            return f"{where} should be a {_type(like).__name__} of {_len(like)}, got {_type(actual).__name__}"
        if _len(like) and all(_type(v) is int for v in like) and any(_isinstance(v, torch.Tensor) for v in actual):
            return f"{where} holds tensors where Python ints are expected: tokens are ints (.item() or .tolist() gives them)"
        if _len(actual) != _len(like):
            return f"{where} has {_plural(_len(actual), 'item')}, expected {_len(like)}"
        for i in range(_len(like)):
            problem = compare(actual[i], expected[i], like[i], tol, f"{where}[{i}]")
            if problem:
                return problem
        return None
    if _isinstance(like, float):
        if _isinstance(actual, torch.Tensor) or not _isinstance(actual, (int, float)) or _isinstance(actual, bool):
            return f"{where} should be a Python float, got {_type(actual).__name__}"
        err = abs(actual - expected)
        if not math.isfinite(actual) or err > tol["atol"] + tol["rtol"] * abs(expected):
            return f"{where} is {_fmt(float(actual))}, expected {_fmt(expected)} (abs error {err:.2e})"
        return None
    if _type(actual) != _type(like) or actual != like:
        return f"{where} is {_repr(actual)}, expected {_repr(like)}"
    return None


def _compare_values(a: torch.Tensor, e: torch.Tensor, tol: dict, where: str) -> str | None:
    a, e = _to(a, "cpu"), _to(e, "cpu")
    n = _numel(a)
    if not (a.is_floating_point() or a.is_complex()):
        bad = _ne(a, e).reshape(-1)
        count = int(_item(_sum(bad)))
        if count == 0:
            return None
        first = int(_item(_nonzero(bad)[0]))
        idx = _index(first, a.shape)
        got, want = _item(a.reshape(-1)[first]), _item(e.reshape(-1)[first])
        return f"{where}: {count} of {n} entries differ; the first at index {idx} is {got}, expected {want}"
    a, e = _to(a, _float64), _to(e, _float64)
    for name, isbad in (("NaN", _isnan), ("inf", lambda t: _and(~_isfinite(t), ~_isnan(t)))):
        bad = _and(isbad(a), ~isbad(e)).reshape(-1)
        count = int(_item(_sum(bad)))
        if count:
            idx = _index(int(_item(_nonzero(bad)[0])), a.shape)
            return f"{where} contains {name} in {count} of {n} entries (the first at index {idx}) where the expected values are finite"
    same = _or(_eq(a, e), _and(_isnan(a), _isnan(e)))  # equal infinities count as equal
    err = _where(same, 0.0, _abs(a - e))
    bound = tol["atol"] + tol["rtol"] * _abs(e)
    bad = _gt(err, bound).reshape(-1)
    count = int(_item(_sum(bad)))
    if count == 0:
        return None
    flat_err = err.reshape(-1)
    worst = int(_item(_argmax(flat_err)))
    idx = _index(worst, a.shape)
    got, want = _item(a.reshape(-1)[worst]), _item(e.reshape(-1)[worst])
    shown_got, shown_want = _fmt_pair(got, want)
    error = f"abs error {_item(flat_err[worst]):.2e}"
    if want != 0:  # a relative error against 0 says nothing
        error += f", rel error {_item(flat_err[worst]) / abs(want):.2e}"
    verb = "is" if count == 1 else "are"
    return (f"{where}: {count} of {n} entries {verb} off; the worst, at index {idx}, is {shown_got} where "
            f"{shown_want} was expected ({error})")


# --------------------------------------------------------------------------------------- guarding


def _watch(forbidden: tuple, seen: list) -> list:
    """Make every forbidden name append itself to `seen` when it is called, for the rest of this
    process (a sandbox). A Python function is wrapped where it lives, so any lookup of it there
    (`getattr(torch, "soft" + "max")` included) finds the wrapper. An operator ("aten.NAME" or
    "torch.ops.NS.OP.OVERLOAD") gets a kernel at every dispatch key where it has one: whatever the
    route to it, that kernel records the call and raises, and the operator computes nothing. Nothing
    else is slowed down. Returns the libraries that hold the kernels: they last as long as it does."""
    libraries = {}
    for dotted in forbidden:
        obj = getattr(torch.ops.aten, dotted[5:]) if dotted.startswith("aten.") else _resolve(dotted)
        if _isinstance(obj, (torch._ops.OpOverloadPacket, torch._ops.OpOverload)):
            overloads = [getattr(obj, o) for o in obj.overloads()] if _isinstance(obj, torch._ops.OpOverloadPacket) else [obj]
            for op in overloads:
                _forbid_operator(op, dotted, seen, libraries)
        elif callable(obj) and not _isinstance(obj, type):  # a class is caught by what it calls
            parent, attr = dotted.rsplit(".", 1)
            setattr(_resolve(parent), attr, _recording(obj, dotted, seen))
    return list(libraries.values())


# Where an operator's kernels live: composite ones (which backends fall back to), then each backend.
_KEYS = ("CompositeImplicitAutograd", "CompositeExplicitAutograd", "CompositeExplicitAutogradNonFunctional",
         "CPU", "CUDA", "QuantizedCPU", "QuantizedCUDA", "SparseCPU", "SparseCUDA", "NestedTensorCPU", "NestedTensorCUDA")


def _forbid_operator(op, dotted: str, seen: list, libraries: dict):
    namespace, qualified = op.name().split("::")  # "aten::_softmax", "aten::_softmax.out"

    def forbidden(*args, **kwargs):
        seen.append(dotted)
        raise RuntimeError(f"{dotted} is forbidden in this kata")

    try:
        keys = [k for k in _KEYS if torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), k)]
    except RuntimeError:  # an overload TorchScript alone knows (aten::dequantize.list): nothing dispatches to it
        return
    if namespace not in libraries:
        libraries[namespace] = torch.library.Library(namespace, "IMPL")
    for key in keys:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "overriding a previously registered kernel": the point
            libraries[namespace].impl(qualified, forbidden, key)


def _recording(fn: Callable, dotted: str, seen: list) -> Callable:
    @functools.wraps(fn)
    def recorded(*args, **kwargs):
        seen.append(dotted)
        return fn(*args, **kwargs)

    return recorded


def _resolve(dotted: str):
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for part in parts[1:]:
        obj = getattr(obj, part)
    return obj


@dataclass
class Outcome:
    """What a call did: returned a value or raised an exception."""

    value: Any = None
    error: BaseException | None = None
    where: str = ""  # the line of the learner's file that raised

    def describe_error(self) -> str:
        return f"{error_name(self.error)}: {self.error}{self.where}"


class Raised(Exception):
    """An exception raised in a sandbox, as the judge knows it: its class's names and its message."""

    def __init__(self, names: list, message: str):
        super().__init__(message)
        self.names = names


def error_name(error: BaseException) -> str:
    return error.names[0] if _isinstance(error, Raised) else _type(error).__name__


def error_names(error: BaseException) -> list:
    """The names of the error's class and its bases, most specific first."""
    return error.names if _isinstance(error, Raised) else [k.__name__ for k in _type(error).__mro__]


def raises_like(error: BaseException, like: BaseException) -> bool:
    """Whether error is an instance of like's class, by name: either may have been raised in a
    sandbox, the other in this process."""
    return error_name(like) in error_names(error)


def _learner_frame(error: BaseException, root: str) -> str:
    """' (katas/attention.py, line 12, in softmax)': where in the learner's file it went wrong."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename.startswith(root)]
    if not frames:
        return ""
    f = frames[-1]
    return f" ({Path(f.filename).name}, line {f.lineno}, in {f.name})"


# ------------------------------------------------------------------------------------ plain data
# What crosses from a sandbox to the judge: tensors, numbers, bools, strings, None, and tuples,
# lists and dicts of those. Anything else is replaced by the name of its type.

_OPAQUE = "\0type"
_SCALARS = (bool, int, float, str, type(None))


@functools.cache
def _opaque_type(name: str) -> type:
    return _type(name, (Opaque,), {})


class Opaque:
    """Stands for a value of a type that does not cross the boundary; equal to any of its type."""

    def __eq__(self, other):
        return _type(self) is _type(other)

    def __hash__(self):
        return hash(_type(self).__name__)

    def __repr__(self):
        return f"a {_type(self).__name__}"


def plain_data(x, depth: int = 0):
    if depth > 32:
        return {_OPAQUE: "deeply nested value"}
    if _isinstance(x, _Tensor):
        t = plain(x)
        if t.layout != torch.strided or t.is_quantized or t.is_meta:  # not a tensor of values, as wire sends them
            kind = "quantized" if t.is_quantized else "meta" if t.is_meta else str(t.layout).removeprefix("torch.")
            return {_OPAQUE: f"{kind} tensor"}
        return t
    if _isinstance(x, Opaque):
        return {_OPAQUE: _type(x).__name__}
    if _type(x) in _SCALARS:
        return x
    if _isinstance(x, (tuple, list)) and _type(x) in (tuple, list, torch.Size) or _isinstance(x, tuple) and hasattr(x, "_fields"):
        return (list if _isinstance(x, list) else tuple)(plain_data(v, depth + 1) for v in x)
    if _type(x) is dict and all(_type(k) in (str, int) for k in x):
        return {k: plain_data(v, depth + 1) for k, v in x.items()}
    return {_OPAQUE: _type(x).__name__}


_MAX_VALUES = 10**5  # a reply's values, counted as a tree: shared references could make a small frame vast


def _text(x, limit: int = 4000) -> str:
    """A string of a reply, cut short; TypeError if it is not one."""
    if _type(x) is not str:
        raise TypeError(f"a {_type(x).__name__} where text was expected")
    return x[:limit]


def from_plain(x):
    """A reply's value as the judge compares it; TypeError if it holds anything but plain data."""
    return _from_plain(x, 0, [_MAX_VALUES])


def _from_plain(x, depth: int, left: list):
    left[0] -= 1
    if left[0] < 0:
        raise TypeError(f"more than {_MAX_VALUES} values")
    if depth > 40:
        raise TypeError("nested too deeply")
    if _type(x) is _Tensor or _type(x) is torch.nn.Parameter:
        return plain(x)
    if _type(x) in _SCALARS:
        return x
    if _type(x) in (tuple, list):
        return _type(x)(_from_plain(v, depth + 1, left) for v in x)
    if _type(x) is dict:
        if _len(x) == 1 and _type(x.get(_OPAQUE)) is str:
            return _opaque_type(x[_OPAQUE])()
        return {k: _from_plain(v, depth + 1, left) for k, v in x.items()}
    raise TypeError(f"a {_type(x).__name__}")


# ------------------------------------------------------------------------ the sandbox's side


class Submission:
    """One learner's kata inside its sandbox: imported and probed under the teaching guards
    (forbidden APIs, inputs changed in place, libraries patched). sandbox.py runs it confined."""

    def __init__(self, name: str, folder: str | None, device: str, entry: str | None):
        self.name, self.device, self.entry = name, device, entry
        self.root = str(Path(folder or curriculum.STUBS).resolve())
        self._seen = []
        self._watching = _watch(curriculum.forbidden(name), self._seen)
        self._cases = {c.name: c for c in kata_cases(name)}
        # A learner's files must not lean on the reference solutions (graded as themselves, they may):
        # kept out for the rest of this process, a sandbox, which has not imported them.
        if entry is None and Path(self.root) != (curriculum.ROOT / "reference").resolve():
            sys.meta_path.insert(0, _NoReference())
        self.module = None

    def load(self) -> dict:
        """{"ready": True}, or {"fail": why the kata cannot be graded}."""
        if self.entry:
            self.module = catalogue_module(self.name, self.entry)
            self._baseline = _snapshot()
            return {"ready": True}
        use_solutions(self.root)
        path = Path(self.root) / f"{self.name}.py"
        if not path.is_file():
            return {"fail": f"not started: {path} does not exist"}
        self._baseline = _snapshot()
        try:
            got = self._guarded(lambda: importlib.import_module(f"katas.{self.name}"), "the import")
        except Fail as e:
            return {"fail": f"{path.name} failed to import: {e}"}
        if got.error is not None:
            return {"fail": f"{path.name} failed to import: {got.describe_error()}"}
        self.module = got.value
        return {"ready": True}

    def run(self, case_name: str, args) -> dict:
        """{"value": ...} or {"error": ...}, with "changed": the input changed in place, if any; or
        {"fail": ...} when a guard or the stub's NotImplementedError settles the check."""
        case = self._cases[case_name]
        args = to_device(args, self.device)
        before = clone(args)
        try:
            got = self._guarded(lambda: case.invoke(self.module, args), "the call")
        except Fail as e:
            return {"fail": str(e)}
        changed = _changed_inputs(before, args, names=self._parameters(case))
        if got.error is not None:
            reply = {"error": {"names": error_names(got.error),
                               "message": str(got.error)[:2000], "where": got.where}}
        else:
            reply = {"value": plain_data(got.value)}
        return {**reply, "changed": changed}

    def _parameters(self, case: "Case") -> list:
        """The names of a kata function's parameters, for "changed its input q in place"."""
        if not _isinstance(case.call, str):
            return []
        try:
            return list(inspect.signature(getattr(self.module, case.call)).parameters)
        except (TypeError, ValueError, AttributeError):
            return []

    def _guarded(self, fn: Callable, what: str) -> "Outcome":
        seen = self._seen
        seen.clear()
        try:
            result = Outcome(fn())
        except NotImplementedError as e:
            fail(f"not implemented yet: {e or what}")
        except Fail:
            raise
        except Exception as e:
            result = Outcome(error=e, where=_learner_frame(e, self.root))
        except BaseException as e:  # SystemExit and friends cost this check only
            fail(f"{what} raised {_type(e).__name__}: {e}{_learner_frame(e, self.root)}")
        finally:
            self._check_untouched()
        if seen:
            fail(f"{what} calls {seen[0]}, which this kata forbids: the point is to build it yourself")
        return result

    def _check_untouched(self):
        for space, live, keys, values in self._baseline:
            if not all(map(operator.is_, map(live.get, keys), values)):
                key = next(k for k, v in zip(keys, values) if live.get(k) is not v)
                fail(f"your code replaced {space}.{key}; monkeypatching libraries or the graders is not allowed")


# -------------------------------------------------------------------------- the judge's side


@dataclass
class Result:
    """The learner's code on one check: what it returned or raised, the input it changed in place,
    or the message of a guard (not implemented, forbidden, too slow, crashed)."""

    outcome: Outcome | None = None
    changed: str | None = None
    fail: str | None = None
    output: str = ""  # the end of what the code printed


_SHARED = {}  # (kata, device, seed) -> the inputs, reference outcomes and mistakes' outcomes computed so far

# The reference's outcomes and the mistakes' depend only on this project's code, torch, the device and
# the seed. A judge keeps them in CACHE, in a file named by a digest of all of these (every file of
# graders/ and reference/ included), so that a later run computes only what it has not seen and any
# change to the code makes a new file. CACHE is out of every sandbox's reach (sandbox._secret_paths).
CACHE = curriculum.CACHE


class Learner:
    """One kata's submission as the judge sees it: the fixture `kata` in every grader. Its code runs
    in a sandbox; the judge builds the inputs, computes the reference and decides."""

    def __init__(self, name: str, folder: str | None = None, entry: str | None = None):
        self.kata = curriculum.kata(name)
        self.name = name
        self.device = os.environ.get("KATA_DEVICE", "cpu")
        self.folder = folder or os.environ.get("KATA_SOLUTIONS") or None
        self.entry = entry or os.environ.get("KATA_ENTRY")  # a catalogue entry graded in place of a file
        self.snapshots = load_snapshots(name) if SNAPSHOTS.is_dir() else None
        try:
            self.reference = importlib.import_module(f"reference.{name}")
        except ModuleNotFoundError:
            self.reference = None  # a student template: the snapshots are the oracle
        self.cases = [c for c in kata_cases(name) if c.name in self.kata.points]
        self._box = None
        self._import_error = None
        self._import_error_told = None  # the check whose message tells it
        self._results = {}  # case name -> Result
        # What does not depend on the submission, shared by every Learner of this kata in the process:
        # case name -> args; case name -> (like, expected); (mistake, case name) -> (Outcome, changed)
        self.key = (name, self.device, curriculum.settings().seed)
        if self.key not in _SHARED:
            cached = _load_cache(*self.key) if self.reference is not None and self.snapshots is None else ({}, {})
            _SHARED[self.key] = ({}, *cached)
        self._inputs, self._references, self._mistakes = _SHARED[self.key]
        self._named = None  # (the mistake the whole kata matches or None, the check that looked first)
        self._deadline = time.monotonic() + self.kata.timeout  # for all of the learner's code in this kata

    # -- the learner's code, in its sandbox

    def _sandbox(self):
        if self._box is None or not self._box.alive:
            from graders import sandbox

            readable = [self.folder or str(curriculum.STUBS)]
            if self.entry:  # the project's own tests grade catalogue entries, which are the reference's code
                readable += list(importlib.util.find_spec("reference").submodule_search_locations)
            s = curriculum.settings()
            try:
                self._box = sandbox.Sandbox(self.name, self.folder, self.device, self.entry, readable,
                                            s.memory_mb, s.check_timeout)
            except sandbox.Died as e:
                self._import_error = f"{self.kata.file} could not be imported: {e}"
                return None
            if "fail" in self._box.hello:
                fail = self._box.hello["fail"]
                self._import_error = _text(fail) if _type(fail) is str else f"{self.kata.file} sent the grader something that is not its reply"
        return None if self._import_error else self._box

    def result(self, case: "Case") -> Result:
        """The learner's Result on a check, run once and kept."""
        if case.name not in self._results:
            self._results[case.name] = self._run(case)
        return self._results[case.name]

    def _run(self, case: "Case") -> Result:
        from graders import sandbox

        args = self.inputs_of(case)
        left = self._deadline - time.monotonic()
        if left <= 0:
            return Result(fail=f"not run: this kata's code used up its time limit ({self.kata.timeout:g} s) in earlier checks")
        box = self._sandbox()
        if box is None:
            if self._import_error_told and not self._import_error.startswith("not started"):
                return Result(fail=f"not run: {self.kata.file} failed to import (see {self._import_error_told})")
            self._import_error_told = case.name
            return Result(fail=self._import_error)
        try:
            reply = box.run(case.name, args, min(curriculum.settings().check_timeout, left))
        except sandbox.Died as e:
            return Result(fail=str(e))
        return self._decode(reply)

    @staticmethod
    def _decode(reply: dict) -> Result:
        try:
            output = _text(reply.get("output", ""))
            if "fail" in reply:
                return Result(fail=_text(reply["fail"]), output=output)
            changed = reply.get("changed")
            changed = _text(changed) if changed is not None else None
            if "error" in reply:
                e = reply["error"]
                if _type(e["names"]) is not list:
                    raise TypeError("the error's names are not a list")
                error = Raised([_text(n) for n in e["names"][:64]], _text(e["message"]))
                return Result(Outcome(error=error, where=_text(e["where"])), changed, output=output)
            return Result(Outcome(from_plain(reply["value"])), changed, output=output)
        except (KeyError, TypeError, RecursionError) as e:
            return Result(fail=f"the sandbox sent a reply the grader cannot read ({e})")

    def close(self):
        if self._box is not None:
            self._box.close()

    # -- the reference

    def inputs_of(self, case: "Case") -> tuple:
        """The check's inputs, on the CPU."""
        if case.name not in self._inputs:
            self._inputs[case.name] = case.inputs(Gen(seed_for(self.name, case.name, case.hidden)))
        return self._inputs[case.name]

    def reference_of(self, case: "Case") -> tuple:
        """(like, expected): the reference's outcomes, computed only when a check needs them (a stub's
        checks do not)."""
        if case.name not in self._references:
            if self.snapshots is not None:
                like, expected = (Outcome(to_device(o.value, self.device), o.error) for o in self.snapshots[case.name])
            else:
                like, expected = reference_outcomes(self.reference, case, to_device(self.inputs_of(case), self.device))
            self._references[case.name] = (like, expected)
        return self._references[case.name]

    def tol(self, key: str) -> dict:
        try:
            return self.kata.tolerances[key]
        except KeyError:
            raise KeyError(f"graders/config.toml has no tolerance {key!r} for kata {self.name!r}") from None

    # -- the verdict

    def what(self, case: "Case") -> str:
        return case.what or f"{case.label}({', '.join(describe(a) for a in self.inputs_of(case))})"

    def problem(self, case: "Case") -> str | None:
        """What is wrong with the learner's code on this check, or None."""
        got = self.result(case)
        if got.fail:
            return got.fail
        if got.changed:
            return f"{self.what(case)} changed its input {got.changed} in place; compute a new tensor instead"
        like, expected = self.reference_of(case)
        problem = compare_outcomes(got.outcome, expected, like, case, self.tol(case.tol))
        return f"{self.what(case)}: {problem}" if problem else None

    def check(self, case: "Case"):
        """Run one Case: learner against reference on the same seeded inputs."""
        problem = self.problem(case)
        if problem is None:
            return
        got = self.result(case)
        printed = ""
        if got.output.strip() and not case.hidden:  # a hidden check's inputs stay hidden
            printed = "\nYour code printed:\n" + textwrap.indent(got.output.rstrip(), "    ")
        if got.fail:
            fail(problem + printed)
        fail(problem + _notes(self.diagnose(case), "" if got.changed else self.dependency_note(case)) + printed)

    def dependency_note(self, case: "Case") -> str:
        """Blame the kata this one builds on, when that is the learner's and fails its own checks."""
        failing = [dep for dep in case.uses if self.entry is None and not kata_passes(dep, self.folder)]
        if not failing:
            return ""
        return f"Note: this builds on your {failing[0]} kata, which fails its own checks: fix it first (kata check {failing[0]})"

    # -- diagnosis

    def diagnose(self, case: "Case") -> str:
        """'Looks like a common mistake: ...' when a catalogued mistake reproduces the learner's code
        on the whole kata: it fails the checks the learner fails, with the same outputs, and passes
        the others. Otherwise the first failing check says that none does."""
        if self.catalogue() is None:
            return ""
        if self._named is None:
            order = [case] + [c for c in self.cases if c is not case]  # most mistakes part ways at once
            found = next((m for m in self.catalogue().MISTAKES if all(self._agrees(m, c) for c in order)), None)
            self._named = (found, case.name)
        found, first = self._named
        if found is not None:
            return f"Looks like a common mistake: {found.says}"
        return "No catalogued common mistake matches what it does on all of this kata's checks" if case.name == first else ""

    def _agrees(self, mistake, case: "Case") -> bool:
        """Whether the mistake does on this check what the learner's code does."""
        got = self.result(case)
        if got.fail:
            return False
        theirs, changed = self._mistake_on(mistake, case)
        if bool(changed) != bool(got.changed):
            return False
        if changed:
            return True
        like, expected = self.reference_of(case)
        tol = self.tol(case.tol)
        theirs_problem = compare_outcomes(theirs, expected, like, case, tol)
        if self.problem(case) is None:
            return theirs_problem is None
        if theirs_problem is None:
            return False
        if got.outcome.error is not None and theirs.error is not None:  # the same error, word for word
            return error_name(got.outcome.error) == error_name(theirs.error) and str(got.outcome.error) == str(theirs.error)
        return compare_outcomes(got.outcome, theirs, theirs, case, tol) is None

    def _mistake_on(self, mistake, case: "Case") -> tuple:
        key = (mistake.name, case.name)
        if key not in self._mistakes:
            args = clone(to_device(self.inputs_of(case), self.device))  # a mistake may change them in place
            before = clone(args)
            theirs = reference_outcome(catalogue_module(self.name, mistake.name), case, args)
            self._mistakes[key] = (theirs, _changed_inputs(before, args))
        return self._mistakes[key]

    def catalogue(self):
        return None if self.reference is None else catalogue_of(self.name)


def catalogue_of(name: str):
    return importlib.import_module(f"reference.{name}_catalogue")


@functools.cache
def catalogue_module(name: str, entry_name: str) -> types.ModuleType:
    """The reference with a catalogue entry's names replaced, as a kata module."""
    cat = catalogue_of(name)
    entries = {e.name: e for e in cat.MISTAKES + cat.VARIANTS}
    module = types.ModuleType(f"katas.{name}")
    module.__dict__.update(vars(importlib.import_module(f"reference.{name}")))
    module.__dict__.update(entries[entry_name].overrides)
    return module


def _notes(*notes: str) -> str:
    """Sentences appended to a failure message, the empty ones left out."""
    return "".join(f". {n}" for n in notes if n) + ("." if any(notes) else "")


def reference_outcomes(module, case: "Case", args) -> tuple:
    """(like, expected): the reference on the learner's dtype and device, and its values to match."""
    like = reference_outcome(module, case, clone(args))
    return like, reference_outcome(module, case, upcast(args)) if case.upcast else like


def reference_outcome(module, case: "Case", args) -> Outcome:
    """A trusted module's outcome, as plain data: what the learner's would look like once decoded."""
    try:
        return Outcome(from_plain(plain_data(case.invoke(module, args))))
    except Exception as e:
        return Outcome(error=e)


def compare_outcomes(got: Outcome, expected: Outcome, like: Outcome, case: "Case", tol: dict) -> str | None:
    if like.error is not None:
        want = error_name(like.error)
        if got.error is None:
            return f"expected {want} to be raised, but it returned {describe(got.value)}"
        if not raises_like(got.error, like.error):
            return f"expected {want}, but it raised {got.describe_error()}"
        return None
    if got.error is not None:
        return f"raised {got.describe_error()}"
    return (case.compare or compare)(got.value, expected.value, like.value, tol, "the output")


def _changed_inputs(before, after, where="", names=()) -> str | None:
    if _isinstance(before, torch.Tensor):
        a, b = plain(after), plain(before)
        same = a.shape == b.shape and bool(_item(_sum(~_or(_eq(a, b), _and(_isnan(a), _isnan(b))))) == 0)
        return None if same else (where or "tensor")
    if _isinstance(before, torch.nn.Module):
        sb, sa = before.state_dict(), after.state_dict()
        for k in sb:
            if k not in sa or _changed_inputs(sb[k], sa[k]):
                return f"{where or 'module'}.{k}"
        return None
    if _isinstance(before, (tuple, list)):
        for i, (b, a) in enumerate(zip(before, after)):
            label = f"{where}[{i}]" if where else (names[i] if i < _len(names) else f"#{i + 1}")
            problem = _changed_inputs(b, a, label)
            if problem:
                return problem
    return None


@dataclass(frozen=True)
class Case:
    """One oracle check, as data: the call, its seeded inputs, and the tolerance key.

    call is the name of a function of the kata ("softmax") or fn(module, *args) for anything richer.
    inputs(gen) returns the positional arguments. hidden cases take their inputs from the
    instructor's seed. upcast computes the reference's values in float64 on the CPU.
    """

    name: str
    call: str | Callable
    inputs: Callable[[Gen], tuple]
    tol: str = "default"
    hidden: bool = False
    upcast: bool = True
    what: str = ""
    compare: Callable | None = None
    uses: tuple = ()  # katas whose learner code this check runs too, e.g. ("attention",)

    @property
    def label(self) -> str:
        return self.call if _isinstance(self.call, str) else self.name

    def invoke(self, module, args):
        if _isinstance(self.call, str):
            return getattr(module, self.call)(*args)
        return self.call(module, *args)


def cases(items: list[Case]):
    """Turn a list of Cases into one test: one check per case (graders/plugin.py parametrizes it for
    a plain pytest run; the judges read `.cases` without pytest)."""
    def test_case(kata, case):
        kata.check(case)

    test_case.cases = items
    return test_case


def grader_facts(names: list, forbidden: list) -> dict:
    """What the graders define, to check a config against: each named kata's checks as [name,
    tolerance key, hidden], the graders that fail to import (with why), and which of the forbidden
    names this torch lacks."""
    checks, broken = {}, {}
    for name in names:
        try:
            checks[name] = [[c.name, c.tol, c.hidden] for c in kata_cases(name)]
        except ModuleNotFoundError as e:
            if e.name != f"graders.test_{name}":
                broken[name] = f"{type(e).__name__}: {e}"
        except Exception as e:
            broken[name] = f"{type(e).__name__}: {e}"
    return {"checks": checks, "broken": broken, "unknown": sorted(d for d in forbidden if not _exists(d)),
            "torch": torch.__version__}


def _exists(dotted: str) -> bool:
    """Whether a forbidden name names something: the sandbox looks each one up to watch for it."""
    if dotted.startswith("aten."):
        return hasattr(torch.ops.aten, dotted.removeprefix("aten."))
    try:
        _resolve(dotted)
    except (ImportError, AttributeError):
        return False
    return True


def judge(name: str, write: int, submissions: list):
    """Grade one kata for each submission ({"folder": ..., "entry": ...}) in turn: every check in order,
    each event written to fd `write` as a line of JSON as soon as it is known, with the submission's
    index (the runner reads them; a judge cut short leaves the checks it finished)."""
    stream = os.fdopen(write, "w", buffering=1)

    def emit(**event):
        stream.write(json.dumps(event) + "\n")

    try:
        kata = Learner(name)  # the checks, and the outcomes every submission shares
        emit(event="collected", checks=[{"name": c.name, "hidden": c.hidden} for c in kata.cases])
        for i, submission in enumerate(submissions):
            learner = Learner(name, submission["folder"], submission["entry"])
            for case in learner.cases:
                emit(event="start", submission=i, name=case.name)
                try:
                    learner.check(case)
                    emit(event="result", submission=i, name=case.name, passed=True, message="")
                except Fail as e:
                    emit(event="result", submission=i, name=case.name, passed=False, message=str(e))
            learner.close()
    except Exception as e:
        emit(event="finished", error=f"{type(e).__name__}: {e}")
        raise
    _save_cache(*kata.key)
    emit(event="finished")


def _digest(folder: Path) -> bytes:
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.digest()


# The graders' code as this process imported it (a zygote's judges run what the zygote imported, even
# if the files change later); the reference, which judges import themselves, is read when a cache is.
_GRADERS_DIGEST = _digest(curriculum.GRADERS)


@functools.cache
def _cache_file(name: str, device: str, seed: int) -> Path:
    h = hashlib.sha256(f"{torch.__version__} {numpy.__version__} {sys.version} {device} {seed}".encode())
    h.update(_GRADERS_DIGEST + _digest(curriculum.ROOT / "reference"))
    return CACHE / f"{name}-{h.hexdigest()[:24]}.bin"


_CACHED = {}  # (kata, device, seed) -> how many outcomes the cache held when it was read or written


def _load_cache(name: str, device: str, seed: int) -> tuple:
    """({case: (like, expected)}, {(mistake, case): (Outcome, changed)}) as a judge left them."""
    from graders import wire

    try:
        stored = wire.decode_plain(_cache_file(name, device, seed).read_bytes())
        references = {case: (Outcome(from_plain(like)), Outcome(from_plain(expected)))
                      for case, (like, expected) in stored["references"].items()}
        mistakes = {(m, case): (Outcome(from_plain(value)), changed) for m, case, value, changed in stored["mistakes"]}
    except Exception:  # missing, damaged or of another shape: computed again
        references, mistakes = {}, {}
    _CACHED[(name, device, seed)] = len(references) + len(mistakes)
    return references, mistakes


def _save_cache(name: str, device: str, seed: int):
    """Keep the values this process knows for the kata, in place of any other version of its cache."""
    from graders import wire

    key = (name, device, seed)
    if key not in _SHARED or key not in _CACHED:
        return
    _, references, mistakes = _SHARED[key]
    kept = {
        "references": {case: [plain_data(like.value), plain_data(expected.value)]
                       for case, (like, expected) in references.items() if _lasting(like) and _lasting(expected)},
        "mistakes": [[m, case, plain_data(o.value), changed] for (m, case), (o, changed) in mistakes.items() if _lasting(o)],
    }
    count = len(kept["references"]) + len(kept["mistakes"])
    if count == _CACHED[key]:
        return
    path = _cache_file(*key)
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        partial.write_bytes(wire.encode(kept))
        os.replace(partial, path)
        for old in CACHE.glob(f"{name}-*"):
            if old != path and (old.suffix == ".bin" or time.time() - old.stat().st_mtime > 3600):
                old.unlink(missing_ok=True)
    except OSError:
        pass  # a folder it may not write: the next run computes them again
    _CACHED[key] = count


def _lasting(outcome: Outcome) -> bool:
    """Whether an outcome says what the code does whatever the run: a value. An error may be this
    run's limits (memory, the allocator, CUDA), and the checks that expect one are cheap to run."""
    return outcome.error is None


@functools.cache
def kata_passes(name: str, folder: str | None) -> bool:
    """Whether the submission's kata `name` (in folder) passes its public checks."""
    learner = Learner(name, folder)
    try:
        return all(learner.problem(case) is None for case in learner.cases if not case.hidden)
    finally:
        learner.close()


def kata_cases(name: str) -> list[Case]:
    """Every Case of a kata's grader, in order."""
    module = importlib.import_module(f"graders.test_{name}")
    lists = [getattr(obj, "cases", None) for obj in vars(module).values() if callable(obj)]
    return [c for items in lists if _isinstance(items, list) for c in items]


# ------------------------------------------------------------------------------------- snapshots
# Outcomes are stored as plain data (tensors, numbers, strings, lists, dicts) that torch.load reads
# with weights_only=True: nothing in a snapshot can run code or be read back as solution code.


def record_snapshots(name: str, with_hidden: bool = False) -> dict:
    """The reference's outcomes on the public Cases of a kata (and the hidden ones), on the CPU."""
    reference = importlib.import_module(f"reference.{name}")
    out = {}
    for case in kata_cases(name):
        if with_hidden or not case.hidden:
            args = case.inputs(Gen(seed_for(name, case.name, case.hidden)))
            out[case.name] = [_encode(o) for o in reference_outcomes(reference, case, args)]
    return out


@functools.cache
def load_snapshots(name: str) -> dict:
    stored = torch.load(SNAPSHOTS / f"{name}.pt", weights_only=True)
    return {case: [_decode(o) for o in pair] for case, pair in stored.items()}


def _encode(outcome: Outcome) -> dict:
    if outcome.error is not None:
        return {"raises": _type(outcome.error).__name__}
    return {"value": _map(lambda t: _detach(t), outcome.value)}


def _decode(stored: dict) -> Outcome:
    if "raises" in stored:
        return Outcome(error=getattr(builtins, stored["raises"], Exception)())
    return Outcome(stored["value"])
