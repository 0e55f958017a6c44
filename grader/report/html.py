"""HTML reports: one self-contained page per submission, and one per cohort.

Pages make no external requests: CSS is inline, figures are PNG data URIs, and a
Content-Security-Policy forbids scripts, so even text that escaped escaping could not run.
Everything that can come from a student (messages, samples, tracebacks, names) is escaped.
"""

from __future__ import annotations

import base64
import re
from collections import Counter
from html import escape
from pathlib import Path
from urllib.parse import quote

from grader.records import Grade
from grader.report.charts import (
    ArtifactError,
    curve_png,
    histogram_svg,
    read_curve,
    read_png_artifact,
    read_text_artifact,
)
from grader.report.markdown import CATEGORY_TITLES, _fmt, atomic_write, register, weak_isolation_note

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]")
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
OUTCOME_LABELS = {"passed": "passed", "partial": "partial", "failed": "failed", "error": "error",
                  "skipped": "skipped"}
MAX_FAILURES_SHOWN = 3
MAX_TRACEBACK_CHARS = 8000

CSS = """
:root { --ok:#15803d; --part:#b45309; --bad:#b91c1c; --mute:#6b7280; --line:#e5e7eb; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#111827;
       max-width: 980px; margin: 0 auto; padding: 24px; background:#fff; }
h1 { font-size: 1.5em; margin: 0 0 4px; } h2 { font-size: 1.15em; margin: 28px 0 8px;
     border-bottom: 1px solid var(--line); padding-bottom: 4px; }
.verdict { display:flex; gap:24px; align-items:center; padding:16px 20px; border-radius:10px;
           background:#f9fafb; border:1px solid var(--line); }
.score { font-size: 2.4em; font-weight: 700; white-space: nowrap; }
.pct { color: var(--mute); font-size: .5em; font-weight: 500; }
.badge { display:inline-block; padding:1px 9px; border-radius:999px; font-size:.85em; font-weight:600;
         color:#fff; background:var(--mute); }
.passed { background:var(--ok); } .partial { background:var(--part); }
.failed, .error { background:var(--bad); } .skipped { background:var(--mute); }
.note { padding:10px 14px; border-left:4px solid var(--bad); background:#fef2f2; margin:12px 0; }
.late { border-left-color: var(--part); background:#fffbeb; }
table { border-collapse: collapse; width:100%; font-size:.93em; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f3f4f6; font-weight:600; } td.num { text-align:right; font-variant-numeric: tabular-nums;
     white-space: nowrap; }
.bar { height:8px; background:var(--line); border-radius:4px; min-width:80px; }
.bar > span { display:block; height:8px; border-radius:4px; background:var(--ok); }
pre { background:#0f172a; color:#e2e8f0; padding:12px; border-radius:8px; overflow-x:auto;
      font-size:.85em; white-space:pre-wrap; word-break:break-word; }
pre.sample { background:#f8fafc; color:#0f172a; border:1px solid var(--line); max-height:320px; }
figure { margin: 12px 0; }
figure img, figure svg { max-width:100%; height:auto; border:1px solid var(--line); border-radius:6px; }
figcaption { color:var(--mute); font-size:.85em; }
footer { margin-top:32px; color:var(--mute); font-size:.8em; border-top:1px solid var(--line);
         padding-top:8px; }
.muted { color: var(--mute); }
"""


def strip_ansi(text: str) -> str:
    """Remove terminal colour codes (IPython tracebacks are full of them)."""
    return ANSI.sub("", text)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _page(title: str, body: list[str]) -> str:
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        *body, "</body>", "</html>", "",
    ])


def _badge(outcome: str) -> str:
    return f'<span class="badge {_e(outcome)}">{_e(OUTCOME_LABELS.get(outcome, outcome))}</span>'


def _bar(fraction: float) -> str:
    width = max(0.0, min(1.0, fraction)) * 100
    return f'<div class="bar"><span style="width:{width:.0f}%"></span></div>'


