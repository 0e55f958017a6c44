"""`grader mutate WEEK`: how many student-like bugs the week's hidden checks catch.

Every mutant of the reference solution (grader.staff.mutants) is graded as a submission, in one batch:
the local pool's fork servers and one judge session that collected and prepared the checks once, at
the CPU profile. A mutant is killed when it loses points on some check against the unmutated solution,
graded first in the same run (it must get full marks, else nothing is graded). A week whose solution
leaves code unrun by its checks (week 6 declares one track of three) lists variants in week.toml: the
solution and every mutant are graded as shipped and in each variant, and a point lost in any kills. A mutant whose notebook
ran past a time budget is a timeout, counted apart; a mutant course staff marked equivalent in week.toml
is listed, not graded, not scored. Grades are cached under out/cache by the mutant's code, the suite's
hash, the checks selected and the grader's version: a rerun grades only new or changed mutants, and a
changed check regrades all of them.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import random
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import nbformat
from pydantic import BaseModel, ConfigDict, Field

from grader import __version__
from grader.cohort.batch import HARNESS_MARGIN, Progress
from grader.cohort.pool import Job, LocalPool
from grader.config import DATA_DIR, REPO_ROOT, MutationVariant, Settings, load_week, suite_hash, week_suite
from grader.judge.context import session_context
from grader.judge.process import judge_preload
from grader.records import Grade, Submission
from grader.report.markdown import atomic_write
from grader.staff.mutants import (
    Mutant,
    check_variant,
    code_digest,
    files_digest,
    mutate_notebook,
    notebook_mutants,
    read_solution,
    variant_grades,
)

PROFILE = "cpu"  # mutants are graded at the CPU budgets, wherever the command runs
Outcome = Literal["killed", "survived", "timeout", "equivalent", "error", "not_graded"]


class MutationError(ValueError):
    """The run cannot start or go on: an unknown check, or a solution without full marks."""


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MutantResult(Frozen):
    """What the hidden checks made of one mutant."""

    mutant: Mutant
    outcome: Outcome
    killed_by: list[str] = Field(default_factory=list)  # checks that lost points against the solution
    score: float | None = None
    max_score: float | None = None
    seconds: float = 0.0  # grading time (0 for a cache hit)
    cached: bool = False
    note: str = ""  # the equivalence reason, the budget that ran out, the harness error


class MutationRun(Frozen):
    """One run of `grader mutate`: its selection, the solution's grade and every mutant's result."""

    week: str
    profile: str = PROFILE
    jobs: int
    checks: list[str]  # selected check ids (empty: all)
    generated: int  # mutants of the whole solution
    baseline_score: float
    baseline_max: float
    results: list[MutantResult]
    variants: list[str] = Field(default_factory=list)  # graded besides the solution as shipped (week.toml)
    stale_equivalents: list[str] = Field(default_factory=list)  # week.toml ids no mutant has any more
    skipped_cells: list[str] = Field(default_factory=list)
    graded: int = 0
    cached: int = 0
    wall_seconds: float = 0.0
    interrupted: bool = False

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def score(self) -> float | None:
        """Killed over killed + survived: equivalents, timeouts and errors are left out."""
        scored = self.count("killed") + self.count("survived")
        return self.count("killed") / scored if scored else None

    @property
    def seconds_per_mutant(self) -> float | None:
        graded = [r.seconds for r in self.results if r.seconds and not r.cached]
        return sum(graded) / len(graded) if graded else None


def suite_checks(suite: Path) -> list[str]:
    """The check ids of a suite (test functions marked `check`), read from its test files as text."""
    found = []
    for path in sorted(suite.glob("test_*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_") and any(
                    "check" in ast.unparse(d) for d in node.decorator_list):
                found.append(node.name[len("test_"):])
    return found


def select_mutants(mutants: list[Mutant], *, kinds: tuple[str, ...] = (), scope: str | None = None,
                   ids: tuple[str, ...] = ()) -> list[Mutant]:
    """The mutants of the given kinds, in functions whose name contains `scope`, or with these ids."""
    return [m for m in mutants if (not kinds or m.kind in kinds) and (not scope or scope in m.scope)
            and (not ids or m.id in ids)]


def sample_mutants(mutants: list[Mutant], *, limit: int | None = None, sample: int | None = None,
                   seed: int = 0) -> list[Mutant]:
    """A quick look: a seeded random `sample`, or the first `limit`, kept in notebook order."""
    if sample is not None and sample < len(mutants):
        chosen = {id(m) for m in random.Random(seed).sample(mutants, sample)}
        mutants = [m for m in mutants if id(m) in chosen]
    return mutants[:limit] if limit is not None else mutants


def cache_key(week: str, checks_hash: str, notebook_digest: str, checks: list[str]) -> str:
    parts = [__version__, "mutant", week, checks_hash, notebook_digest, PROFILE, *sorted(checks)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def merge(results: list[MutantResult]) -> MutantResult:
    """One mutant's result over the solution as shipped and its variants: killed when any variant killed
    it (by the union of their checks); else a timeout or error in any is that; else it survived."""
    first = results[0]
    for outcome in ("killed", "timeout", "error"):
        hits = [r for r in results if r.outcome == outcome]
        if hits:
            first = hits[0]
            break
    killed_by = list(dict.fromkeys(c for r in results for c in r.killed_by))
    return first.model_copy(update={"killed_by": killed_by, "seconds": sum(r.seconds for r in results),
                                    "cached": all(r.cached for r in results)})


def classify(mutant: Mutant, grade: Grade, baseline: Grade, cached: bool = False) -> MutantResult:
    """Killed when any check earned less than on the solution; a run past a budget is a timeout."""
    common = {"mutant": mutant, "score": grade.score, "max_score": grade.max_score, "cached": cached,
              "seconds": 0.0 if cached else grade.durations.get("total", 0.0)}
    if grade.status == "harness_error" or grade.execution.status == "not_run" and "longer than" not in grade.message:
        return MutantResult(outcome="error", note=grade.message[-500:], **common)
    if grade.execution.status == "timeout" or "longer than" in grade.message:
        return MutantResult(outcome="timeout", note=grade.execution.message or grade.message, **common)
    got = {c.id: c.points for c in grade.checks}
    lost = [c.id for c in baseline.checks if got.get(c.id, 0.0) < c.points - 1e-9]
    return MutantResult(outcome="killed" if lost else "survived", killed_by=lost, **common)


def run_mutation(week: str, out_dir: Path, *, jobs: int | None = None, checks: list[str] | None = None,
                 kinds: tuple[str, ...] = (), scope: str | None = None, ids: tuple[str, ...] = (),
                 limit: int | None = None, sample: int | None = None, seed: int = 0, regrade: bool = False,
                 echo: Callable[[str], None] = print) -> MutationRun:
    """Generate, select and grade the week's mutants; returns the run (reports: grader.staff.mutation_report)."""
    t0 = time.monotonic()
    suite = week_suite(week)
    config = load_week(suite)
    checks = list(checks or [])
    unknown = sorted(set(checks) - set(suite_checks(suite)))
    if unknown:
        raise MutationError(f"unknown check(s) {', '.join(unknown)}; {week} has: {', '.join(suite_checks(suite))}")
    mutants, skipped = notebook_mutants(suite / config.notebook)
    solution = read_solution(suite / config.notebook)
    variants: list[MutationVariant | None] = [None, *config.mutation.variants]
    for variant in config.mutation.variants:
        try:
            check_variant(solution, variant, REPO_ROOT)
        except ValueError as exc:
            raise MutationError(f"{week}'s week.toml: {exc}") from None
    marked = {e.id: e.reason for e in config.mutation.equivalent}
    chosen = select_mutants(mutants, kinds=kinds, scope=scope, ids=ids)
    to_grade = sample_mutants([m for m in chosen if m.id not in marked], limit=limit, sample=sample, seed=seed)
    results = {m.id: MutantResult(mutant=m, outcome="equivalent", note=marked[m.id]) for m in chosen if m.id in marked}
    stale = sorted(set(marked) - {m.id for m in mutants})

    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"work-{week}-", dir=out_dir))  # runs of other weeks may share out_dir
    jobs = max(1, jobs or os.cpu_count() or 1)
    settings = Settings(profile=PROFILE, out_dir=work / "reports", select=tuple(checks), formats=("json",))
    checks_hash = suite_hash(suite)
    graded_in = {m.id: [v for v in variants if v is None or variant_grades(v, m, solution)] for m in to_grade}
    state = _State(progress=Progress(len(variants) + sum(map(len, graded_in.values())), echo),
                   expected={mutant_id: len(vs) for mutant_id, vs in graded_in.items()})
    by_name = {f"mutant-{m.id}": m for m in to_grade}

    def job(name: str, mutant: Mutant | None, variant: MutationVariant | None) -> Job | None:
        nb = mutate_notebook(solution, mutant, variant)
        files = [REPO_ROOT / f for f in (variant.files if variant else [])]
        key = cache_key(week, checks_hash, code_digest(nb) + files_digest(files), checks)
        name = name if variant is None else f"{name}@{variant.name}"
        cached = out_dir / "cache" / f"{key}.json"
        if mutant is not None and cached.is_file() and not regrade:
            state.finish(mutant, name, Grade.model_validate_json(cached.read_text()), cached=True)
            return None
        folder = work / name
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / config.notebook)
        for path in files:
            shutil.copyfile(path, folder / path.name)
        submission = Submission(student=name, week=week, source=f"mutant {name}", workdir=str(folder),
                                notebook=config.notebook)
        return Job(key=key, submission=submission, settings=json.loads(settings.model_dump_json()),
                   timeout=config.profile(PROFILE).total_timeout + HARNESS_MARGIN)

    def queue() -> Iterator[Job | None]:
        for variant in variants:
            yield job("solution", None, variant)
        while len(state.baselines) < len(variants):  # the pool asks again each turn; the solution decides
            time.sleep(0.05)
            yield None
        for name, baseline in state.baselines.items():
            _require_full_marks(baseline, checks, name)
        if all(b.max_score <= 0 for b in state.baselines.values()):  # --checks that no variant grades
            raise MutationError(f"no grading of the solution has points with --checks {','.join(checks)}")
        for mutant in to_grade:
            for variant in graded_in[mutant.id]:
                yield job(f"mutant-{mutant.id}", mutant, variant)

    def done(finished: Job, grade: Grade) -> None:
        name = finished.submission.student
        if name.split("@")[0] == "solution":
            state.baselines[name] = grade
            state.progress.advance(f"{name}: {grade.score:g}/{grade.max_score:g} "
                                   f"({grade.durations.get('total', 0):.1f} s)")
            return
        if grade.status != "harness_error" and grade.execution.status != "not_run":
            atomic_write(out_dir / "cache" / f"{finished.key}.json", grade.model_dump_json())
        state.finish(by_name[name.split("@")[0]], name, grade, cached=False)

    pool = LocalPool(jobs, judge_preload=judge_preload(config.uses_torch),
                     judge_session=session_context(suite, PROFILE, config.profile(PROFILE).thresholds, checks, DATA_DIR))
    interrupted = False
    stop = _interrupt_on_sigterm()
    try:
        pool.run(queue(), done)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        stop()
        state.progress.close()
        shutil.rmtree(work, ignore_errors=True)
    if "solution" not in state.baselines:
        raise KeyboardInterrupt  # stopped before the solution was graded: nothing to report
    results.update(state.results)
    wanted = {m.id for m in to_grade} | set(results)
    ordered = [results.get(m.id) or MutantResult(mutant=m, outcome="not_graded") for m in chosen if m.id in wanted]
    return MutationRun(week=week, jobs=jobs, checks=checks, generated=len(mutants),
                       baseline_score=state.baselines["solution"].score,
                       baseline_max=state.baselines["solution"].max_score, results=ordered,
                       variants=[v.name for v in config.mutation.variants], stale_equivalents=stale, skipped_cells=skipped,
                       graded=sum(1 for r in state.results.values() if not r.cached),
                       cached=sum(1 for r in state.results.values() if r.cached),
                       wall_seconds=round(time.monotonic() - t0, 2), interrupted=interrupted)


