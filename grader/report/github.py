"""`--format github`: the PR comment body, the job summary and workflow annotations.

The registered writer returns the comment body (written as <stem>.comment.md, which the
workflow uploads; a hidden marker lets the poster update its one comment instead of adding
another). As side effects, inside GitHub Actions it appends the job summary to
$GITHUB_STEP_SUMMARY and prints `::error` annotations that point at the notebook cell.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from grader.records import Grade
from grader.report.escape import md_text
from grader.report.markdown import register, render_markdown

MARKER = "<!-- grader:pr-comment -->"
MAX_SUMMARY_BYTES = 1024 * 1024 - 4096  # GitHub refuses a step summary over 1 MiB
MAX_COMMENT_CHARS = 65000  # GitHub's comment limit is 65,536 characters
MAX_ANNOTATIONS = 10  # GitHub shows at most 10 error annotations per step
_CELL_LINE = re.compile(r"Cell In\[(\d+)\], line (\d+)")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


def _open_fence(text: str) -> str | None:
    """The fence still open at the end of `text` (CommonMark: closed by a run of the same character at
    least as long, with nothing after it), or None."""
    open_fence = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match is None:
            continue
        run, rest = match[1], match[2]
        if open_fence is None:
            open_fence = run
        elif run[0] == open_fence[0] and len(run) >= len(open_fence) and not rest.strip():
            open_fence = None
    return open_fence


def truncate_markdown(text: str, max_bytes: int, note: str = "\n\n… (truncated)\n") -> str:
    """Cut text to max_bytes of UTF-8 on a line boundary, closing an open code fence."""
    raw = text.encode("utf-8")
    if len(raw) <= max_bytes:
        return text
    fence_room = 1 + max((len(m) for m in re.findall(r"`{3,}|~{3,}", text)), default=3)
    room = max_bytes - len(note.encode()) - fence_room
    cut = raw[:room].decode("utf-8", errors="ignore")
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    fence = _open_fence(cut)
    if fence:
        cut += "\n" + fence
    return cut + note


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _unescape_data(text: str) -> str:
    return text.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


@contextmanager
def commands_stopped(environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> Iterator[None]:
    """Inside GitHub Actions, no line printed meanwhile is a workflow command.

    The runner reads every line a step prints (stdout and stderr) for `::command::` (and the older
    `##[command]`, anywhere in a line); a cell's text such as `::add-mask::39` would otherwise become one.
    `::stop-commands::TOKEN` pauses that until `::TOKEN::`, and the token is random, so text printed in
    between cannot resume it. Outside Actions this prints nothing."""
    environ = os.environ if environ is None else environ
    if environ.get("GITHUB_ACTIONS") != "true":
        yield
        return
    stream = sys.stdout if stream is None else stream
    token = secrets.token_hex(16)
    print(f"::stop-commands::{token}", file=stream, flush=True)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        print(f"::{token}::", file=stream, flush=True)


def notebook_file(grade: Grade, workspace: str | None) -> str | None:
    """The notebook's path relative to the checked-out repository, as annotations need it."""
    if not grade.submission.notebook:
        return None
    path = Path(grade.submission.workdir) / grade.submission.notebook
    if workspace:
        try:
            return path.resolve().relative_to(Path(workspace).resolve()).as_posix()
        except ValueError:
            pass
    return grade.submission.notebook


def cell_line(notebook: Path, cell_index: int, line_in_cell: int = 1) -> int | None:
    """The line of the notebook file (JSON) where a cell's source line sits, or None.

    Only keys match the pattern: inside JSON strings every quote is escaped. nbformat writes one
    source line per JSON line, so the offset into the cell is exact for notebooks it saved.
    """
    try:
        text = notebook.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    starts = [m.start() for m in re.finditer(r'(?<!\\)"cell_type"\s*:', text)]
    if cell_index >= len(starts):
        return None
    source = re.compile(r'(?<!\\)"source"\s*:\s*(\[?)').search(text, starts[cell_index])
    cell_end = starts[cell_index + 1] if cell_index + 1 < len(starts) else len(text)
    if source is None or source.start() > cell_end:
        return text.count("\n", 0, starts[cell_index]) + 1
    line = text.count("\n", 0, source.start()) + 1
    return line + max(1, line_in_cell) if source.group(1) else line


def annotations(grade: Grade, workspace: str | None = None) -> list[str]:
    """Every `::error` line for this grade: failing cells first, then checks that lost points."""
    file = notebook_file(grade, workspace)
    where = f"file={_escape_property(file)}" if file else ""
    out = []
    for f in grade.execution.failures:
        props = where
        hit = [m for m in _CELL_LINE.finditer(f.traceback) if f.execution_count and int(m[1]) == f.execution_count]
        if file:
            line = cell_line(Path(grade.submission.workdir) / grade.submission.notebook, f.index,
                             int(hit[0][2]) if hit else 1)  # the statement the cell ran, as in the excerpt
            props += f",line={line}" if line else ""
        title = _escape_property(f"Cell {f.index + 1}: {f.ename or f.kind}")
        out.append(f"::error {props},title={title}::{_escape_data(f.evalue or f.kind)}".replace(" ,", " "))
    for c in grade.checks:
        if c.points < c.max_points:
            title = _escape_property(f"{grade.week} {c.id}: {c.points:g}/{c.max_points:g}")
            out.append(f"::error {where},title={title}::{_escape_data(c.message or 'lost points')}"
                       .replace(" ,", " "))
    if grade.status != "graded":
        out.insert(0, f"::error {where},title={grade.status}::{_escape_data(grade.message)}".replace(" ,", " "))
    return out


def job_summary(grade: Grade, extra: list[str] = ()) -> str:
    """The report in Markdown, verdict first; problems beyond the annotation cap listed at the end."""
    text = render_markdown(grade)
    if extra:
        text += f"\n### {len(extra)} more problem(s) not shown as annotations\n\n"
        text += "\n".join(f"- {md_text(_unescape_data(line.split('::', 2)[-1]), 300)}" for line in extra) + "\n"
    return truncate_markdown(text, MAX_SUMMARY_BYTES)


def comment_body(grade: Grade) -> str:
    """The PR comment: the hidden marker, then the Markdown report; capped at GitHub's limit."""
    body = f"{MARKER}\n{render_markdown(grade)}"
    return truncate_markdown(body, MAX_COMMENT_CHARS)  # bytes >= chars, so this is safe for chars too


def emit(grade: Grade, environ: Mapping[str, str] | None = None, stream: TextIO | None = None) -> None:
    """Inside GitHub Actions: print annotations (at most 10) and append the job summary."""
    environ = os.environ if environ is None else environ
    stream = sys.stdout if stream is None else stream
    lines = annotations(grade, environ.get("GITHUB_WORKSPACE"))
    shown, rest = lines[:MAX_ANNOTATIONS], lines[MAX_ANNOTATIONS:]
    if environ.get("GITHUB_ACTIONS") == "true":
        for line in shown:
            print(line, file=stream)
        stream.flush()
    summary_path = environ.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        with open(summary_path, "a", encoding="utf-8") as handle:
            handle.write(job_summary(grade, rest))


@register("github", ".comment.md")
def render_github(grade: Grade) -> str:
    emit(grade)
    return comment_body(grade)

