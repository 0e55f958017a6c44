"""JUnit XML and Gradescope results.json: machine formats that other tools parse."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from grade_factory import check, make_grade

from grader.report import write_report
from grader.report_gradescope import results
from grader.report_junit import render_junit


def test_junit_has_one_testcase_per_check_and_failures_for_lost_points():
    grade = make_grade(checks=[check("a", 2, 2), check("b", 1, 2, message="half: x\x00y"),
                               check("c", 0, 1, outcome="error", message="probe crashed"),
                               check("d", 0, 1, outcome="skipped", message="not run")])
    root = ET.fromstring(render_junit(grade).encode())  # parses: control characters were replaced
    suite = root.find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {"a", "b", "c", "d"}
    assert cases["a"].find("failure") is None
    assert "half: x\ufffdy" in cases["b"].find("failure").get("message")
    assert cases["c"].find("error") is not None and cases["d"].find("skipped") is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("4", "1", "1", "1")


def test_junit_reports_an_ungradable_submission_as_an_error():
    root = ET.fromstring(render_junit(make_grade(checks=[], status="invalid_submission",
                                                 message="no notebook found")).encode())
    error = root.find("testsuite/testcase/error")
    assert error.get("type") == "invalid_submission" and "no notebook" in error.get("message")


def test_gradescope_results_follow_the_spec():
    out = results(make_grade(), leaderboard=True)
    assert out["score"] == 3.5
    assert [t["max_score"] for t in out["tests"]] == [2, 3, 3]
    assert [t["status"] for t in out["tests"]] == ["passed", "failed", "failed"]
    assert all(t["visibility"] in {"visible", "hidden", "after_due_date", "after_published"} for t in out["tests"])
    assert "target ≤ 2.5" in out["tests"][2]["output"]
    assert out["leaderboard"][0]["order"] == "desc"
    assert sum(t["score"] for t in out["tests"]) == out["score"]


def test_write_report_writes_the_machine_formats(tmp_path):
    written = write_report(make_grade(), tmp_path, ("junit", "gradescope"))
    assert json.loads(written["gradescope"].read_text())["tests"]
    assert ET.parse(written["junit"]).getroot().tag == "testsuites"


def test_grader_check_ends_with_the_next_step():
    from grader.cli import _next_step

    assert _next_step(make_grade(checks=[check("a", 2, 2)])).startswith("All public checks passed")
    assert _next_step(make_grade()).startswith("2 check(s) lost points")
    assert "no notebook found" in _next_step(make_grade(checks=[], status="invalid_submission",
                                                        message="no notebook found"))
