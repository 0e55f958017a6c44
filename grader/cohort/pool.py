"""Run grading jobs: one worker process per submission, a few at a time.

A job and its result cross the process boundary as JSON files (never pickle). A fresh process per
submission can be killed at the harness's own timeout with everything it started, and dies with
the batch (PR_SET_PDEATHSIG): a killed batch leaves no orphan grading behind to race a resume.
The workers are forks of one fork server that imported the pipeline once, and their judges forks
of another that imported pytest, numpy and torch once (grader.run.forkserver); where a fork server
cannot start, each worker is a fresh `python -m grader.cohort.pool` process as before.
"""

from __future__ import annotations

import errno
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from grader import caps
from grader.config import Settings
from grader.judge.context import JudgeContext
from grader.records import Execution, Grade, Provenance, Submission
from grader.run.forkserver import ForkedChild, ForkServer, ForkServerError, die_with_parent, spawn
from grader.run.sandbox import WAIT_POLICY_VAR
from grader.run.scratch import sweep_stale
from grader.score import make_grade

Done = Callable[["Job", "Grade"], None]


class Job(BaseModel):
    """Everything a worker needs to grade one submission."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str  # cache key
    submission: Submission
    settings: dict  # Settings as JSON (profile resolved by the batch)
    timeout: float  # harness backstop; the pipeline enforces the week's budgets first
    late_days: int = 0
    submitted_at: datetime | None = None
    notes: list[str] = Field(default_factory=list)
    notices: list[str] = Field(default_factory=list)  # for the Grade's banner (grader.cohort.batch)
    # Export the commit from this fork store into submission.workdir just before grading, and delete it
    # after (unless keep_export): a batch never holds every fork's files on disk at once.
    export_from: str | None = None
    keep_export: bool = False


WORKER_PRELOAD = ("grader.pipeline", "grader.judge.answers", "nbformat", "nbformat.validator", "nbclient",
                  "jupyter_client.manager", "zmq", "numpy", "grader.pipeline:machine_isolation",
                  "grader.run.execute:warm_up")


def grade_job(job: Job, gpu: int | None = None) -> Grade:
    """Grade in this process (the worker side); its judge is forked from the batch's judge server if any.
    A job with `export_from` writes its commit's files first and removes them afterwards."""
    from grader.pipeline import grade_submission

    submission = job.submission
    workdir = Path(submission.workdir)
    try:
        if job.export_from and submission.commit:
            submission = export_job(job, workdir)
        return grade_submission(submission, Settings.model_validate(job.settings), gpu=gpu,
                                judge_server=os.environ.get("GRADER_JUDGE_SERVER") or None)
    finally:
        if job.export_from and not job.keep_export:
            shutil.rmtree(workdir, ignore_errors=True)


def export_job(job: Job, workdir: Path) -> Submission:
    """Write the job's commit from its fork store into workdir; the submission with what was not exported
    added to its problems (a tree bomb or git over a cap: nothing exported, the grade says why)."""
    from grader.fetch.forks import ForkStore, SourceError

    submission = job.submission
    shutil.rmtree(workdir, ignore_errors=True)
    try:
        problems = [f"not exported: {s}" for s in ForkStore(Path(job.export_from)).export(submission.commit, workdir)]
    except SourceError as exc:
        problems = [str(exc)]
    return submission.model_copy(update={"problems": [*submission.problems, *problems]})


def pull(source: Iterator[Job | None] | None, pending: list[Job] | deque) -> Iterator[Job | None] | None:
    """Take one item of an executor's job source into pending (None: a skipped entry); the source, or None
    once it is spent. One item per turn of an executor's loop: fetching goes on while the first are graded."""
    if source is None:
        return None
    item = next(source, StopIteration)
    if item is StopIteration:
        return None
    if item is not None:
        pending.append(item)
    return source


# The grader's own disk is full (or its quota spent): every grading after this one would fail the same way.
OUT_OF_SPACE = "the grader ran out of disk space"
SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}


def describe_os_error(exc: OSError, where: Path | str | None = None) -> str:
    """One line for an OSError on the grader's own files: what ran out (or failed) and where."""
    where = f" ({exc.filename or where})" if exc.filename or where else ""
    if exc.errno in SPACE_ERRNOS:
        return f"{OUT_OF_SPACE}{where}: {exc.strerror or exc}"
    return f"the grader could not write its files{where}: {exc.strerror or exc}"


def error_grade(job: Job, message: str, status: str = "harness_error") -> Grade:
    """A report for a submission the harness could not grade (crash, harness timeout)."""
    import platform

    from grader import __version__

    settings = Settings.model_validate(job.settings)
    execution = Execution(status="not_run", message=message)
    provenance = Provenance(grader_version=__version__, checks_hash="", commit=job.submission.commit,
                            profile=settings.profile or "cpu", device="cpu", isolation="none",
                            python_version=platform.python_version(), seeds={}, threads=settings.threads)
    return make_grade(submission=job.submission, execution=execution, checks=[], provenance=provenance,
                      status=status, message=message)


