"""`kata mutate`: how many small, plausible wrong versions of the reference the checks catch.

A mutant is reference/<kata>.py with one change, made on its syntax tree by one operator:
  arith      an arithmetic operator swapped (+ -, * /, @ *, ** *), a unary - ~ `not` dropped
  compare    a comparison swapped (< <=, < >=, == !=, is / is not, in / not in)
  constant   a number changed: 0, 1, +-1, x2, /2, sign; True / False flipped; inf made finite (1e9)
  default    the same, on a keyword default of a function (eps=1e-5, length_penalty=1.0, ...)
  reduction  a reduction's dim dropped or made -1, its keepdim flipped, added or dropped
  floordiv   / made //
  drop       a call dropped: detach, clone, contiguous, a cast (.float(), .to(...), int(...), a
             dtype= or device= argument), a transpose (.transpose(...), .t(), .T, .mT)
  args       two neighbouring positional arguments of a call swapped
  statement  a statement of a function removed
  reorder    clamp, round and a cast applied in the other order (round(x).clamp() -> round(x.clamp()))
Mutants that do not compile or read the same as the reference are left out. Each is graded with
the kata's checks through the normal runner, exactly as a learner's file, the other katas it builds
on being the reference's. A mutant with full marks survives: either a hole in the checks (add or
change a check) or equivalent to the reference (record its id in the catalogue's EQUIVALENT, with
the reason; tests/test_mutate.py proves each record on many seeds and dtypes).

A mutant's id is `qualname:operator:hash`, the hash taken over the mutated function's code alone,
so that it does not change when unrelated code moves.
"""

import ast
import contextlib
import copy
import difflib
import hashlib
import importlib
import multiprocessing
import os
import signal
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

from graders import curriculum

REFERENCE = curriculum.ROOT / "reference"

_ARITH = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.FloorDiv: ast.Div,
          ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.MatMult: ast.Mult}
# Each comparison's boundary (< to <=) and its negation (< to >=).
_COMPARE = {ast.Lt: (ast.LtE, ast.GtE), ast.LtE: (ast.Lt, ast.Gt), ast.Gt: (ast.GtE, ast.LtE),
            ast.GtE: (ast.Gt, ast.Lt), ast.Eq: (ast.NotEq,), ast.NotEq: (ast.Eq,), ast.Is: (ast.IsNot,),
            ast.IsNot: (ast.Is,), ast.In: (ast.NotIn,), ast.NotIn: (ast.In,)}
_REDUCTIONS = {"sum", "mean", "amax", "amin", "max", "min", "prod", "logsumexp", "std", "var", "norm", "all",
               "any", "argmax", "argmin"}
_DROPPED_METHODS = {"detach", "clone", "contiguous", "float", "double", "half", "bfloat16", "int", "long", "bool",
                    "to", "type", "transpose", "t", "swapaxes"}
_DROPPED_ATTRIBUTES = {"T", "mT"}
_DROPPED_FUNCTIONS = {"int", "float"}
_DROPPED_KEYWORDS = {"dtype", "device"}
_STEPS = {"clamp", "clip", "round", "to", "float", "double", "half", "int", "long"}  # reorder's operations
_BIG = 1e9  # what an infinity becomes: a finite number that is merely large


@dataclass(frozen=True)
class Mutant:
    id: str
    kata: str
    operator: str
    source: str  # the mutated reference module, as code
    diff: str  # against the reference, a few lines

    def learner_source(self) -> str:
        """The mutant as a learner's kata file (kata code imports other katas as katas.<name>)."""
        return curriculum.as_learner_file(self.source)

    def module(self) -> types.ModuleType:
        """The mutant imported in this process, for trusted uses such as the equivalence test."""
        module = types.ModuleType(f"mutant.{self.kata}")
        exec(compile(self.source, f"<mutant {self.id}>", "exec"), module.__dict__)
        return module


# ---------------------------------------------------------------------------------- the operators


