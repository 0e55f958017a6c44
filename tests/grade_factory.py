"""Build Grade records by hand for the report tests (no notebook is run)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from grader.records import CellFailure, CheckResult, Execution, Grade, Provenance, Submission
from grader.report.charts import PNG_MAGIC

XSS = '<script>document.title="pwned"</script><img src=x onerror="alert(1)">'


def check(cid: str, points: float, max_points: float = 2.0, category: str = "correctness", **kw) -> CheckResult:
    outcome = kw.pop("outcome", "passed" if points >= max_points else "partial" if points else "failed")
    return CheckResult(id=cid, title=kw.pop("title", cid.replace("_", " ")), category=category,
                       points=points, max_points=max_points, outcome=outcome, **kw)


def make_grade(student: str = "ada", week: str = "week1", checks: list[CheckResult] | None = None,
               *, failures: list[CellFailure] | None = None, artifacts: dict[str, str] | None = None,
               status: str = "graded", message: str = "", notebook: str = "week1.ipynb",
               workdir: str = "/tmp/ws", commit: str | None = "0123456789abcdef0123") -> Grade:
    checks = checks if checks is not None else [
        check("value_ops", 2, 2, "correctness", measured=0.0, target="= 0"),
        check("value_backward", 1.5, 3, "gradient", measured=3e-5, target="≤ 1e-06 (0 pts at 0.001)",
              message="max relative error 3.0e-05; check += in _backward"),
        check("train_loss", 0, 3, "loss", measured=2.71, target="≤ 2.5", message="loss 2.71 too high"),
    ]
    categories: dict[str, tuple[float, float]] = {}
    for c in checks:
        got, top = categories.get(c.category.value, (0.0, 0.0))
        categories[c.category.value] = (got + c.points, top + c.max_points)
    score = sum(c.points for c in checks)
    execution = Execution(status="errors" if failures else "ok", cells_total=10, cells_run=10,
                          failures=failures or [], device="cpu", isolation="bwrap")
    return Grade(
        student=student, week=week, title="Autograd engine", score=score,
        max_score=sum(c.max_points for c in checks), raw_score=score, status=status, message=message,
        categories=categories, checks=checks, execution=execution,
        submission=Submission(student=student, week=week, source=workdir, workdir=workdir, notebook=notebook,
                              commit=commit),
        provenance=Provenance(grader_version="0.1.0", checks_hash="ab" * 32, commit=commit, profile="cpu",
                              device="cpu", isolation="bwrap", torch_version="2.13.0",
                              python_version="3.11.2", seeds={"python": 1337, "torch": 1337}, threads=2),
        graded_at=datetime(2026, 11, 23, 10, 0, tzinfo=UTC), durations={"total": 12.5},
        artifacts=artifacts or {},
    )


def failure(index: int = 4, count: int = 5, evalue: str = "division by zero") -> CellFailure:
    return CellFailure(index=index, execution_count=count, kind="error", ename="ZeroDivisionError",
                       evalue=evalue, source_excerpt="x = 1\ny = x / 0",
                       traceback="\x1b[0;31mZeroDivisionError\x1b[0m Traceback\n"
                                 f"Cell In[{count}], line 2\n----> 2 y = x / 0\nZeroDivisionError: {evalue}")


def write_artifacts(folder: Path) -> dict[str, str]:
    """A loss curve, a sample file, a small real PNG and a markdown table, as a week's checks would write them."""
    from grader.report.charts import curve_png, read_curve

    folder.mkdir(parents=True, exist_ok=True)
    curve = {"kind": "loss_curve", "title": "bigram training", "steps": [0, 10, 20, 30],
             "train": [3.3, 2.8, 2.6, 2.5], "val": [3.3, 2.9, 2.7, 2.6], "target": 2.55}
    (folder / "loss.json").write_text(json.dumps(curve))
    (folder / "samples.txt").write_text("emma.\nolivia.\n" + XSS + "\n")
    png = curve_png(read_curve(folder / "loss.json"))
    assert png.startswith(PNG_MAGIC)
    (folder / "attention.png").write_bytes(png)
    (folder / "architect.md").write_text("| model | val loss |\n|---|---|\n| vanilla | 1.91 |\n")
    return {p.name: str(p) for p in sorted(folder.iterdir())}
