"""Write one Grade as reports: JSON (the contract) and Markdown (PR comment, job summary).

Other formats (HTML, JUnit, Gradescope, GitHub) register a writer in WRITERS from their
own modules; write_report dispatches by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from grader.records import Grade
from grader.report.escape import md_fence, md_text

WRITERS: dict[str, tuple[str, Callable[[Grade], str]]] = {}  # format -> (file suffix, render)

CATEGORY_TITLES = {
    "correctness": "Correctness",
    "gradient": "Gradient accuracy",
    "loss": "Loss threshold",
    "samples": "Sample quality",
    "runs_clean": "Runs clean",
    "integrity": "Integrity",
}
ICONS = {"passed": "✅", "partial": "🟡", "failed": "❌", "error": "❌", "skipped": "⏭️"}


def register(fmt: str, suffix: str):
    def deco(fn: Callable[[Grade], str]) -> Callable[[Grade], str]:
        WRITERS[fmt] = (suffix, fn)
        return fn

    return deco


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a killed run never leaves half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@register("json", ".json")
def render_json(grade: Grade) -> str:
    return grade.model_dump_json(indent=2) + "\n"


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if value == 0 or 1e-3 <= abs(value) < 1e5:
        return f"{value:.4g}"
    return f"{value:.2e}"


def _cell(text: str, limit: int = 300) -> str:
    """A table cell: one line of inert Markdown (`|` escaped with the rest)."""
    return md_text(text, limit)


def _verdict(status: str, message: str) -> list[str]:
    """The status line; a message of several lines (a harness traceback) follows in a code block."""
    first, _, rest = message.strip().partition("\n")
    lines = [f"\n> **{status.replace('_', ' ')}**: {md_text(first, 500)}"]
    if rest.strip():
        lines += ["", *md_fence(rest[-3000:])]
    return lines


def weak_isolation_note(grade: Grade) -> str | None:
    """One sentence for a grade made below bubblewrap (every report's first line), else None."""
    sandbox = grade.provenance.sandbox
    if sandbox is None or not sandbox.weak:
        return None
    held = [label for label, ok in (
        ("its own unprivileged user", sandbox.uid == "own"), ("no network", sandbox.network_cut),
        ("the forbidden packages blocked", sandbox.forbidden_blocked and bool(sandbox.forbidden)),
        ("private mounts", sandbox.private_mounts)) if ok]
    return (f"Weak isolation: graded at the '{sandbox.level}' level, without bubblewrap's sandbox"
            + (f" (held: {', '.join(held)})" if held else "") + "; this grade is only as trustworthy as the notebook.")


@register("md", ".md")
def render_markdown(grade: Grade) -> str:
    """Verdict first, then categories, then each check with measured value and target."""
    lines = [f"## {grade.week}: {grade.score:g} / {grade.max_score:g} ({grade.percent:.0f}%)"]
    if grade.machine_failure:  # no score: the machine failed, not the student
        lines = [f"## {grade.week}: not graded ({grade.status.replace('_', ' ')})"]
    if grade.title:
        lines[0] += f" — {grade.title}"
    lines += submission_lines(grade)
    weak = weak_isolation_note(grade)
    if weak:
        lines.insert(0, f"> ⚠️ **{weak}**\n")
    if grade.status != "graded" or grade.message:
        lines += _verdict(grade.status, grade.message)
    if grade.late_days:
        lines.append(f"\nLate by {grade.late_days} day(s): −{grade.late_penalty:.0%} "
                     f"(before penalty {grade.raw_score:g}).")
    if grade.categories:
        lines += ["", "| Category | Points |", "|---|---|"]
        for cat, (got, top) in grade.categories.items():
            lines.append(f"| {CATEGORY_TITLES.get(cat, cat)} | {got:g} / {top:g} |")
    if grade.checks:
        lines += ["", "| | Check | Points | Measured | Target | Message |", "|---|---|---|---|---|---|"]
        for c in grade.checks:
            lines.append(
                f"| {ICONS.get(c.outcome, '')} | {_cell(c.title or c.id, 80)} | {c.points:g} / {c.max_points:g} "
                f"| {_fmt(c.measured)} | {_cell(c.target, 40)} | {_cell(c.message)} |"
            )
    failures = grade.execution.failures
    if failures:
        lines += ["", f"### Notebook problems ({len(failures)})"]
        for f in failures[:5]:
            head = f"Cell {f.index + 1}" + (f" [{f.execution_count}]" if f.execution_count else "")
            lines.append(f"\n**{head}: {md_text(f.ename or f.kind, 80)}** {_cell(f.evalue, 200)}")
            if f.source_excerpt:  # the fence outgrows any backtick run in the excerpt: it cannot close early
                lines += md_fence(f.source_excerpt[:800], "python")
    optional = grade.execution.optional_failures
    if optional:
        lines += ["", "Optional cells that failed (not graded): " + "; ".join(
            f"cell {f.index + 1}: {md_text(f.ename or f.kind, 80)}" for f in optional[:5])]
    p = grade.provenance
    # device and torch version are what the kernel reported: the sandbox's words, escaped like the rest
    lines += ["", f"<sub>grader {md_text(p.grader_version)} · checks {md_text(p.checks_hash[:12])} · "
              f"profile {md_text(p.profile)} · device {md_text(p.device, 80)} · isolation {md_text(p.isolation)} · "
              f"torch {md_text(p.torch_version or '—', 40)}"
              + (f" · commit {md_text(p.commit[:12])}" if p.commit else "") + "</sub>", ""]
    return "\n".join(lines)


def submission_lines(grade: Grade) -> list[str]:
    """Notices (late-day caveats, a push not graded), what was graded and why, and fetch notes."""
    lines = [f"\n> **Notice:** {_cell(n, 500)}" for n in grade.notices]
    sub = grade.submission
    if sub.selection or sub.notebook:
        graded = sub.selection or f"notebook {sub.notebook}"
        lines.append(f"\nGraded: {_cell(graded, 600)}.")
    notes = [p for p in sub.problems if p not in grade.message]
    if notes:
        lines += [""] + [f"- {_cell(p, 300)}" for p in notes[:10]]
    return lines


def write_report(grade: Grade, out_dir: Path, formats: tuple[str, ...] = ("json", "md"),
                 stem: str | None = None) -> dict[str, Path]:
    """Write each requested format to out_dir/<stem><suffix>; returns format -> path."""
    _load_optional_writers()
    stem = stem or f"{grade.student}-{grade.week}"
    written = {}
    for fmt in formats:
        if fmt not in WRITERS:
            raise ValueError(f"unknown report format {fmt!r} (known: {', '.join(sorted(WRITERS))})")
        suffix, render = WRITERS[fmt]
        path = out_dir / f"{stem}{suffix}"
        atomic_write(path, render(grade))
        written[fmt] = path
    return written


def known_formats() -> list[str]:
    """Every report format a writer is registered for."""
    _load_optional_writers()
    return sorted(WRITERS)


def _load_optional_writers() -> None:
    """Import the modules that register further formats, if they exist."""
    import importlib

    for name in ("html", "junit", "gradescope", "github"):
        try:
            importlib.import_module(f"grader.report.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"grader.report.{name}":
                raise


def load_grade(path: Path) -> Grade:
    return Grade.model_validate(json.loads(Path(path).read_text()))
