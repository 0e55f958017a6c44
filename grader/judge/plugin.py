"""pytest plugin loaded by the trusted judge: fixtures for checks, and outcome collection.

A check is a plain pytest function in solutions/weekN/test_*.py marked with
`@pytest.mark.check(points=..., category=...)`. Its id is the function name without
'test_'; its title is the docstring's first line. Fixtures:

    answers     grader.judge.answers.Answers over this submission's probe answers (strict types)
    thresholds  the active profile's thresholds from week.toml
    measure     measure(value, pass_at=..., fail_at=..., log=False, target=None, **details)
                records the measured value; between pass_at and fail_at the check earns
                partial credit, linearly (or in log10 when log=True): see `credit` for
                when a failed assertion keeps it, and grader.judge.verdict.require for a
                requirement that costs all the check's points
    cells       the notebook's code-cell sources, read as data (for static integrity checks)
    submission  pristine copy of the student's files (never seen by the sandbox), or None
    execution   the Execution record's JSON (cells run, failures)
    data_dir    fixtures/data;  artifacts  a folder whose files the report shows
    profile     'cpu' or 'cuda'

`pytest.skip("not applicable: ...")` takes a check out of the total (a capstone track the
student did not choose); any other skip scores 0 of its points.

A test module may define `prepare(data_dir, thresholds, profile)`: a judge started before the
notebook ran calls it after collection, while the notebook still runs, to compute references
that need no answers (fill an lru_cache); then it waits at the gate for the final context. An
error in it is left for the checks that use the same reference to report.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.judge.answers import AnswerError, Answers
from grader.judge.context import JudgeContext, read_line
from grader.judge.verdict import RequirementFailed

_CTX: JudgeContext | None = None
_RESULTS: dict[str, dict[str, Any]] = {}
_MEASURES: dict[str, list[dict[str, Any]]] = {}
# Set by a batch's judge server (grader.judge.process.serve_session): called once the checks are collected and
# prepared, it serves until killed and returns in each fork, which then judges one submission.
fork_point: Callable[[], list[str]] | None = None


def _ctx() -> JudgeContext:
    global _CTX
    if _CTX is None:
        _CTX = JudgeContext(**json.loads(Path(os.environ["GRADER_JUDGE_CONTEXT"]).read_text()))
    return _CTX


@pytest.hookimpl(hookwrapper=True)
def pytest_runtestloop(session):
    """Collected already: prepare the references, then wait for the answers before the first check."""
    ctx = _ctx()
    if ctx.wait_for_answers:
        modules = {id(item.module): item.module for item in session.items if hasattr(item, "module")}
        for module in modules.values():
            prepare = getattr(module, "prepare", None)
            if callable(prepare):
                try:
                    prepare(data_dir=Path(ctx.data_dir), thresholds=ctx.thresholds, profile=ctx.profile)
                except Exception:  # noqa: BLE001, S110 - only a head start: the checks build the same
                    pass  # references, and fail with the error where it belongs, in their own results
        if fork_point is not None:
            fork_point()  # returns in each fork of a batch's judge server
            ctx = _adopt_context(ctx)
        _open_gate(ctx)
    yield


def _adopt_context(collected: JudgeContext) -> JudgeContext:
    """In a fork of a batch's judge server: read this submission's context (the first gate line)."""
    global _CTX
    import faulthandler

    faulthandler.enable(sys.stderr)  # this judge's own log, not the server's
    gate = os.dup(0)
    os.set_inheritable(gate, False)
    os.environ["GRADER_JUDGE_GATE_FD"] = str(gate)
    line = read_line(gate)
    if not line:
        pytest.exit("the grader went away before judging", returncode=2)
    ctx = JudgeContext(**json.loads(Path(line).read_text()))
    if ctx.collected_with() != collected.collected_with():
        raise pytest.UsageError("this submission's judge context differs from the one its judge server "
                                "collected the checks with")
    os.environ["GRADER_JUDGE_CONTEXT"] = line
    _CTX = ctx
    return ctx


def _open_gate(pending: JudgeContext) -> None:
    """Block until the grader sends the final context (the notebook and its probes are done)."""
    global _CTX
    fd = os.environ.get("GRADER_JUDGE_GATE_FD")
    line = read_line(int(fd)) if fd else ""
    if not line:
        pytest.exit("the grader went away before the answers were ready", returncode=2)
    final = JudgeContext(**json.loads(Path(line).read_text()))
    if final.before_run() != pending.before_run():
        raise pytest.UsageError("the final judge context differs from the one the checks were collected with")
    os.environ["GRADER_JUDGE_CONTEXT"] = line
    _CTX = final


def pytest_configure(config):
    config.addinivalue_line("markers", "check(points, category, title=None): a graded check")


def credit(outcome: str, bands: list[float], requirement: bool = False) -> float:
    """The fraction of its points a check earns: a failed requirement costs the points it is worth.

    A passing check earns its lowest band (1 without bands). A failed assertion keeps partial credit only
    when it is the band's own failure: some measured value sits short of its pass line (min band < 1).
    When every band is at full credit, the assertion that failed is another requirement (a count, a
    floor, a format) and the check earns 0; `grader.judge.verdict.require` earns 0 in every case.
    Errors and skips earn 0.
    """
    if outcome == "passed":
        return min(bands, default=1.0)
    if outcome != "failed" or requirement or not bands or min(bands) >= 1.0:
        return 0.0
    return min(bands)


def band_fraction(value: float, pass_at: float, fail_at: float, log: bool = False) -> float:
    """1 at or beyond pass_at, 0 at or beyond fail_at, linear in between."""
    if not math.isfinite(value):
        return 0.0
    if log:
        value, pass_at, fail_at = (math.log10(max(v, 1e-300)) for v in (value, pass_at, fail_at))
    if pass_at == fail_at:
        return 1.0 if value <= pass_at else 0.0
    fraction = (fail_at - value) / (fail_at - pass_at)
    return min(1.0, max(0.0, fraction))


@pytest.fixture(scope="session")
def answers() -> Answers:
    return Answers(_ctx().answers_dir)


@pytest.fixture(scope="session")
def thresholds() -> dict[str, Any]:
    return _ctx().thresholds


@pytest.fixture(scope="session")
def profile() -> str:
    return _ctx().profile


@pytest.fixture(scope="session")
def execution() -> dict[str, Any]:
    return _ctx().execution


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(_ctx().data_dir)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(_ctx().artifacts_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def submission() -> Path | None:
    path = _ctx().submission_dir
    return Path(path) if path else None


@pytest.fixture(scope="session")
def cells() -> list[str]:
    """Code-cell sources of the student's notebook, parsed as JSON data, never executed."""
    from grader.fetch.notebook import code_cell_sources

    return code_cell_sources(_ctx().notebook_path)


