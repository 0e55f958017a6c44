"""TRUSTED: week 5's probe requests: all of them, built by the public plan with this suite's
thresholds (training budget, sample count). Inputs only: the val targets and every reference
stay in the judge, which rebuilds the same inputs from the same public plan."""

from __future__ import annotations

from pathlib import Path

from grader.config import public_module


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    return public_module(__file__, "plan").requests(thresholds, data_dir)
