"""Grade a cohort: roster -> fetch every fork -> pick commits -> grade (cached, resumable) -> gradebook.

What is graded follows one rule (grader.fetch.graded); when it was handed in, the grader's own record
of heads (grader.fetch.heads): a batch with a deadline refuses to guess from commit dates unless told.
The machine's failures (an unreachable fork, a kernel killed from outside, a harness error) are never
cached, are graded a second time, and are listed for a mentor; the batch then exits 3 (grader.cli).
A full disk for the grader's own output stops the batch cleanly, with one line saying so.

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
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from grader import __version__
from grader.cohort.gradebook import Gradebook, write_exports
from grader.cohort.pool import OUT_OF_SPACE, Job, LocalPool, describe_os_error
from grader.config import DATA_DIR, Settings, detect_profile, gpu_ids, load_week, suite_hash, week_suite
from grader.fetch.forks import FETCH_TIMEOUT, Fetched, ForkStore, SourceError
from grader.fetch.graded import Choice, choose
from grader.fetch.heads import BATCH, FETCH_ONLY, HeadsLog, record_hint
from grader.fetch.roster import RosterEntry, load_roster
from grader.judge.context import session_context
from grader.judge.process import judge_preload
from grader.pipeline import JUDGE_MARGIN, fetch_failed_grade, released_stub
from grader.records import MACHINE_FAILURES, Grade, Submission
from grader.report.markdown import atomic_write, write_report
from grader.score import LatePolicy

BATCH_FORMATS = ("json", "md", "html", "junit", "gradescope")  # per submission
# Seconds beyond the week's total budget before the harness stops a job: a minute past the judge's own
# deadline (grader.pipeline.JUDGE_MARGIN), whose watchdog reports a stuck judge in the student's grade.
HARNESS_MARGIN = JUDGE_MARGIN + 60.0


@dataclass
class BatchResult:
    graded: int = 0
    cached: int = 0
    reports: dict[str, Path] = field(default_factory=dict)  # student -> JSON report
    statuses: dict[str, str] = field(default_factory=dict)
    roster_problems: list[str] = field(default_factory=list)
    exports: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    attention: dict[str, str] = field(default_factory=dict)  # student -> what a mentor must look at
    recorded: dict[str, str] = field(default_factory=dict)  # fetch-only: student -> "sha (branches)" or error
    retried: list[str] = field(default_factory=list)  # machine failures graded a second time
    stopped: str = ""  # why the batch stopped before the end (its own disk full), one line

    @property
    def harness_errors(self) -> int:
        return sum(1 for s in self.statuses.values() if s == "harness_error")

    @property
    def machine_failures(self) -> list[str]:
        """Students whose last grading failed for the machine's reasons (no score exported)."""
        return sorted(s for s, status in self.statuses.items() if status in MACHINE_FAILURES)


class StopBatch(Exception):
    """The grader cannot write its own output (a full disk): stop cleanly, say so in one line."""


def cache_key(student: str, week: str, checks_hash: str, content: str, settings: Settings) -> str:
    parts = [__version__, student, week, checks_hash, content, settings.profile or "", *settings.select]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def apply_late(grade: Grade, days: int, policy: LatePolicy | None, notes: list[str],
               notices: list[str] = (), submission: Submission | None = None) -> Grade:
    """The cache holds the grade before the late policy; apply it (and this run's notes) here."""
    penalty = (policy or LatePolicy()).penalty(days)
    update: dict = {"problems": list(grade.submission.problems) + [n for n in notes if n not in grade.submission.problems]}
    if submission is not None:  # what this run chose (branch, why) describes a cached grade too
        update.update(branch=submission.branch, selection=submission.selection, submitted_at=submission.submitted_at)
    return grade.model_copy(update={
        "late_days": days, "late_penalty": penalty, "submission": grade.submission.model_copy(update=update),
        "score": max(0.0, round(grade.raw_score * (1 - penalty), 4)), "notices": list(notices)})


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

    def extend(self, more: int) -> None:
        self.total += more
        if self.bar:
            self.bar.update(self.task, total=self.total)

    def step(self, grade: Grade, how: str) -> None:
        score = "-" if grade.machine_failure else f"{grade.score:g}/{grade.max_score:g}"
        self.advance(f"{grade.student} {grade.week}: {score}"
                     f" {grade.status}{' late ' + str(grade.late_days) + 'd' if grade.late_days else ''}"
                     f" ({'not graded' if grade.machine_failure else how})"
                     + (f": {grade.message[-300:]}" if grade.machine_failure else ""))

    def advance(self, text: str) -> None:
        """One item done: its line, numbered, above the bar (or alone in CI)."""
        self.done += 1
        line = f"[{self.done}/{self.total}] {text}"
        if self.bar:
            self.bar.console.print(line, markup=False, highlight=False)  # a line may hold [brackets]
            self.bar.advance(self.task)
        else:
            self.echo(line)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()


