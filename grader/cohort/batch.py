"""Grade a cohort: roster -> fetch every fork -> pick commits -> grade (cached, resumable) -> gradebook.

Resume and the cache are one mechanism. Each finished grading is written atomically to
out/cache/<key>.json, keyed by (grader version, student, week, checks hash, commit or notebook
sha, profile, selected checks). A re-run, after a kill -9 at any moment, finds those files and
grades only the rest; reports and gradebook rows are (re)written idempotently from the cache.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from grader import __version__
from grader.cohort.gradebook import Gradebook, write_exports
from grader.cohort.pool import Job, LocalPool
from grader.config import DATA_DIR, Settings, detect_profile, gpu_ids, load_week, suite_hash, week_suite
from grader.fetch.forks import FETCH_TIMEOUT, Fetched, ForkStore, HeadsLog, SourceError
from grader.fetch.roster import RosterEntry, load_roster
from grader.judge.context import session_context
from grader.judge.process import judge_preload
from grader.records import Grade, Submission
from grader.report.markdown import atomic_write, write_report
from grader.score import LatePolicy

BATCH_FORMATS = ("json", "md", "html", "junit", "gradescope")  # per submission
HARNESS_MARGIN = 300.0  # seconds beyond the week's total budget before the harness stops a job


@dataclass
class BatchResult:
    graded: int = 0
    cached: int = 0
    reports: dict[str, Path] = field(default_factory=dict)  # student -> JSON report
    statuses: dict[str, str] = field(default_factory=dict)
    roster_problems: list[str] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def harness_errors(self) -> int:
        return sum(1 for s in self.statuses.values() if s == "harness_error")


def cache_key(student: str, week: str, checks_hash: str, content: str, settings: Settings) -> str:
    parts = [__version__, student, week, checks_hash, content, settings.profile or "", *settings.select]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def apply_late(grade: Grade, days: int, policy: LatePolicy | None, notes: list[str]) -> Grade:
    """The cache holds the grade before the late policy; apply it (and the fetch notes) here."""
    penalty = (policy or LatePolicy()).penalty(days)
    submission = grade.submission.model_copy(update={"problems": list(grade.submission.problems) + [
        n for n in notes if n not in grade.submission.problems]})
    return grade.model_copy(update={"late_days": days, "late_penalty": penalty, "submission": submission,
                                    "score": round(grade.raw_score * (1 - penalty), 4)})


class Progress:
    """A rich progress bar in a terminal, one plain line per submission in CI or a pipe."""

    def __init__(self, total: int, echo: Callable[[str], None]):
        self.echo, self.total, self.done = echo, total, 0
        self.bar = None
        if sys.stderr.isatty() and os.environ.get("CI", "").lower() not in ("true", "1"):
            from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self.bar = Bar("[bold]{task.description}", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                           transient=False)
            self.task = self.bar.add_task("grading", total=total)
            self.bar.start()

    def step(self, grade: Grade, how: str) -> None:
        self.done += 1
        line = (f"[{self.done}/{self.total}] {grade.student} {grade.week}: {grade.score:g}/{grade.max_score:g}"
                f" {grade.status}{' late ' + str(grade.late_days) + 'd' if grade.late_days else ''} ({how})"
                + (f": {grade.message[-300:]}" if grade.status == "harness_error" else ""))
        if self.bar:
            self.bar.console.print(line)
            self.bar.advance(self.task)
        else:
            self.echo(line)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


def _select(store: ForkStore, log: HeadsLog, entry: RosterEntry, deadline: datetime | None,
            fetched: Fetched, at_deadline: bool = False) -> tuple[str | None, datetime | None, list[str]]:
    """The commit to grade and when it was submitted, from the grader's own log of heads.

    By default the fork's current head, late if the log first saw it after the deadline; with
    at_deadline, the head the log recorded at the deadline (later pushes are not graded).
    """
    fetched_error = fetched.error
    notes = [fetched_error] if fetched_error else []
    recorded = log.head_at(entry.student, deadline) if at_deadline and deadline else None
    if at_deadline and deadline and not (recorded and store.has_commit(recorded)):
        return None, None, notes + ["no head of this fork was recorded at the deadline"]
    try:
        sha = recorded or store.resolve(entry.student, refs=fetched.refs)
    except SourceError as exc:
        return None, None, notes + [str(exc)]
    if sha != fetched.head:  # the fetched head is pinned already
        store.pin(entry.student, sha)
    if fetched_error:
        notes.append(f"graded the head fetched earlier ({sha[:12]})")
    submitted = log.first_seen(entry.student, sha)
    if deadline and not any(at <= deadline for at, _ in log.entries(entry.student)):
        # No head was recorded before the deadline: the commit date is all there is (forgeable).
        submitted = store.commit_time(sha)
        notes.append("no head recorded at the deadline; submission time taken from the commit date")
    return sha, submitted, notes


def run_batch(week: str, roster_path: Path, out_dir: Path, *, settings: Settings | None = None,
              jobs: int | None = None, deadline: datetime | None = None, policy: LatePolicy | None = None,
              executor: str = "local", address: str | None = None, ray_init: dict | None = None,
              regrade: bool = False, fetch_only: bool = False, at_deadline: bool = False, formats: tuple[str, ...] = BATCH_FORMATS,
              echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> BatchResult:
    """Grade every good roster line; every submission gets a report, whatever goes wrong with it."""
    t0 = time.monotonic()
    if not fetch_only:  # before any fork is fetched: IsolationError, one line (exit 4)
        from grader.pipeline import check_isolation

        check_isolation(settings or Settings())
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = open(out_dir / "batch.lock", "w")  # noqa: SIM115 - held until this process ends or returns
    try:  # two batches on one folder could grade a submission twice; a killed one frees the lock
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise ValueError(f"another batch is running on {out_dir}") from None
    pool = None
    try:
        if executor != "ray" and not fetch_only:  # its fork servers start while the forks are fetched
            pool = _local_pool(week, settings or Settings(), jobs).start()
        return _run_batch(week, roster_path, out_dir, t0, settings=settings, pool=pool, deadline=deadline,
                          policy=policy, executor=executor, address=address, ray_init=ray_init, regrade=regrade,
                          fetch_only=fetch_only, at_deadline=at_deadline, formats=formats, echo=echo)
    finally:
        if pool is not None:
            pool.close()
        lock.close()


def _local_pool(week: str, settings: Settings, jobs: int | None) -> LocalPool:
    """One slot per core (or per GPU); judges preload torch when the week's checks use it, and are forks
    of one pytest session that collected and prepared the week's checks (what they all share)."""
    gpus = gpu_ids()
    suite = week_suite(week, public=settings.public)
    config = load_week(suite)
    profile = settings.profile or detect_profile()
    session = session_context(suite, profile, config.profile(profile).thresholds, settings.select, DATA_DIR)
    return LocalPool(jobs or (len(gpus) if gpus else os.cpu_count() or 1), gpus,
                     judge_preload=judge_preload(config.judge_uses_torch), judge_session=session)


