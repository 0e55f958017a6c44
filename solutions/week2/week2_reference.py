"""TRUSTED: the grader's own training run for week 2's training check (torch, in the judge)."""

from __future__ import annotations

from functools import lru_cache

import cases
import numpy as np
import torch

TRAIN_SEED = 2147483647  # plan.py's seed for the main training run


@lru_cache(maxsize=4)
def reference_train(data_dir, steps: int, lr: float, reg: float, seed: int) -> np.ndarray:
    """The grader's own run of the handout's training: seeded randn init, full-batch descent, float32."""
    xs, ys = (torch.from_numpy(a) for a in cases.train_pairs(cases.load_words(data_dir)))
    w = torch.randn((27, 27), generator=torch.Generator().manual_seed(seed), requires_grad=True)
    for _ in range(steps):
        loss = -torch.log_softmax(w[xs], dim=1)[torch.arange(len(ys)), ys].mean() + reg * (w**2).mean()
        w.grad = None
        loss.backward()
        with torch.no_grad():
            w -= lr * w.grad
    return w.detach().numpy().astype(np.float64)


def train_runs(thresholds) -> list[tuple[str, dict]]:
    main = {"steps": thresholds["train_steps"], "lr": thresholds["train_lr"], "reg": thresholds["train_reg"],
            "seed": TRAIN_SEED}
    return [("train", main), ("train_reg", cases.REG_TRAIN)]
