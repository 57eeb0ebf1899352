"""`kata calibrate`: how much room each check's tolerance leaves between right and wrong answers.

For every check (every Case of graders/test_<kata>.py) this runs the reference, every catalogued
variant and every catalogued mistake (reference/<kata>_catalogue.py) on many seeds, in float32 and
float64, on the CPU and on CUDA when there is one, and reports for the check:
  * the largest error of a correct implementation (the reference and the variants),
  * the smallest error on which the check fails a mistake (over the runs it fails),
  * the margin on each side, as a ratio: how many times the tolerance could shrink before a
    correct implementation fails, and how many times it could grow before a run it fails would pass.

Trusted instructor code: the catalogue runs in this process, without the guards that graded
learner code runs under (forbidden APIs are the business of tests/test_katas.py, not of tolerances).
Changing the inputs in place is the one guard kept, because it decides checks on its own.

Error measure. Errors are normalised by the check's own tolerance, so that checks are comparable:
    max over entries of |got - expected| / (atol + rtol * |expected|)
against the reference computed in float64 when the check upcasts (as the harness does); <= 1
passes. A wrong type, shape, dtype or device, NaN where the expected value is finite, an exception,
a changed input or a wrong non-float value is an infinite error: it is caught whatever the
tolerance. The check's own verdict (harness.compare_outcomes, custom compare included) decides
pass and fail. The normalised error is shown only for a check where it agrees with that verdict
(error <= 1 exactly when the check passes) on every run; a custom compare that judges otherwise
(e.g. integer codes allowed to differ by one on a fraction of entries) makes the check
verdict-only: it reports whether every variant passes and how many mistakes it catches, and its
margins are "n/a". A check whose reference output holds no float at all is "exact": its
tolerance plays no part, so it has no margins either.

Seeds. Seed #0 of a check is the seed the grader uses (seed_for); seeds #1.. are other seeds of
the same check. A check whose inputs never touch their Gen (no draw, no look at gen.seed) gets the
same inputs from every seed and runs once.

float32 and float64. Each check runs on its inputs as given and again with its float inputs (tensors
and modules) cast to the other of float32 / float64, marked "*". The cast is skipped where it means
nothing: when the inputs hold no float32 or float64 values, or both. It is dropped, for every seed,
when the reference raises on the cast inputs (and not on the given ones), or when the reference
itself fails the check in the cast dtype: then the tolerance was chosen for the given dtype only
(as layer_norm's float64 tolerance is). Integer codes need no rule of their own: a check that
compares codes against the reference run in the cast dtype is still a fair check.

CUDA. Where torch.cuda.is_available(), every run is repeated with the inputs on "cuda", as
`kata grade --device cuda` runs them (harness.to_device), against the same float64 CPU values.

Flags.
  * VARIANT FAILS: the reference or a variant fails the check on some run (any dtype, any device).
  * SLIPS: a mistake that the check catches on some run (in a dtype) passes it on another run in
    that dtype. The per-check smallest mistake error is taken over these mistakes only (a check is
    meant to catch some mistakes, not all of them), and over the runs the check fails: a run that
    slips is told by this flag, and is often one where the mistake's output equals the reference's.
  * THIN: a margin below 10x.
  * ESCAPES (per kata): a mistake that passes every check of the kata for some seed #i (the checks
    as graded, in their given dtypes, all on seed #i) -- the grader would give it full marks.
    A mistake is caught when it fails at least one check on every seed and device.
Plain test functions (not Cases) are not calibrated; the report counts them.
"""

import copy
import importlib
import math
import zlib
from dataclasses import dataclass, field

import torch

from graders import curriculum, harness
from graders.harness import Case, Gen, clone, compare, compare_outcomes, reference_outcome, reference_outcomes
from graders.harness import seed_for, to_device

