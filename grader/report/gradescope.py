"""Gradescope's results.json for one Grade, so a course can run the grader as its autograder.

Fields follow Gradescope's autograder output spec: top-level `score`, `output`, `tests` (each
with name, score, max_score, status, output, visibility), `execution_time`, optional
`leaderboard` (name, value, order).
"""

from __future__ import annotations

import json
import os

from grader.records import Grade
from grader.report.markdown import CATEGORY_TITLES, _fmt, register

VISIBILITY = os.environ.get("GRADER_GRADESCOPE_VISIBILITY", "visible")  # or after_due_date, hidden...
MAX_OUTPUT = 8000


def results(grade: Grade, visibility: str = VISIBILITY, leaderboard: bool = False) -> dict:
    """The results.json object: every check a test, lost points explained in its output."""
    tests = []
    for number, c in enumerate(grade.checks, 1):
        lines = [c.message] if c.message else []
        if c.measured is not None or c.target:
            lines.append(f"measured {_fmt(c.measured)}; target {c.target or '—'}")
        tests.append({
            "name": c.title or c.id, "number": str(number), "score": c.points, "max_score": c.max_points,
            "status": "passed" if c.points >= c.max_points else "failed",
            "output": "\n".join(lines)[:MAX_OUTPUT], "tags": [CATEGORY_TITLES.get(c.category.value, "")],
            "visibility": visibility,
        })
    output = [f"{grade.week}: {grade.score:g} / {grade.max_score:g}", *grade.notices]
    if grade.status != "graded" or grade.message:
        output.append(f"{grade.status.replace('_', ' ')}: {grade.message}")
    for f in grade.execution.failures[:3]:
        output.append(f"cell {f.index + 1}: {f.ename or f.kind}: {f.evalue}"[:500])
    if grade.machine_failure:  # no score at all rather than a zero the student did not earn
        output[0] = f"{grade.week}: not graded ({grade.status.replace('_', ' ')}); your instructor sees this too"
        return {"output": "\n".join(output)[:MAX_OUTPUT], "output_format": "text", "tests": [],
                "visibility": visibility, "extra_data": {"status": grade.status, "grader_version":
                                                          grade.provenance.grader_version}}
    out = {
        # Plain text everywhere: a student's message is shown as written, never rendered as HTML or Markdown.
        "score": grade.score, "output": "\n".join(output)[:MAX_OUTPUT], "output_format": "text",
        "test_output_format": "text", "test_name_format": "text",
        "execution_time": round(grade.durations.get("total", 0.0)), "visibility": visibility,
        "tests": tests,
        "extra_data": {"checks_hash": grade.provenance.checks_hash, "profile": grade.provenance.profile,
                       "grader_version": grade.provenance.grader_version},
    }
    if leaderboard:
        out["leaderboard"] = [{"name": "score (%)", "value": round(grade.percent, 1), "order": "desc"}]
    return out


@register("gradescope", ".gradescope.json")
def render_gradescope(grade: Grade) -> str:
    return json.dumps(results(grade), indent=2, ensure_ascii=False) + "\n"
