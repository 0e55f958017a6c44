"""grader.score and the judge plugin's bands: measured values become points, lateness a penalty."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from grader.judge.context import RawCheck
from grader.judge.plugin import band_fraction, credit
from grader.records import Execution, Provenance, Submission
from grader.score import LatePolicy, make_grade, to_check_results

DEADLINE = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)


# ---- bands -----------------------------------------------------------------------------------

def test_linear_band_lower_is_better():
    assert band_fraction(0.05, pass_at=0.05, fail_at=0.5) == 1.0
    assert band_fraction(0.01, pass_at=0.05, fail_at=0.5) == 1.0
    assert band_fraction(0.275, pass_at=0.05, fail_at=0.5) == pytest.approx(0.5)
    assert band_fraction(0.5, pass_at=0.05, fail_at=0.5) == 0.0
    assert band_fraction(3.0, pass_at=0.05, fail_at=0.5) == 0.0


def test_linear_band_higher_is_better():
    assert band_fraction(0.9, pass_at=0.8, fail_at=0.4) == 1.0
    assert band_fraction(0.6, pass_at=0.8, fail_at=0.4) == pytest.approx(0.5)
    assert band_fraction(0.1, pass_at=0.8, fail_at=0.4) == 0.0


def test_log_band_is_linear_in_decades():
    # full at 1e-9, zero at 1e-4: five decades, so 1e-6.5 earns half
    assert band_fraction(1e-9, 1e-9, 1e-4, log=True) == 1.0
    assert band_fraction(10 ** -6.5, 1e-9, 1e-4, log=True) == pytest.approx(0.5)
    assert band_fraction(1e-5, 1e-9, 1e-4, log=True) == pytest.approx(0.2)
    assert band_fraction(0.0, 1e-9, 1e-4, log=True) == 1.0  # exact: no log(0) trouble


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_non_finite_measurements_earn_nothing(value):
    assert band_fraction(value, 1e-9, 1e-4, log=True) == 0.0
    assert band_fraction(value, 0.05, 0.5) == 0.0


def test_credit_a_failed_requirement_costs_the_points_it_is_worth():
    assert credit("passed", []) == 1.0 and credit("passed", [1.0, 0.4]) == 0.4
    assert credit("failed", [0.5]) == 0.5  # the band's own assertion: partial credit
    assert credit("failed", [1.0, 1.0]) == 0.0  # every band met: another requirement failed
    assert credit("failed", []) == 0.0
    assert credit("failed", [0.5], requirement=True) == 0.0
    assert credit("error", [0.5]) == 0.0 and credit("skipped", [1.0]) == 0.0


def test_degenerate_band_is_all_or_nothing():
    assert band_fraction(1.0, 1.0, 1.0) == 1.0
    assert band_fraction(1.1, 1.0, 1.0) == 0.0


# ---- points --------------------------------------------------------------------------------

def raw(check_id, max_points, fraction, category="gradient", outcome="passed"):
    return RawCheck(id=check_id, category=category, max_points=max_points, outcome=outcome, fraction=fraction)


def test_fractions_become_rounded_points_and_are_clamped():
    results = to_check_results([raw("a", 4, 0.5), raw("b", 3, 1 / 3), raw("c", 2, 1.7), raw("d", 2, -0.2)])
    assert [r.points for r in results] == [2.0, 1.0, 2.0, 0.0]
    assert [r.max_points for r in results] == [4, 3, 2, 2]


def make(checks, late_days=0, policy=None):
    sub = Submission(week="week1", source="x", workdir="/tmp")
    prov = Provenance(grader_version="0", checks_hash="h", profile="cpu", device="cpu", isolation="bwrap",
                      python_version="3.11", seeds={"python": 1}, threads=2)
    return make_grade(submission=sub, execution=Execution(status="ok"), checks=to_check_results(checks),
                      provenance=prov, late_days=late_days, policy=policy)


def test_grade_sums_points_per_category():
    grade = make([raw("a", 4, 0.5), raw("b", 2, 1.0, category="loss"), raw("c", 2, 0.0, category="loss")])
    assert grade.score == grade.raw_score == 4.0
    assert grade.max_score == 8.0
    assert grade.categories == {"gradient": (2.0, 4.0), "loss": (2.0, 4.0)}
    assert grade.percent == 50.0


# ---- late policy -------------------------------------------------------------------------------

def test_on_time_and_within_grace_are_not_late():
    policy = LatePolicy(grace_hours=2, penalty_per_day=0.1)
    assert policy.days_late(DEADLINE - timedelta(hours=1), DEADLINE) == 0
    assert policy.days_late(DEADLINE + timedelta(hours=1, minutes=59), DEADLINE) == 0
    assert policy.days_late(None, DEADLINE) == 0 and policy.days_late(DEADLINE, None) == 0


def test_every_started_day_after_grace_counts():
    policy = LatePolicy(grace_hours=2, penalty_per_day=0.1)
    assert policy.days_late(DEADLINE + timedelta(hours=2, seconds=1), DEADLINE) == 1
    assert policy.days_late(DEADLINE + timedelta(hours=26), DEADLINE) == 1
    assert policy.days_late(DEADLINE + timedelta(hours=26, seconds=1), DEADLINE) == 2


def test_penalty_is_capped():
    policy = LatePolicy(penalty_per_day=0.2, cap=0.5)
    assert [policy.penalty(d) for d in range(5)] == [0.0, 0.2, 0.4, 0.5, 0.5]


def test_late_penalty_applies_to_the_score_not_the_raw_score():
    grade = make([raw("a", 10, 0.8)], late_days=2, policy=LatePolicy(penalty_per_day=0.1))
    assert grade.raw_score == 8.0
    assert grade.late_penalty == pytest.approx(0.2)
    assert grade.score == pytest.approx(6.4)
    assert grade.late_days == 2


def test_no_policy_means_no_penalty():
    grade = make([raw("a", 10, 1.0)], late_days=5)
    assert grade.score == 10.0 and grade.late_penalty == 0.0