SEEDS = 20
THIN = 10.0  # a margin below this many times the tolerance is flagged
SAFE = 3.0  # --suggest proposes no tolerance that leaves less than this on either side
_INF = math.inf
_ANY_TOL = {"atol": _INF, "rtol": _INF}  # harness.compare with this only fails what no tolerance passes
_FLOATS = (torch.float32, torch.float64)


# ---------------------------------------------------------------------------------------- checks


def checks(kata: str) -> tuple[list[Case], int]:
    """The Cases of graders/test_<kata>.py, and how many plain (non-Case) checks it has besides."""
    found = harness.kata_cases(kata)
    module = importlib.import_module(f"graders.test_{kata}")
    plain = 0
    for name, fn in vars(module).items():
        if name.startswith("test") and callable(fn) and not isinstance(getattr(fn, "cases", None), list):
            marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
            plain += math.prod(len(m.args[1]) for m in marks)  # 1 when not parametrized
    return found, plain


class _SeedProbe(Gen):
    """A Gen that notices whether inputs(gen) used its seed: drew from the generator or read gen.seed."""

    def __init__(self, seed):
        self.read = False
        super().__init__(seed)
        self.start = self.g.get_state()

    @property
    def seed(self):
        self.read = True
        return self._seed

    @seed.setter
    def seed(self, value):
        self._seed = value

    def used(self) -> bool:
        return self.read or not torch.equal(self.g.get_state(), self.start)


def seeds_of(kata: str, case: Case, n: int) -> list[int]:
    """Seed #0 is the grader's; a check whose inputs ignore the seed gets that one only."""
    first = seed_for(kata, case.name, case.hidden)
    probe = _SeedProbe(first)
    case.inputs(probe)
    if not probe.used():
        return [first]
    return [first] + [zlib.crc32(f"calibrate/{kata}/{case.name}/{i}".encode()) for i in range(1, n)]


# ------------------------------------------------------------------------------------ dtype casts


def _float_dtypes(x) -> set:
    seen = set()

    def note(t):
        tensors = list(t.parameters()) + list(t.buffers()) if isinstance(t, torch.nn.Module) else [t]
        seen.update(u.dtype for u in tensors if u.is_floating_point())
        return t

    harness._map(note, x)
    return seen