def _verdict(grade: Grade) -> list[str]:
    outcome = "passed" if grade.max_score and grade.score >= grade.max_score else (
        "partial" if grade.score > 0 else "failed")
    head = f"{grade.week}" + (f" — {grade.title}" if grade.title else "")
    out = [
        f"<h1>{_e(head)}</h1>",
        f'<p class="muted">{_e(grade.student)} · graded {_e(grade.graded_at.strftime("%Y-%m-%d %H:%M UTC"))}</p>',
        '<section class="verdict" id="verdict">',
        f'<div class="score">{grade.score:g} / {grade.max_score:g} '
        f'<span class="pct">({grade.percent:.0f}%)</span></div>' if not grade.machine_failure else
        '<div class="score">not graded</div>',
        f"<div>{_badge(outcome)} <span class=\"muted\">{_e(grade.status.replace('_', ' '))}</span></div>",
        "</section>",
    ]
    if grade.status != "graded" or grade.message:
        out.append(f'<div class="note"><strong>{_e(grade.status.replace("_", " "))}</strong>: '
                   f"{_e(strip_ansi(grade.message or grade.execution.message))}</div>")
    for notice in grade.notices:
        out.append(f'<div class="note">{_e(notice)}</div>')
    if grade.submission.selection:
        out.append(f'<p class="muted">Graded: {_e(grade.submission.selection)}.</p>')
    for problem in grade.submission.problems:
        out.append(f'<div class="note late">{_e(problem)}</div>')
    if grade.late_days:
        out.append(f'<div class="note late">Late by {grade.late_days} day(s): −{grade.late_penalty:.0%} '
                   f"(before the penalty: {grade.raw_score:g}).</div>")
    return out


def _categories(grade: Grade) -> list[str]:
    if not grade.categories:
        return []
    rows = [f"<tr><td>{_e(CATEGORY_TITLES.get(cat, cat))}</td><td class=\"num\">{got:g} / {top:g}</td>"
            f"<td>{_bar(got / top if top else 0)}</td></tr>" for cat, (got, top) in grade.categories.items()]
    return ["<h2>Scores by category</h2>", "<table><tr><th>Category</th><th>Points</th><th></th></tr>",
            *rows, "</table>"]


def _checks(grade: Grade) -> list[str]:
    if not grade.checks:
        return []
    rows = []
    for c in grade.checks:
        rows.append(
            f"<tr id=\"check-{_e(c.id)}\"><td>{_badge(c.outcome)}</td>"
            f"<td><strong>{_e(c.title or c.id)}</strong><br><code class=\"muted\">{_e(c.id)}</code></td>"
            f"<td class=\"num\">{c.points:g} / {c.max_points:g}</td><td class=\"num\">{_e(_fmt(c.measured))}</td>"
            f"<td>{_e(c.target)}</td><td>{_e(strip_ansi(c.message))}</td></tr>")
    return ["<h2>Checks</h2>", "<table><tr><th></th><th>Check</th><th>Points</th><th>Measured</th>"
            "<th>Target</th><th>Message</th></tr>", *rows, "</table>"]


def _failures(grade: Grade) -> list[str]:
    failures, optional = grade.execution.failures, grade.execution.optional_failures
    shown = "; ".join(f"cell {f.index + 1}: {_e(f.ename or f.kind)}" for f in optional[:5])
    out = [f'<p class="muted">Optional cells that failed (not graded): {shown}</p>'] if optional else []
    if not failures:
        return out
    out.append(f"<h2>Notebook problems ({len(failures)})</h2>")
    for f in failures[:MAX_FAILURES_SHOWN]:
        label = f"Cell {f.index + 1}" + (f" [{f.execution_count}]" if f.execution_count else "")
        out.append(f"<h3>{_e(label)}: {_e(f.ename or f.kind)}</h3><p>{_e(strip_ansi(f.evalue))}</p>")
        if f.source_excerpt:
            out.append(f"<pre>{_e(f.source_excerpt)}</pre>")
        if f.traceback:
            out.append(f"<details><summary>Traceback</summary><pre>"
                       f"{_e(strip_ansi(f.traceback)[-MAX_TRACEBACK_CHARS:])}</pre></details>")
    if len(failures) > MAX_FAILURES_SHOWN:
        out.append(f'<p class="muted">… and {len(failures) - MAX_FAILURES_SHOWN} more failing cells.</p>')
    return out