class LocalPool:
    """Up to `slots` worker processes; slot i gets GPU i when GPUs are given.

    `judge_preload`: start the two fork servers (workers, judges) for the run; None: fresh processes.
    `judge_session`: what every judge of the run shares; the judge server then collects and prepares the
    checks once and forks each judge at its gate (grader.judge.process.serve_session).
    """

    def __init__(self, slots: int, gpus: list[int] | None = None, judge_preload: tuple[str, ...] | None = None,
                 judge_session: JudgeContext | None = None):
        self.slots = max(1, slots)
        self.gpus = gpus or []
        self.judge_preload = judge_preload
        self.judge_session = judge_session
        self._servers: list[ForkServer] = []
        self._server_guards: list[caps.Guard] = []
        self._spawn_env: dict[str, str] = {}
        self._env = {**os.environ, "GRADER_BATCH_PID": str(os.getpid())}
        threads = int(os.environ.get("GRADER_THREADS", "2"))
        if self.slots * threads > (os.cpu_count() or 1):  # kernels share cores: their threads sleep, not spin
            self._env[WAIT_POLICY_VAR] = "PASSIVE"

    def start(self) -> LocalPool:
        """Start the fork servers in the background (a batch does this before fetching the forks)."""
        from grader.judge.process import judge_env

        if self.judge_preload is None or self._servers:
            return self
        preload = ("pytest", "grader.judge.answers", *self.judge_preload, "grader.judge.process:import_plugins")
        env = judge_env(self._env)  # as our workers' judges get it: torch reads it in the server
        try:
            if self.judge_session is not None:
                env["GRADER_JUDGE_SESSION"] = self.judge_session.model_dump_json()
                self._servers.append(ForkServer("grader.judge.process:serve_session", preload, env=env))
            else:
                self._servers.append(ForkServer("grader.judge.process:serve_forked", preload, env=env))
            self._servers.append(ForkServer("grader.cohort.pool:run_worker", WORKER_PRELOAD, env=self._env))
        except (OSError, ForkServerError):
            self.close()
        self._guard_servers()
        return self

    def _guard_servers(self) -> None:
        """Memory and CPU caps on the fork servers (their own RSS and CPU: each child gets its own caps).
        One over its cap is killed; the jobs that need it then start fresh processes."""
        for server, who in zip(self._servers, ("the judge server", "the worker server")):
            self._server_guards.append(caps.Guard(server.pid, caps.SERVER_CAPS, who, own_cgroup=False))

    def _ready_workers(self, wait: float) -> ForkServer | None | bool:
        """The worker fork server once it listens; False while it still starts (up to `wait` seconds);
        None when there is none or it failed: fresh processes instead. The judge server may still be
        importing torch: a worker's judge connects to it when it is ready (grader.judge.process)."""
        if len(self._servers) != 2:
            return None
        judges, workers = self._servers
        try:
            if not workers.wait_ready(wait):
                return False
        except ForkServerError:
            self.close()
            return None
        self._spawn_env = {"GRADER_JUDGE_SERVER": judges.address, "GRADER_BATCH_PID": str(workers.pid)}
        return workers if workers.alive() else None

    def _check_judges(self) -> None:
        """A judge server that failed to start is dropped: later jobs start fresh judges."""
        if len(self._servers) == 2 and "GRADER_JUDGE_SERVER" in self._spawn_env:
            try:
                self._servers[0].wait_ready(0.0)
            except ForkServerError:
                self._spawn_env.pop("GRADER_JUDGE_SERVER")

    def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers = []
        for guard in self._server_guards:
            guard.close()
        self._server_guards = []

    def run(self, jobs: Iterable[Job | None], on_done: Done) -> None:
        """Grade every job. `jobs` is pulled one item per turn of the loop, not as slots free up, so a
        batch goes on fetching forks at its own pace while the first ones are graded (None: skip)."""
        source = iter(jobs)
        pending: list[Job] = []
        running: dict[int, tuple[Job, subprocess.Popen | ForkedChild, Path, caps.Guard]] = {}
        scratch = Path(tempfile.mkdtemp(prefix="grader-jobs-"))
        workers: ForkServer | None | bool = False  # False: the fork servers are still starting
        try:
            while source is not None or pending or running:
                source = pull(source, pending)
                finished = []
                for slot, (job, proc, result, guard) in list(running.items()):
                    if proc.poll() is None:
                        continue  # its guard ends it at its caps (job.timeout is its wall-time cap)
                    hit = guard.verdict(proc.returncode)
                    guard.close()
                    # A cap hit is the submission's doing (reported, not cached: the machine's load may
                    # have had a part in it); any other end without a grade is ours.
                    grade = error_grade(job, str(hit), status="resource_limit") if hit is not None \
                        else _read_result(job, result, proc.returncode)
                    if grade.execution.status == "not_run":  # killed mid-run: free its tmpfs and cgroups
                        sweep_stale()
                        caps.sweep_cgroups()
                    del running[slot]
                    finished.append((job, grade))
                if workers is False and pending:  # no job starts before the servers answer (or fail)
                    self.start()  # (started by the first job: a run of cache hits starts nothing)
                    workers = self._ready_workers(wait=0.0 if source is not None else 0.05)
                if workers and pending:
                    self._check_judges()
                for slot in range(self.slots):  # refill first: reports are written while the next job runs
                    if slot not in running and pending and workers is not False:
                        running[slot] = self._start(pending.pop(0), slot, scratch, workers)
                for job, grade in finished:
                    on_done(job, grade)
                if running and not finished and source is None and workers is not False:
                    _wait_any([proc for _, proc, _, _ in running.values()], 0.02)
        finally:
            for job, proc, _, guard in running.values():
                _kill_session(proc)
                guard.close()
            if running:
                sweep_stale()
                caps.sweep_cgroups()
            self.close()
            for path in scratch.glob("*"):
                path.unlink()
            scratch.rmdir()

    def _start(self, job: Job, slot: int, scratch: Path, workers: ForkServer | None):
        job_path = scratch / f"{job.submission.student}.job.json"
        result = scratch / f"{job.submission.student}.grade.json"
        err = scratch / f"{job.submission.student}.err"
        job_path.write_text(job.model_dump_json())
        args = [str(job_path), str(result)] + ([str(self.gpus[slot % len(self.gpus)])] if self.gpus else [])
        proc = None
        if workers is not None and workers.alive():
            try:  # GRADER_BATCH_PID: the child checks that its parent is the server (which dies with us)
                proc = spawn(workers.address, args, log=err, env=self._spawn_env)
            except ForkServerError:
                pass  # a fresh process for this one
        if proc is None:
            with open(err, "w") as err_file:
                proc = subprocess.Popen([sys.executable, "-m", "grader.cohort.pool", *args], start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=err_file, env=self._env)
        # The worker starts the kernel and the judge: its memory is watched (its own RSS), never a cgroup
        # they would inherit. Its wall-time cap is the job's harness timeout.
        limits = replace(caps.WORKER_CAPS, wall_seconds=job.timeout)
        guard = caps.Guard(proc.pid, limits, "the grading worker", kill=lambda: _signal_session(proc),
                           own_cgroup=False)
        return job, proc, result, guard