def _number(node) -> float | int | None:
    """The value of a numeric literal: 3, -0.5, float("-inf"); None for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _number(node.operand)
        return None if inner is None else -inner
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "float"
            and len(node.args) == 1 and not node.keywords and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)):
        try:
            return float(node.args[0].value)
        except ValueError:
            return None
    return None


def _literal(value) -> ast.expr:
    if value in (float("inf"), float("-inf")):
        return ast.Call(ast.Name("float", ast.Load()), [ast.Constant(str(value))], [])
    if value < 0:
        return ast.UnaryOp(ast.USub(), ast.Constant(-value))
    return ast.Constant(value)


def _numbers(value) -> list:
    """0, 1, +-1, x2, /2 and the sign change of value, of its type; an infinity also becomes finite."""
    if value in (float("inf"), float("-inf")):
        return [0.0, 1.0, -value, _BIG if value > 0 else -_BIG]
    half = value // 2 if isinstance(value, int) else value / 2
    out = [type(value)(0), type(value)(1), value + 1, value - 1, value * 2, half, -value]
    return [v for i, v in enumerate(out) if v != value and v not in out[:i]]


def _name(call: ast.Call) -> str | None:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None


def _is_method(call: ast.Call) -> bool:
    """x.sum(...) rather than torch.sum(x, ...): the operand is the receiver, not the first argument."""
    f = call.func
    return isinstance(f, ast.Attribute) and not (isinstance(f.value, ast.Name) and f.value.id in ("torch", "math"))


def _with(node, **fields):
    new = copy.copy(node)
    for key, value in fields.items():
        setattr(new, key, value)
    return new


def _reductions(call: ast.Call):
    """A reduction's dim dropped or made -1, its keepdim flipped, added or dropped."""
    keywords = {k.arg: k for k in call.keywords}
    first = 0 if _is_method(call) else 1  # where a positional dim sits
    if "dim" in keywords:
        others = [k for k in call.keywords if k.arg != "dim"]
        yield _with(call, keywords=[k for k in others if k.arg != "keepdim"])
        if _number(keywords["dim"].value) is None:  # a constant dim is the constant operator's
            yield _with(call, keywords=[ast.keyword("dim", _literal(-1)), *others])
    elif len(call.args) > first:
        yield _with(call, args=call.args[:first])
        if _number(call.args[first]) is None:
            yield _with(call, args=[*call.args[:first], _literal(-1), *call.args[first + 1:]])
    else:
        return
    if "keepdim" in keywords:
        value = keywords["keepdim"].value
        flipped = ast.keyword("keepdim", ast.Constant(not value.value)) if isinstance(value, ast.Constant) else None
        yield _with(call, keywords=[k for k in call.keywords if k.arg != "keepdim"])
        if flipped:
            yield _with(call, keywords=[flipped if k.arg == "keepdim" else k for k in call.keywords])
    else:
        yield _with(call, keywords=[*call.keywords, ast.keyword("keepdim", ast.Constant(True))])


def _operand(node):
    """(the expression a clamp / round / cast step applies to, a function rebuilding the step on
    another operand), or None when node is no such step."""
    if not isinstance(node, ast.Call) or _name(node) not in _STEPS:
        return None
    if _is_method(node):
        return node.func.value, lambda x: _with(node, func=_with(node.func, value=x))
    if node.args and isinstance(node.func, ast.Attribute):  # torch.round(x), torch.clamp(x, lo, hi)
        return node.args[0], lambda x: _with(node, args=[x, *node.args[1:]])
    return None


