"""`kata bench NAME`: why a kata's technique exists, measured on your code beside the reference.

kv_cache      the time to generate T tokens one at a time with CachedCausalSelfAttention: with the
              KVCache, and by recomputing the causal forward over every token at each step.
quantization  Int8Linear against the float nn.Linear it came from: state_dict bytes, output error
              and forward time.

Each implementation runs in a forked process on one CPU thread (so that the two are timed alike),
under the kata's grading time limit: an endless loop in your code cannot hang the command. Before
your code is timed, its outputs are compared with the reference's on the benchmark's inputs; code
that is unfinished, raises or is wrong gets one line saying so, and the reference's rows still show.
"""

import faulthandler
import importlib
import json
import os
import select
import signal
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from graders import curriculum, harness, sandbox
from graders.curriculum import UsageError

REPS = 3  # a time is the median of up to REPS runs,
BUDGET_S = 1.0  # fewer once the runs so far took this long (a slow size runs once)
TOL = {"atol": 1e-3, "rtol": 1e-3}  # loose: timing needs the right numbers; `kata check` grades them


class Wrong(Exception):
    """Your code's outputs differ from the reference's: it is not worth timing yet."""


class Stopped(Exception):
    """The process running the benchmark was stopped, or ended before it finished."""


def _ms(fn: Callable, device: str, number: int = 1) -> float:
    """Milliseconds per call of fn, each run calling it number times (more for calls too short to time)."""
    times = []
    while len(times) < REPS and sum(times) < BUDGET_S:
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times) / number


def _same(got, want, what: str):
    problem = harness.compare(got, want, want, TOL, what)
    if problem:
        raise Wrong(problem)


# ------------------------------------------------------------------------------------------ kv_cache

D_MODEL, HEADS = 256, 4
TOKENS, TOKENS_QUICK = (64, 128, 256, 512), (64, 128)


def _decode(kata, layer, x):
    """Token after token, each step projecting only the new one and attending over the cache; the cache."""
    cache = kata.KVCache()
    for t in range(x.shape[1]):
        layer(x[:, t:t + 1], cache)
    return cache


def _cache_kib(cache) -> float:
    """The memory the cache holds: every tensor among its attributes (keys and values, however named)."""
    tensors = [v for v in vars(cache).values() if isinstance(v, torch.Tensor)]
    tensors += [t for v in vars(cache).values() if isinstance(v, (list, tuple)) for t in v if isinstance(t, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors) / 1024


def _recompute(layer, x):
    """Token after token, each step running the causal forward over every token so far."""
    for t in range(x.shape[1]):
        layer(x[:, :t + 1])


def kv_cache_rows(kata, ref, device: str, quick: bool):
    torch.manual_seed(0)
    theirs = ref.CachedCausalSelfAttention(D_MODEL, HEADS).to(device)
    layer = kata.CachedCausalSelfAttention(D_MODEL, HEADS).to(device)
    layer.load_state_dict(theirs.state_dict())
    x = torch.randn(1, max(TOKENS), D_MODEL, device=device)
    check = x[:, :16]
    want = theirs(check)
    _same(layer(check), want, "the output of the causal forward over 16 tokens")
    cache = kata.KVCache()
    steps = [layer(check[:, t:t + 1], cache) for t in range(16)]
    _same(steps, list(want.split(1, dim=1)), "decoding 16 tokens one at a time with a KVCache, the output of step")
    for T in TOKENS_QUICK if quick else TOKENS:
        with_cache = _ms(lambda: _decode(kata, layer, x[:, :T]), device)
        without = _ms(lambda: _recompute(layer, x[:, :T]), device)
        yield [T, with_cache, without, without / with_cache, _cache_kib(_decode(kata, layer, x[:, :T]))]


def kv_cache_plot(ax, results: dict):
    for who, rows in results.items():
        tokens = [r[0] for r in rows]
        ax.plot(tokens, [r[1] for r in rows], "o-", label=f"{who}: with the cache")
        ax.plot(tokens, [r[2] for r in rows], "o--", label=f"{who}: recomputing")
    tokens = [r[0] for r in results["reference"]]
    ax.set_xscale("log", base=2)
    ax.set_xticks(tokens, [str(t) for t in tokens])
    ax.set(xlabel="tokens generated", ylabel="time (ms)", yscale="log", title="Generating T tokens one at a time")


# -------------------------------------------------------------------------------------- quantization

LINEARS, LINEARS_QUICK = ((256, 256), (1024, 1024), (4096, 1024)), ((256, 256), (1024, 1024))  # (out, in)
BATCH = 64
CALLS = 20  # forward calls per timed run: one is too short to time


def _kib(module: nn.Module) -> float:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values()) / 1024


