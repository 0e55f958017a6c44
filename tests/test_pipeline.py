"""grader/pipeline.py without a kernel: the refusal below bubblewrap and what the grade records of the
sandbox. (Whole grades are in test_weeks.py, test_hostile.py and the week tests.)"""

from __future__ import annotations

import pytest

from grader import pipeline
from grader.config import Settings
from grader.run.sandbox import Isolation, IsolationError


def test_grading_refuses_below_bubblewrap_unless_allowed(monkeypatch):
    def check_level(level, *, allow_weak, required=False):
        if not allow_weak:
            raise IsolationError("refused")

    monkeypatch.setattr(pipeline, "machine_isolation", lambda: Isolation.unshare)
    monkeypatch.setattr(pipeline, "check_level", check_level)
    with pytest.raises(IsolationError):
        pipeline.check_isolation(Settings(allow_weak_isolation=False))
    assert pipeline.check_isolation(Settings(allow_weak_isolation=True)) is Isolation.unshare
    assert pipeline.check_isolation(Settings(allow_weak_isolation=False, public=True)) is Isolation.unshare  # check


def test_the_grade_records_what_the_sandbox_enforced(monkeypatch):
    from grader.config import SOLUTIONS, load_week

    week = load_week(SOLUTIONS / "week1")
    full = pipeline.enforcement(Isolation.bwrap, week, "fixed")
    assert not full.weak and full.network_cut and full.private_mounts and full.deterministic_heap
    assert full.forbidden_blocked and "torch" in full.forbidden
    weak = pipeline.enforcement(Isolation.process, week, "not fixed: missing")
    assert weak.weak and not weak.network_cut and not weak.forbidden_blocked and not weak.deterministic_heap