def _expression_mutants(node, default: bool):
    """(operator, replacement) for an expression node."""
    number = _number(node)
    if number is not None:
        for value in _numbers(number):
            yield "default" if default else "constant", _literal(value)
        return  # its parts (the - of -1, the "inf" of float("inf")) are not mutated again
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        yield "default" if default else "constant", ast.Constant(not node.value)
    if isinstance(node, ast.BinOp):
        if type(node.op) in _ARITH:
            yield "arith", _with(node, op=_ARITH[type(node.op)]())
        if isinstance(node.op, ast.Div):
            yield "floordiv", _with(node, op=ast.FloorDiv())
    if isinstance(node, ast.UnaryOp):
        yield "arith", node.operand
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for swapped in _COMPARE.get(type(op), ()):
                yield "compare", _with(node, ops=[*node.ops[:i], swapped(), *node.ops[i + 1:]])
    if isinstance(node, ast.Attribute) and node.attr in _DROPPED_ATTRIBUTES:
        yield "drop", node.value
    if isinstance(node, ast.Call):
        name = _name(node)
        if name in _REDUCTIONS or any(k.arg == "keepdim" for k in node.keywords):
            for mutant in _reductions(node):
                yield "reduction", mutant
        if _is_method(node) and name in _DROPPED_METHODS:
            yield "drop", node.func.value
        if isinstance(node.func, ast.Name) and name in _DROPPED_FUNCTIONS and len(node.args) == 1:
            yield "drop", node.args[0]
        for i, k in enumerate(node.keywords):
            if k.arg in _DROPPED_KEYWORDS:
                yield "drop", _with(node, keywords=node.keywords[:i] + node.keywords[i + 1:])
        for i in range(len(node.args) - 1):
            a, b = node.args[i], node.args[i + 1]
            if not isinstance(a, ast.Starred) and not isinstance(b, ast.Starred):
                yield "args", _with(node, args=[*node.args[:i], b, a, *node.args[i + 2:]])
        step = _operand(node)
        inner = step and _operand(step[0])
        if inner:  # outer(inner(x)) -> inner(outer(x))
            yield "reorder", inner[1](step[1](inner[0]))


# --------------------------------------------------------------------------------------- the walk


@dataclass
class _Site:
    """One mutation: the node at parent.field[position] (position None: not a list) becomes
    replacement (None: the statement is removed)."""

    parent: ast.AST
    field: str
    position: int | None
    replacement: ast.AST | None
    operator: str
    qualname: str  # of the function (else class, else "<module>") the node is in
    unit: ast.AST  # the function (else the top-level statement) it is in: what the id hashes

    def apply(self) -> ast.AST:
        """Makes the change in place; returns what it replaced, for undo()."""
        container = getattr(self.parent, self.field)
        if self.position is None:
            setattr(self.parent, self.field, self.replacement)
            return container
        old = container[self.position]
        if self.replacement is None:
            del container[self.position]
        else:
            container[self.position] = self.replacement
        return old

    def undo(self, old: ast.AST):
        container = getattr(self.parent, self.field)
        if self.position is None:
            setattr(self.parent, self.field, old)
        elif self.replacement is None:
            container.insert(self.position, old)
        else:
            container[self.position] = old


def _is_docstring(node) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _sites(tree: ast.Module) -> list[_Site]:
    """Every mutation of the module, in the file's order."""
    sites = []

    def visit(node, parent, field, position, qualname, unit, in_function, default, alone):
        function = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        if function or isinstance(node, ast.ClassDef):
            qualname = node.name if qualname == "<module>" else f"{qualname}.{node.name}"
        unit = node if function or unit is None else unit
        if isinstance(node, ast.stmt) and in_function:
            sites.append(_Site(parent, field, position, ast.Pass() if alone else None, "statement", qualname, unit))
        if isinstance(node, ast.expr):
            sites.extend(_Site(parent, field, position, new, op, qualname, unit)
                         for op, new in _expression_mutants(node, default))
        if _number(node) is not None:
            return  # a literal is mutated whole: not the - of -1, nor the "inf" of float("inf")
        for name, value in ast.iter_fields(node):
            if name in ("annotation", "returns"):
                continue
            items = value if isinstance(value, list) else [value]
            statements = [v for v in items if isinstance(v, ast.stmt) and not _is_docstring(v)]
            for i, item in enumerate(items):
                if isinstance(item, ast.AST) and not _is_docstring(item):
                    visit(item, node, name, i if isinstance(value, list) else None, qualname,
                          None if node is tree else unit, in_function or function and name == "body",
                          default or isinstance(node, ast.arguments) and name in ("defaults", "kw_defaults"),
                          len(statements) == 1)

    visit(tree, None, "", None, "<module>", None, False, False, False)
    return sites


