"""grader.judge.process: the checks run in a fresh `python -I` process that never imports student code.

A tiny suite is written into tmp_path; its checks assert facts about the process they run in.
The student's folder holds files that would leave a marker behind if anything imported them.
"""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from grader.judge.context import JudgeContext
from grader.judge.process import JudgeError, run_judge


def context(tmp_path, suite, **fields) -> JudgeContext:
    """A judge context over `suite`, with nothing answered or run unless `fields` says so."""
    base = {"suite_dir": str(suite), "answers_dir": None, "profile": "cpu", "thresholds": {}, "execution": {},
            "notebook_path": None, "data_dir": str(tmp_path), "artifacts_dir": str(tmp_path / "a"),
            "results_path": str(tmp_path / "results.json")}
    return JudgeContext(**(base | fields))


SUITE_TESTS = '''
import os
import sys

import pytest

STUDENT = {student!r}


@pytest.mark.check(points=1, category="integrity")
def test_isolated_interpreter():
    """python -I: no user site, no PYTHONPATH, no script folder on sys.path."""
    assert sys.flags.isolated == 1
    assert sys.flags.ignore_environment == 1


@pytest.mark.check(points=1, category="integrity")
def test_student_folder_is_not_importable():
    assert os.getcwd() != STUDENT and not os.getcwd().startswith(STUDENT)
    assert all(not p.startswith(STUDENT) for p in sys.path), sys.path
    assert "probes" not in sys.modules and "conftest" not in sys.modules


@pytest.mark.check(points=1, category="integrity")
def test_grader_modules_are_the_real_ones():
    import grader.judge.answers
    assert not grader.judge.answers.__file__.startswith(STUDENT)


@pytest.mark.check(points=1, category="integrity")
def test_only_the_plugins_the_judge_names(request):
    """No plugin is picked up from what happens to be installed; the unused built-ins stay off."""
    plugins = request.config.pluginmanager
    assert os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    assert plugins.has_plugin("pytest_timeout") and plugins.has_plugin("grader.judge.plugin")
    assert not plugins.has_plugin("timeout")  # the same plugin under its entry-point name: not loaded
    assert not plugins.has_plugin("doctest") and not plugins.has_plugin("tmpdir")
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "16"


@pytest.mark.check(points=2, category="loss")
def test_banded(measure):
    """A value inside the band earns partial credit even though the assertion fails."""
    measure(0.275, pass_at=0.05, fail_at=0.5)
    assert 0.275 < 0.05, "loss 0.275, target < 0.05"


@pytest.mark.check(points=3, category="samples")
def test_band_met_requirement_failed(measure):
    """200 identical names: the quality band is met, the uniqueness requirement is not."""
    measure(3.4, pass_at=3.8, fail_at=4.4)
    assert 1 / 200 >= 0.9, "only 0.5 % of the samples are distinct"


@pytest.mark.check(points=2, category="loss")
def test_required(measure):
    """A band inside its partial zone, and a hard requirement that fails beside it."""
    from grader.judge.verdict import require

    measure(0.275, pass_at=0.05, fail_at=0.5)
    require(False, "asked for 100 losses, got 99")


@pytest.mark.check(points=1, category="correctness")
def test_reads_answers(answers):
    assert answers.number("p", "x") == 2.5


@pytest.mark.check(points=1, category="correctness")
def test_crashes(answers):
    raise ZeroDivisionError("a harness bug in a check")
'''

PLANTED = "import pathlib\npathlib.Path({marker!r}).write_text('imported {name}')\n"


@pytest.fixture(scope="module")
def judged(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("judge")
    student = tmp_path / "student"
    student.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    # Files a student might commit hoping the judge picks them up.
    for name in ("conftest.py", "grader.py", "probes.py", "pytest.py", "sitecustomize.py", "test_fake.py"):
        (student / name).write_text(PLANTED.format(marker=str(markers / name), name=name))
    (student / "grader").mkdir()
    (student / "grader" / "__init__.py").write_text(PLANTED.format(marker=str(markers / "pkg"), name="grader pkg"))
    (student / "week1.ipynb").write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_suite.py").write_text(textwrap.dedent(SUITE_TESTS.format(student=str(student))))
    answers = tmp_path / "answers"
    answers.mkdir()
    (answers / "answers.json").write_text(json.dumps({"p": {"ok": True, "value": {"x": 2.5}}}))
    # A forged results file where the sandbox could have written one.
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"id": "forged", "category": "loss", "max_points": 100, "outcome": "passed",
                                    "fraction": 1.0}]))
    ctx = context(tmp_path, suite, answers_dir=str(answers), execution={"status": "ok"},
                  notebook_path=str(student / "week1.ipynb"), submission_dir=str(student),
                  artifacts_dir=str(tmp_path / "artifacts"), results_path=str(results))
    checks = {c.id: c for c in run_judge(ctx)}
    return checks, markers


