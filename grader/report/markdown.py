"""Write one Grade as reports: JSON (the contract) and Markdown (PR comment, job summary).

Other formats (HTML, JUnit, Gradescope, GitHub) register a writer in WRITERS from their
own modules; write_report dispatches by name.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

from grader.records import Grade

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
    text = " ".join(text.split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("|", "\\|")


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
    if grade.title:
        lines[0] += f" — {grade.title}"
    weak = weak_isolation_note(grade)
    if weak:
        lines.insert(0, f"> ⚠️ **{weak}**\n")
    if grade.status != "graded" or grade.message:
        lines.append(f"\n> **{grade.status.replace('_', ' ')}**: {grade.message}")
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
            lines.append(f"\n**{head}: {f.ename or f.kind}** {_cell(f.evalue, 200)}")
            if f.source_excerpt:
                lines += ["```python", f.source_excerpt[:800], "```"]
    p = grade.provenance
    lines += ["", f"<sub>grader {p.grader_version} · checks {p.checks_hash[:12]} · profile {p.profile} · "
              f"device {p.device} · isolation {p.isolation} · torch {p.torch_version or '—'}"
              + (f" · commit {p.commit[:12]}" if p.commit else "") + "</sub>", ""]
    return "\n".join(lines)


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