# ------------------------------------------------------------------------------------ the mutants


def _diff(before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=1)
    return "\n".join(list(lines)[2:])  # no file headers: the hunks alone


def mutants(kata: str, source: str | None = None) -> list[Mutant]:
    """Every mutant of reference/<kata>.py (or of source) that compiles and differs from it, in the
    file's order."""
    tree = ast.parse((REFERENCE / f"{kata}.py").read_text() if source is None else source)
    original = ast.unparse(tree)
    seen, out = {original}, []
    for site in _sites(tree):
        old = site.apply()
        try:
            source = ast.unparse(tree)
            unit = ast.unparse(site.unit)
            compile(source, kata, "exec")
        except (SyntaxError, ValueError, TypeError):
            continue
        finally:
            site.undo(old)
        if source in seen:
            continue
        seen.add(source)
        digest = hashlib.sha1(unit.encode()).hexdigest()[:8]
        out.append(Mutant(f"{site.qualname}:{site.operator}:{digest}", kata, site.operator, source,
                          _diff(original, source)))
    return out


# -------------------------------------------------------------------------------------- grading


class _Screen:
    """The kata's checks run in this process, each mutant against the reference on the check's own
    inputs and comparison, stopping at the first check it fails. Cheap (no process, no pytest), it
    settles most mutants; only those it cannot kill go through the runner, which decides.

    A check that the unmutated reference itself fails here (one that leans on global state, say) is
    left to the runner. The cheapest checks run first, and a check that kills a mutant moves to the
    front: the next mutant, often of the same function, tends to fail it too."""

    def __init__(self, kata: str, reference_source: str):
        from graders import harness

        self.harness = harness
        self.kata = curriculum.kata(kata)
        reference = importlib.import_module(f"reference.{kata}")
        self.checks = []
        for case in harness.kata_cases(kata):
            if case.name in self.kata.points:
                args = case.inputs(harness.Gen(harness.seed_for(kata, case.name, case.hidden)))
                like, expected = harness.reference_outcomes(reference, case, args)
                self.checks.append((case, args, like, expected, self.kata.tolerances[case.tol]))
        itself = Mutant("reference", kata, "", reference_source, "").module()
        cost = {}
        for check in self.checks:
            start = time.process_time()
            if self._passes(itself, *check):
                cost[check[0].name] = time.process_time() - start
        self.checks = sorted((c for c in self.checks if c[0].name in cost), key=lambda c: cost[c[0].name])

    def _passes(self, module, case, args, like, expected, tol) -> bool:
        h = self.harness
        mine = h.clone(args)
        got = h.reference_outcome(module, case, mine)
        return h._changed_inputs(args, mine) is None and h.compare_outcomes(got, expected, like, case, tol) is None

    def kills(self, mutant: Mutant) -> bool:
        """Whether some check fails the mutant; False also when the screen cannot tell (a crash, a hang)."""
        previous = signal.signal(signal.SIGALRM, _too_slow)
        try:
            module = mutant.module()
            for i, check in enumerate(self.checks):
                signal.setitimer(signal.ITIMER_REAL, curriculum.settings().check_timeout)
                if not self._passes(module, *check):
                    self.checks.insert(0, self.checks.pop(i))
                    return True
        except Exception:  # an import error, a compare that crashes, a hang: the runner will tell
            return False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        return False


