"""Held-out scoring without leaks: windows whose scored target no window sent contains.

A loss check sends the sandbox input windows and computes the loss itself from the logits that come
back. Every target inside a window is visible to a model that reads ahead, and with windows laid end
to end the target of one window's last position is the next window's first character. So a probe is
sent windows far enough apart that the character after each window lies in no window, in an order
that says nothing of their place in the text, and only each window's last position is scored
(DESIGN.md, "What the boundary must also hold"). Weeks 5 and 6 share this; plan.py builds the
windows, the checks rebuild them from the same seed and score the logits.
"""

from __future__ import annotations

import numpy as np


def window_starts(length: int, block_size: int, seed: int, *, max_gap: int = 3,
                  max_windows: int | None = None) -> np.ndarray:
    """Start offsets, shuffled, of windows over a text of `length` ids: window i covers [s, s + T) and
    scores the target at s + T; the next window starts 1 + U{0..max_gap-1} ids after that target, so no
    scored target lies in any window. With `max_windows`, an evenly spread subset is kept."""
    if block_size < 1 or max_gap < 1:
        raise ValueError("block_size and max_gap must be at least 1")
    rng = np.random.default_rng(seed)
    gaps = rng.integers(0, max_gap, size=length // (block_size + 1) + 1)
    starts = np.cumsum(np.concatenate([[gaps[0]], block_size + 1 + gaps[1:]]))
    starts = starts[starts + block_size < length]
    if max_windows is not None and len(starts) > max_windows:
        starts = starts[np.linspace(0, len(starts) - 1, num=max_windows).astype(np.int64)]
    return starts[rng.permutation(len(starts))]


def last_position_windows(ids: np.ndarray, block_size: int, seed: int, *, max_gap: int = 3,
                          max_windows: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, block_size) and the targets of their last positions (N,), from window_starts."""
    ids = np.asarray(ids)
    starts = window_starts(len(ids), block_size, seed, max_gap=max_gap, max_windows=max_windows)
    return ids[starts[:, None] + np.arange(block_size)[None, :]], ids[starts + block_size]


def mean_nll(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood (nats) of integer targets (N,) under logits (N, V), in float64."""
    z = np.asarray(logits, dtype=np.float64).reshape(-1, np.shape(logits)[-1])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(z)), np.asarray(targets).reshape(-1)].mean())
