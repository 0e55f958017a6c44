"""Week 4 input builders, shared by the public and hidden plans (which send the inputs) and their
checks (which rebuild them from the same seeds to compute the references).

Inputs only, never answers: each builder takes its seed, so the hidden suite passes its own.
Pure numpy and the standard library: plan.py runs in the grader process on every grade.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

VOCAB = 27
BLOCK = 8  # WaveNet context
NET = {"n_embd": 10, "block": 3, "n_hidden": 64, "batch": 32}  # the manual-backprop network


def names(data_dir: Path) -> list[str]:
    return (Path(data_dir) / "names.txt").read_text().split()


def split(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The lecture's 80/10/10 split after random.Random(42).shuffle."""
    words = words[:]
    random.Random(42).shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return words[:n1], words[n1:n2], words[n2:]


def dataset(words: list[str], block_size: int = BLOCK) -> tuple[np.ndarray, np.ndarray]:
    """Contexts (N, block_size) and next characters (N,), '.' = 0 and 'a'..'z' = 1..26."""
    xs, ys = [], []
    for w in words:
        context = [0] * block_size
        for ch in w + ".":
            ix = 0 if ch == "." else ord(ch) - 96
            xs.append(context)
            ys.append(ix)
            context = context[1:] + [ix]
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def unit_inputs(seed: int) -> dict[str, np.ndarray]:
    """Float64 inputs for each layer's backward; `bn_x` stays with the judge (it rebuilds xhat)."""
    r = np.random.default_rng(seed)
    n, c = 32, 64
    bn_x = r.normal(0.5, 2.0, (n, c))
    var = bn_x.var(0, ddof=1, keepdims=True)
    var_inv = (var + 1e-5) ** -0.5
    tanh_pre = r.normal(0, 1.5, (n, c))
    emb_X = r.integers(0, VOCAB, (n, 3))
    emb_X[:4] = 5  # repeated rows: their gradients must add up
    return {
        "ce_logits": r.normal(0, 2.0, (n, VOCAB)), "ce_Y": r.integers(0, VOCAB, n),
        "lin_dout": r.normal(0, 1, (n, c)), "lin_x": r.normal(0, 1, (n, 30)), "lin_W": r.normal(0, 0.3, (30, c)),
        "tanh_dout": r.normal(0, 1, (n, c)), "tanh_pre": tanh_pre, "tanh_h": np.tanh(tanh_pre),
        "bn_dout": r.normal(0, 1, (n, c)), "bn_x": bn_x, "bn_gamma": r.normal(1, 0.3, (1, c)),
        "bn_xhat": (bn_x - bn_x.mean(0, keepdims=True)) * var_inv, "bn_var_inv": var_inv,
        "emb_demb": r.normal(0, 1, (n, 3, 10)), "emb_X": emb_X,
    }


def net_inputs(seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Parameters (the notebook's non-standard init, float64) and a batch with repeated characters."""
    r = np.random.default_rng(seed)
    e, b, h, n = NET["n_embd"], NET["block"], NET["n_hidden"], NET["batch"]
    params = {
        "C": r.normal(0, 1, (VOCAB, e)),
        "W1": r.normal(0, 1, (e * b, h)) * (5 / 3) / (e * b) ** 0.5,
        "b1": r.normal(0, 0.1, h),
        "W2": r.normal(0, 0.1, (h, VOCAB)),
        "b2": r.normal(0, 0.1, VOCAB),
        "bngain": r.normal(1, 0.1, (1, h)),
        "bnbias": r.normal(0, 0.1, (1, h)),
    }
    Xb = r.integers(0, VOCAB, (n, b))
    Yb = r.integers(0, VOCAB, n)
    return params, Xb, Yb


def flatten_input() -> np.ndarray:
    return np.arange(2 * 8 * 3, dtype=np.float32).reshape(2, 8, 3)


def bn3d_input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(1.0, 3.0, (32, 4, 16)).astype(np.float32)


def structure_input(seed: int, n: int = 8) -> np.ndarray:
    """Random contexts (n, BLOCK) for the WaveNet structure probe: every character, every position."""
    return np.random.default_rng(seed).integers(0, VOCAB, (n, BLOCK)).astype(np.int64)