@contextlib.contextmanager
def one_thread():
    """The checks' tensors are tiny: more threads only add overhead, and on a busy machine a lot of it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _too_slow(signum, frame):
    raise TimeoutError("the mutant ran past the check time limit")


@dataclass
class KataResult:
    kata: str
    mutants: list  # every mutant
    survivors: list  # full marks and not recorded as equivalent: holes until triaged
    equivalent: list  # full marks and recorded as equivalent
    wrongly_recorded: list  # recorded as equivalent, yet some check fails them
    stale: list  # ids recorded as equivalent that no mutant has any more
    graded: int  # the mutants the in-process screen left to the runner
    seconds: float

    @property
    def killed(self) -> int:
        return len(self.mutants) - len(self.survivors) - len(self.equivalent)


def recorded(kata: str) -> dict:
    """The kata's recorded equivalent mutants: id -> why it is equivalent to the reference."""
    try:
        catalogue = importlib.import_module(f"reference.{kata}_catalogue")
    except ModuleNotFoundError:
        return {}
    return getattr(catalogue, "EQUIVALENT", {})


def _write_submission(folder: Path, mutant: Mutant):
    """The mutant as a learner's kata file; the other katas are the reference's, as a learner's files."""
    folder.mkdir()
    for kata in curriculum.katas():
        path = REFERENCE / kata.file
        if path.exists():
            (folder / kata.file).write_text(curriculum.as_learner_file(path.read_text()))
    (folder / f"{mutant.kata}.py").write_text(mutant.learner_source())


def full_marks(kata: str, candidates: list) -> list:
    """The mutants that get full marks from the runner, graded as learners' kata files."""
    from graders import runner  # imports torch and starts the graders' parent: only to grade

    with tempfile.TemporaryDirectory(prefix=f"mutants-{kata}-") as tmp:
        folders = [Path(tmp) / str(i) for i in range(len(candidates))]
        for folder, mutant in zip(folders, candidates):
            _write_submission(folder, mutant)
        reports = runner.grade_many(folders, [kata]) if folders else []
    return [m for m, r in zip(candidates, reports) if r["total"] == r["max_score"]]


def grade(kata: str) -> KataResult:
    """Every mutant of the kata: screened in this process, the rest graded through the runner."""
    start = time.monotonic()
    found = mutants(kata)
    with one_thread():
        screen = _Screen(kata, (REFERENCE / f"{kata}.py").read_text())
        candidates = [m for m in found if not screen.kills(m)]
    full = full_marks(kata, candidates)
    records = recorded(kata)
    ids = {m.id for m in found}
    return KataResult(
        kata, found,
        survivors=[m for m in full if m.id not in records],
        equivalent=[m for m in full if m.id in records],
        wrongly_recorded=[m for m in found if m.id in records and m not in full],
        stale=sorted(i for i in records if i not in ids),
        graded=len(candidates),
        seconds=time.monotonic() - start,
    )


# ------------------------------------------------------------------------ recorded equivalents


def disagreements(kata: str, ids, n_seeds: int) -> list[str]:
    """Where the recorded equivalents `ids` tell from the reference: every check of the kata on n_seeds
    seeds (which vary shapes and hidden hyperparameters), in its inputs' float dtype and the other one,
    on every device calibrate uses, judged by the check's own comparison. A mutant runs only where the
    reference runs the function it changes: anywhere else the two run the same code. The checks are
    shared out among processes, one per CPU."""
    from graders import harness

    names = [case.name for case in harness.kata_cases(kata)]
    with multiprocessing.get_context("fork").Pool(min(len(names), os.cpu_count() or 1)) as pool:
        found = pool.starmap(_disagreements_on, [(kata, list(ids), n_seeds, name) for name in names])
    return [line for lines in found for line in lines]