def _run_batch(week: str, roster_path: Path, out_dir: Path, t0: float, *, settings: Settings | None,
               pool: LocalPool | None, deadline: datetime | None, policy: LatePolicy | None, executor: str,
               address: str | None, ray_init: dict | None, regrade: bool, fetch_only: bool, at_deadline: bool,
               formats: tuple[str, ...], echo: Callable[[str], None]) -> BatchResult:
    roster = load_roster(roster_path)
    result = BatchResult(roster_problems=list(roster.problems))
    for problem in roster.problems:
        echo(f"roster: {problem}")
    base = settings or Settings()
    settings = base.model_copy(update={"profile": base.profile or detect_profile(),
                                       "out_dir": out_dir / "reports"})
    suite = week_suite(week, public=settings.public)
    checks_hash = suite_hash(suite)
    budget = load_week(suite).profile(settings.profile).total_timeout + HARNESS_MARGIN

    store, log = ForkStore(out_dir / "forks.git"), HeadsLog(out_dir / "heads.jsonl")
    if fetch_only:
        for entry in roster.entries:
            fetched = store.fetch(entry.student, entry.repo, timeout=FETCH_TIMEOUT)
            log.record(fetched)
            if fetched.head:
                store.pin(entry.student, fetched.head)
            echo(f"{entry.student}: {fetched.head or '-'} {fetched.error}")
        return result

    book = Gradebook(out_dir / "gradebook.sqlite")
    book.set_students(roster.entries)
    progress = Progress(len(roster.entries), echo)

    def finish(job: Job, grade: Grade, how: str) -> None:
        if how == "graded" and grade.status != "harness_error" and grade.execution.status != "not_run":
            atomic_write(out_dir / "cache" / f"{job.key}.json", grade.model_dump_json())
        final = apply_late(grade, job.late_days, policy, job.notes)
        written = write_report(final, out_dir / "reports", formats)
        # One row per grading, and one more only when the late policy's verdict changes.
        book.add(final, f"{job.key}:{grade.graded_at.isoformat()}:{final.late_days}:{final.late_penalty:g}")
        result.reports[final.student] = written.get("json") or next(iter(written.values()))
        result.statuses[final.student] = final.status
        result.graded += how == "graded"
        result.cached += how == "cached"
        progress.step(final, how)

    def jobs() -> Iterator[Job | None]:
        """One roster line per item: fetched and exported, or a cache hit reported (None)."""
        for entry in roster.entries:
            fetched = store.fetch(entry.student, entry.repo, timeout=FETCH_TIMEOUT)
            log.record(fetched)
            if fetched.head:
                store.pin(entry.student, fetched.head)
            sha, submitted, notes = _select(store, log, entry, deadline, fetched, at_deadline)
            workdir = out_dir / "work" / entry.student
            submission = Submission(student=entry.student, week=week, source=entry.repo, commit=sha,
                                    workdir=str(workdir), submitted_at=submitted, problems=notes)
            late = (policy or LatePolicy()).days_late(submitted, deadline)
            key = cache_key(entry.student, week, checks_hash, sha or f"unfetched:{entry.repo}", settings)
            job = Job(key=key, submission=submission, settings=json.loads(settings.model_dump_json()),
                      timeout=budget, late_days=late, submitted_at=submitted, notes=notes)
            cached = out_dir / "cache" / f"{key}.json"
            if cached.is_file() and not regrade:
                finish(job, Grade.model_validate_json(cached.read_text()), "cached")
                yield None
                continue
            shutil.rmtree(workdir, ignore_errors=True)
            if sha:
                skipped = store.export(sha, workdir)
                submission = submission.model_copy(
                    update={"problems": notes + [f"not exported: {s}" for s in skipped]})
                job = job.model_copy(update={"submission": submission})
            yield job

    try:
        if executor == "ray":
            from grader.cohort.ray_pool import RayPool

            todo = [job for job in jobs() if job is not None]  # every fork fetched before any task is sent
            RayPool(address or "local", init=ray_init or {}).run(todo, lambda job, grade: finish(job, grade, "graded"))
        else:
            # Grading starts with the first fork while the others are still fetched, at the same pace:
            # each fork's head is still taken at (nearly) the moment the batch began.
            pool.run(jobs(), lambda job, grade: finish(job, grade, "graded"))
    finally:
        progress.close()
        result.exports = write_exports(book, week, out_dir, roster.problems)
        book.close()
    result.seconds = round(time.monotonic() - t0, 2)
    return result
