"""The suite's two depths. `scripts/test` proves every property on the grader's own seed, in about
four minutes on two cores; `scripts/test --all` (what CI runs) adds the exhaustive runs: calibration
on every seed, the recorded equivalent mutants proven on many seeds, the Classroom workflow for every
submission with and without hidden checks, both Gradescope layouts, and the template graded on every
catalogued mistake. Tests marked `slow` run only with --all; `exhaustive` scales the others."""

import pytest


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true", help="also run the slow, exhaustive tests (CI runs them)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: exhaustive; runs only with --all")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all"):
        return
    skip = pytest.mark.skip(reason="exhaustive: `scripts/test --all` runs it (CI does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def exhaustive(request) -> bool:
    """Whether this run is `--all`: tests that scale (seeds, mutants) use it to pick their depth."""
    return request.config.getoption("--all")
