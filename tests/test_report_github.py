"""`--format github` under a simulated GitHub Actions environment."""

from __future__ import annotations

import io
import json

import nbformat
from grade_factory import check, failure, make_grade

from grader.report.github import (
    MARKER,
    MAX_ANNOTATIONS,
    annotations,
    cell_line,
    comment_body,
    emit,
    truncate_markdown,
)
from grader.report.markdown import write_report


def _notebook(folder, cells=6):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(f"a = {i}\nb = a + 1\nc = b / 0") for i in range(cells)]
    path = folder / "week1.ipynb"
    nbformat.write(nb, path)
    return path


def _env(tmp_path):
    return {"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(tmp_path),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}


def test_annotation_points_at_the_failing_line_of_the_cell(tmp_path):
    path = _notebook(tmp_path)
    line = cell_line(path, 4, 2)
    assert path.read_text().splitlines()[line - 1].strip() == '"b = a + 1\\n",'
    grade = make_grade(failures=[failure(index=4, count=5)], workdir=str(tmp_path))
    first = annotations(grade, str(tmp_path))[0]
    assert first.startswith(f"::error file=week1.ipynb,line={line},title=Cell 5%3A ZeroDivisionError::")


def test_emit_writes_summary_and_at_most_ten_annotations(tmp_path):
    _notebook(tmp_path)
    checks = [check(f"c{i}", 0, 1, message=f"lost {i}\nsecond line") for i in range(14)]
    grade = make_grade(checks=checks, workdir=str(tmp_path))
    out = io.StringIO()
    emit(grade, _env(tmp_path), out)
    lines = out.getvalue().splitlines()
    assert len(lines) == MAX_ANNOTATIONS and all(line.startswith("::error file=week1.ipynb") for line in lines)
    assert "lost 0%0Asecond line" in lines[0]  # newlines escaped, never a second command
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## week1: 0 / 14")  # the verdict first
    assert "4 more problem(s) not shown as annotations" in summary and "lost 13" in summary


def test_nothing_is_printed_outside_actions(tmp_path):
    out = io.StringIO()
    emit(make_grade(), {}, out)
    assert out.getvalue() == ""


def test_summary_and_comment_are_truncated_safely(tmp_path):
    text = "é" * 100 + "\n```\n" + "x\n" * 10_000
    cut = truncate_markdown(text, 2000)
    assert len(cut.encode()) <= 2000 and cut.count("```") % 2 == 0 and cut.endswith("(truncated)\n")
    huge = make_grade(checks=[check(f"c{i}", 0, 1, message="m" * 1400) for i in range(200)])
    body = comment_body(huge)
    assert body.startswith(MARKER) and len(body) <= 65000


def test_write_report_github_format(tmp_path, monkeypatch):
    _notebook(tmp_path)
    for key, value in _env(tmp_path).items():
        monkeypatch.setenv(key, value)
    written = write_report(make_grade(workdir=str(tmp_path)), tmp_path / "out", ("github", "json"))
    assert written["github"].name == "ada-week1.comment.md"
    assert written["github"].read_text().startswith(MARKER)
    assert (tmp_path / "summary.md").stat().st_size > 100
    assert json.loads(written["json"].read_text())["score"] == 3.5