def _dtype_name(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def cast_target(args):
    """The dtype to cast the inputs to: the other of float32 / float64, or None where there is none."""
    seen = _float_dtypes(args) & set(_FLOATS)
    if len(seen) != 1:
        return None
    return torch.float64 if seen == {torch.float32} else torch.float32


def cast(args, dtype):
    """The inputs with every float32 / float64 tensor and module cast to dtype (copies; args unchanged)."""

    def one(t):
        if isinstance(t, torch.nn.Module):
            return copy.deepcopy(t).to(dtype)
        if t.dtype in _FLOATS:
            return t.detach().to(dtype).requires_grad_(t.requires_grad)
        return t

    return harness._map(one, args)


def _given_label(args) -> str:
    seen = _float_dtypes(args)
    return "+".join(sorted(_dtype_name(d) for d in seen)) or "as given"  # no float inputs


# ------------------------------------------------------------------------------------ error measure


def _has_floats(value) -> bool:
    """Whether harness.compare would use a tolerance on this output (it compares everything else exactly)."""
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() or value.is_complex()
    if isinstance(value, (tuple, list)):
        return any(_has_floats(v) for v in value)
    return isinstance(value, float)


def _leaf_error(actual, expected, like, tol) -> float:
    """Normalised error of outputs whose structure and non-float values already match."""
    if isinstance(like, torch.Tensor):
        if not (like.is_floating_point() or like.is_complex()):
            return 0.0
        a = harness.plain(actual).cpu().to(torch.float64)
        e = harness.plain(expected).cpu().to(torch.float64)
        same = (a == e) | (a.isnan() & e.isnan())
        err = torch.where(same, 0.0, (a - e).abs())
        ratio = err / (tol["atol"] + tol["rtol"] * e.abs())
        ratio = torch.where(ratio.isnan(), 0.0, ratio)  # 0/0 and inf/inf: within the bound, as compare has it
        return ratio.max().item() if ratio.numel() else 0.0
    if isinstance(like, (tuple, list)):
        return max((_leaf_error(a, e, l, tol) for a, e, l in zip(actual, expected, like)), default=0.0)
    if isinstance(like, float):
        err, bound = abs(actual - expected), tol["atol"] + tol["rtol"] * abs(expected)
        return 0.0 if err == 0 else (err / bound if bound else _INF)
    return 0.0


def normalised_error(got, expected, like, tol, passed: bool = False) -> float:
    """max |got - expected| / (atol + rtol |expected|); inf for what no tolerance would pass.

    passed: harness.compare passed it at tol, so that its structure is known to be right."""
    if like.error is not None:
        return 0.0 if got.error is not None and isinstance(got.error, type(like.error)) else _INF
    if got.error is not None:
        return _INF
    try:
        if not passed and compare(got.value, expected.value, like.value, _ANY_TOL, "") is not None:
            return _INF
        return _leaf_error(got.value, expected.value, like.value, tol)
    except Exception:
        return _INF


def _verdict(got, expected, like, case, tol) -> bool:
    try:
        return compare_outcomes(got, expected, like, case, tol) is None
    except Exception:  # a compare that crashes on an odd output fails the check in the grader too
        return False


# --------------------------------------------------------------------------------------- results


@dataclass
class Run:
    err: float
    passed: bool
    seed: int  # the seed's index: #0 is the grader's own
    device: str


@dataclass
class Row:
    """One check's calibration."""

    case: Case
    tol: dict
    modes: list  # dtype labels of the runs kept, cast ones marked "*"
    seeds: int
    numeric: bool = True  # the normalised error agrees with the check's verdict on every run
    exact: bool = True  # no output holds a float: the tolerance plays no part
    variant: tuple = (0.0, "", "")  # (largest error, implementation, where) over reference and variants
    mistake: tuple | None = None  # (smallest error, mistake, where) over the mistakes this check catches
    caught: set = field(default_factory=set)  # the mistakes this check fails on some run
    variant_fails: list = field(default_factory=list)  # "name fails k of n runs (...)", reference and variants
    slips: list = field(default_factory=list)  # per dtype: the caught mistakes that pass some runs
    notes: list = field(default_factory=list)  # why a cast was dropped

    @property
    def margins(self) -> tuple[float, float] | None:
        """(variant side, mistake side): how many times the tolerance may shrink / grow; None: n/a."""
        if self.exact or not self.numeric:
            return None
        var = 1 / self.variant[0] if self.variant[0] else _INF
        mis = self.mistake[0] if self.mistake else _INF
        return var, mis

    def flag_lines(self) -> list[str]:
        """Each flag of this check, in words."""
        out = [f"VARIANT FAILS: {v}" for v in self.variant_fails] + [f"SLIPS: {s}" for s in self.slips]
        m = self.margins
        if m and m[0] < THIN and not self.variant_fails:
            out.append(f"THIN: variant side {_ratio(m[0])} ({self.variant[1]}, {self.variant[2]})")
        if m and m[1] < THIN and not self.slips:
            out.append(f"THIN: mistake side {_ratio(m[1])} ({self.mistake[1]}, {self.mistake[2]})")
        return out

    def flags(self) -> str:
        """The flags, short, for the table's column."""
        words = [line.split(":")[0] for line in self.flag_lines()]
        return ", ".join(f"{w} x{words.count(w)}" if words.count(w) > 1 else w for w in dict.fromkeys(words))


@dataclass
class Suggestion:
    """What --suggest proposes for one tolerance key of a kata: the config's value scaled by `scale` (atol
    and rtol together, which divides every normalised error by it), judged over every check of the key."""

    key: str
    tol: dict  # the config's value now
    checks: int  # the checks that use the key
    measured: int  # those with margins: not exact, not verdict-only
    variant: tuple | None = None  # (error, implementation, check, where): the worst over the measured checks
    mistake: tuple | None = None  # (error, mistake, check, where): the smallest caught one; None: none caught
    scale: float | None = None  # 1.0: keep the config's value; None: no value will do (or nothing measured)

    def margins(self, scale: float = 1.0) -> tuple[float, float]:
        """(variant side, mistake side) that the tolerance tol * scale leaves."""
        lo, hi = self.variant[0], (self.mistake[0] if self.mistake else _INF)
        return (scale / lo if lo else _INF), hi / scale

    @property
    def value(self) -> dict:
        return {k: v * self.scale if k in ("atol", "rtol") else v for k, v in self.tol.items()}


def suggest_tolerances(rows: list) -> list[Suggestion]:
    """One Suggestion per tolerance key of these rows (a kata's), in the order the checks first use them."""
    by_key = {}
    for r in rows:
        by_key.setdefault(r.case.tol, []).append(r)
    out = []
    for key, rs in by_key.items():
        measured = [r for r in rs if r.margins is not None]
        s = Suggestion(key, rs[0].tol, len(rs), len(measured))
        if measured:
            worst = max(measured, key=lambda r: r.variant[0])
            s.variant = (worst.variant[0], worst.variant[1], worst.case.name, worst.variant[2])
            caught = [r for r in measured if r.mistake is not None]
            if caught:
                best = min(caught, key=lambda r: r.mistake[0])
                s.mistake = (best.mistake[0], best.mistake[1], best.case.name, best.mistake[2])
            s.scale = _scale(s)
        out.append(s)
    return out


def _scale(s: Suggestion) -> float | None:
    """1 where the config's value already leaves THIN on both sides; else the geometric middle of the two
    bounds, to one significant digit (two where one would leave under SAFE); None where that leaves under SAFE."""
    if min(s.margins()) >= THIN:
        return 1.0
    lo, hi = s.variant[0], (s.mistake[0] if s.mistake else _INF)
    if lo == _INF or hi <= lo:
        return None  # no tolerance passes every variant and fails the caught mistakes
    if lo and hi < _INF:
        middle = math.sqrt(lo * hi)
    elif hi < _INF:  # the variants are exact
        middle = hi / THIN
    else:  # no mistake to catch
        middle = lo * THIN
    for digits in (1, 2):
        scale = float(f"{middle:.{digits}g}")
        if min(s.margins(scale)) >= SAFE:
            return scale
    return None


@dataclass
class KataReport:
    name: str
    rows: list
    variants: list  # names, the reference first
    mistakes: list
    seeds: int
    devices: list
    plain: int  # plain test functions, not calibrated
    escapes: dict  # mistake -> the (seed index, device) runs on which every check passes it

    def problems(self) -> list[str]:
        """What the project's tests fail on: a correct implementation failing, a mistake escaping."""
        out = [f"{self.name}/{r.case.name}: {v}" for r in self.rows for v in r.variant_fails]
        out += [f"{self.name}: mistake {m} passes every check on {_runs(runs)}" for m, runs in self.escapes.items()]
        return out


def _where(seed: int, mode: str, device: str) -> str:
    return f"seed #{seed}, {mode}" + ("" if device == "cpu" else f", {device}")


def _runs(runs) -> str:
    seeds = sorted({s for s, _ in runs})
    devices = sorted({d for _, d in runs})
    shown = ", ".join(f"#{s}" for s in seeds[:5]) + (", ..." if len(seeds) > 5 else "")
    return f"seed{'s' if len(seeds) > 1 else ''} {shown}" + ("" if devices == ["cpu"] else f" ({', '.join(devices)})")


# ----------------------------------------------------------------------------------- calibration


def _devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def calibrate_case(kata: str, case: Case, tol: dict, reference, impls: dict, mistakes: dict, n_seeds: int,
                   devices: list) -> tuple[Row, dict]:
    """One check over every seed, dtype and device. Returns its Row and, per mistake, the given-dtype
    runs (seed index, device) on which this check fails it."""
    seeds = seeds_of(kata, case, n_seeds)
    first = case.inputs(Gen(seeds[0]))
    target = cast_target(first)
    given = _given_label(first)
    modes = [given] + ([_dtype_name(target) + "*"] if target is not None else [])
    runs = {mode: {name: [] for name in [*impls, *mistakes]} for mode in modes}
    agree = dict.fromkeys(modes, True)  # the normalised error says what the verdict says, on every run
    exact = dict.fromkeys(modes, True)  # no reference output holds a float
    dropped, raises = "", {}

    for i, seed in enumerate(seeds):
        inputs = case.inputs(Gen(seed))
        for mode in list(modes):
            source = inputs if mode == given else cast(inputs, target)
            for device in devices:
                args = to_device(clone(source), device)
                like, expected = reference_outcomes(reference, case, args)  # as Learner.check has them
                if mode == given:
                    raises[device] = like.error is not None  # then the check wants a raise, in any dtype
                else:  # is the cast meaningful? (see the module's docstring)
                    if like.error is not None and not raises[device]:
                        dropped = f"no {mode[:-1]} run: the reference raises {type(like.error).__name__} on it"
                    elif not _verdict(like, expected, like, case, tol):
                        dropped = f"no {mode[:-1]} run: the tolerance is for {given}, the reference itself fails it"
                    if dropped:
                        modes.remove(mode)
                        del runs[mode]
                        break
                exact[mode] = exact[mode] and (like.error is not None or not _has_floats(like.value))
                for name, module in [*impls.items(), *mistakes.items()]:
                    if module is reference:
                        got, changed = like, False  # the reference as a learner: exactly `like`
                    else:
                        mine = clone(args)
                        got = reference_outcome(module, case, mine)
                        changed = harness._changed_inputs(args, mine) is not None
                    passed = not changed and _verdict(got, expected, like, case, tol)
                    err = _INF if changed else normalised_error(got, expected, like, tol,
                                                                  passed and case.compare is None)
                    agree[mode] = agree[mode] and (err <= 1) == passed
                    runs[mode][name].append(Run(err, passed, i, device))

    row = Row(case, tol, modes, len(seeds), numeric=all(agree[m] for m in modes),
              exact=all(exact[m] for m in modes), notes=[dropped] if dropped else [])
    worst = (-1.0, "", "")
    for mode in modes:
        slips = []
        for name in impls:
            for r in runs[mode][name]:
                if r.err > worst[0]:
                    worst = (r.err, name, _where(r.seed, mode, r.device))
            failed = [r for r in runs[mode][name] if not r.passed]
            if failed:
                row.variant_fails.append(f"{name} fails {len(failed)} of {len(runs[mode][name])} runs "
                                         f"(e.g. {_where(failed[0].seed, mode, failed[0].device)})")
        for name in mistakes:
            rs = runs[mode][name]
            if all(r.passed for r in rs):
                continue  # this check is not meant to catch this mistake in this dtype
            row.caught.add(name)
            best = min((r for r in rs if not r.passed), key=lambda r: r.err)
            if row.mistake is None or best.err < row.mistake[0]:
                row.mistake = (best.err, name, _where(best.seed, mode, best.device))
            slipped = [r for r in rs if r.passed]
            if slipped:
                slips.append(f"{name} {len(slipped)}/{len(rs)} (e.g. seed #{slipped[0].seed})")
        if slips:
            row.slips.append(f"caught mistakes pass some runs ({mode}): {', '.join(slips)}")
    row.variant = worst
    # A check that runs once fails its mistakes on every seed of the kata.
    caught = {name: {(s, r.device) for r in runs[given][name] if not r.passed
                     for s in (range(n_seeds) if len(seeds) == 1 else [r.seed])} for name in mistakes}
    return row, caught


def calibrate(name: str, n_seeds: int = SEEDS, devices: list | None = None) -> KataReport:
    """The calibration of one kata's checks against its catalogue."""
    devices = devices or _devices()
    learner = harness.Learner(name)
    cat = learner.catalogue()
    impls = {"reference": learner.reference, **{e.name: harness.catalogue_module(name, e.name) for e in cat.VARIANTS}}
    mistakes = {e.name: harness.catalogue_module(name, e.name) for e in cat.MISTAKES}
    cases, plain = checks(name)
    rows, caught = [], {m: set() for m in mistakes}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the checks' tensors are tiny: more threads only add overhead, often 10x
    try:
        for case in cases:
            row, fails = calibrate_case(name, case, learner.tol(case.tol), learner.reference, impls, mistakes,
                                        n_seeds, devices)
            rows.append(row)
            for m, runs in fails.items():
                caught[m] |= runs
    finally:
        torch.set_num_threads(threads)
    every = {(s, d) for s in range(n_seeds) for d in devices}
    escapes = {m: sorted(every - runs) for m, runs in caught.items() if every - runs}
    return KataReport(name, rows, list(impls), list(mistakes), n_seeds, devices, plain, escapes)


# ------------------------------------------------------------------------------------------ output


def _num(x: float) -> str:
    return "0" if x == 0 else "inf" if x == _INF else f"{x:.2g}"


def _ratio(x: float) -> str:
    return "inf" if x == _INF else f"{x:.3g}x"


def _tol(tol: dict) -> str:
    text = f"{tol.get('atol', 0):.2g}/{tol.get('rtol', 0):.2g}"
    extra = " ".join(f"{k}={v:g}" for k, v in tol.items() if k not in ("atol", "rtol"))
    return f"{text} {extra}".strip()


def table(report: KataReport, suggest: bool = False) -> str:
    """The kata's calibration as a plain table, its flags in words below it."""
    head = ["check", "tolerance (atol/rtol)", "runs", "worst variant", "best caught mistake", "margins var / mis", "flags"]
    lines = []
    for r in report.rows:
        if r.margins is None:  # verdict only: say what passed, not how far
            var = "some fail" if r.variant_fails else "all pass"
            mis = f"{len(r.caught)} caught" if r.caught else "-"
            margins = "n/a (exact)" if r.exact else "n/a (verdict only)"
        else:
            var = f"{_num(r.variant[0])} {r.variant[1]}"
            mis = "-" if r.mistake is None else f"{_num(r.mistake[0])} {r.mistake[1]}"
            v, m = r.margins
            margins = f"{_ratio(v)} / {_ratio(m) if r.mistake else '-'}"
        lines.append([r.case.name, f"{r.case.tol} {_tol(r.tol)}", f"{'+'.join(r.modes)} x{r.seeds}", var, mis, margins,
                      r.flags()])
    widths = [max(len(str(c)) for c in col) for col in zip(head, *lines)]
    fmt = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    kata = curriculum.kata(report.name)
    out = [
        f"{kata.title} ({report.name}): {len(report.rows)} checks; reference + {len(report.variants) - 1} variants, "
        f"{len(report.mistakes)} mistakes; up to {report.seeds} seeds on {', '.join(report.devices)}",
        fmt(head),
        fmt(["-" * w for w in widths]),
        *map(fmt, lines),
    ]
    details = [f"  {r.case.name}: {p}" for r in report.rows for p in r.flag_lines() + r.notes]
    if details:
        out += ["", *details]
    out.append("")
    if report.escapes:
        out += [f"ESCAPES: mistake {m} passes every check on {_runs(runs)}" for m, runs in report.escapes.items()]
    else:
        out.append(f"caught: each of the {len(report.mistakes)} mistakes fails some check on every seed")
    if report.plain:
        out.append(f"not calibrated: {report.plain} plain checks")
    if suggest:
        out += ["", f"suggested [{report.name}.tolerance] (nothing is written; copy what you accept into graders/config.toml):"]
        out += [f"  {suggestion_line(s)}" for s in suggest_tolerances(report.rows)]
    return "\n".join(out)


def _entry(tol: dict) -> str:
    """A tolerance as the config writes it."""
    return "{ " + ", ".join(f"{k} = {v:.6g}" for k, v in tol.items()) + " }"


def _checks(n: int) -> str:
    return f"{n} check{'' if n == 1 else 's'}"


def suggestion_line(s: Suggestion) -> str:
    """A tolerance key's proposal in words: the value, the margins it leaves and what bounds each side."""
    if s.variant is None:
        return f"{s.key}: n/a: no error measured ({_checks(s.checks)}, each exact or verdict-only)"
    lo, hi = s.variant[0], (s.mistake[0] if s.mistake else _INF)
    mistake = "none" if s.mistake is None else f"{_num(hi)} {s.mistake[1]} ({s.mistake[2]}, {s.mistake[3]})"
    bounds = f"worst variant {_num(lo)} {s.variant[1]} ({s.variant[2]}, {s.variant[3]}), best caught mistake {mistake}"
    if s.measured < s.checks:
        bounds += f"; {_checks(s.checks - s.measured)} of {s.checks} not measured (exact or verdict-only)"
    if s.scale is None:
        if lo == _INF:
            why = "a variant fails whatever the tolerance"
        elif hi <= lo:
            why = "the best caught mistake is no further off than the worst variant"
        else:
            why = (f"the best caught mistake is only {_ratio(hi / lo)} beyond the worst variant, and {SAFE:g}x each "
                   f"side takes {SAFE * SAFE:g}x")
        return f"{s.key}: none: {why}; change a check, not the tolerance. {bounds}"
    v, m = s.margins(s.scale)
    said = f"{_entry(s.tol)}  keep" if s.scale == 1 else f"{_entry(s.value)}  (now {_entry(s.tol)})"
    return f"{s.key} = {said}  margins {_ratio(v)} / {_ratio(m)}: {bounds}"


LEGEND = """\
Errors are in units of each check's tolerance: max |got - expected| / (atol + rtol |expected|), <= 1 passes.
Margins: how many times the tolerance could shrink before the worst variant fails / grow before the closest
run it fails of a caught mistake passes. runs: the dtypes run (* = the inputs cast to it) and the seeds
per dtype.
Flags: VARIANT FAILS, SLIPS (a mistake the check catches on some runs passes on others), THIN (a margin
under 10x); ESCAPES: a mistake that passes every check of the kata on some seed."""

SUGGEST_LEGEND = f"""\
--suggest: one value per tolerance key, as the config holds it, with the margins it leaves: atol and rtol
scaled together divide every error above by one factor, so those margins are exact. Its bounds are over
every check of the key: the worst variant below, the best caught mistake above (each check keeps failing
every run it fails), and the value sits half-way between them (geometrically). keep: the config's value, which
leaves {THIN:g}x or more on both sides or is that half-way value itself. none: no value leaves {SAFE:g}x on both
sides, so none is proposed; change the check (its inputs, or what it compares), not the tolerance. n/a: no
check of the key measures an error."""


def run(names=None, n_seeds: int = SEEDS, suggest: bool = False):
    """Yields each named kata's table (all katas by default), as it is done; never writes the config."""
    katas = [curriculum.kata(n) for n in names] if names else list(curriculum.katas())
    if n_seeds < 1:
        raise curriculum.UsageError(f"--seeds {n_seeds}: give at least 1 (calibrating wants {SEEDS}, the default)")
    yield LEGEND + ("\n" + SUGGEST_LEGEND if suggest else "")
    for kata in katas:
        yield table(calibrate(kata.name, n_seeds), suggest)
