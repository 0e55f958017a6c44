"""JUnit XML and Gradescope results.json: machine formats that other tools parse."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from conftest import ROOT
from grade_factory import check, make_grade

from grader.report.gradescope import results
from grader.report.junit import render_junit
from grader.report.markdown import write_report


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


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "fixtures" / "submissions" / "colab" / "week1").is_dir(), reason="no week1 yet")
def test_gradescope_run_autograder_leaves_results_json(tmp_path):
    """Gradescope's layout: /autograder/submission in, /autograder/results/results.json out."""
    shutil.copytree(ROOT / "fixtures" / "submissions" / "colab" / "week1", tmp_path / "submission")
    env = {**os.environ, "AUTOGRADER_ROOT": str(tmp_path), "GRADER_SOURCE": str(ROOT), "WEEK": "week1",
           "GRADER_PROFILE": "cpu", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / "ci" / "gradescope_run_autograder.sh")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "results" / "results.json").read_text())
    assert out["score"] == sum(t["max_score"] for t in out["tests"]) > 0


def test_gradescope_run_autograder_without_a_week_reports_instead_of_crashing(tmp_path):
    env = {**os.environ, "AUTOGRADER_ROOT": str(tmp_path), "GRADER_SOURCE": str(tmp_path), "WEEK": ""}
    proc = subprocess.run(["bash", str(ROOT / "ci" / "gradescope_run_autograder.sh")], env=env,
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0
    assert "misconfigured" in json.loads((tmp_path / "results" / "results.json").read_text())["output"]
