"""Every grader is proven against its kata's catalogue.

The reference gets full marks, the stub gets zero with "not implemented" feedback, every catalogued
mistake loses points and is named in the feedback, every correct variant gets full marks.
"""

import importlib

import pytest

from graders import curriculum, runner

KATAS = [k.name for k in curriculum.katas()]


def catalogue(kata):
    return importlib.import_module(f"reference.{kata}_catalogue")


def entries(kind):
    return [pytest.param(k, e.name, id=f"{k}:{e.name}") for k in KATAS for e in getattr(catalogue(k), kind)]


@pytest.fixture(scope="module")
def reference_report():
    return runner.grade(solutions=curriculum.ROOT / "reference")


@pytest.fixture(scope="module")
def stub_report():
    return runner.grade()


def by_name(report):
    return {k["name"]: k for k in report["katas"]}


@pytest.mark.parametrize("kata", KATAS)
def test_reference_gets_full_marks(reference_report, kata):
    result = by_name(reference_report)[kata]
    failures = [f"{c['name']}: {c['message']}" for c in result["checks"] if not c["passed"]]
    assert not failures
    assert result["max_score"] > 0 and result["score"] == result["max_score"]


@pytest.mark.parametrize("kata", KATAS)
def test_stub_gets_zero_and_says_not_implemented(stub_report, kata):
    result = by_name(stub_report)[kata]
    assert result["score"] == 0 and result["status"] == "not started"
    assert all("not implemented yet" in c["message"] for c in result["checks"])


@pytest.mark.parametrize("kata", KATAS)
def test_catalogue_is_complete(kata):
    cat = catalogue(kata)
    assert len(cat.MISTAKES) >= 8 and len(cat.VARIANTS) >= 3
    names = [e.name for e in cat.MISTAKES + cat.VARIANTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("kata, entry", entries("MISTAKES"))
def test_mistake_fails_and_is_named(kata, entry):
    says = {e.name: e.says for e in catalogue(kata).MISTAKES}[entry]
    result = runner.grade([kata], entry=entry)["katas"][0]
    failed = [c for c in result["checks"] if not c["passed"]]
    assert failed, f"no check catches the mistake {entry!r}"
    assert any(says in c["message"] for c in failed), [c["message"] for c in failed]


@pytest.mark.parametrize("kata, entry", entries("VARIANTS"))
def test_variant_gets_full_marks(kata, entry):
    result = runner.grade([kata], entry=entry)["katas"][0]
    failures = [f"{c['name']}: {c['message']}" for c in result["checks"] if not c["passed"]]
    assert not failures
