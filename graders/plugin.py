"""Pytest wiring for a plain `pytest graders` run: check names, points, clean failure messages, and
each check's points and message in pytest-json-report's report. (`kata` runs the same checks in its
judges without pytest; KATA_SOLUTIONS names the folder to grade here, as it does there.)
"""

from pathlib import Path

import pytest

from graders import curriculum, harness

_names = {}  # nodeid -> check name


def pytest_configure(config):
    config.addinivalue_line("markers", "hidden: a check whose inputs come from the instructor's seed")
    try:
        curriculum.settings()
    except curriculum.UsageError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_generate_tests(metafunc):
    """One test per Case of a grader's `cases(...)` list, named after the check."""
    items = getattr(metafunc.function, "cases", None)
    if items is not None and "case" in metafunc.fixturenames:
        metafunc.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.hidden] if c.hidden else [])
                                      for c in items])


def kata_of(path) -> str:
    return Path(str(path)).stem.removeprefix("test_")


def check_name(item) -> str:
    callspec = getattr(item, "callspec", None)
    return callspec.id if callspec else item.originalname.removeprefix("test_")


def pytest_collection_modifyitems(session, config, items):
    kept, dropped = [], []
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
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
