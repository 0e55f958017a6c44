"""Every week must discriminate: the solution scores full marks, the stub scores zero, and
each known-bug fixture loses points on the check meant to catch it (fixtures/submissions/
weekN/expected.toml says which), keeping the checks it lists under `keeps`; an attack listed with
`loss_not_below_solution` scores no better than the solution on those checks."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, WEEKS, fixture_request, stub_request

from grader.report.charts import read_curve, read_png_artifact, read_text_artifact



def _fixture_cases(bench: bool = False):
    """The fixtures of expected.toml; those marked `bench = true` (a full training run each, too slow
    for the default run) only with bench=True."""
    for week in WEEKS:
        expected = ROOT / "fixtures" / "submissions" / week / "expected.toml"
        if expected.is_file():
            for stem, spec in tomllib.loads(expected.read_text()).items():
                if bool(spec.get("bench")) == bench:
                    yield pytest.param(week, stem, spec, id=f"{week}-{stem}")


def _lost(grade, check_id):
    return [c for c in grade.checks if c.id == check_id or c.id.startswith(check_id + "[")]


@pytest.mark.slow
@pytest.mark.parametrize("week", WEEKS)
def test_solution_scores_full_marks(week, solution_grade):
    grade = solution_grade(week)
    lost = [f"{c.id}: {c.points}/{c.max_points} {c.message}" for c in grade.checks if c.points < c.max_points]
    assert grade.status == "graded", grade.message
    assert grade.max_score > 0
    assert grade.score == grade.max_score, "solution lost points:\n" + "\n".join(lost)
    assert grade.execution.failures == [], grade.execution.failures


# What each solution's report must show beyond its checks: a loss curve where the grader trains.
CURVES = {"week1": "toy_training_loss.json", "week4": "week4_train_curve.json", "week5": "week5_train_curve.json"}


@pytest.mark.slow
@pytest.mark.parametrize("week", WEEKS)
def test_solution_artifacts_are_valid_for_the_report(week, solution_grade):
    """Every file a week's checks write renders in the HTML report, rather than as an error line."""
    grade = solution_grade(week)
    readers = {".json": read_curve, ".png": read_png_artifact, ".txt": read_text_artifact, ".md": read_text_artifact}
    assert grade.artifacts, f"{week}'s checks wrote no samples, curves or figures"
    for name, path in grade.artifacts.items():
        readers[Path(name).suffix](path)  # raises ArtifactError on a malformed artifact
    if week in CURVES:
        assert read_curve(grade.artifacts[CURVES[week]])["series"], f"{week}: no training curve"


@pytest.mark.slow
@pytest.mark.parametrize("week", WEEKS)
def test_stub_scores_zero(week, grade_pool):
    """The stub with a first cell of the student's own (conftest.first_attempt), graded in the pool."""
    grade = grade_pool.get(stub_request(week, grade_pool))
    earned = [f"{c.id}: {c.points}" for c in grade.checks if c.points > 0]
    assert grade.status == "graded"  # it ran: the checks themselves gave the zero
    assert grade.max_score > 0
    assert grade.score == 0, "stub earned points:\n" + "\n".join(earned)


@pytest.mark.bench
@pytest.mark.parametrize("week,stem,spec", list(_fixture_cases(bench=True)))
def test_known_fixture_bench(week, stem, spec, grade_pool, solution_grade, request):
    if "bench" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("a benchmark (a full training run): pytest -m bench tests/test_weeks.py")
    test_known_fixture(week, stem, spec, grade_pool, solution_grade)


@pytest.mark.slow
@pytest.mark.parametrize("week,stem,spec", list(_fixture_cases()))
def test_known_fixture(week, stem, spec, grade_pool, solution_grade):
    grade = grade_pool.get(fixture_request(week, stem, spec))
    by_id = {c.id: c for c in grade.checks}
    if spec.get("full"):
        assert grade.score == grade.max_score, [(c.id, c.points, c.message) for c in grade.checks
                                                if c.points < c.max_points]
    for check_id in spec.get("loses", []):
        hits = _lost(grade, check_id)
        assert hits, f"{stem}: no check {check_id!r} (have {sorted(by_id)})"
        assert any(c.points < c.max_points for c in hits), f"{stem}: {check_id} kept full marks"
    for check_id in spec.get("keeps", []):
        hits = _lost(grade, check_id)
        assert hits, f"{stem}: no check {check_id!r}"
        assert all(c.points == c.max_points for c in hits), \
            f"{stem}: {check_id} lost points: {[(c.points, c.message) for c in hits]}"
    for check_id in spec.get("loss_not_below_solution", []):  # an attack must not beat the honest notebook
        mine, honest = _lost(grade, check_id), _lost(solution_grade(week), check_id)
        assert mine and len(mine) == len(honest), f"{stem}: no check {check_id!r}"
        for c, h in zip(mine, honest):
            assert c.points <= h.points, f"{stem}: {c.id} earned {c.points}, the solution {h.points}"
            assert c.measured is not None and h.measured is not None, (c.message, h.message)
            assert c.measured >= h.measured - 1e-4, f"{stem}: {c.id} measured {c.measured}, the solution {h.measured}"
    if "status" in spec:
        assert grade.status == spec["status"], grade.message
    if "execution" in spec:
        assert grade.execution.status == spec["execution"], grade.execution
    if "max_score" in spec:
        assert grade.score <= spec["max_score"]
    if "message_contains" in spec:
        text = " ".join([grade.message, grade.execution.message, *grade.submission.problems,
                         *(f.evalue for f in grade.execution.failures), *(c.message for c in grade.checks)])
        assert spec["message_contains"].lower() in text.lower(), text[:2000]