def quantization_rows(kata, ref, device: str, quick: bool):
    for out_features, in_features in LINEARS_QUICK if quick else LINEARS:
        torch.manual_seed(0)
        linear = nn.Linear(in_features, out_features).to(device)
        x = torch.randn(BATCH, in_features, device=device)
        q = kata.Int8Linear.from_float(linear)
        got, want, y = q(x), ref.Int8Linear.from_float(linear)(x), linear(x)
        _same(got, want, f"Int8Linear.from_float(nn.Linear({in_features}, {out_features})) on {BATCH} random inputs, the output")
        error = got - y
        yield [f"{out_features}x{in_features}", _kib(linear), _kib(q), _kib(q) / _kib(linear),
               error.abs().max().item(), (error.norm() / y.norm()).item(),
               _ms(lambda: linear(x), device, CALLS), _ms(lambda: q(x), device, CALLS)]


def quantization_plot(ax, results: dict):
    ref = results["reference"]
    ax.plot([r[0] for r in ref], [r[1] for r in ref], "o-", label="nn.Linear (float32)")
    for who, rows in results.items():
        ax.plot([r[0] for r in rows], [r[2] for r in rows], "o--", label=f"{who}: Int8Linear")
    ax.set(xlabel="layer (out x in)", ylabel="state_dict (KiB)", yscale="log", title="Weight memory, float32 vs int8")


def kv_cache_note(results: dict) -> str:
    lines = ["Without the cache, step t projects all t tokens again and scores t x t pairs: T steps cost O(T^2 d^2 + T^3 d).",
             "With it, step t projects one token and scores 1 x t: O(T d^2 + T^2 d), and the speed-up grows with T.",
             "The price is memory: the cache holds every position's keys and values, 2 x T x d_model numbers per layer."]
    yours, ref = results.get("yours"), results["reference"]
    if yours and len(yours) == len(ref) and yours[-1][3] < ref[-1][3] / 2:
        lines.append(f"Your cache speeds generation up {yours[-1][3]:.1f}x at {yours[-1][0]} tokens, the reference's "
                     f"{ref[-1][3]:.1f}x: does each step still project or score more than the new token?")
    return "\n".join(lines)


def quantization_note(results: dict) -> str:
    rows = results.get("yours") or results["reference"]
    ratio = max(r[3] for r in rows)
    error = max(r[5] for r in rows)
    slower = all(r[7] > r[6] for r in rows)
    speed = ("This Int8Linear dequantises its weight at every call, so it is slower here; real int8 kernels multiply\n"
             "the codes directly." if slower else "Its speed against the float layer depends on the kernels underneath.")
    return (f"int8 keeps {ratio:.0%} of the float layer's bytes (or less) for a relative error of at most {error:.1e}.\n"
            + speed)


# ---------------------------------------------------------------------------------------- the benches


@dataclass(frozen=True)
class Bench:
    about: str  # the lines above the table
    columns: tuple  # (title, format) for each value of a row
    rows: Callable  # rows(kata, ref, device, quick): yields one row (a list of values) at a time
    note: Callable  # note(results): the lines under the table, from what was measured
    plot: Callable  # plot(ax, {"yours": rows, "reference": rows})


BENCHES = {
    "kv_cache": Bench(
        about=f"Generating T tokens one at a time with CachedCausalSelfAttention (d_model {D_MODEL}, {HEADS} heads, "
              f"batch 1):\nwith the KVCache, and by recomputing the causal forward over all tokens at each step. "
              f"Median of up to {REPS} runs, one CPU thread.",
        columns=(("tokens", "{:d}"), ("with cache (ms)", "{:.1f}"), ("without (ms)", "{:.1f}"), ("speed-up", "{:.1f}x"),
                 ("cache (KiB)", "{:.0f}")),
        rows=kv_cache_rows,
        note=kv_cache_note,
        plot=kv_cache_plot,
    ),
    "quantization": Bench(
        about=f"Int8Linear.from_float(nn.Linear) against the float layer, on {BATCH} random inputs N(0, 1). "
              f"Median of up to {REPS} runs of {CALLS} calls, one CPU thread.\nrel error = |y_int8 - y| / |y| (whole-output norms).",
        columns=(("layer", "{}"), ("float (KiB)", "{:.0f}"), ("int8 (KiB)", "{:.0f}"), ("int8/float", "{:.3f}"),
                 ("max abs error", "{:.2e}"), ("rel error", "{:.2e}"), ("float (ms)", "{:.2f}"), ("int8 (ms)", "{:.2f}")),
        rows=quantization_rows,
        note=quantization_note,
        plot=quantization_plot,
    ),
}


# ------------------------------------------------------------------------------ running, in a child


def _describe(error: BaseException, name: str, folder: Path) -> str:
    """One line: what went wrong in the learner's code, and where."""
    last = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.startswith(str(folder) + os.sep):
            last = tb
        tb = tb.tb_next
    kata, where, who = name, "", f"{name} code"
    if last is not None:
        code = last.tb_frame.f_code
        qualname = getattr(code, "co_qualname", code.co_name).removesuffix(".__init__")
        who, stem = qualname, Path(code.co_filename).stem
        kata = stem if stem in {k.name for k in curriculum.katas()} else name
        where = f" ({Path(code.co_filename).name}, line {last.tb_lineno}, in {qualname})"
    if isinstance(error, Stopped):
        return f"your {name} code {error}: run `kata check {name}`"
    if isinstance(error, NotImplementedError):
        return f"your {who} is not implemented yet: run `kata check {kata}`"
    if isinstance(error, Wrong):
        return f"your {name} code gives wrong outputs on the benchmark's inputs ({error}): run `kata check {name}`"
    message = " ".join(str(error).split())  # one line, whatever the exception's text
    return f"your {who} raised {type(error).__name__}: {message}{where}: run `kata check {kata}`"


