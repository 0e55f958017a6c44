"""TRUSTED: week 5's probe requests: the public plan's unit requests, and the training request with
the held-out windows (the text and the seed that places them are this suite's own). Inputs only: the
val targets and every reference stay in the judge, which rebuilds the same inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from grader.config import public_module

_spec = importlib.util.spec_from_file_location("week5_reference", Path(__file__).with_name("week5_reference.py"))
reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(reference)


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    public = public_module(__file__, "plan")
    _, chars, ids = public.corpus(str(data_dir))
    train, _ = public.split(ids)
    config = public.SMALL if thresholds["train_source"] == "train" else public.LECTURE
    val_x, _ = reference.heldout_windows(str(data_dir), chars, config["block_size"])
    return public.requests(thresholds, data_dir) + [public.score_request(thresholds, chars, train, val_x)]
