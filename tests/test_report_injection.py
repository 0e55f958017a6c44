"""Submission text is inert in every format it lands in: rendered through a CommonMark parser (Markdown),
read back by the csv module (Canvas CSV), and replayed through the GitHub runner's command rules (stdout)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from grade_factory import check, failure, make_grade
from markdown_it import MarkdownIt

from grader.cohort.gradebook import canvas_csv, cohort_summary, summary_markdown
from grader.config import Settings
from grader.records import CellFailure
from grader.report.escape import csv_cell, md_code_span, md_fence, md_text
from grader.report.github import MARKER, commands_stopped, comment_body, emit, job_summary, truncate_markdown
from grader.report.markdown import render_markdown

# What a hostile exception name, message or cell can hold (measured on main: each landed raw).
PAYLOADS = [
    "## week1: 39 / 39",
    "@course-staff please merge",
    "![pwned](https://evil.example/x.png)",
    "[click me](https://evil.example/login)",
    "<details><summary>hidden</summary>",
    "<!-- the rest of the report is hidden",
    "<img src=x onerror=alert(1)>",
    "| fake | table |",
    "***loud*** ~~struck~~ $x^2$",
    "1. ordered\n- bullet\n> quote\n---",
    "visit https://evil.example or www.evil.example",
]
HOSTILE = " ".join(p.replace("\n", " ") for p in PAYLOADS)
FENCE_BREAKER = "x = 1\n```\n## escaped the fence\n````\n~~~\n@mention in code"
COMMANDS = "::add-mask::39\n::warning title=fake::all checks passed\n  ::error::indented\n##[add-mask]41"


def _md():
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _tokens(text: str):
    def walk(tokens):
        for token in tokens:
            yield token
            yield from walk(token.children or [])

    return list(walk(_md().parse(text)))


def hostile_grade(**kw):
    fail = CellFailure(index=2, execution_count=3, kind="timeout", ename=HOSTILE, evalue=HOSTILE + "\n" + COMMANDS,
                       source_excerpt=FENCE_BREAKER)
    return make_grade(checks=[check("value_ops", 0, 2, title="value ops", message=HOSTILE, target="≤ 1")],
                      failures=[fail, failure()], status="failed_to_run", message=HOSTILE + "\n" + COMMANDS, **kw)


def assert_inert(markdown: str, headings: int) -> None:
    """Only the writer's own structure: `headings` headings, tables, code; no HTML, link, image, emphasis."""
    tokens = _tokens(markdown)
    kinds = {t.type for t in tokens}
    assert not kinds & {"html_block", "image", "link_open", "em_open", "s_open", "ordered_list_open", "hr"}, kinds
    assert {t.content for t in tokens if t.type == "html_inline"} <= {"<sub>", "</sub>"}  # the footer is ours
    assert sum(t.type == "blockquote_open" for t in tokens) <= 1  # the verdict line
    assert "bullet_list_open" not in kinds or "more problem(s) not shown" in markdown  # the summary's own list
    assert sum(t.type == "heading_open" for t in tokens) == headings
    text = "".join(t.content for t in tokens if t.type in ("text", "code_inline"))
    assert "@course" not in text and "https://evil" not in text and "www.evil" not in text  # no mention, no autolink
    assert "<details>" in text and "<!--" in text  # shown as the characters they are
    for fence in (t for t in tokens if t.type == "fence"):
        assert "## escaped the fence" not in markdown.split(fence.content)[1][:40]
    assert any("## escaped the fence" in t.content for t in tokens if t.type == "fence")


def test_markdown_report_keeps_submission_text_inert():
    md = render_markdown(hostile_grade())
    assert_inert(md, headings=2)  # the verdict and "Notebook problems"
    assert md.splitlines()[0].startswith("## week1: 0 / 2")


def test_job_summary_and_pr_comment_keep_submission_text_inert(tmp_path):
    grade = hostile_grade(workdir=str(tmp_path))
    summary_path = tmp_path / "summary.md"
    out = io.StringIO()
    emit(grade, {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary_path)}, out)
    assert_inert(summary_path.read_text(), headings=2)
    body = comment_body(grade)
    assert body.startswith(MARKER + "\n") and body.count("<!--") == 1  # the marker is the only comment
    assert [t.content for t in _tokens(body) if t.type == "html_block"] == [MARKER + "\n"]
    assert_inert(body.removeprefix(MARKER + "\n"), headings=2)
    assert_inert(job_summary(grade, extra=[f"::error title=x::{HOSTILE}"]), headings=3)


def test_a_timed_out_cells_excerpt_cannot_close_its_fence():
    lines = md_fence(FENCE_BREAKER, "python")
    assert lines[0] == "`````python" and lines[-1] == "`````"
    fences = [t for t in _tokens("\n".join(lines)) if t.type == "fence"]
    assert len(fences) == 1 and fences[0].content == FENCE_BREAKER + "\n"


