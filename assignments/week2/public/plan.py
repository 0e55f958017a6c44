"""Public week 2 checks: which probes run, on tiny inputs you can check by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

WORDS = ["emma", "ava", "zoe"]


def plan(profile: str, thresholds: dict, data_dir: Path, **_) -> list[dict]:
    counts = np.zeros((27, 27), dtype=np.int64)
    counts[0, 1] = 3  # '.' -> 'a' three times
    counts[1, 0] = 2
    counts[1, 2] = 1
    return [
        {"id": "vocab", "probe": "vocab", "args": {"words": WORDS + ["bcdfghijklnpqrstuwxy"]}},
        {"id": "counts", "probe": "counts", "args": {"words": WORDS}},
        {"id": "probs", "probe": "probs", "args": {"counts": counts}},
        {"id": "dataset", "probe": "dataset", "args": {"words": ["emma"]}},
        {
            "id": "net_loss",
            "probe": "net_loss",
            "args": {
                "w": np.zeros((27, 27), dtype=np.float32),
                "xs": np.array([0, 5]),
                "ys": np.array([5, 0]),
                "regs": [0.0],
            },
        },
        {"id": "sampler", "probe": "sampler", "args": {"probs": _tiny_model(), "n": 200, "seed": 1}},
    ]


def _tiny_model() -> np.ndarray:
    """'.' -> 'a' or 'b'; each letter then ends the name: every sample is 'a' or 'b'."""
    p = np.zeros((27, 27), dtype=np.float32)
    p[0, 1] = p[0, 2] = 0.5
    p[1:, 0] = 1.0
    return p