def test_judge_loads_only_the_plugins_it_names(judged):
    checks, _ = judged
    assert checks["only_the_plugins_the_judge_names"].outcome == "passed", \
        checks["only_the_plugins_the_judge_names"].message


def test_unused_plugins_are_real_pytest_plugins():
    """A misspelt name in the block list would leave that plugin on without a word from pytest."""
    from _pytest.config import default_plugins

    from grader.judge.process import UNUSED_PLUGINS

    assert set(UNUSED_PLUGINS) - {"randomly"} <= set(default_plugins)


def test_judge_runs_isolated_and_imports_nothing_of_the_student(judged):
    checks, markers = judged
    for check_id in ("isolated_interpreter", "student_folder_is_not_importable", "grader_modules_are_the_real_ones"):
        assert checks[check_id].outcome == "passed", (check_id, checks[check_id].message)
    assert sorted(p.name for p in markers.iterdir()) == []


def test_forged_results_file_is_replaced(judged):
    checks, _ = judged
    assert "forged" not in checks
    assert set(checks) == {"isolated_interpreter", "student_folder_is_not_importable",
                           "grader_modules_are_the_real_ones", "only_the_plugins_the_judge_names", "banded",
                           "band_met_requirement_failed", "required", "reads_answers", "crashes"}


def test_band_gives_partial_credit_on_a_failed_assertion(judged):
    checks, _ = judged
    banded = checks["banded"]
    assert banded.outcome == "partial"
    assert banded.fraction == pytest.approx(0.5)
    assert banded.measured == 0.275
    assert "target < 0.05" in banded.message


def test_a_failed_requirement_costs_all_the_points_of_its_check(judged):
    """Issue 19: 200 identical names kept 2.997/3 when the quality band was met; now 0, and `require`
    takes the points even from a band in its partial zone."""
    checks, _ = judged
    for check_id, message in (("band_met_requirement_failed", "distinct"), ("required", "99")):
        check = checks[check_id]
        assert (check.outcome, check.fraction) == ("failed", 0.0), check
        assert message in check.message
    assert checks["band_met_requirement_failed"].measured == 3.4  # the report still shows what was measured


def test_answers_are_read_and_a_crashing_check_is_an_error(judged):
    checks, _ = judged
    assert checks["reads_answers"].outcome == "passed"
    assert checks["crashes"].outcome == "error" and checks["crashes"].fraction == 0.0
    assert "ZeroDivisionError" in checks["crashes"].message


SELECT_TESTS = '''
import pytest


@pytest.mark.check(points=1, category="correctness")
def test_get_batch():
    pass


@pytest.mark.check(points=1, category="correctness")
def test_get_batch_range():
    pass


@pytest.mark.check(points=1, category="correctness")
@pytest.mark.parametrize("n", [1, 2])
def test_sizes(n):
    pass
'''