def _artifacts(grade: Grade) -> list[str]:
    """Loss curves (*.json), figures such as attention heatmaps (*.png), samples (*.txt), tables (*.md)."""
    curves, figures, samples, notes = [], [], [], []
    for name, path in sorted(grade.artifacts.items()):
        suffix = Path(name).suffix.lower()
        try:
            if suffix == ".json":
                curve = read_curve(path)
                curves.append(_figure(curve_png(curve), curve["title"] or name))
            elif suffix == ".png":
                figures.append(_figure(read_png_artifact(path), name))
            elif suffix in (".txt", ".md"):  # a check's markdown table is shown as written
                text, cut = read_text_artifact(path)
                (samples if suffix == ".txt" else notes).append(
                    f"<h3>{_e(name)}</h3><pre class=\"sample\">{_e(text)}</pre>"
                    + ('<p class="muted">(truncated)</p>' if cut else ""))
        except ArtifactError as exc:
            (curves if suffix == ".json" else figures if suffix == ".png" else samples).append(
                f'<p class="muted">{_e(name)}: {_e(exc)}</p>')
    out = []
    for heading, items in (("Loss curves", curves), ("Figures", figures), ("Samples", samples),
                           ("Measurements", notes)):
        if items:
            out += [f"<h2>{heading}</h2>", *items]
    return out


