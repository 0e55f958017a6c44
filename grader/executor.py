"""Run grading jobs: one `python -m grader.executor` process per submission, a few at a time.

A job and its result cross the process boundary as JSON files (never pickle). A fresh process per
submission can be killed at the harness's own timeout with everything it started, and dies with
the batch (PR_SET_PDEATHSIG): a killed batch leaves no orphan grading behind to race a resume.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .config import Settings
from .records import Execution, Grade, Provenance, Submission
from .score import make_grade

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


def grade_job(job: Job, gpu: int | None = None) -> Grade:
    """Grade in this process (the worker side)."""
    from .pipeline import grade_submission

    return grade_submission(job.submission, Settings.model_validate(job.settings), gpu=gpu)


def error_grade(job: Job, message: str, status: str = "harness_error") -> Grade:
    """A report for a submission the harness could not grade (crash, harness timeout)."""
    import platform

    from . import __version__

    settings = Settings.model_validate(job.settings)
    execution = Execution(status="not_run", message=message)
    provenance = Provenance(grader_version=__version__, checks_hash="", commit=job.submission.commit,
                            profile=settings.profile or "cpu", device="cpu", isolation="none",
                            python_version=platform.python_version(), seeds={}, threads=settings.threads)
    return make_grade(submission=job.submission, execution=execution, checks=[], provenance=provenance,
                      status=status, message=message)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class LocalPool:
    """Up to `slots` worker processes; slot i gets GPU i when GPUs are given."""

    def __init__(self, slots: int, gpus: list[int] | None = None):
        self.slots = max(1, slots)
        self.gpus = gpus or []

    def run(self, jobs: list[Job], on_done: Done) -> None:
        pending = list(jobs)
        running: dict[int, tuple[Job, subprocess.Popen, Path, float]] = {}
        scratch = Path(tempfile.mkdtemp(prefix="grader-jobs-"))
        try:
            while pending or running:
                for slot in range(self.slots):
                    if slot not in running and pending:
                        job = pending.pop(0)
                        running[slot] = self._start(job, slot, scratch)
                for slot, (job, proc, result, started) in list(running.items()):
                    if proc.poll() is None and time.monotonic() - started < job.timeout:
                        continue
                    if proc.poll() is None:
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        grade = error_grade(job, f"grading took longer than {job.timeout:g} s and was stopped",
                                            status="failed_to_run")
                    else:
                        grade = _read_result(job, result, proc.returncode)
                    del running[slot]
                    on_done(job, grade)
                time.sleep(0.1)
        finally:
            for job, proc, _, _ in running.values():
                os.killpg(proc.pid, signal.SIGKILL)
            for path in scratch.glob("*"):
                path.unlink()
            scratch.rmdir()

    def _start(self, job: Job, slot: int, scratch: Path):
        job_path = scratch / f"{job.submission.student}.job.json"
        result = scratch / f"{job.submission.student}.grade.json"
        job_path.write_text(job.model_dump_json())
        argv = [sys.executable, "-m", "grader.executor", str(job_path), str(result)]
        if self.gpus:
            argv.append(str(self.gpus[slot % len(self.gpus)]))
        with open(scratch / f"{job.submission.student}.err", "w") as err:
            proc = subprocess.Popen(argv, start_new_session=True, stdout=subprocess.DEVNULL, stderr=err,
                                    env={**os.environ, "GRADER_BATCH_PID": str(os.getpid())})
        return job, proc, result, time.monotonic()


def _read_result(job: Job, result: Path, returncode: int) -> Grade:
    try:
        return Grade.model_validate_json(result.read_text())
    except (OSError, ValueError):
        err = result.with_name(f"{job.submission.student}.err")
        tail = err.read_text()[-1500:] if err.is_file() else ""
        return error_grade(job, f"grading worker exited with {returncode} and no grade: {tail}")


def run_worker(job_path: str, result_path: str, gpu: str | None = None) -> int:
    """Worker entry point: grade one job, write the Grade JSON atomically."""
    _die_with_parent()
    if os.environ.get("GRADER_BATCH_PID") and os.getppid() != int(os.environ["GRADER_BATCH_PID"]):
        return 2  # the batch died before we could ask to die with it: grade nothing
    job = Job.model_validate_json(Path(job_path).read_text())
    try:
        grade = grade_job(job, gpu=int(gpu) if gpu is not None else None)
    except Exception:  # noqa: BLE001 - a harness bug: still a report, marked as ours, never cached
        grade = error_grade(job, "harness error while grading:\n" + traceback.format_exc()[-1500:])
    tmp = Path(result_path + ".tmp")
    tmp.write_text(grade.model_dump_json())
    os.replace(tmp, result_path)
    return 0


if __name__ == "__main__":
    sys.exit(run_worker(*sys.argv[1:]))
