"""Grade katas: a judge per kata and a few submissions, side by side.

Importing this module starts the zygote (graders/sandbox.py), a clean Python that imports torch and
the public check code once. The zygote forks every judge, which then loads what is secret (the
reference, the config and its seed, snapshots) and grades its kata (the Cases of
graders/test_NAME.py, as pytest would, without pytest's start-up), streaming each result up a pipe
as soon as it is known; learner code runs in sandboxes the zygote forks for the judge, never in the
judge. This process imports neither torch nor the graders: it hands each judge its kata and the
KATA_* settings, bounds it by the wall clock, and assembles the report. When grading ends, every
judge and sandbox is gone before the report is returned.
"""

import json
import os
import select
import signal
import socket
import time
from dataclasses import dataclass, field

from graders import sandbox

sandbox.start()

from graders import curriculum  # noqa: E402


@dataclass
class _Worker:
    kata: curriculum.Kata
    submissions: list  # indices into the submissions being graded, in the order the judge takes them
    fd: int  # the judge's event stream
    control: socket.socket  # its status socket (sandbox.ended)
    deadline: float
    buffer: bytes = b""
    events: list = field(default_factory=list)
    killed: bool = False
    status: int | None = 0


def grade(names=None, solutions=None, device="cpu", entry=None) -> dict:
    """The report for the named katas (all by default), in the schema `kata grade --format json` prints.

    solutions: a folder of kata files to grade instead of katas/. entry: a catalogue entry (mistake or
    variant) graded in place of the kata's file; used by the project's own tests.
    """
    return grade_many([solutions], names, device, entry)[0]


def grade_many(submissions: list, names=None, device="cpu", entry=None, on_report=None, entries=None) -> list:
    """One report per submission folder (None: katas/). A judge grades one kata for a few submissions in
    turn, computing the reference once for all of them; as many judges run at a time as there are
    CPUs. on_report(i, report) is called as each submission completes. entries: one catalogue entry
    (or None) per submission, for the project's own tests."""
    katas = [curriculum.kata(n) for n in names] if names else list(curriculum.katas())
    sandbox.start()  # again, in case an earlier zygote was stopped
    env = {k: v for k, v in os.environ.items() if k.startswith("KATA_") or k == "TMPDIR"}
    default = env.pop("KATA_SOLUTIONS", None) or str(curriculum.STUBS)
    env.pop("KATA_ENTRY", None)
    env["KATA_DEVICE"] = device
    given = [{"folder": str(folder or default), "entry": (entries[i] if entries else entry) or None}
             for i, folder in enumerate(submissions)]
    jobs = os.cpu_count() or 1
    size = min(_SHARED, -(-len(submissions) // jobs))
    pending = [(kata, list(range(first, min(first + size, len(submissions)))))
               for first in range(0, len(submissions), size) for kata in katas]
    results = [{} for _ in submissions]
    running = {}
    try:
        while pending or running:
            while pending and len(running) < jobs:
                kata, indices = pending.pop(0)
                worker = _start(kata, indices, [given[i] for i in indices], env)
                running[worker.fd] = worker
            for worker in _pump(running):
                retry = _untouched(worker)
                if retry:
                    pending.insert(0, (worker.kata, retry))
                for i in worker.submissions:
                    if i in retry:
                        continue
                    results[i][worker.kata.name] = _kata_result(worker, i)
                    if on_report and len(results[i]) == len(katas):
                        on_report(i, _report([results[i][k.name] for k in katas]))
    finally:  # interrupted (Ctrl-C, or an exception in on_report): no judge outlives the call
        for worker in list(running.values()):
            worker.killed = True
            _finish(worker, running)
        sandbox.sync()
    return [_report([r[k.name] for k in katas]) for r in results]


_SHARED = 8  # the most submissions one judge grades: more share the reference, fewer balance the CPUs


def _start(kata: curriculum.Kata, indices: list, submissions: list, env: dict) -> _Worker:
    fd, control = sandbox.start_judge({"kata": kata.name, "env": env, "submissions": submissions})
    # The judge bounds the learner's code by the kata's time limit itself; this bounds the judge.
    return _Worker(kata, indices, fd, control, time.monotonic() + len(indices) * 2 * kata.timeout + 30)


def _untouched(worker: _Worker) -> list:
    """The submissions a judge that ended early never began, after one it did: they go to a new judge,
    so that what went wrong costs only the submission it happened on."""
    if any(e["event"] == "finished" and not e.get("error") for e in worker.events):
        return []
    begun = [e["submission"] for e in worker.events if e["event"] == "start"]  # positions in worker.submissions
    if not begun:
        return []  # it failed before any submission: a new judge would too
    return worker.submissions[max(begun) + 1:]


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
    worker.status = sandbox.ended(worker.control)  # stopped first, if it still runs
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
    if worker.status is None:
        return "its grading process was lost"
    if os.WIFSIGNALED(worker.status):
        return f"its grading process crashed ({signal.Signals(os.WTERMSIG(worker.status)).name})"
    code = os.WEXITSTATUS(worker.status)
    return f"its grading process exited early with status {code}: does the code call sys.exit() or os._exit()?"


def _kata_result(worker: _Worker, submission: int) -> dict:
    kata = worker.kata
    collected = next((e["checks"] for e in worker.events if e["event"] == "collected"), None)
    hidden = {c["name"]: c["hidden"] for c in collected or []}
    mine = [e for e in worker.events if e.get("submission") == worker.submissions.index(submission)]
    done = {e["name"]: e for e in mine if e["event"] == "result"}
    started = [e["name"] for e in mine if e["event"] == "start"]
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