def _figure(png: bytes, caption: str) -> str:
    return (f'<figure><img alt="{_e(caption)}" src="{_data_uri(png)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _footer(grade: Grade) -> list[str]:
    p = grade.provenance
    items = [f"grader {p.grader_version}", f"checks {p.checks_hash[:12]}", f"profile {p.profile}",
             f"device {p.device}", f"isolation {p.isolation}", f"python {p.python_version}",
             f"torch {p.torch_version or '—'}", f"seeds {', '.join(f'{k}={v}' for k, v in p.seeds.items())}"]
    if p.commit:
        items.append(f"commit {p.commit[:12]}")
    if p.notebook_sha256:
        items.append(f"notebook sha256 {p.notebook_sha256[:12]}")
    if grade.durations.get("total"):
        items.append(f"{grade.durations['total']:.1f} s")
    return [f"<footer>{_e(' · '.join(items))}</footer>"]


@register("html", ".html")
def render_html(grade: Grade) -> str:
    """One submission: verdict and score first, then categories, checks, problems, figures."""
    weak = weak_isolation_note(grade)
    banner = [f'<div class="note" id="weak-isolation"><strong>{_e(weak)}</strong></div>'] if weak else []
    body = [*banner, *_verdict(grade), *_categories(grade), *_checks(grade), *_failures(grade),
            *_artifacts(grade), *_footer(grade)]
    return _page(f"{grade.student} {grade.week}: {grade.score:g}/{grade.max_score:g}", body)


def render_cohort_html(grades: list[Grade], title: str = "", summary: dict | None = None) -> str:
    """A cohort: summary, score histogram, per-check pass rates, then one row per student (name, score,
    status, late days, a link to the student's report). With the batch's `summary`
    (grader.cohort.gradebook.cohort_summary) the figures are the Markdown summary's own."""
    import statistics

    grades = sorted(grades, key=lambda g: (g.week, g.student))
    weeks = sorted({g.week for g in grades})
    title = title or f"Cohort report: {', '.join(weeks) or 'no submissions'}"
    body = [f"<h1>{_e(title)}</h1>"]
    if not grades:
        return _page(title, body + ['<p class="muted">No grades.</p>'])
    summary = summary or {}
    rows_by_student = {r["student"]: r for r in summary.get("students", [])}
    scored = [g for g in grades if not g.machine_failure]
    percents = [g.percent for g in scored]
    scores = summary.get("scores") or {}
    mean = scores.get("mean", round(statistics.fmean(percents), 1) if percents else None)
    median = scores.get("median", round(statistics.median(percents), 1) if percents else None)
    graded = sum(g.status == "graded" for g in grades)
    if summary.get("banner"):
        body.append(f'<div class="note">{_e(summary["banner"])}</div>')
    if summary.get("deadline_record"):
        body.append(f"<p>{_e(summary['deadline_record'])}</p>")
    body += [
        '<section class="verdict" id="summary">',
        f'<div class="score">{len(grades)} <span class="pct">submissions</span></div>',
        (f"<div>mean {'—' if mean is None else f'{mean:g}%'} · median {'—' if median is None else f'{median:g}%'}"
         f" · {graded} graded, {len(grades) - graded} not graded · late {sum(1 for g in grades if g.late_days)}"
         "</div></section>"),
    ]
    needs = summary.get("needs_attention") or {
        g.student: f"{g.status.replace('_', ' ')}: {g.message}" for g in grades if g.machine_failure}
    if needs:
        body += ["<h2>Needs attention</h2>", ('<p class="muted">No score was exported for the machine\'s failures '
                                              "(blank in the Canvas file); grade again once the cause is fixed.</p><ul>")]
        body += [f"<li><b>{_e(student)}</b>: {_e(strip_ansi(why)[:300])}</li>" for student, why in needs.items()]
        body.append("</ul>")
    body += ["<h2>Score distribution</h2>",
             f"<figure>{histogram_svg(percents)}<figcaption>scores (% of maximum)</figcaption></figure>"]
    body += _pass_rates(scored)
    rows = []
    for g in grades:
        info = rows_by_student.get(g.student, {})
        link = quote(info.get("report") or f"reports/{g.student}-{g.week}.html", safe="/")  # a relative path only
        problem = g.message or (g.status.replace("_", " ") if g.status != "graded" else "")
        score = "—" if g.machine_failure else f"{g.score:g} / {g.max_score:g}"
        pct = "—" if g.machine_failure else f"{g.percent:.0f}%"
        rows.append(f"<tr><td><a href=\"{_e(link)}\">{_e(g.student)}</a></td><td>{_e(info.get('name') or '')}</td>"
                    f"<td>{_e(g.week)}</td><td class=\"num\">{score}</td><td class=\"num\">{pct}</td>"
                    f"<td>{'' if g.machine_failure else _bar(g.percent / 100)}</td>"
                    f"<td>{_e(g.status.replace('_', ' '))}</td><td class=\"num\">{g.late_days}</td>"
                    f"<td>{_e(strip_ansi(problem)[:300])}</td></tr>")
    body += ["<h2>Students</h2>", ("<table><tr><th>Student</th><th>Name</th><th>Week</th><th>Score</th><th>%</th>"
                                   "<th></th><th>Status</th><th>Late days</th><th>Problem</th></tr>"), *rows, "</table>"]
    versions = sorted({g.provenance.grader_version for g in grades})
    body.append(f"<footer>{_e('grader ' + ', '.join(versions) + f' · {len(grades)} grades')}</footer>")
    return _page(title, body)


def _pass_rates(grades: list[Grade]) -> list[str]:
    """Per check: how many submissions earned full marks, and the average fraction earned."""
    full: Counter[tuple[str, str]] = Counter()
    seen: Counter[tuple[str, str]] = Counter()
    earned: dict[tuple[str, str], float] = {}
    titles: dict[tuple[str, str], str] = {}
    for g in grades:
        for c in g.checks:
            if c.max_points <= 0:
                continue
            key = (g.week, c.id)
            seen[key] += 1
            full[key] += c.points >= c.max_points
            earned[key] = earned.get(key, 0.0) + c.points / c.max_points
            titles.setdefault(key, c.title or c.id)
    if not seen:
        return []
    rows = []
    for key in sorted(seen, key=lambda k: (k[0], full[k] / seen[k])):
        rate = full[key] / seen[key]
        rows.append(f"<tr><td>{_e(key[0])}</td><td>{_e(titles[key])}<br><code class=\"muted\">{_e(key[1])}</code>"
                    f"</td><td class=\"num\">{full[key]} / {seen[key]}</td><td class=\"num\">{rate:.0%}</td>"
                    f"<td>{_bar(rate)}</td><td class=\"num\">{earned[key] / seen[key]:.0%}</td></tr>")
    return ["<h2>Checks: pass rates</h2>", "<table><tr><th>Week</th><th>Check</th><th>Full marks</th>"
            "<th>Rate</th><th></th><th>Avg. credit</th></tr>", *rows, "</table>"]


def write_cohort_html(grades: list[Grade], path: Path, title: str = "", summary: dict | None = None) -> Path:
    """Write the cohort page (atomically) and return its path."""
    atomic_write(Path(path), render_cohort_html(grades, title, summary))
    return Path(path)
