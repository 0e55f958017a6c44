"""The cohort gradebook (SQLite): every grading kept, the latest per student and week, exports.

Rows are never updated: a regrade is a new row, so history stays visible. Inserting the same
grading twice (a resumed batch re-reading its cache) is a no-op, keyed by the grading's id.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import statistics
from collections import Counter
from pathlib import Path

from grader.records import Grade
from grader.report.escape import csv_cell, md_text
from grader.report.markdown import atomic_write

SCHEMA = """
CREATE TABLE IF NOT EXISTS gradings (
    id INTEGER PRIMARY KEY,
    grading_key TEXT NOT NULL UNIQUE,   -- cache key + graded_at: one row per actual grading
    student TEXT NOT NULL,
    week TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    raw_score REAL NOT NULL,
    late_days INTEGER NOT NULL,
    status TEXT NOT NULL,
    commit_sha TEXT,
    checks_hash TEXT NOT NULL,
    profile TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    grade_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS by_student_week ON gradings (student, week, graded_at);
CREATE TABLE IF NOT EXISTS students (
    student TEXT PRIMARY KEY, name TEXT, github TEXT, lms_id TEXT, sis_id TEXT, sis_login TEXT,
    section TEXT
);
"""


class Gradebook:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def add(self, grade: Grade, grading_key: str) -> bool:
        """Record one grading; False when it was already recorded (a resumed run)."""
        with self.db:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO gradings (grading_key, student, week, score, max_score, raw_score,"
                " late_days, status, commit_sha, checks_hash, profile, graded_at, grade_json)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (grading_key, grade.student, grade.week, grade.score, grade.max_score, grade.raw_score,
                 grade.late_days, grade.status, grade.provenance.commit, grade.provenance.checks_hash,
                 grade.provenance.profile, grade.graded_at.isoformat(), grade.model_dump_json()),
            )
        return cur.rowcount == 1

    def set_students(self, entries) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO students VALUES (?,?,?,?,?,?,?)",
                [(e.student, e.name, e.github, e.lms_id, e.sis_id, e.sis_login, e.section) for e in entries],
            )

    def history(self, student: str, week: str) -> list[Grade]:
        rows = self.db.execute("SELECT grade_json FROM gradings WHERE student=? AND week=? ORDER BY id",
                               (student, week)).fetchall()
        return [Grade.model_validate_json(r[0]) for r in rows]

    def latest(self, week: str) -> list[Grade]:
        """The most recent grading of each student for the week."""
        rows = self.db.execute(
            "SELECT g.grade_json FROM gradings g JOIN (SELECT student, MAX(id) AS id FROM gradings"
            " WHERE week=? GROUP BY student) last ON g.id = last.id ORDER BY g.student", (week,)).fetchall()
        return [Grade.model_validate_json(r[0]) for r in rows]

    def count(self, week: str | None = None) -> int:
        if week:
            return self.db.execute("SELECT COUNT(*) FROM gradings WHERE week=?", (week,)).fetchone()[0]
        return self.db.execute("SELECT COUNT(*) FROM gradings").fetchone()[0]

    def students(self) -> dict[str, dict[str, str]]:
        cols = ["student", "name", "github", "lms_id", "sis_id", "sis_login", "section"]
        return {r[0]: dict(zip(cols, r)) for r in self.db.execute(f"SELECT {', '.join(cols)} FROM students")}


def canvas_csv(grades: list[Grade], students: dict[str, dict[str, str]], assignment: str) -> str:
    """Canvas gradebook import: Student, ID, SIS User ID, SIS Login ID, Section, then the assignment.

    Canvas matches rows by ID (the Canvas user id) or SIS ids; a header it does not know creates
    the assignment, so the file holds no other column (a status column would become a second
    assignment): the machine's failures are left blank (no score, and an import leaves Canvas's
    cell as it was), a notebook never changed from the stub is 0; why is in the cohort summary's
    Status column and its "Needs attention" list. The second row gives the points possible. Every cell that a spreadsheet would
    read as a formula (a roster name such as `=HYPERLINK(...)`) is written as text (csv_cell).
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")

    def row(cells: list[object]) -> None:
        writer.writerow([csv_cell(c) for c in cells])

    row(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
    top = max((g.max_score for g in grades), default=0)
    row(["Points Possible", "", "", "", "", f"{top:g}"])
    for g in grades:
        who = students.get(g.student, {})
        row([who.get("name") or g.student, who.get("lms_id") or "", who.get("sis_id") or "",
             who.get("sis_login") or "", who.get("section") or "", "" if g.machine_failure else f"{g.score:g}"])
    return buf.getvalue()


def _cause(grade: Grade) -> str:
    """One short label for why a submission lost points, for the failures-by-cause table."""
    if grade.status != "graded":
        return grade.status.replace("_", " ")
    if grade.execution.status in ("timeout", "dead_kernel"):
        return f"notebook {grade.execution.status.replace('_', ' ')}"
    if grade.execution.failures:
        return f"cell error: {grade.execution.failures[0].ename or grade.execution.failures[0].kind}"
    if grade.raw_score < grade.max_score:
        return "checks failed"
    if grade.late_days:
        return "late penalty only"
    return "full marks"


def cohort_summary(grades: list[Grade], roster_problems: list[str] = (), *, attention: dict[str, str] | None = None,
                   banner: str = "", record: str = "", students: dict[str, dict[str, str]] | None = None) -> dict:
    """Score distribution, per-check pass rates and failures by cause; the machine's failures have no
    score, so they count in none of the statistics and are listed under "needs attention"."""
    scored = [g for g in grades if not g.machine_failure]
    percents = [g.percent for g in scored]
    names = students or {}
    bins = Counter(min(int(p // 10) * 10, 90) for p in percents)
    checks: dict[str, dict[str, float]] = {}
    for g in scored:
        for c in g.checks:
            row = checks.setdefault(c.id, {"title": c.title or c.id, "passed": 0, "graded": 0, "points": 0.0,
                                           "max_points": c.max_points})
            row["graded"] += 1
            row["passed"] += c.outcome == "passed"
            row["points"] += c.points
    for row in checks.values():
        row["pass_rate"] = round(row["passed"] / row["graded"], 3) if row["graded"] else 0.0
        row["mean_points"] = round(row.pop("points") / row["graded"], 3) if row["graded"] else 0.0
    needs = dict(attention or {})
    for g in grades:
        if g.machine_failure and g.student not in needs:
            needs[g.student] = f"{g.status.replace('_', ' ')}: {(g.message.splitlines() or [''])[0][:300]}"
    return {
        "week": grades[0].week if grades else "",
        "submissions": len(grades),
        "scored": len(scored),
        "banner": banner,
        "deadline_record": record,
        "needs_attention": {k: needs[k] for k in sorted(needs)},
        "statuses": dict(Counter(g.status for g in grades)),
        "late": sum(1 for g in grades if g.late_days),
        "scores": {
            "mean": round(statistics.fmean(percents), 1) if percents else None,
            "median": round(statistics.median(percents), 1) if percents else None,
            "min": round(min(percents), 1) if percents else None,
            "max": round(max(percents), 1) if percents else None,
            "histogram_percent": {f"{b}-{b + 10 if b < 90 else 100}": bins.get(b, 0) for b in range(0, 100, 10)},
        },
        "checks": checks,
        "causes": dict(Counter(_cause(g) for g in grades).most_common()),
        "roster_problems": list(roster_problems),
        "students": [{"student": g.student, "name": names.get(g.student, {}).get("name", ""),
                      "score": None if g.machine_failure else g.score, "max_score": g.max_score,
                      "percent": None if g.machine_failure else round(g.percent, 1), "status": g.status,
                      "late_days": g.late_days, "commit": g.provenance.commit, "branch": g.submission.branch,
                      "notebook": g.submission.notebook, "report": f"reports/{g.student}-{g.week}.html"}
                     for g in grades],
    }


def summary_markdown(summary: dict) -> str:
    """The cohort summary as Markdown; every name, title and cause is escaped (md_text): a cause quotes a
    student's exception name, and a roster problem quotes the roster line."""
    s = summary["scores"]
    lines = [f"# Cohort summary: {md_text(summary['week'])}", ""]
    if summary.get("banner"):
        lines += [f"> **Warning:** {md_text(summary['banner'])}", ""]
    if summary.get("deadline_record"):
        lines += [md_text(summary["deadline_record"]), ""]
    unscored = summary["submissions"] - summary.get("scored", summary["submissions"])
    lines += [(f"{summary['submissions']} submissions · mean {s['mean']}% · median {s['median']}% · "
               f"min {s['min']}% · max {s['max']}% · late {summary['late']}"
               + (f" · {unscored} not graded (machine failures, below)" if unscored else "")), ""]
    if summary.get("needs_attention"):
        lines += ["## Needs attention", "",
                  ("Not the students' doing, or not certain: no score was exported for the machine's failures "
                   "(blank in the Canvas file); run the batch again once the cause is fixed."), ""]
        lines += [f"- **{md_text(student)}**: {md_text(why, 300)}" for student, why in summary["needs_attention"].items()]
        lines.append("")
    lines += ["## Score distribution", "", "| Percent | Students |", "|---|---|"]
    lines += [f"| {band} | {'█' * n} {n} |" for band, n in s["histogram_percent"].items()]
    lines += ["", "## Per-check pass rates", "", "| Check | Passed | Mean points |", "|---|---|---|"]
    for row in summary["checks"].values():
        lines.append(f"| {md_text(row['title'], 120)} | {row['passed']}/{row['graded']} ({row['pass_rate']:.0%}) "
                     f"| {row['mean_points']:g} / {row['max_points']:g} |")
    lines += ["", "## Outcomes by cause", "", "| Cause | Students |", "|---|---|"]
    lines += [f"| {md_text(cause, 120)} | {n} |" for cause, n in summary["causes"].items()]
    lines += ["", "## Students", "", "| Student | Name | Score | Status | Late days | Branch | Notebook |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| [{md_text(r['student'])}]({r['report']}) | {md_text(r.get('name') or '')} | "
              + ("—" if r["score"] is None else f"{r['score']:g} / {r['max_score']:g}")
              + f" | {md_text(r['status'].replace('_', ' '))} | {r['late_days']} | {md_text(r.get('branch') or '—')} | "
              f"{md_text(r.get('notebook') or '—')} |" for r in summary["students"]]
    if summary["roster_problems"]:
        lines += ["", "## Roster lines skipped", ""] + [f"- {md_text(p, 300)}" for p in summary["roster_problems"]]
    return "\n".join(lines) + "\n"


def write_exports(book: Gradebook, week: str, out_dir: Path, roster_problems: list[str] = (), *,
                  attention: dict[str, str] | None = None, banner: str = "", record: str = "") -> dict[str, Path]:
    """Canvas CSV and the cohort summary (Markdown, JSON, HTML) from the latest grading of each student."""
    grades = book.latest(week)
    students = book.students()
    summary = cohort_summary(grades, roster_problems, attention=attention, banner=banner, record=record,
                             students=students)
    paths = {"canvas": out_dir / f"canvas-{week}.csv", "summary_md": out_dir / f"summary-{week}.md",
             "summary_json": out_dir / f"summary-{week}.json"}
    atomic_write(paths["canvas"], canvas_csv(grades, students, f"{grades[0].title or week}" if grades else week))
    atomic_write(paths["summary_md"], summary_markdown(summary))
    atomic_write(paths["summary_json"], json.dumps(summary, indent=2) + "\n")
    from grader.report.html import write_cohort_html  # the HTML engineer's cohort page, when present

    paths["summary_html"] = write_cohort_html(grades, out_dir / f"summary-{week}.html", f"Cohort: {week}",
                                              summary=summary)
    return paths