def _wait_any(procs: list[subprocess.Popen | ForkedChild], timeout: float) -> None:
    """Until one of the workers may have ended, or `timeout`: a fork server tells of its child's end on
    the child's connection, so its slot is refilled at once (a fixed poll left it idle 10 ms a job)."""
    if all(isinstance(proc, ForkedChild) for proc in procs):
        select.select(procs, [], [], timeout)
    else:
        time.sleep(timeout)


def _signal_session(proc: subprocess.Popen | ForkedChild) -> None:
    """SIGKILL a worker's session without waiting for it (from a guard's thread: the pool's loop reaps it)."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _kill_session(proc: subprocess.Popen | ForkedChild) -> None:
    """SIGKILL a worker's whole session (both kinds lead their own) and collect its status."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read_result(job: Job, result: Path, returncode: int) -> Grade:
    try:
        return Grade.model_validate_json(result.read_text())
    except (OSError, ValueError):
        err = result.with_name(f"{job.submission.student}.err")
        try:
            tail = err.read_text(errors="replace").strip()[-1500:] if err.is_file() else ""
        except OSError:
            tail = ""
        how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited with {returncode}"
        return error_grade(job, f"the grading worker {how} without a grade; "
                                + (f"its last output: {tail}" if tail else "it wrote no output"))


def run_worker(job_path: str, result_path: str, gpu: str | None = None) -> int:
    """Worker entry point: grade one job, write the Grade JSON atomically."""
    die_with_parent()
    if os.environ.get("GRADER_BATCH_PID") and os.getppid() != int(os.environ["GRADER_BATCH_PID"]):
        return 2  # the batch died before we could ask to die with it: grade nothing
    job = Job.model_validate_json(Path(job_path).read_text())
    try:
        grade = grade_job(job, gpu=int(gpu) if gpu is not None else None)
    except OSError as exc:
        if exc.errno not in SPACE_ERRNOS:
            raise_or_report = "harness error while grading:\n" + traceback.format_exc()[-1500:]
        else:  # the machine's: a full disk is one line, no traceback
            raise_or_report = describe_os_error(exc, job.submission.workdir if job.export_from
                                                else job.settings.get("out_dir"))
        grade = error_grade(job, raise_or_report)
    except Exception:  # noqa: BLE001 - a harness bug: still a report, marked as ours, never cached
        grade = error_grade(job, "harness error while grading:\n" + traceback.format_exc()[-1500:])
    tmp = Path(result_path + ".tmp")
    tmp.write_text(grade.model_dump_json())
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(*sys.argv[1:]))
