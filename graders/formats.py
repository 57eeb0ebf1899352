"""The report of `kata grade` in the formats that course platforms read.

classroom: GitHub Classroom's autograding result, version 1, as the command-grader action writes it
           (base64 of {"version": 1, "status", "max_score", "tests": [...]}), one test per check so
           that each check earns its own points.
gradescope: results.json per Gradescope's autograder specification; hidden checks are shown to the
           learner only once the instructor publishes the grades.

Both show a hidden check's failure only as the kind of problem (see for_learners): its inputs and the
reference's values stay with the instructor.
"""

import base64
import copy
import json
import re

HIDDEN = "hidden check: "

# A hidden check's failure, reduced to its kind: (pattern found in the message, what the learner sees).
# The patterns follow the harness's messages; the first that matches wins.
KINDS = [
    (r"not implemented yet", "not implemented yet"),
    (r"calls ([\w.]+), which this kata forbids", "it calls {0}, which this kata forbids"),
    (r"your code replaced ([\w.]+);", "your code replaced {0}; monkeypatching libraries or the graders is not allowed"),
    (r"changed its input ([\w.\[\]#]+) in place", "it changed its input {0} in place"),
    (r"expected ([\w.]+) to be raised, but it returned", "it returned where {0} should be raised"),
    (r"expected ([\w.]+), but it raised ([\w.]+)", "it raised {1} where {0} should be raised"),
    (r"raised ([\w.]+): ", "it raised {0}"),
    (r"Timeout \(", "it ran past the check's time limit"),
    (r" has shape ", "the output has the wrong shape"),
    (r" has dtype ", "the output has the wrong dtype"),
    (r" is on \S+, expected ", "the output is on the wrong device"),
    (r" should be a | items?, expected ", "the output has the wrong type or number of items"),
    (r" contains (NaN|inf) in ", "the output contains {0} where the expected values are finite"),
    (r" entries (are off|differ)", "some entries of the output are wrong"),
    (r" is .+, expected ", "the output has the wrong value"),
]
OTHERWISE = "the output does not match the reference's"
# Notes the harness appends that say nothing about inputs or values: the mistake named, the kata to fix first.
NOTES = r"(Looks like a common mistake: .*?|Note: this builds on your \w+ kata, .*?)(?=\. Note: this builds on|\.?$)"


def hidden_message(message: str) -> str:
    """What a failed hidden check may tell the learner: the kind of problem, never a number from its
    inputs or from the reference. The runner's own words (not started, not run) are kept."""
    if not message or message.startswith((HIDDEN, "not started", "not run", "this check was running when")):
        return message
    notes = list(re.finditer(NOTES, message, re.S))
    problem = message[:notes[0].start()] if notes else message  # a mistake's description is no evidence of the kind
    kind = OTHERWISE
    for pattern, says in KINDS:
        found = re.search(pattern, problem)
        if found:
            kind = says.format(*found.groups())
            break
    return HIDDEN + ". ".join([kind, *(n.group(1) for n in notes)]) + "."


def for_learners(report: dict) -> dict:
    """The report with every hidden check's message reduced by hidden_message."""
    report = copy.deepcopy(report)
    for kata in report["katas"]:
        for check in kata["checks"]:
            if check["hidden"]:
                check["message"] = hidden_message(check["message"])
    return report


def classroom(report: dict) -> str:
    tests = []
    for kata in for_learners(report)["katas"]:
        for check in kata["checks"]:
            tests.append({
                "name": f"{kata['name']}: {check['name']}",
                "status": "pass" if check["passed"] else "fail",
                "score": check["score"],
                "message": check["message"],
                "test_code": f"kata check {kata['name']}",
                "filename": f"graders/test_{kata['name']}.py",
                "line_no": 0,
                "duration": 0,
            })
    if not all(k["complete"] for k in report["katas"]):
        status = "error"  # the grading process died or hung: say so rather than a plain fail
    else:
        status = "pass" if all(t["status"] == "pass" for t in tests) else "fail"
    result = {"version": 1, "status": status, "max_score": report["max_score"], "tests": tests}
    return base64.b64encode(json.dumps(result).encode()).decode()


def gradescope(report: dict, seconds: float) -> str:
    tests = []
    for kata in for_learners(report)["katas"]:
        for check in kata["checks"]:
            tests.append({
                "name": f"{kata['title']}: {check['name']}",
                "score": check["score"],
                "max_score": check["max_score"],
                "output": check["message"] or "passed",
                "visibility": "after_published" if check["hidden"] else "visible",
            })
    # The visible summary counts the visible checks alone: the hidden ones' points wait for publication.
    visible = [t for t in tests if t["visibility"] == "visible"]
    summary = f"{sum(t['score'] for t in visible):g} / {sum(t['max_score'] for t in visible):g} points on the visible checks"
    if len(visible) < len(tests):
        summary += "; more checks are scored, and shown once the grades are published"
    return json.dumps({"score": report["total"], "execution_time": round(seconds, 2), "output": summary,
                       "visibility": "visible", "tests": tests}, indent=2)
