"""Public week-6 checks: the track is declared, and its basic structure holds."""

import numpy as np
import pytest

from grader.judge.answers import to_array, to_number


@pytest.mark.check(points=1, category="correctness")
def test_track_declared(cells):
    """TRACK is one of "specialist", "inspector", "architect"."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("public6_plan", Path(__file__).with_name("plan.py"))
    plan = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(plan)
    from grader.judge.plugin import _ctx

    track = plan.declared_track(_ctx().notebook_path)
    assert track in ("specialist", "inspector", "architect"), \
        'set TRACK = "specialist", "inspector" or "architect" in the track cell'


@pytest.mark.check(points=1, category="correctness")
def test_track_basics(answers):
    """The chosen track's main function works on a tiny model (causal maps / RoPE / corpus present)."""
    raw = answers.raw
    if "maps" in raw:
        maps = to_array(answers.get("maps"), "maps", shape=(2, 2, 8, 8))
        assert np.allclose(maps.sum(-1), 1, atol=1e-5), "attention rows must sum to one"
        assert np.abs(np.triu(maps, 1)).max() == 0, "maps must be causal (upper triangle zero)"
    elif "rope" in raw:
        r = answers.get("rope")
        scores = to_array(r["scores"], "scores", shape=(12, 12))
        assert np.allclose(np.diagonal(scores, 1), np.diagonal(scores, 1)[0], atol=1e-4), \
            "q_m·q_n should depend only on m - n"
    elif "corpus" in raw:
        assert to_number(answers.get("corpus")["bytes"], "corpus size") >= 50_000, \
            "DATASET must name a text file of at least 50 KB beside the notebook"
    else:
        pytest.fail("no track declared, so nothing to check")