@pytest.fixture
def measure(request):
    check_id = _check_id(request.node)

    def record(value: float, *, pass_at: float | None = None, fail_at: float | None = None,
               log: bool = False, target: str | None = None, **details: Any) -> float:
        entry: dict[str, Any] = {"value": float(value), "details": details}
        if pass_at is not None and fail_at is not None:
            entry["fraction"] = band_fraction(float(value), pass_at, fail_at, log)
            if target is None:
                target = f"{'≤' if pass_at < fail_at else '≥'} {pass_at:g} (0 pts at {fail_at:g})"
        entry["target"] = target or ""
        _MEASURES.setdefault(check_id, []).append(entry)
        return float(value)

    return record


def _check_id(item) -> str:
    name = item.originalname if hasattr(item, "originalname") else item.name
    base = name[5:] if name.startswith("test_") else name
    if hasattr(item, "callspec"):
        base += "[" + item.callspec.id + "]"
    return base


def _marker(item) -> dict[str, Any]:
    mark = item.get_closest_marker("check")
    if mark is None:
        raise pytest.UsageError(f"{item.nodeid} has no @pytest.mark.check(points=..., category=...)")
    kwargs = dict(mark.kwargs)
    return {"points": float(kwargs["points"]), "category": kwargs["category"],
            "title": kwargs.get("title") or (item.function.__doc__ or "").strip().splitlines()[0:1]}


