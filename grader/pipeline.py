"""One submission through every stage: locate -> execute -> judge -> score.

grade_submission is the single entry point used by `grader grade`, `grader check` and
every batch executor. A student's failure becomes data in the Grade; only a harness bug
raises.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.caps import JUDGE_CAPS, CapExceeded, mechanisms
from grader.config import (
    ASSIGNMENTS,
    DATA_DIR,
    Settings,
    WeekConfig,
    detect_profile,
    load_week,
    probes_file,
    suite_hash,
    week_suite,
)
from grader.fetch.notebook import NotebookError, code_cells, locate_notebook, read_notebook, stub_code
from grader.judge.context import JudgeContext, session_context
from grader.judge.process import JudgeProcess, judge_preload
from grader.records import Enforcement, Execution, Grade, Submission
from grader.run.answers_file import answer_meta
from grader.run.execute import KernelPlan, RunPlan, execute_notebook
from grader.run.optional import optional_cells, set_apart_optional
from grader.run.sandbox import Isolation, Limits, check_level, detect_isolation, layout_fixed
from grader.run.scratch import release as release_scratch
from grader.score import LatePolicy, make_grade, provenance_for, to_check_results

MAX_SUBMISSION_BYTES = 200 * 2**20  # copied into scratch; larger files are skipped
# Seconds past the week's total budget (counted from the grading's start) by which the judge must have
# finished; a batch's worker cap (grader.cohort.batch.HARNESS_MARGIN) leaves a minute more, so that the
# judge's own watchdog, which names what a stuck judge waited for, always fires first.
JUDGE_MARGIN = 240.0
JUDGE_MIN_WALL = 30.0  # the checks' least time from the gate, however long the notebook took


@functools.lru_cache(maxsize=1)
def machine_isolation() -> Isolation:
    return detect_isolation()


def check_isolation(settings: Settings) -> Isolation:
    """The level this machine grades at, or IsolationError (one line, exit 4) where grading there is refused:
    below bubblewrap unless allowed (`check` always is), never where the level cannot hold."""
    level = machine_isolation()
    check_level(level, allow_weak=settings.allow_weak_isolation or settings.public,
                required=settings.require_isolation)
    return level


def enforcement(level: Isolation, week: WeekConfig, heap: object) -> Enforcement:
    """What the sandbox enforced for this grade, from how it was launched (sandbox.py's levels)."""
    root = os.geteuid() == 0
    mounts = level is Isolation.bwrap or (level is Isolation.unshare and root)
    return Enforcement(
        level=level.value, weak=level is not Isolation.bwrap,
        uid="own" if root else "namespace" if level is Isolation.bwrap else "grader",
        network_cut=level is not Isolation.process, private_mounts=level is Isolation.bwrap,
        forbidden=list(week.sandbox_forbid), forbidden_blocked=mounts,
        layout_fixed=layout_fixed(), hash_seed="0", deterministic_heap=heap == "fixed",
    )


@functools.lru_cache(maxsize=1)
def _environment_torch() -> str | None:
    """The grading environment's torch (the judge's references use it, whether or not the kernel does)."""
    from importlib import metadata

    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return None


def load_plan(suite_dir: Path):
    """Import the suite's plan.py in this trusted process: it builds the probe requests."""
    spec = importlib.util.spec_from_file_location(f"grader_plan_{suite_dir.name}", suite_dir / "plan.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def requests_writer(requests: list[dict[str, Any]]):
    """Write requests.json, moving numpy arrays into inputs/*.npy (never pickle)."""
    import numpy as np  # here, not at import: loading it (35 ms) overlaps the kernel's start

    def encode(value: Any, out: Path, counter: list[int]) -> Any:
        if isinstance(value, np.ndarray):
            out.mkdir(exist_ok=True)
            name = f"in-{counter[0]}.npy"
            counter[0] += 1
            np.save(out / name, value, allow_pickle=False)
            return {"$array": name}
        if isinstance(value, dict):
            return {k: encode(v, out, counter) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [encode(v, out, counter) for v in value]
        return value

    def write(folder: Path) -> None:
        counter = [0]
        encoded = [encode(dict(r), folder / "inputs", counter) for r in requests]
        (folder / "requests.json").write_text(json.dumps(encoded))

    return write


def _copy_file(path: Path, rel: str, dst: Path, skipped: list[str]) -> None:
    """Copy one of the student's files into dst at rel: no links, nothing oversized."""
    if path.is_symlink():
        skipped.append(f"{rel} (symbolic link)")
    elif path.is_file():
        if path.stat().st_size > MAX_SUBMISSION_BYTES:
            skipped.append(f"{rel} (over {MAX_SUBMISSION_BYTES // 2**20} MiB)")
            return
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst / rel)


def _copy_submission(src: Path, notebook_rel: str, dst: Path, patterns: list[str]) -> list[str]:
    """Copy the located notebook and the week's declared student files (patterns beside the notebook)
    into dst; nothing else of the submission (a classmate's notebook in the same folder, a fork's other
    files). Returns what was skipped, for the report."""
    skipped: list[str] = []
    folder = (src / notebook_rel).parent
    _copy_file(src / notebook_rel, notebook_rel, dst, skipped)
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            rel = path.relative_to(src).as_posix()
            if rel != notebook_rel and ".git" not in Path(rel).parts:
                _copy_file(path, rel, dst, skipped)
    return skipped


def _given_notebook(workdir: Path, rel: str) -> Path:
    path = workdir / rel
    if path.is_symlink():
        raise NotebookError(f"{rel} is a symbolic link; commit the notebook itself")
    if not path.is_file():
        raise NotebookError(f"{rel} does not exist")
    return path


def _empty_execution(status: str, message: str, level: Isolation) -> Execution:
    return Execution(status=status, message=message, isolation=level.value)


class NotSubmitted(NotebookError):
    """The notebook is the released stub, unchanged: nothing of the student's to grade."""


def released_stub(week: WeekConfig) -> tuple[str, ...] | None:
    """The code of the stub students were given (assignments/weekN/), to tell it from their work."""
    return stub_code(ASSIGNMENTS / week.week / week.notebook)


def _find_notebook(submission: Submission, week: WeekConfig) -> Path:
    return (_given_notebook(Path(submission.workdir), submission.notebook) if submission.notebook
            else locate_notebook(Path(submission.workdir), week.notebook, stub=released_stub(week)))


def _refuse_stub(path: Path, rel: str, week: WeekConfig) -> None:
    stub = released_stub(week)
    if stub is not None and path.stat().st_size <= 20 * 2**20 and code_cells(path.read_bytes()) == stub:
        raise NotSubmitted(f"{rel} is the released stub, unchanged: nothing to grade (work on the cells "
                           f"marked YOUR CODE HERE, commit, and push)")


@dataclass
class _Found:
    """What locating the notebook found; filled in by prepare(), in the thread beside the kernel."""

    problems: list[str]
    rel: str | None = None  # the notebook's path in the submission
    sha256: str | None = None
    ctx: JudgeContext | None = None
    optional: frozenset[int] = frozenset()  # its `# OPTIONAL` cells (grader.run.optional)


def _locate(submission: Submission, workdir: Path, pristine: Path, week: WeekConfig, found: _Found):
    """Find and read the notebook; copy the submission to scratch (sandbox) and pristine (judge)."""
    if found.problems and not Path(submission.workdir).is_dir():
        raise NotebookError("; ".join(found.problems))
    path = _find_notebook(submission, week)
    rel = path.resolve().relative_to(Path(submission.workdir).resolve()).as_posix()
    _refuse_stub(path, rel, week)
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    nb = read_notebook(path)
    copied = _copy_submission(Path(submission.workdir), rel, workdir, week.student_files)
    found.problems += [f"not copied: {s}" for s in copied]
    # The judge reads the notebook (and any student data file) from a copy the sandbox
    # never sees: code in the kernel could rewrite its own scratch files while it runs.
    _copy_submission(Path(submission.workdir), rel, pristine, week.student_files)
    for name in week.data:  # the grader's copy of the data, beside the notebook
        shutil.copyfile(DATA_DIR / name, (workdir / rel).parent / name)
    found.rel, found.sha256 = rel, sha256
    return nb


def _plan_requests(suite: Path, profile: str, thresholds: dict, pristine: Path, rel: str,
                   select: tuple[str, ...] | list[str]) -> list[dict[str, Any]]:
    """The week's probe requests (plan.py), only those that serve the selected checks."""
    plan_module = load_plan(suite)
    wanted = inspect.signature(plan_module.plan).parameters
    given = {"submission": pristine, "notebook": pristine / rel}
    requests = plan_module.plan(profile, thresholds, DATA_DIR, **{k: v for k, v in given.items() if k in wanted})
    if select:  # a request tagged with the checks it serves runs only for them
        requests = [r for r in requests if not r.get("checks") or set(r["checks"]) & set(select)]
    return [{k: v for k, v in r.items() if k != "checks"} for r in requests]


def artifacts_folder(out_dir: Path, submission: Submission) -> Path:
    """Where a grading's artifacts (samples, curves, figures) are written, beside its reports."""
    return Path(out_dir) / f"{submission.student}-{submission.week}-artifacts"


def fetch_failed_grade(submission: Submission, settings: Settings) -> Grade:
    """The fork could not be fetched: the machine's failure, reported without running anything."""
    week = load_week(week_suite(submission.week, public=settings.public))
    execution = Execution(status="not_run", message=submission.fetch_error)
    provenance = provenance_for(checks_hash=suite_hash(week.suite_dir), notebook_sha256=None, submission=submission,
                                execution=execution, profile=settings.profile or detect_profile(), torch_version=None,
                                seeds=week.seeds, threads=settings.threads)
    return make_grade(submission=submission, execution=execution, checks=[], provenance=provenance, title=week.title,
                      status="fetch_failed", message=submission.fetch_error)


def _is_stub(submission: Submission, week: WeekConfig) -> bool:
    """Whether the notebook to grade is the untouched stub: then no kernel is started for it."""
    try:
        _refuse_stub(_find_notebook(submission, week), submission.notebook or "", week)
    except NotSubmitted:
        return True
    except (NotebookError, OSError):
        pass  # locating says why, in its turn
    return False


def _judge(judge: JudgeProcess, ctx: JudgeContext, wall: float) -> tuple[list, CapExceeded | None]:
    """The checks' results, or none and the cap the judge went over (the submission's doing)."""
    try:
        return to_check_results(judge.run(ctx, wall=wall)), None
    except CapExceeded as exc:
        return [], exc


def grade_submission(
    submission: Submission,
    settings: Settings = Settings(),
    *,
    late_days: int = 0,
    policy: LatePolicy | None = None,
    gpu: int | None = None,
    judge_server: str | None = None,
) -> Grade:
    """Grade one submission end to end and return its Grade (reports are written by the caller).

    `judge_server`: the address of a judge fork server (a batch starts one), else a fresh judge.
    """
    t0 = time.monotonic()
    durations: dict[str, float] = {}
    suite = week_suite(submission.week, public=settings.public)
    week: WeekConfig = load_week(suite)
    profile_name = settings.profile or detect_profile()
    profile = week.profile(profile_name)
    level = check_isolation(settings)
    if submission.fetch_error and not Path(submission.workdir).is_dir():  # nothing fetched: no judge either
        return fetch_failed_grade(submission, settings)

    # Start the judge now: its imports, its collection of the checks and its references overlap the
    # notebook's run (it never sees student code); it waits at its gate for the answers.
    judge = JudgeProcess(preload=judge_preload(week.judge_uses_torch), server=judge_server)
    run_dir = Path(tempfile.mkdtemp(prefix=f"grader-{submission.student}-{submission.week}-"))
    artifacts_dir = artifacts_folder(settings.out_dir, submission)
    pristine = Path(tempfile.mkdtemp(prefix="grader-pristine-"))
    found = _Found(problems=list(submission.problems))
    try:
        workdir = run_dir / "work"
        workdir.mkdir()

        def judge_context() -> JudgeContext:
            shared = session_context(suite, profile_name, profile.thresholds, settings.select, DATA_DIR)
            return shared.model_copy(update={
                "notebook_path": str(pristine / found.rel) if found.rel else None, "submission_dir": str(pristine),
                "artifacts_dir": str(artifacts_dir), "results_path": str(run_dir / "results.json"),
                "wait_for_answers": False,
            })

        def prepare() -> RunPlan:
            """Locate, copy and plan: runs in a thread while the kernel starts (execute_notebook)."""
            try:
                nb = _locate(submission, workdir, pristine, week, found)
                found.optional = frozenset(optional_cells(nb, week.graded_names))
            finally:
                durations["locate"] = round(time.monotonic() - t0, 3)
                found.ctx = judge_context()
                judge.prepare(found.ctx)  # collects and prepares while the notebook runs
            t1 = time.monotonic()
            requests = _plan_requests(suite, profile_name, dict(profile.thresholds), pristine, found.rel,
                                      settings.select)
            durations["plan"] = round(time.monotonic() - t1, 3)
            return RunPlan(notebook=nb, notebook_rel=found.rel, probes_file=probes_file(suite),
                           write_requests=requests_writer(requests))

        kernel = KernelPlan(
            workdir=workdir, cell_timeout=profile.cell_timeout, total_timeout=profile.total_timeout,
            probe_timeout=profile.probe_timeout, seeds=week.seeds, uses_torch=week.uses_torch, level=level,
            gpu=gpu, limits=Limits(memory_bytes=None if gpu is not None else Limits().memory_bytes),
            forbid=week.sandbox_forbid, forbid_note=week.forbid_reason,
        )
        t1 = time.monotonic()
        not_submitted = False
        try:
            if found.problems and not Path(submission.workdir).is_dir() or _is_stub(submission, week):
                prepare()  # a dead fork or the untouched stub: no kernel at all (prepare raises)
            execution = set_apart_optional(execute_notebook(kernel, prepare, run_dir), found.optional)
            durations["execute"] = round(time.monotonic() - t1, 3)
        except NotSubmitted as exc:
            execution, not_submitted = _empty_execution("not_run", str(exc), level), True
        except NotebookError as exc:
            execution = _empty_execution("invalid", str(exc), level)
            found.problems.append(str(exc))
        submission = submission.model_copy(update={"problems": found.problems,
                                                   **({"notebook": found.rel} if found.rel else {})})
        ctx = found.ctx or judge_context()  # None only if the run timed out before locating ended

        t1 = time.monotonic()
        ctx = ctx.model_copy(update={"answers_dir": execution.answers_dir,
                                     "execution": json.loads(execution.model_dump_json())})
        # The checks get what is left of the week's budget plus JUDGE_MARGIN, so that a judge stuck
        # waiting ends as this grading's harness error well before a batch's worker cap ends it silently.
        wall = max(JUDGE_MIN_WALL, t0 + profile.total_timeout + JUDGE_MARGIN - time.monotonic())
        checks, capped = _judge(judge, ctx, wall)
        durations["judge"] = round(time.monotonic() - t1, 3)

        meta = answer_meta(execution.answers_dir)
        provenance = provenance_for(
            checks_hash=suite_hash(suite), notebook_sha256=found.sha256, submission=submission,
            execution=execution, profile=profile_name,
            torch_version=meta.get("torch") if isinstance(meta.get("torch"), str) else _environment_torch(),
            seeds=week.seeds, threads=settings.threads,
            caps={"judge": " · ".join(f"{k} {v}" for k, v in mechanisms(JUDGE_CAPS).items())},
            sandbox=enforcement(level, week, meta.get("heap")),
        )
        status = {"invalid": "invalid_submission", "not_run": "failed_to_run",
                  "killed": "kernel_killed"}.get(execution.status, "graded")
        status = "not_submitted" if not_submitted else status
        message = (execution.message if execution.status in ("invalid", "timeout", "dead_kernel", "killed")
                   or not_submitted else "")
        if capped is not None:
            status, message = "resource_limit", str(capped)
        artifacts = {p.name: str(p) for p in sorted(artifacts_dir.glob("*"))} if artifacts_dir.is_dir() else {}
        durations["total"] = round(time.monotonic() - t0, 3)
        return make_grade(
            submission=submission, execution=execution.model_copy(update={"answers_dir": None}),
            checks=checks, provenance=provenance, title=week.title, late_days=late_days, policy=policy,
            status=status, message=message, durations=durations, artifacts=artifacts,
        )
    finally:
        judge.close()
        shutil.rmtree(pristine, ignore_errors=True)
        release_scratch(run_dir, keep=settings.keep_run_dir)  # the run's tmpfs, once its answers are judged
        if not settings.keep_run_dir:
            shutil.rmtree(run_dir, ignore_errors=True)