def test_a_selection_names_checks_exactly(tmp_path):
    """Selecting `get_batch` judges that check only, not `get_batch_range` (whose probe was not sent,
    since the plan filters requests by exact id); a parametrized check is selected by its name."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_select.py").write_text(SELECT_TESTS)
    checks = run_judge(context(tmp_path, suite, execution={"status": "ok"}, select=["get_batch", "sizes"]))
    assert sorted(c.id for c in checks) == ["get_batch", "sizes[1]", "sizes[2]"]


def test_missing_results_is_a_harness_error(tmp_path):
    ctx = context(tmp_path, tmp_path / "no-such-suite")
    (tmp_path / "no-such-suite").mkdir()
    (tmp_path / "no-such-suite" / "test_broken.py").write_text("import nonexistent_module_xyz\n")
    try:
        checks = run_judge(ctx)
    except JudgeError:
        return  # the judge said so loudly: fine
    assert checks == []  # or it wrote an empty result: nothing was graded, nothing was earned


PREPARED_SUITE = '''
from pathlib import Path

import pytest

MARKER = {marker!r}


def prepare(data_dir, thresholds, profile):
    """Runs before the answers exist: the judge is still waiting at its gate."""
    Path(MARKER).write_text(f"{{profile}} {{thresholds['k']}}")


@pytest.mark.check(points=1, category="correctness")
def test_reads_answers_after_the_gate(answers):
    assert Path(MARKER).read_text() == "cpu 3"
    assert answers.number("p", "x") == 2.5
'''


def test_judge_prepares_before_the_answers_exist_then_waits_at_the_gate(tmp_path):
    import time

    from grader.judge.process import JudgeProcess

    suite, marker, answers = tmp_path / "suite", tmp_path / "prepared", tmp_path / "answers"
    suite.mkdir()
    (suite / "test_suite.py").write_text(PREPARED_SUITE.format(marker=str(marker)))
    ctx = context(tmp_path, suite, answers_dir=str(answers), thresholds={"k": 3}, execution={"status": "ok"},
                  artifacts_dir=str(tmp_path / "artifacts"))
    with JudgeProcess(preload=()) as judge:
        judge.prepare(ctx)
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "cpu 3"  # prepared while "the notebook runs"
        assert not (tmp_path / "results.json").exists()  # and no check ran before the gate opened
        answers.mkdir()
        (answers / "answers.json").write_text(json.dumps({"p": {"ok": True, "value": {"x": 2.5}}}))
        checks = {c.id: c for c in judge.run(ctx)}
    assert checks["reads_answers_after_the_gate"].outcome == "passed", checks


def test_final_context_must_match_the_prepared_one(tmp_path):
    from grader.judge.process import JudgeProcess

    ctx = context(tmp_path, tmp_path)
    with JudgeProcess(preload=()) as judge:
        judge.prepare(ctx)
        with pytest.raises(JudgeError, match="differs"):
            judge.run(ctx.model_copy(update={"profile": "cuda"}))


FAILING_PREPARE_SUITE = '''
import functools
import os

import pytest


@functools.lru_cache(maxsize=1)
def reference():
    raise FileNotFoundError("names.txt is missing from the data folder")


def prepare(data_dir, thresholds, profile):
    reference()


@pytest.mark.check(points=1, category="correctness")
def test_needs_the_reference(answers):
    assert reference()


@pytest.mark.check(points=1, category="correctness")
def test_judge_runs_below_the_kernel_priority():
    assert os.nice(0) >= 5
'''


def test_failing_prepare_is_reported_by_the_check_that_needs_it(tmp_path):
    """prepare() is a head start only: its error lands in the check's result, the rest still run."""
    from grader.judge.process import JudgeProcess

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_suite.py").write_text(FAILING_PREPARE_SUITE)
    ctx = context(tmp_path, suite)
    with JudgeProcess(preload=()) as judge:
        judge.prepare(ctx)
        checks = {c.id: c for c in judge.run(ctx)}
    assert checks["needs_the_reference"].outcome == "error"
    assert "names.txt is missing" in checks["needs_the_reference"].message
    assert checks["judge_runs_below_the_kernel_priority"].outcome == "passed"