def pytest_collection_modifyitems(config, items):
    for item in items:
        _marker(item)  # fail fast on an unmarked check: a harness bug
    # A selection names checks exactly, as the plan's requests are filtered (pytest's -k would match
    # `get_batch` inside `get_batch_range`, a check whose probe was never sent).
    select = set(_ctx().select) if _CTX is not None or "GRADER_JUDGE_CONTEXT" in os.environ else set()
    if select:
        kept = [item for item in items if _check_id(item) in select or _check_id(item).split("[")[0] in select]
        config.hook.pytest_deselected(items=[item for item in items if item not in kept])
        items[:] = kept


def _message(report) -> str:
    excinfo = getattr(report, "_excinfo", None)
    if excinfo is not None:
        exc = excinfo.value
        text = str(exc).strip()
        if isinstance(exc, (AnswerError, AssertionError)):
            return text.split("\nassert ")[0][:1500] or "assertion failed"
        return f"{type(exc).__name__}: {text}"[:1500]
    crash = getattr(report.longrepr, "reprcrash", None)
    return (crash.message if crash else str(report.longrepr))[:1500]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.excinfo is not None:
        report._excinfo = call.excinfo
    info = _marker(item)
    check_id = _check_id(item)
    title = info["title"]
    title = title[0] if isinstance(title, list) and title else (title or check_id)
    entry = _RESULTS.setdefault(check_id, {
        "id": check_id, "title": title, "category": info["category"], "max_points": info["points"],
        "outcome": "passed", "fraction": 1.0, "message": "", "seconds": 0.0,
    })
    entry["seconds"] = round(entry["seconds"] + report.duration, 4)
    if report.skipped and report.when in ("setup", "call"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        # `pytest.skip("not applicable: ...")` removes the check from the total (e.g. another
        # capstone track); any other skip is a check the submission did not earn.
        entry.update(outcome="skipped", fraction=0.0, message=reason[:500])
        if reason.startswith("not applicable"):
            entry["max_points"] = 0.0
    elif report.failed:
        is_check_fail = call.excinfo is not None and call.excinfo.errisinstance(AssertionError)
        entry.update(outcome="failed" if is_check_fail and report.when == "call" else "error",
                     fraction=0.0, message=_message(report),
                     requirement=call.excinfo is not None and call.excinfo.errisinstance(RequirementFailed))


def pytest_sessionfinish(session, exitstatus):
    if _CTX is None and "GRADER_JUDGE_CONTEXT" not in os.environ or not _ctx().results_path:
        return  # not a judge, or a judge server's own session (grader.judge.process.serve_session) that never judged
    out = []
    for check_id, entry in _RESULTS.items():
        measures = _MEASURES.get(check_id, [])
        bands = [m["fraction"] for m in measures if "fraction" in m]
        if measures:
            entry["measured"] = measures[-1]["value"]
            entry["target"] = measures[-1]["target"]
            entry["details"] = {k: v for m in measures for k, v in m["details"].items()
                                if isinstance(v, (int, float, str, bool)) or v is None}
        entry["fraction"] = credit(entry["outcome"], bands, entry.pop("requirement", False))
        if entry["outcome"] in ("passed", "failed") and 0 < entry["fraction"] < 1:
            entry["outcome"] = "partial"
        elif entry["outcome"] == "passed" and entry["fraction"] == 0:
            entry["outcome"] = "failed"
        out.append(entry)
    path = Path(_ctx().results_path)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, default=str))
    tmp.replace(path)
