"""Every grader is proven against its kata's catalogue.

The reference gets full marks, the stub gets zero with "not implemented" feedback, every catalogued
mistake loses points and is named in the feedback as itself and never as another, every correct
variant gets full marks. The verdicts of the katas pinned in tests/data/verdicts.json (every check,
for the reference, the stubs and every entry) must not change unless a grader does; after changing a
grader on purpose, rewrite the pin from `verdicts` below.
"""

import importlib
import json
from pathlib import Path

import pytest

from graders import curriculum, runner
from learners import reference_as_learner

KATAS = [k.name for k in curriculum.katas()]
PIN = Path(__file__).parent / "data" / "verdicts.json"


def catalogue(kata):
    return importlib.import_module(f"reference.{kata}_catalogue")


def entries(kind):
    return [pytest.param(k, e.name, id=f"{k}:{e.name}") for k in KATAS for e in getattr(catalogue(k), kind)]


@pytest.fixture(scope="module")
def reference_report(tmp_path_factory):
    return by_name(runner.grade(solutions=reference_as_learner(tmp_path_factory.mktemp("reference"))))


@pytest.fixture(scope="module")
def stub_report():
    return by_name(runner.grade())


@pytest.fixture(scope="module")
def entry_reports():
    """{kata: {entry: kata report}}, each kata's whole catalogue graded side by side."""
    out = {}
    for kata in KATAS:
        cat = catalogue(kata)
        names = [e.name for e in cat.MISTAKES + cat.VARIANTS]
        reports = runner.grade_many([None] * len(names), [kata], entries=names)
        out[kata] = {name: report["katas"][0] for name, report in zip(names, reports)}
    return out


def by_name(report):
    return {k["name"]: k for k in report["katas"]}


@pytest.mark.parametrize("kata", KATAS)
def test_reference_gets_full_marks(reference_report, kata):
    result = reference_report[kata]
    failures = [f"{c['name']}: {c['message']}" for c in result["checks"] if not c["passed"]]
    assert not failures
    assert result["max_score"] > 0 and result["score"] == result["max_score"]


@pytest.mark.parametrize("kata", KATAS)
def test_stub_gets_zero_and_says_not_implemented(stub_report, kata):
    result = stub_report[kata]
    assert result["score"] == 0 and result["status"] == "not started"
    assert all("not implemented yet" in c["message"] for c in result["checks"])


@pytest.mark.parametrize("kata", KATAS)
def test_catalogue_is_complete(kata):
    cat = catalogue(kata)
    assert len(cat.MISTAKES) >= 8 and len(cat.VARIANTS) >= 3
    names = [e.name for e in cat.MISTAKES + cat.VARIANTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("kata, entry", entries("MISTAKES"))
def test_mistake_fails_and_is_named_as_itself(entry_reports, kata, entry):
    mistakes = {e.name: e.says for e in catalogue(kata).MISTAKES}
    result = entry_reports[kata][entry]
    failed = [c for c in result["checks"] if not c["passed"]]
    assert failed, f"no check catches the mistake {entry!r}"
    text = "\n".join(c["message"] for c in failed)
    assert mistakes[entry] in text, text
    others = [name for name, says in mistakes.items() if name != entry and says in text and says not in mistakes[entry]]
    assert not others, f"{entry!r} is also named as {others}"


@pytest.mark.parametrize("kata, entry", entries("VARIANTS"))
def test_variant_gets_full_marks(entry_reports, kata, entry):
    result = entry_reports[kata][entry]
    failures = [f"{c['name']}: {c['message']}" for c in result["checks"] if not c["passed"]]
    assert not failures


def verdicts(reference_report, stub_report, entry_reports) -> dict:
    """{kata: {submission: {check: passed}}} for the reference, the stubs and every entry."""
    def passed(result):
        return {c["name"]: c["passed"] for c in result["checks"]}
    return {kata: {"reference": passed(reference_report[kata]), "stub": passed(stub_report[kata]),
                   **{name: passed(r) for name, r in entry_reports[kata].items()}} for kata in KATAS}


def test_verdicts_are_pinned(reference_report, stub_report, entry_reports):
    pinned = json.loads(PIN.read_text())
    now = verdicts(reference_report, stub_report, entry_reports)
    for kata in pinned:
        assert now[kata] == pinned[kata], kata