TRUST_BANNER = ("Late days are taken from commit dates, which a student can set to anything: no heads were "
                "recorded at the deadline (--trust-commit-dates)")


@dataclass
class Selected:
    """What one roster line hands in, by the one rule and the grader's own record of heads."""

    choice: Choice | None = None
    submitted_at: datetime | None = None
    late_days: int = 0
    notes: list[str] = field(default_factory=list)  # for the report's problems
    notices: list[str] = field(default_factory=list)  # for the report's banner
    fetch_error: str = ""  # nothing to grade for the machine's reasons
    attention: str = ""  # a mentor should look, though the student has a grade


@dataclass(frozen=True)
class Plan:
    """The batch's choices, the same for every roster line."""

    week: str
    expected: str  # the week's notebook name
    stub: tuple[str, ...] | None
    deadline: datetime | None
    policy: LatePolicy
    at_deadline: bool
    trust_commit_dates: bool
    branch: str | None
    recorded: bool  # a fetch-only run recorded the heads at this deadline


def _branch_tips(refs: dict[str, str]) -> set[str]:
    """The commits the rule may grade from a set of refs (pull-request refs are not the student's to pick)."""
    return {tip for name, tip in refs.items() if name == "HEAD" or name.startswith("heads/")}


def _pin(store: ForkStore, fetched: Fetched) -> None:
    """Keep every recorded branch tip reachable, even after a force-push takes it away."""
    for tip in sorted(_branch_tips(fetched.refs)):
        store.pin(fetched.student, tip)


