"""Grade katas: one judge process per (submission, kata), side by side.

Importing this module starts the sandboxes' zygote (graders/sandbox.py), so that its torch import
overlaps the parent's. The parent imports torch and the graders once, then forks one judge per kata.
A judge runs that kata's checks (the Cases of graders/test_NAME.py, as pytest would, without pytest's
start-up) and streams each result up a pipe as soon as it is known; the learner's code runs in the
judge's sandboxes, never in the judge. The parent still bounds each judge by the wall clock; when
grading ends, every sandbox is killed and gone before the report is returned.
"""

import faulthandler
import json
import os
import resource
import select
import signal
import sys
import time
from dataclasses import dataclass, field

from graders import sandbox

sandbox.start()

import torch  # noqa: E402,F401  imported once here so that every forked judge starts with it

from graders import curriculum, harness  # noqa: E402


@dataclass
class _Worker:
    kata: curriculum.Kata
    submission: int  # index into the submissions being graded
    pid: int
    fd: int
    deadline: float
    buffer: bytes = b""
    events: list = field(default_factory=list)
    killed: bool = False
    status: int = 0


def grade(names=None, solutions=None, device="cpu", entry=None) -> dict:
    """The report for the named katas (all by default), in the schema `kata grade --format json` prints.

    solutions: a folder of kata files to grade instead of katas/. entry: a catalogue entry (mistake or
    variant) graded in place of the kata's file; used by the project's own tests.
    """
    return grade_many([solutions], names, device, entry)[0]


def grade_many(submissions: list, names=None, device="cpu", entry=None, on_report=None, entries=None) -> list:
    """One report per submission folder (None: katas/), every (submission, kata) pair in its own
    worker, as many at a time as there are CPUs. on_report(i, report) is called as each completes.
    entries: one catalogue entry (or None) per submission, for the project's own tests."""
    katas = [curriculum.kata(n) for n in names] if names else list(curriculum.katas())
    sandbox.start()  # again, in case an earlier zygote was stopped: the judges forked below share it
    pending = []
    for i, folder in enumerate(submissions):
        env = {"KATA_DEVICE": device}
        if folder:
            env["KATA_SOLUTIONS"] = str(folder)
        if entries and entries[i] or entry:
            env["KATA_ENTRY"] = entries[i] if entries else entry
        pending += [(i, kata, env) for kata in katas]
    results = [{} for _ in submissions]
    running = {}
    jobs = os.cpu_count() or 1
    try:
        while pending or running:
            while pending and len(running) < jobs:
                i, kata, env = pending.pop(0)
                worker = _start(kata, env, i)
                running[worker.fd] = worker
            for worker in _pump(running):
                results[worker.submission][worker.kata.name] = _kata_result(worker)
                if on_report and len(results[worker.submission]) == len(katas):
                    on_report(worker.submission, _report([results[worker.submission][k.name] for k in katas]))
    finally:  # interrupted (Ctrl-C, or an exception in on_report): no worker outlives the call
        for worker in list(running.values()):
            worker.killed = True
            os.killpg(worker.pid, signal.SIGKILL)
            _finish(worker, running)
        sandbox.sync()
    return [_report([r[k.name] for k in katas]) for r in results]