def test_truncation_closes_a_long_fence_with_its_own_length():
    text = "intro\n" + "\n".join(md_fence("````\n" + "y\n" * 5000)) + "\nafter\n"
    cut = truncate_markdown(text, 3000)
    assert len(cut.encode()) <= 3000 and cut.endswith("(truncated)\n")
    fences = [t for t in _tokens(cut) if t.type == "fence"]
    assert len(fences) == 1 and "(truncated)" not in fences[0].content


@pytest.mark.parametrize("text", PAYLOADS + [FENCE_BREAKER, "`", "a``b", " `x` "])
def test_escapers_render_as_the_literal_text(text):
    inline = _tokens(md_text(text))
    assert {t.type for t in inline} <= {"paragraph_open", "paragraph_close", "inline", "text", "softbreak"}
    shown = "".join(t.content for t in inline if t.type == "text")
    assert shown.replace("\u200b", "") == " ".join(text.split())
    code = [t for t in _tokens(md_code_span(text)) if t.type == "code_inline"]
    assert len(code) == 1 and code[0].content.strip() == " ".join(text.split()).strip()


def test_cohort_summary_escapes_causes_titles_and_roster_lines():
    grade = hostile_grade().model_copy(update={"status": "graded"})
    summary = cohort_summary([grade], roster_problems=[f"line 3: {HOSTILE}"])
    md = summary_markdown(summary)
    assert HOSTILE[:10] in summary["causes"].__iter__().__next__()  # the JSON keeps the raw text
    tokens = _tokens(md)
    assert not {t.type for t in tokens} & {"html_block", "html_inline", "image", "em_open", "s_open"}
    # The only links are the summary's own, each to a student's report (the link text is escaped)
    links = [t.attrGet("href") for t in tokens if t.type == "link_open"]
    assert links == [row["report"] for row in summary["students"]]
    assert sum(t.type == "heading_open" for t in tokens) == 6  # the summary's own headings only
    assert "@course" not in md


FORMULAS = ['=HYPERLINK("https://evil.example","grade")', "=1+2", "+1", "-2+3", "@SUM(A1:A2)", "\tx", "\r=1"]


def test_canvas_csv_cells_never_start_a_formula():
    grades = [make_grade(student=f"s{i}") for i in range(len(FORMULAS))]
    students = {f"s{i}": {"name": f, "lms_id": f, "sis_id": "", "sis_login": f, "section": f}
                for i, f in enumerate(FORMULAS)}
    rows = list(csv.reader(io.StringIO(canvas_csv(grades, students, "=evil"))))
    assert rows[0][-1] == "'=evil"
    for row, payload in zip(rows[2:], FORMULAS):
        for cell in (row[0], row[1], row[3], row[4]):
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), row
            assert cell == "'" + payload.replace("\r", " ")  # the text itself survives, after the quote
    assert csv_cell("Ann") == "Ann" and csv_cell(3.5) == "3.5"


def replay_runner(output: str) -> list[str]:
    """The commands GitHub's runner would act on (ActionCommandManager: `::cmd::` after trimming,
    `##[cmd]` anywhere, nothing but the resume token while stopped)."""
    acted, stopped = [], None
    for line in output.splitlines():
        found = re.match(r"::([^ :]+)", line.strip()) or re.search(r"##\[([^ \]]+)", line)
        if not found:
            continue
        name = found[1]
        if stopped:
            if name == stopped:
                stopped = None
            continue
        if name == "stop-commands":
            stopped = line.strip().split("::")[2]
            continue
        acted.append(name)
    return acted


def test_grader_check_output_runs_no_command_of_the_students(tmp_path, monkeypatch, capsys):
    """`grader check --format github` in Actions: our annotations are commands, nothing the student wrote is."""
    from grader import cli

    for key, value in {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(tmp_path / "s.md"),
                       "GITHUB_WORKSPACE": str(tmp_path)}.items():
        monkeypatch.setenv(key, value)
    grade = hostile_grade(workdir=str(tmp_path))
    cli._finish(grade, Settings(out_dir=tmp_path / "out"), ("github", "md"), show_report=True)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "::add-mask::39" in output  # printed, as text
    assert set(replay_runner(captured.out)) == {"error"}
    assert set(replay_runner(captured.err)) <= {"error"}


def test_commands_stopped_is_silent_outside_actions():
    out = io.StringIO()
    with commands_stopped({}, out):
        pass
    assert out.getvalue() == ""
    with commands_stopped({"GITHUB_ACTIONS": "true"}, out):
        out.write("::add-mask::1\n")
    first, _, last = out.getvalue().splitlines()
    token = first.split("::")[2]
    assert len(token) == 32 and last == f"::{token}::"
