"""Turn judged outcomes into points and a Grade, applying the late policy."""

from __future__ import annotations

import math
import platform
from datetime import datetime, timedelta, timezone

from pydantic import BaseModel, ConfigDict, Field

from grader import __version__
from grader.judge.context import RawCheck
from grader.records import Category, CheckResult, Enforcement, Execution, Grade, Provenance, Submission


class LatePolicy(BaseModel):
    """A grace period, then a penalty per started day, up to a cap (fractions of the score)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    grace_hours: float = Field(0.0, ge=0, allow_inf_nan=False)
    penalty_per_day: float = Field(0.0, ge=0, le=1, allow_inf_nan=False)  # a fraction of the score per day
    cap: float = Field(1.0, ge=0, le=1, allow_inf_nan=False)  # the most a lateness can take: never below 0 points

    def days_late(self, submitted_at: datetime | None, deadline: datetime | None) -> int:
        if submitted_at is None or deadline is None:
            return 0
        over = submitted_at - (deadline + timedelta(hours=self.grace_hours))
        return max(0, math.ceil(over.total_seconds() / 86400)) if over.total_seconds() > 0 else 0

    def penalty(self, days: int) -> float:
        return min(self.cap, max(0.0, days * self.penalty_per_day))


def to_check_results(raw: list[RawCheck]) -> list[CheckResult]:
    results = []
    for item in raw:
        points = round(item.max_points * max(0.0, min(1.0, item.fraction)), 4)
        results.append(CheckResult(
            id=item.id, title=item.title, category=Category(item.category), points=points,
            max_points=item.max_points, outcome=item.outcome, measured=item.measured,
            target=item.target, message=item.message, seconds=item.seconds,
            details={k: v for k, v in item.details.items() if isinstance(v, (int, float, str, bool)) or v is None},
        ))
    return results


def make_grade(
    *,
    submission: Submission,
    execution: Execution,
    checks: list[CheckResult],
    provenance: Provenance,
    title: str = "",
    late_days: int = 0,
    policy: LatePolicy | None = None,
    status: str = "graded",
    message: str = "",
    durations: dict[str, float] | None = None,
    artifacts: dict[str, str] | None = None,
) -> Grade:
    """Sum points per category, apply the late penalty, and record where the grade came from."""
    raw_score = round(sum(c.points for c in checks), 4)
    max_score = round(sum(c.max_points for c in checks), 4)
    penalty = (policy or LatePolicy()).penalty(late_days)
    categories: dict[str, tuple[float, float]] = {}
    for check in checks:
        got, top = categories.get(check.category.value, (0.0, 0.0))
        categories[check.category.value] = (round(got + check.points, 4), round(top + check.max_points, 4))
    return Grade(
        student=submission.student, week=submission.week, title=title,
        score=max(0.0, round(raw_score * (1.0 - penalty), 4)), max_score=max_score, raw_score=raw_score,
        late_days=late_days, late_penalty=penalty, status=status, message=message,
        categories=categories, checks=checks, execution=execution, submission=submission,
        provenance=provenance, graded_at=datetime.now(timezone.utc),
        durations=durations or {}, artifacts=artifacts or {},
    )


def provenance_for(*, checks_hash: str, notebook_sha256: str | None, submission: Submission,
                   execution: Execution, profile: str, torch_version: str | None,
                   seeds: dict[str, int], threads: int, caps: dict[str, str] | None = None,
                   sandbox: Enforcement | None = None) -> Provenance:
    return Provenance(
        grader_version=__version__, checks_hash=checks_hash, notebook_sha256=notebook_sha256,
        commit=submission.commit, profile=profile, device=execution.device,
        isolation=execution.isolation, torch_version=torch_version,
        python_version=platform.python_version(), seeds=seeds, threads=threads, sandbox=sandbox,
        caps={**({"disk": execution.disk_cap} if execution.disk_cap else {}), **(caps or {})},
    )