def _select(store: ForkStore, log: HeadsLog, entry: RosterEntry, fetched: Fetched, plan: Plan) -> Selected:
    """The commit and notebook to grade (grader.fetch.graded) and when it was handed in (the heads log)."""
    out = Selected(notes=[fetched.error] if fetched.error else [])
    branch = entry.branch or plan.branch
    at_deadline = log.at_deadline(entry.student, plan.deadline) if plan.deadline and plan.recorded else None
    try:
        if plan.at_deadline and plan.recorded:
            if at_deadline is None or not at_deadline.refs:
                why = f"the fetch then failed: {at_deadline.error}" if at_deadline else "the fork was not fetched then"
                out.fetch_error = f"no head of this fork was recorded at the deadline ({why})"
                return out
            if not all(store.has_commit(tip) for tip in _branch_tips(at_deadline.refs)):
                out.fetch_error = "the branches recorded at the deadline are no longer in the batch's fork store"
                return out
            out.choice = choose(store, at_deadline.refs, plan.week, plan.expected, plan.stub, branch=branch)
            _later_push(store, log, entry, fetched, plan, out)
            return out
        refs = fetched.refs
        if not refs:  # unreachable now: grade what the grader fetched before, if anything, and say so
            earlier = [s for s in log.sightings(entry.student)
                       if _branch_tips(s.refs) and all(map(store.has_commit, _branch_tips(s.refs)))]
            if not earlier:
                out.fetch_error = fetched.error or "the fork could not be fetched"
                return out
            refs = earlier[-1].refs
            out.notes.append(f"graded the branches fetched earlier, at {earlier[-1].at:%Y-%m-%d %H:%M} UTC")
            out.attention = f"fetch failed ({fetched.error}); graded the branches fetched earlier"
        before = plan.deadline if plan.at_deadline else None  # only with --trust-commit-dates (no record)
        out.choice = choose(store, refs, plan.week, plan.expected, plan.stub, branch=branch, before=before)
    except SourceError as exc:
        out.notes.append(str(exc))
        return out
    work = out.choice.work
    out.notes += out.choice.notes
    out.submitted_at = log.first_seen(entry.student, work, store.contains) or datetime.now(UTC)
    if plan.deadline is None or plan.at_deadline and plan.trust_commit_dates:
        if plan.at_deadline:
            out.notices.append(TRUST_BANNER)
        return out
    if not plan.recorded:  # --trust-commit-dates
        out.submitted_at = store.commit_time(work)
        out.notices.append(TRUST_BANNER)
    elif at_deadline is not None and any(store.contains(tip, work) for tip in _branch_tips(at_deadline.refs)):
        out.submitted_at = min(out.submitted_at, plan.deadline)  # on time: it was there at the deadline
    elif at_deadline is None or not at_deadline.refs:
        why = f"the fetch then failed: {at_deadline.error}" if at_deadline else "the fork was not fetched then"
        out.notes.append(f"no head of this fork was recorded at the deadline ({why}); late days count from "
                         "when the grader first saw the graded commit")
        out.attention = f"no head recorded at the deadline ({why})"
    out.late_days = plan.policy.days_late(out.submitted_at, plan.deadline)
    return out


def _later_push(store: ForkStore, log: HeadsLog, entry: RosterEntry, fetched: Fetched, plan: Plan,
                out: Selected) -> None:
    """With --at-deadline: name a push made after the deadline, which is not graded."""
    if not fetched.refs or out.choice is None:
        return
    try:
        now = choose(store, fetched.refs, plan.week, plan.expected, plan.stub, branch=entry.branch or plan.branch)
    except SourceError:
        return
    if now.work != out.choice.work and not store.contains(out.choice.work, now.work):
        seen = log.first_seen(entry.student, now.work, store.contains)
        out.notices.append(f"A later push was not graded: commit {now.work[:12]}"
                           + (f", first seen {seen:%Y-%m-%d %H:%M} UTC" if seen else "")
                           + ", came after the deadline (graded: the branches recorded at the deadline)")


def check_options(*, deadline: datetime | None, at_deadline: bool, fetch_only: bool, regrade: bool,
                  policy: LatePolicy | None, trust_commit_dates: bool) -> None:
    """Options that contradict each other: ValueError naming them (the CLI says it in one line)."""
    if deadline is not None and deadline.tzinfo is None:
        raise ValueError("--deadline needs a timezone, e.g. 2026-11-23T12:00:00+00:00")
    if fetch_only:
        for flag, given in (("--at-deadline", at_deadline), ("--regrade", regrade), ("--late-policy", policy),
                            ("--trust-commit-dates", trust_commit_dates)):
            if given:
                raise ValueError(f"--fetch-only records heads and grades nothing: it cannot take {flag}")
        if deadline is not None and deadline > datetime.now(UTC):
            raise ValueError(f"--deadline {deadline.isoformat()} has not passed yet: record the heads with "
                             "--fetch-only once it has (a record made earlier would count later pushes as late)")
        return
    for flag, given in (("--at-deadline", at_deadline), ("--late-policy", policy),
                        ("--trust-commit-dates", trust_commit_dates)):
        if given and deadline is None:
            raise ValueError(f"{flag} needs --deadline")