@pytest.mark.slow
def test_judge_memory_is_bounded_on_a_notebook_of_tiny_statements(tmp_path, monkeypatch):
    """Week 1's integrity check parses every code cell with ast (~900 bytes of tree per byte of `a;a;...`).
    Measured on main: 2 MiB of such code took the judge from 247 MiB to 2,071 MiB. At the code limit the
    parse stays under 600 MiB; past it the judge's reader refuses the notebook before anything parses it.
    The judge's RSS is read by its own guard (the watchdog samples it every 0.1 s; the parse holds its
    trees for seconds)."""
    from pathlib import Path

    from grader import caps
    from grader.fetch.notebook import MAX_CODE_BYTES
    from grader.judge.process import JudgeProcess

    monkeypatch.setattr(caps, "cgroup_memory", lambda: None)  # a cgroup counts pages, not RSS

    suite = Path(__file__).resolve().parents[1] / "solutions" / "week1"
    cells = [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None,
              "source": ("class Value:\n    pass\n" if i == 0 else "a;" * (MAX_CODE_BYTES // 8 - 16))} for i in range(5)]
    answers = tmp_path / "answers"
    answers.mkdir()
    # A working engine's answers (the check counts only once Value computes): the judge's own references.
    import importlib.util

    def load(name):
        spec = importlib.util.spec_from_file_location(f"memory_test_{name}", suite / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module

    plan, reference = load("plan"), load("week1_reference")
    ops = [dict(zip(("value", "grads"), reference.torch_eval(spec)), root_grad=1.0) for spec in plan.OP_CASES]
    (answers / "answers.json").write_text(json.dumps({"ops": {"ok": True, "value": ops}}))
    for name, repeat in (("at_limit", 1), ("over_limit", 8)):
        notebook = tmp_path / f"{name}.ipynb"
        doc = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": cells[:1] + cells[1:] * repeat}
        notebook.write_text(json.dumps(doc))
        ctx = context(tmp_path, suite, answers_dir=str(answers), notebook_path=str(notebook),
                      select=["no_torch_in_value"], results_path=str(tmp_path / f"{name}.json"))
        with JudgeProcess(preload=()) as judge:
            check = judge.run(ctx)[0]
            peak = judge.memory_peak()
        assert peak < 600 * 2**20, f"{name}: the judge peaked at {peak / 2**20:.0f} MiB"
        if name == "at_limit":  # parsed: the check judged the code (no torch in it)
            assert check.outcome == "passed", check.message
            assert peak > 300 * 2**20, "the sample missed the parse"  # the bound is not vacuous
        else:
            assert check.outcome == "error" and "256 KiB" in check.message, check.message


STALLING_SUITE = '''
import os
from pathlib import Path

import pytest


def prepare(data_dir, thresholds, profile):
    Path({marker!r}).write_text("prepared")


@pytest.mark.check(points=1, category="correctness")
def test_waits_on_a_pipe(answers):
    read, write = os.pipe()
    os.read(read, 1)  # nobody writes: idle forever, like a lock or a barrier nobody releases


@pytest.mark.check(points=1, category="correctness")
def test_spins(answers):
    while True:
        pass
'''


@pytest.mark.parametrize("check", ["waits_on_a_pipe", "spins"])
def test_a_judge_past_its_wall_time_says_whether_it_was_stuck_and_where(tmp_path, check):
    """An idle judge at its wall time is a harness hang whose error names the check and line it waited
    in; a busy one went over its cap (the submission's doing), as before."""
    import time

    from grader.caps import CapExceeded
    from grader.judge.process import JudgeProcess

    suite, marker = tmp_path / "suite", tmp_path / "prepared"
    suite.mkdir()
    (suite / "test_suite.py").write_text(STALLING_SUITE.format(marker=str(marker)))
    ctx = context(tmp_path, suite, execution={"status": "ok"}, select=[check])
    with JudgeProcess(preload=()) as judge:
        judge.prepare(ctx)
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline:  # collected: the wall counts the check
            time.sleep(0.05)
        started = time.monotonic()
        if check == "spins":
            with pytest.raises(CapExceeded, match="wall-time"):
                judge.run(ctx, wall=2)
        else:
            with pytest.raises(JudgeError, match=r"stalled: 2 s after the answers it had used \d+\.\d s of CPU, "
                                                 r"waiting in check waits_on_a_pipe, at test_waits_on_a_pipe "
                                                 r"\(test_suite\.py:15\)"):
                judge.run(ctx, wall=2)
        assert time.monotonic() - started < 15  # not the judge's 1800 s cap


def test_the_judge_deadline_falls_before_the_batch_worker_cap():
    from grader.cohort.batch import HARNESS_MARGIN
    from grader.judge.process import TRACEBACK_WAIT
    from grader.pipeline import JUDGE_MARGIN

    assert JUDGE_MARGIN + TRACEBACK_WAIT + 30 <= HARNESS_MARGIN
