"""The SQLite gradebook and its exports: history kept, latest per student, Canvas CSV, summary."""

from __future__ import annotations

import csv
import io
import json
import platform
from datetime import UTC, datetime, timedelta

from grader.cohort.gradebook import Gradebook, canvas_csv, cohort_summary, summary_markdown, write_exports
from grader.fetch.roster import RosterEntry
from grader.records import Category, CheckResult, Execution, Provenance, Submission
from grader.score import LatePolicy, make_grade


def grade(student: str, passed: dict[str, bool], *, commit: str = "c0ffee", late_days: int = 0,
          status: str = "graded", when: datetime | None = None, failure: str | None = None):
    checks = [CheckResult(id=cid, title=cid.title(), category=Category.correctness, points=2.0 if ok else 0.0,
                          max_points=2.0, outcome="passed" if ok else "failed") for cid, ok in passed.items()]
    execution = Execution(status="errors" if failure else "ok")
    if failure:
        from grader.records import CellFailure

        execution = execution.model_copy(update={"failures": [CellFailure(index=1, kind="error", ename=failure)]})
    sub = Submission(student=student, week="week1", source=f"https://example.com/{student}.git", commit=commit,
                     workdir="/nowhere")
    prov = Provenance(grader_version="t", checks_hash="h" * 64, commit=commit, profile="cpu", device="cpu",
                      isolation="none", python_version=platform.python_version(), seeds={}, threads=1)
    g = make_grade(submission=sub, execution=execution, checks=checks, provenance=prov, status=status,
                   late_days=late_days, policy=LatePolicy(penalty_per_day=0.25))
    return g.model_copy(update={"graded_at": when}) if when else g


def test_every_grading_kept_latest_queryable_and_resume_idempotent(tmp_path):
    book = Gradebook(tmp_path / "gb.sqlite")
    t = datetime(2026, 3, 1, tzinfo=UTC)
    first = grade("ann", {"a": False, "b": True}, commit="1111", when=t)
    regrade = grade("ann", {"a": True, "b": True}, commit="2222", when=t + timedelta(hours=1))
    assert book.add(first, "k1:" + first.graded_at.isoformat())
    assert not book.add(first, "k1:" + first.graded_at.isoformat())  # a resumed run re-reading its cache
    assert book.add(regrade, "k2:" + regrade.graded_at.isoformat())
    book.add(grade("bo", {"a": True, "b": False}), "k3")
    assert book.count("week1") == 3
    assert [g.provenance.commit for g in book.history("ann", "week1")] == ["1111", "2222"]
    assert {g.student: g.score for g in book.latest("week1")} == {"ann": 4.0, "bo": 2.0}
    book.close()
    assert Gradebook(tmp_path / "gb.sqlite").count() == 3  # it is on disk


def test_canvas_csv_matches_lms_ids():
    students = {"ann": {"name": "Ann A", "lms_id": "1001", "sis_id": "S1", "sis_login": "ann", "section": "A"}}
    text = canvas_csv([grade("ann", {"a": True, "b": False}, late_days=1), grade("zed", {"a": False})], students,
                      "Week 1")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Week 1"]
    assert rows[1] == ["Points Possible", "", "", "", "", "4"]
    assert rows[2] == ["Ann A", "1001", "S1", "ann", "A", "1.5"]  # 2 points, one day late at 25 %
    assert rows[3] == ["zed", "", "", "", "", "0"]


def test_cohort_summary_distribution_pass_rates_and_causes():
    grades = [grade("a", {"x": True, "y": True}), grade("b", {"x": True, "y": False}, failure="NameError"),
              grade("c", {"x": False, "y": False}, status="invalid_submission"),
              grade("d", {"x": True, "y": True}, late_days=2)]
    s = cohort_summary(grades, ["roster.csv line 3: bad; skipped"])
    assert s["submissions"] == 4 and s["late"] == 1
    assert s["scores"]["histogram_percent"]["0-10"] == 1 and s["scores"]["histogram_percent"]["90-100"] == 1
    assert s["scores"]["histogram_percent"]["50-60"] == 2  # b: 2/4, d: 4/4 halved by two late days
    assert s["checks"]["x"]["passed"] == 3 and s["checks"]["x"]["pass_rate"] == 0.75
    assert s["checks"]["y"]["pass_rate"] == 0.5
    assert s["causes"] == {"full marks": 1, "cell error: NameError": 1, "invalid submission": 1,
                           "late penalty only": 1}
    md = summary_markdown(s)
    assert "| X | 3/4 (75%) |" in md and "roster.csv line 3" in md


def test_write_exports(tmp_path):
    book = Gradebook(tmp_path / "gb.sqlite")
    book.set_students([RosterEntry(student="ann", repo="https://example.com/ann.git", lms_id="77")])
    book.add(grade("ann", {"a": True}), "k")
    paths = write_exports(book, "week1", tmp_path)
    assert "77" in paths["canvas"].read_text()
    assert json.loads(paths["summary_json"].read_text())["students"][0]["student"] == "ann"
    assert paths["summary_html"].is_file()