def _in_child(rows: Callable, describe: Callable, limit: float) -> tuple[list, str | None]:
    """rows() in a forked process, stopped after limit seconds: the rows it yielded, and
    describe(exception) for what stopped it early (None when nothing did)."""
    def work(write):
        with os.fdopen(write, "w") as pipe:
            try:
                with torch.no_grad():
                    for row in rows():
                        pipe.write(json.dumps({"row": row}) + "\n")
                        pipe.flush()
                pipe.write(json.dumps({"done": True}) + "\n")
            except BaseException as e:  # SystemExit from the learner's code too
                pipe.write(json.dumps({"error": describe(e)}) + "\n")

    pid, read = _fork(work)
    deadline, data, killed = time.monotonic() + limit, b"", False
    while True:
        ready, _, _ = select.select([read], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            killed = True
            break
        chunk = os.read(read, 65536)
        if not chunk:
            break
        data += chunk
    try:
        os.killpg(pid, signal.SIGKILL)  # past the limit, or anything the code left running
    except ProcessLookupError:
        pass
    _, status = os.waitpid(pid, 0)
    os.close(read)
    events = [json.loads(line) for line in data.split(b"\n")[:-1]]  # a line cut short by the kill is dropped
    found = [e["row"] for e in events if "row" in e]
    if killed:
        return found, describe(Stopped(f"ran past the {limit:g} s limit and was stopped (an endless loop?)"))
    for e in events:
        if "error" in e:
            return found, e["error"]
        if "done" in e:
            return found, None
    if os.WIFSIGNALED(status):
        return found, describe(Stopped(f"crashed the benchmark's process ({signal.Signals(os.WTERMSIG(status)).name})"))
    return found, describe(Stopped(f"ended the benchmark's process early (exit status {os.WEXITSTATUS(status)}: "
                                   f"a call to os._exit()?)"))


def _fork(work) -> tuple[int, int]:
    """work(write_fd) in a forked child of its own process group, quiet, bounded in memory and on one
    thread. Returns (pid, read_fd)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read)
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # the parent's may be a capture object, not fd 1
            faulthandler.disable()  # a crash is reported by the parent, not dumped on its terminal
            sandbox.limit_memory(curriculum.settings().memory_mb)
            torch.set_num_threads(1)
            work(write)
        finally:
            os._exit(0)
    os.close(write)
    return pid, read


def _learner(name: str, folder: Path):
    harness.use_solutions(str(folder))  # `katas.<name>` (and the katas it imports) from folder
    return importlib.import_module(f"katas.{name}")


def _table(bench: Bench, results: dict) -> list[str]:
    header = ["code"] + [title for title, _ in bench.columns]
    cells = [header] + [[who] + [fmt.format(v) for (_, fmt), v in zip(bench.columns, row)]
                        for who, rows in results.items() for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]


def _plot(name: str, bench: Bench, results: dict):
    """bench_<name>.png in the current folder when matplotlib is installed."""
    try:
        import matplotlib
    except ImportError:
        print(f"Install matplotlib ({sys.executable} -m pip install matplotlib) to get these numbers as a plot too.")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    bench.plot(ax, results)
    ax.legend()
    fig.tight_layout()
    path = Path.cwd() / f"bench_{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"Plot: {path}")


def run(name: str, solutions: str | None = None, device: str = "cpu", quick: bool = False):
    """Print the benchmark of kata `name`: your code's rows, then the reference's."""
    if name not in BENCHES:
        raise UsageError(f"no bench for {name!r}; the katas with one are: {', '.join(BENCHES)}")
    bench, limit = BENCHES[name], curriculum.kata(name).timeout
    folder = Path(solutions or curriculum.STUBS).resolve()
    if not folder.is_dir():
        raise UsageError(f"--solutions {solutions}: no such folder; give the folder that holds your kata files")
    try:
        ref = importlib.import_module(f"reference.{name}")
    except ModuleNotFoundError:
        raise UsageError("kata bench times your code beside the reference solutions, which this repository does not have") from None
    print(bench.about + "\n", flush=True)

    results = {}
    path = folder / f"{name}.py"
    if path.exists():
        results["yours"], problem = _in_child(lambda: bench.rows(_learner(name, folder), ref, device, quick),
                                              lambda e: _describe(e, name, folder), limit)
        if problem:
            print(problem)
    else:
        print(f"you have not started {name}: {path} does not exist")
    results["reference"], problem = _in_child(lambda: bench.rows(ref, ref, device, quick),
                                              lambda e: f"{type(e).__name__}: {e}", limit)
    if problem:
        raise RuntimeError(f"the reference's benchmark failed: {problem}")
    results = {who: rows for who, rows in results.items() if rows}

    print("\n".join(_table(bench, results)))
    print("\n" + bench.note(results))
    _plot(name, bench, results)