def _disagreements_on(kata: str, ids: list, n_seeds: int, case_name: str) -> list[str]:
    from graders import calibrate, harness

    reference = importlib.import_module(f"reference.{kata}")
    found = {m.id: m for m in mutants(kata)}
    changed = {i: (found[i].module(), _code_of(reference, i.split(":")[0])) for i in ids}
    case = next(c for c in harness.kata_cases(kata) if c.name == case_name)
    tol = curriculum.kata(kata).tolerances[case.tol]
    out = []
    with one_thread():
        for seed in calibrate.seeds_of(kata, case, n_seeds):
            inputs = case.inputs(harness.Gen(seed))
            target = calibrate.cast_target(inputs)
            runs = [("as given", inputs)] + ([(f"cast to {target}", calibrate.cast(inputs, target))] if target else [])
            for device in calibrate._devices():
                raises = None
                for mode, given in runs:
                    args = harness.to_device(harness.clone(given), device)
                    with _calls() as called:
                        like, expected = harness.reference_outcomes(reference, case, args)
                    if raises is None:
                        raises = like.error is not None
                    elif (like.error is not None and not raises) or not calibrate._verdict(like, expected, like, case, tol):
                        continue  # as calibrate has it: the check is not meant for this dtype
                    for i, (module, code) in changed.items():
                        if code is not None and code not in called:
                            continue
                        mine = harness.clone(args)
                        got = harness.reference_outcome(module, case, mine)
                        if harness._changed_inputs(args, mine) or not calibrate._verdict(got, expected, like, case, tol):
                            out.append(f"{i} differs from the reference on {case.name}, seed {seed}, {mode}, {device}")
    return out


def _code_of(module, qualname: str):
    """The code object of module's function (or method) qualname; None where there is none to find."""
    obj = module
    for part in qualname.split("."):
        obj = vars(obj).get(part) if hasattr(obj, "__dict__") else None
        obj = obj.__func__ if isinstance(obj, (classmethod, staticmethod)) else obj
    return getattr(obj, "__code__", None)


@contextlib.contextmanager
def _calls():
    """The code objects of the Python functions called inside the block."""
    called, previous = set(), sys.getprofile()

    def note(frame, event, arg):
        if event == "call":
            called.add(frame.f_code)

    sys.setprofile(note)
    try:
        yield called
    finally:
        sys.setprofile(previous)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def report(result: KataResult) -> str:
    n = len(result.mutants)
    score = f"{result.killed}/{n}" + (f" ({100 * result.killed / n:.0f}%)" if n else "")
    lines = [f"{curriculum.kata(result.kata).title} ({result.kata}): {n} mutants, {result.killed} killed, "
             f"{len(result.equivalent)} recorded equivalent, {len(result.survivors)} surviving; "
             f"mutation score {score}; {result.seconds:.1f} s"]
    for m in result.survivors:
        lines += [f"  SURVIVES {m.id} (full marks: a hole in the checks, or record it as equivalent)", _indent(m.diff)]
    for m in result.wrongly_recorded:
        lines += [f"  KILLED, yet recorded as equivalent: {m.id}", _indent(m.diff)]
    lines += [f"  STALE record: no mutant has the id {i} any more" for i in result.stale]
    return "\n".join(lines)


LEGEND = """\
Each mutant is the reference with one small change (an operator swapped, a constant changed, a call,
argument or statement dropped, ...); the kata's checks grade it as they grade a learner's file.
A survivor gets full marks: add or change a check that fails it, or, when it cannot differ from the
reference, record its id and the reason in the catalogue's EQUIVALENT (reference/NAME_catalogue.py).
Mutation score: the mutants killed over all mutants."""


def run(names=None):
    """Yields the legend, then each named kata's report (all katas by default), as it is done."""
    katas = [curriculum.kata(n) for n in names] if names else list(curriculum.katas())
    yield LEGEND
    for kata in katas:
        yield report(grade(kata.name))


def command(args):
    """`kata mutate [NAME ...]`."""
    for text in run(args.name):
        print(text + "\n", flush=True)