def run_batch(week: str, roster_path: Path, out_dir: Path, *, settings: Settings | None = None,
              jobs: int | None = None, deadline: datetime | None = None, policy: LatePolicy | None = None,
              executor: str = "local", address: str | None = None, ray_init: dict | None = None,
              regrade: bool = False, fetch_only: bool = False, at_deadline: bool = False,
              formats: tuple[str, ...] = BATCH_FORMATS, branch: str | None = None,
              trust_commit_dates: bool = False, keep_exports: bool = False,
              echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> BatchResult:
    """Grade every good roster line; every submission gets a report, whatever goes wrong with it.

    Raises ValueError for options that contradict each other or a deadline with no record of heads
    (before any work); a full disk for the grader's own files ends the batch early (result.stopped).
    """
    t0 = time.monotonic()
    check_options(deadline=deadline, at_deadline=at_deadline, fetch_only=fetch_only, regrade=regrade,
                  policy=policy, trust_commit_dates=trust_commit_dates)
    if jobs is not None and jobs < 1:
        raise ValueError(f"--jobs must be at least 1 (got {jobs})")
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
        log = HeadsLog(out_dir / "heads.jsonl")
        recorded = bool(deadline and log.deadline_run(deadline))
        if deadline and not fetch_only and not recorded and not trust_commit_dates:
            raise ValueError(f"--deadline {deadline.isoformat()}: no heads were recorded at this deadline in "
                             f"{log.path}; {record_hint(week, deadline)}, or pass --trust-commit-dates "
                             "(late days from commit dates, which students can forge)")
        if fetch_only:
            return _fetch_only(week, roster_path, out_dir, log, deadline, echo, t0)
        # The executor starts while the forks are fetched: the local pool's fork servers, or the Ray cluster's
        # node actors (whose GPUs also decide the profile when none is given).
        if executor == "ray":
            pool, settings = _ray_pool(week, settings or Settings(), jobs, address, ray_init, echo)
        else:
            pool = _local_pool(week, settings or Settings(), jobs).start()
        plan_args = {"deadline": deadline, "policy": policy or LatePolicy(), "at_deadline": at_deadline,
                     "trust_commit_dates": trust_commit_dates, "branch": branch, "recorded": recorded}
        return _run_batch(week, roster_path, out_dir, t0, log, settings=settings, pool=pool, plan_args=plan_args,
                          regrade=regrade, formats=formats, keep_exports=keep_exports, echo=echo)
    finally:
        if pool is not None:
            pool.close()
        lock.close()


def _fetch_only(week: str, roster_path: Path, out_dir: Path, log: HeadsLog, deadline: datetime | None,
                echo: Callable[[str], None], t0: float) -> BatchResult:
    """Fetch every fork and record its branches (with --deadline: the deadline's record); grade nothing."""
    roster = load_roster(roster_path)
    result = BatchResult(roster_problems=list(roster.problems))
    for problem in roster.problems:
        echo(f"roster: {problem}")
    store = ForkStore(out_dir / "forks.git")
    run = log.start_run(FETCH_ONLY, deadline)
    for entry in roster.entries:
        fetched = store.fetch(entry.student, entry.repo, timeout=FETCH_TIMEOUT)
        log.record(fetched, run)
        _pin(store, fetched)
        branches = sorted(n[len("heads/"):] for n in fetched.refs if n.startswith("heads/"))
        result.recorded[entry.student] = (f"{fetched.head[:12] if fetched.head else '-'} ({', '.join(branches)})"
                                          if fetched.refs else f"not recorded: {fetched.error}")
        if not fetched.refs:
            result.attention[entry.student] = fetched.error or "the fork could not be fetched"
        echo(f"{entry.student}: {result.recorded[entry.student]}")
    result.seconds = round(time.monotonic() - t0, 2)
    return result


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


def _ray_pool(week: str, settings: Settings, jobs: int | None, address: str | None, ray_init: dict | None,
              echo: Callable[[str], None]):
    """Connect to the cluster (RayConnectError, RayCapacityError: one line) and start its node actors; the
    settings with the profile resolved (cuda when the cluster grades on GPUs)."""
    from grader.cohort.ray_pool import RayPool

    pool = RayPool(address or "local", init=ray_init, slots_per_node=jobs, echo=echo).connect()
    try:
        settings = settings.model_copy(update={"profile": settings.profile or pool.profile})
        return pool.start(week, settings), settings
    except BaseException:
        pool.close()
        raise


def _run_batch(week: str, roster_path: Path, out_dir: Path, t0: float, log: HeadsLog, *, settings: Settings | None,
               pool, plan_args: dict, regrade: bool, formats: tuple[str, ...], keep_exports: bool,
               echo: Callable[[str], None]) -> BatchResult:
    roster = load_roster(roster_path)
    result = BatchResult(roster_problems=list(roster.problems))
    for problem in roster.problems:
        echo(f"roster: {problem}")
    base = settings or Settings()
    settings = base.model_copy(update={"profile": base.profile or detect_profile(),
                                       "out_dir": out_dir / "reports"})
    suite = week_suite(week, public=settings.public)
    checks_hash = suite_hash(suite)
    config = load_week(suite)
    budget = config.profile(settings.profile).total_timeout + HARNESS_MARGIN
    plan = Plan(week=week, expected=config.notebook, stub=released_stub(config), **plan_args)

    store = ForkStore(out_dir / "forks.git")
    run = log.start_run(BATCH, plan.deadline)
    book = Gradebook(out_dir / "gradebook.sqlite")
    book.set_students(roster.entries)
    progress = Progress(len(roster.entries), echo)
    attention: dict[str, str] = {}

    def finish(job: Job, grade: Grade, how: str) -> None:
        student = job.submission.student
        if grade.machine_failure and OUT_OF_SPACE in grade.message:
            result.statuses[student] = grade.status
            result.stopped = grade.message.splitlines()[0]
            raise StopBatch(result.stopped)
        try:
            final = apply_late(grade, job.late_days, plan.policy, job.notes, job.notices, job.submission)
            written = write_report(final, out_dir / "reports", formats)
            # One row per grading, and one more only when the late policy's verdict changes.
            book.add(final, f"{job.key}:{grade.graded_at.isoformat()}:{final.late_days}:{final.late_penalty:g}")
            if how == "graded" and not grade.machine_failure:  # last: a grade whose report failed is not kept
                atomic_write(out_dir / "cache" / f"{job.key}.json", grade.model_dump_json())
        except (OSError, sqlite3.Error) as exc:
            message = describe_output_error(exc, out_dir)
            result.statuses[student] = "harness_error"
            attention[student] = message
            if message.startswith(OUT_OF_SPACE):
                result.stopped = message
                raise StopBatch(message) from None
            echo(f"error: {student}: {message}")
            return
        result.reports[final.student] = written.get("json") or next(iter(written.values()))
        result.statuses[final.student] = final.status
        result.graded += how == "graded"
        result.cached += how == "cached"
        progress.step(final, how)

    def jobs(entries: list[RosterEntry]) -> Iterator[Job | None]:
        """One roster line per item: fetched and chosen (its files are exported by the worker, just
        before it grades), or a cache hit reported (None)."""
        for entry in entries:
            if result.stopped:
                return
            fetched = store.fetch(entry.student, entry.repo, timeout=FETCH_TIMEOUT)
            log.record(fetched, run)
            _pin(store, fetched)
            picked = _select(store, log, entry, fetched, plan)
            if picked.attention:
                attention[entry.student] = picked.attention
            choice = picked.choice
            sha = choice.sha if choice else None
            submission = Submission(
                student=entry.student, week=week, source=entry.repo, commit=sha,
                workdir=str(out_dir / "work" / entry.student), submitted_at=picked.submitted_at,
                problems=picked.notes, fetch_error=picked.fetch_error,
                notebook=choice.notebook if choice else None, branch=choice.branch if choice else None,
                selection=choice.selection if choice else "")
            content = f"{sha}:{choice.notebook}" if choice else f"unfetched:{entry.repo}"
            key = cache_key(entry.student, week, checks_hash, content, settings)
            job = Job(key=key, submission=submission, settings=json.loads(settings.model_dump_json()),
                      timeout=budget, late_days=picked.late_days, submitted_at=picked.submitted_at,
                      notes=picked.notes, notices=picked.notices, export_from=str(store.path) if sha else None,
                      keep_export=keep_exports)
            if picked.fetch_error:  # nothing to grade: reported here, no worker started for it
                finish(job, fetch_failed_grade(submission, settings), "graded")
                yield None
                continue
            cached = out_dir / "cache" / f"{key}.json"
            if cached.is_file() and not regrade:
                finish(job, Grade.model_validate_json(cached.read_text()), "cached")
                yield None
                continue
            yield job

    def grade_all(entries: list[RosterEntry]) -> None:
        # Grading starts with the first fork while the others are still fetched, at the same pace:
        # each fork's head is still taken at (nearly) the moment the batch began.
        pool.run(jobs(entries), lambda job, grade: finish(job, grade, "graded"))

    try:
        grade_all(roster.entries)
        failed = [e for e in roster.entries if result.statuses.get(e.student) in MACHINE_FAILURES]
        if failed and not result.stopped:  # the machine's failures get a second chance, once
            result.retried = [e.student for e in failed]
            echo(f"grading again what the machine failed: {', '.join(result.retried)}")
            progress.extend(len(failed))
            grade_all(failed)
    except StopBatch:
        pass
    finally:
        progress.close()
        for student in result.machine_failures:
            attention.setdefault(student, _failure_line(out_dir, student, week))
        result.attention = {s: attention[s] for s in sorted(attention)}
        if not result.stopped:
            try:
                result.exports = write_exports(book, week, out_dir, roster.problems, attention=result.attention,
                                               banner=TRUST_BANNER if plan.deadline and not plan.recorded else "",
                                               record=_record_line(log, plan))
            except (OSError, sqlite3.Error) as exc:
                result.stopped = describe_output_error(exc, out_dir)
        book.close()
    result.seconds = round(time.monotonic() - t0, 2)
    return result


def describe_output_error(exc: OSError | sqlite3.Error, where: Path | None = None) -> str:
    """One line for a failure to write the batch's own output. SQLite reports a full disk in its own
    words ("database or disk is full", or "disk I/O error" when its journal cannot grow): ask the disk."""
    if isinstance(exc, OSError):
        return describe_os_error(exc, where)
    if "full" in str(exc) or where is not None and _disk_full(where):
        return f"{OUT_OF_SPACE} ({where or 'gradebook'}): {exc}"
    return f"the gradebook could not be written: {exc}"


def _disk_full(where: Path, margin: int = 2**20) -> bool:
    try:
        return shutil.disk_usage(where).free < margin
    except OSError:
        return False


def _failure_line(out_dir: Path, student: str, week: str) -> str:
    try:
        grade = Grade.model_validate_json((out_dir / "reports" / f"{student}-{week}.json").read_text())
        return f"{grade.status.replace('_', ' ')}: {grade.message.splitlines()[0] if grade.message else ''}"
    except (OSError, ValueError):
        return "not graded: its report could not be written"


def _record_line(log: HeadsLog, plan: Plan) -> str:
    """The summary's line on where late days came from."""
    if plan.deadline is None:
        return ""
    run = log.deadline_run(plan.deadline)
    if run is None:
        return f"Deadline {plan.deadline.isoformat()}: no heads were recorded then; late days from commit dates."
    lag = run.at - plan.deadline
    return (f"Deadline {plan.deadline.isoformat()}: branches recorded by the grader at {run.at:%Y-%m-%d %H:%M:%S} "
            f"UTC ({int(lag.total_seconds() // 60)} min after it)" + (
                "; graded as recorded then (later pushes not graded)" if plan.at_deadline else ""))
