"""Pytest wiring for the graders: check names, points, per-check time limits, clean failure messages.

Under `kata`, each result is also streamed as one JSON line to the file descriptor in KATA_RESULT_FD
the moment it is known, so that a kata which kills its grading process keeps the checks it passed.
"""

import json
import os
from pathlib import Path

import pytest

from graders import curriculum, harness

_stream = None
_names = {}  # nodeid -> check name


def pytest_configure(config):
    global _stream
    config.addinivalue_line("markers", "hidden: a check whose inputs come from the instructor's seed")
    solutions = os.environ.get("KATA_SOLUTIONS")
    if solutions:
        harness.use_solutions(solutions)
    fd = os.environ.get("KATA_RESULT_FD")
    if fd:
        _stream = os.fdopen(int(fd), "w", buffering=1)


def _emit(**event):
    if _stream:
        _stream.write(json.dumps(event) + "\n")


def kata_of(path) -> str:
    return Path(str(path)).stem.removeprefix("test_")


def check_name(item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.id if callspec else item.originalname.removeprefix("test_")


def pytest_collection_modifyitems(session, config, items):
    checks, kept, dropped = [], [], []
    for item in items:
        kata = curriculum.kata(kata_of(item.path))
        name = check_name(item)
        if name not in kata.points:
            if harness.SNAPSHOTS.is_dir():  # a student template leaves the hidden checks out
                dropped.append(item)
                continue
            raise pytest.UsageError(f"graders/config.toml gives no points to check {name!r} of kata {kata.name!r}")
        kept.append(item)
        _names[item.nodeid] = name
        item.user_properties.append(("points", kata.points[name]))
        checks.append({"kata": kata.name, "name": name, "hidden": item.get_closest_marker("hidden") is not None})
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    _emit(event="collected", checks=checks)


@pytest.fixture(scope="module")
def kata(request):
    """The learner's submission for this grader's kata, as the judge sees it."""
    learner = harness.Learner(kata_of(request.path))
    yield learner
    learner.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    outcome = yield
    error = outcome.excinfo[1] if outcome.excinfo else None
    if isinstance(error, harness.Fail):
        outcome.force_exception(pytest.fail.Exception(str(error), pytrace=False))


def pytest_runtest_logstart(nodeid, location):
    _emit(event="start", name=_names.get(nodeid))


def pytest_runtest_logreport(report):
    if report.when == "call" or report.failed:
        _emit(event="result", name=_names.get(report.nodeid), passed=report.passed,
              message=failure_message(report), duration=report.duration)


def failure_message(report) -> str:
    if report.passed:
        return ""
    text = report.longreprtext.strip()
    return text.removeprefix("Failed: ")


@pytest.hookimpl(optionalhook=True)
def pytest_json_runtest_metadata(item, call):
    """With pytest-json-report (`pytest graders --json-report`), each check's points and message."""
    if call.when != "call" or item.nodeid not in _names:
        return {}
    kata, name = curriculum.kata(kata_of(item.path)), _names[item.nodeid]
    passed = call.excinfo is None
    return {"kata": kata.name, "check": name, "points": kata.points[name] if passed else 0,
            "max_points": kata.points[name], "hidden": item.get_closest_marker("hidden") is not None,
            "message": "" if passed else str(call.excinfo.value)}