class _State:
    """What the pool's callbacks fill in as grades come back."""

    def __init__(self, progress: Progress, expected: dict[str, int]):
        self.progress = progress
        self.expected = expected  # mutant id -> how many grades it gets (shipped, and the variants that apply)
        self.baselines: dict[str, Grade] = {}  # "solution" and "solution@<variant>"
        self.results: dict[str, MutantResult] = {}
        self._parts: dict[str, list[MutantResult]] = {}

    def finish(self, mutant: Mutant, name: str, grade: Grade, cached: bool) -> None:
        """One grade of a mutant (named "mutant-ID" or "mutant-ID@variant"), against that variant's solution;
        the mutant's result once every variant is in."""
        variant = name.partition("@")[2]
        result = classify(mutant, grade, self.baselines["solution" + (f"@{variant}" if variant else "")],
                          cached=cached)  # mutants start after the solutions
        parts = self._parts.setdefault(mutant.id, [])
        parts.append(result)
        how = "cached" if cached else f"{result.seconds:.1f} s"
        detail = f" by {', '.join(result.killed_by)}" if result.killed_by else (f": {result.note[:120]}" if result.note else "")
        where = f" [{variant}]" if variant else ""
        self.progress.advance(f"{mutant.id} {mutant.kind:<10} {mutant.scope}{where}: {result.outcome}{detail} ({how})")
        if len(parts) == self.expected[mutant.id]:
            self.results[mutant.id] = merge(parts)


def _interrupt_on_sigterm() -> Callable[[], None]:
    """`kill PID` stops a run as Ctrl-C does (the grades so far stay cached, a partial report is written);
    returns what puts the old handler back. A run started in the background ignores SIGINT."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, old)


def _require_full_marks(baseline: Grade, checks: list[str], name: str = "solution") -> None:
    lost = [f"{c.id} {c.points:g}/{c.max_points:g}" for c in baseline.checks if c.points < c.max_points]
    if baseline.status != "graded" or lost:  # 0/0 is fine: --checks may name checks of another variant only
        why = ", ".join(lost) or baseline.message or f"{baseline.score:g}/{baseline.max_score:g}"
        raise MutationError(f"the reference solution ({name}) must get full marks before its mutants mean anything; "
                            f"it got {baseline.score:g}/{baseline.max_score:g} ({why})"
                            + (f" with --checks {','.join(checks)}" if checks else ""))
