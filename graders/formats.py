"""The report of `kata grade` in the formats that course platforms read.

classroom: GitHub Classroom's autograding result, version 1, as the command-grader action writes it
           (base64 of {"version": 1, "status", "max_score", "tests": [...]}), one test per check so
           that each check earns its own points.
gradescope: results.json per Gradescope's autograder specification; hidden checks are shown to the
           learner only once the instructor publishes the grades.
"""

import base64
import json


def classroom(report: dict) -> str:
    tests = []
    for kata in report["katas"]:
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
    for kata in report["katas"]:
        for check in kata["checks"]:
            tests.append({
                "name": f"{kata['title']}: {check['name']}",
                "score": check["score"],
                "max_score": check["max_score"],
                "output": check["message"] or "passed",
                "visibility": "after_published" if check["hidden"] else "visible",
            })
    summary = f"{report['total']:g} / {report['max_score']:g} points"
    return json.dumps({"score": report["total"], "execution_time": round(seconds, 2), "output": summary,
                       "visibility": "visible", "tests": tests}, indent=2)