def fork(work) -> tuple[int, int]:
    """work(write_fd) in a forked child of its own process group, quiet and bounded in memory, on one
    thread (workers run side by side; tiny matmuls only stall on more). Returns (pid, read_fd)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        try:
            os.close(read)
            os.setpgid(0, 0)
            _confine()
            torch.set_num_threads(1)
            work(write)
        finally:
            os._exit(0)
    os.close(write)
    return pid, read


def _start(kata: curriculum.Kata, env: dict, submission: int) -> _Worker:
    pid, read = fork(lambda write: _run_grader(kata, env, write))
    # The judge bounds the learner's code by the kata's time limit itself; this bounds the judge.
    return _Worker(kata, submission, pid, read, time.monotonic() + 2 * kata.timeout + 30)


def _run_grader(kata: curriculum.Kata, env: dict, write: int):
    """The judge of one kata: every check in order, each result sent up the pipe as soon as it is known."""
    os.environ.update(env)
    stream = os.fdopen(write, "w", buffering=1)

    def emit(**event):
        stream.write(json.dumps(event) + "\n")

    try:
        learner = harness.Learner(kata.name)
        emit(event="collected", checks=[{"name": c.name, "hidden": c.hidden} for c in learner.cases])
        for case in learner.cases:
            emit(event="start", name=case.name)
            try:
                learner.check(case)
                emit(event="result", name=case.name, passed=True, message="")
            except harness.Fail as e:
                emit(event="result", name=case.name, passed=False, message=str(e))
        learner.close()
    except Exception as e:
        emit(event="finished", error=f"{type(e).__name__}: {e}")
        raise
    emit(event="finished")


def _confine():
    """Quiet the worker's output and bound its memory, so a flood or a leak stays inside it."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # the parent's may be a capture object, not fd 1
    faulthandler.disable()  # a crash is reported by the parent, not dumped on the parent's terminal
    if sys.platform.startswith("linux"):
        # The data limit counts memory actually allocated, not address space merely reserved, which
        # CUDA reserves by the terabyte.
        with open("/proc/self/status") as f:
            current = next(int(line.split()[1]) for line in f if line.startswith("VmData:")) * 1024
        limit = current + curriculum.settings().memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _pump(running: dict) -> list:
    """Read what the workers sent; return the ones that are done (finished, died or killed)."""
    timeout = max(0.0, min(w.deadline for w in running.values()) - time.monotonic())
    ready, _, _ = select.select(list(running), [], [], timeout)
    done = []
    for fd in ready:
        worker = running[fd]
        chunk = os.read(fd, 65536)
        if chunk:
            worker.buffer += chunk
            *lines, worker.buffer = worker.buffer.split(b"\n")
            worker.events += _parse(lines)
        else:
            done.append(_finish(worker, running))
    now = time.monotonic()
    for worker in [w for w in running.values() if w.deadline <= now]:
        worker.killed = True
        os.killpg(worker.pid, signal.SIGKILL)
        done.append(_finish(worker, running))
    return done


def _parse(lines: list) -> list:
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short by a kill
        if isinstance(event, dict) and "event" in event:
            events.append(event)
    return events


def _finish(worker: _Worker, running: dict) -> _Worker:
    _, worker.status = os.waitpid(worker.pid, 0)
    try:
        os.killpg(worker.pid, signal.SIGKILL)  # anything the kata's code left running
    except ProcessLookupError:
        pass
    os.set_blocking(worker.fd, False)
    try:
        while chunk := os.read(worker.fd, 65536):
            worker.buffer += chunk
    except BlockingIOError:
        pass
    worker.events += _parse(worker.buffer.split(b"\n"))
    os.close(worker.fd)
    del running[worker.fd]
    return worker


def _cause(worker: _Worker) -> str:
    finished = next((e for e in worker.events if e["event"] == "finished"), None)
    if worker.killed:
        return "its grading ran past the time limit and was stopped (an endless loop, or a hang inside a long C call?)"
    if finished and finished.get("error"):
        return f"its grader failed ({finished['error']}); `pytest graders/test_{worker.kata.name}.py` shows more"
    if os.WIFSIGNALED(worker.status):
        return f"its grading process crashed ({signal.Signals(os.WTERMSIG(worker.status)).name})"
    code = os.WEXITSTATUS(worker.status)
    return f"its grading process exited early with status {code}: does the code call sys.exit() or os._exit()?"


def _kata_result(worker: _Worker) -> dict:
    kata = worker.kata
    collected = next((e["checks"] for e in worker.events if e["event"] == "collected"), None)
    hidden = {c["name"]: c["hidden"] for c in collected or []}
    done = {e["name"]: e for e in worker.events if e["event"] == "result"}
    started = [e["name"] for e in worker.events if e["event"] == "start"]
    complete = collected is not None and len(done) == len(collected)
    cause = "" if complete else _cause(worker)
    checks = []
    for name, points in kata.points.items():
        if name in done:
            passed, message = done[name]["passed"], done[name]["message"]
        elif started and name == started[-1]:
            passed, message = False, f"this check was running when {cause}"
        else:
            passed, message = False, f"not run: {cause}"
        checks.append({
            "name": name, "passed": passed, "score": float(points) if passed else 0.0,
            "max_score": float(points), "message": message, "hidden": hidden.get(name, False),
        })
    return {
        "name": kata.name, "title": kata.title, "status": _status(checks), "complete": complete,
        "score": sum(c["score"] for c in checks), "max_score": kata.max_score, "checks": checks,
    }


def _status(checks: list) -> str:
    if all(c["passed"] for c in checks):
        return "passing"
    if all(c["message"].startswith(("not implemented yet", "not started")) for c in checks):
        return "not started"
    return "failing"


def _report(katas: list) -> dict:
    return {
        "total": sum(k["score"] for k in katas),
        "max_score": sum(k["max_score"] for k in katas),
        "katas": katas,
    }
