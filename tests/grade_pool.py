"""Grade many notebooks together, the way a batch does (grader.cohort.pool: two at a time, fork servers
for the workers and the judges), for the tests that each read one of the grades.

The suite's end-to-end tests grade ~90 notebooks (every week's solution, stub and known fixtures). One
after another they left a core idle while a kernel started, imported or waited on a deadline; graded
two at a time they take about half the wall time, through the same code a mentor's batch runs.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader.cohort.batch import HARNESS_MARGIN
from grader.cohort.pool import Job, LocalPool
from grader.config import Settings, load_week, week_suite
from grader.judge.process import judge_preload
from grader.records import Grade, Submission


@dataclass(frozen=True)
class Request:
    """One notebook to grade: `key` names it for the tests (e.g. ("fixture", "week3", "fails_x")).
    `notebook` is the notebook alone, or a folder graded whole (week 6's specialist: notebook and corpus)."""

    key: tuple[str, ...]
    week: str
    notebook: Path
    student: str
    select: tuple[str, ...] = ()
    # Longer gradings start first, so that the last one to finish does not run alone.
    weight: float = 1.0


@dataclass
class GradePool:
    """Grades requests on demand: asking for one key grades it together with every request still
    declared for its week (what the session's selected tests will ask for next), and keeps every grade.
    One week at a time keeps each test's share within pytest's per-test timeout on a slow runner."""

    out_dir: Path
    slots: int = 2
    declared: dict[tuple[str, ...], Request] = field(default_factory=dict)
    grades: dict[tuple[str, ...], Grade] = field(default_factory=dict)

    def declare(self, request: Request) -> None:
        self.declared.setdefault(request.key, request)

    def get(self, request: Request) -> Grade:
        if request.key not in self.grades:
            self.declare(request)
            todo = sorted((r for k, r in self.declared.items() if k not in self.grades and r.week == request.week),
                          key=lambda r: -r.weight)
            self.grades.update(self.grade_all(todo))
        return self.grades[request.key]

    def grade_all(self, requests: list[Request]) -> dict[tuple[str, ...], Grade]:
        jobs = {}
        for number, request in enumerate(requests, start=len(self.grades)):
            work = self.out_dir / f"{number:03d}-src"  # the notebook alone in its folder, as `grade` copies it
            if request.notebook.is_dir():
                shutil.copytree(request.notebook, work)
            else:
                work.mkdir(parents=True)
                shutil.copyfile(request.notebook, work / request.notebook.name)
            settings = Settings(profile="cpu", out_dir=self.out_dir / "grades", select=request.select)
            # The pool names a job's files after its student: unique per job, whatever the week.
            submission = Submission(student=f"{number:03d}-{request.student}", week=request.week,
                                    source=str(request.notebook), workdir=str(work),
                                    notebook=None if request.notebook.is_dir() else request.notebook.name)
            budget = load_week(week_suite(request.week)).profile("cpu").total_timeout + HARNESS_MARGIN
            jobs[request.key] = Job(key=f"{number:03d}", submission=submission, timeout=budget,
                                    settings=json.loads(settings.model_dump_json()))
        done: dict[str, Grade] = {}
        pool = LocalPool(self.slots, judge_preload=judge_preload(True))  # torch: most weeks' judges use it
        pool.run(jobs.values(), lambda job, grade: done.__setitem__(job.key, grade))
        return {key: _named(done[job.key], request.student) for (key, job), request in zip(jobs.items(), requests)}


def _named(grade: Grade, student: str) -> Grade:
    """The grade under the student name the test gave (the pool's job files needed a unique one)."""
    return grade.model_copy(update={"student": student,
                                    "submission": grade.submission.model_copy(update={"student": student})})
