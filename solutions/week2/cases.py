"""TRUSTED: week 2's data and reference computations, shared by plan.py and the checks (numpy only)."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

STOI = {".": 0, **{c: i + 1 for i, c in enumerate(string.ascii_lowercase)}}
V = len(STOI)


def load_words(data_dir: Path) -> list[str]:
    return (Path(data_dir) / "names.txt").read_text(encoding="ascii").splitlines()


def pairs_of(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(xs, ys) int64 indices of every bigram, '.' before and after each word."""
    xs = [STOI[a] for w in words for a in "." + w]
    ys = [STOI[b] for w in words for b in w + "."]
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def bigram_counts(words: list[str]) -> np.ndarray:
    xs, ys = pairs_of(words)
    return np.bincount(xs * V + ys, minlength=V * V).reshape(V, V).astype(np.int64)


def probs(counts: np.ndarray, smoothing: float) -> np.ndarray:
    p = counts.astype(np.float64) + smoothing
    return p / p.sum(1, keepdims=True)


def avg_nll(p: np.ndarray, words: list[str]) -> float:
    xs, ys = pairs_of(words)
    with np.errstate(divide="ignore"):
        return float(-np.log(p[xs, ys]).mean())


def net_loss(w: np.ndarray, xs: np.ndarray, ys: np.ndarray, reg: float) -> float:
    """The neural bigram's loss in float64: mean NLL of softmax(W[xs]) plus reg * mean(W**2)."""
    logits = w.astype(np.float64)[xs]
    logits = logits - logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return float(-logp[np.arange(len(ys)), ys].mean() + reg * (w.astype(np.float64) ** 2).mean())


# The probes call the student's own (pure Python) code: on all 29,213 names the counts, NLL and
# training probes took 3.5 s, more than the notebook itself. Evenly spaced samples of the list
# (it is sorted by popularity) find the same bugs in a tenth of that.
GRADED_STRIDE = 8  # counts, NLL and sampling checks: every 8th name (3,652 names)
TRAIN_STRIDE = 32  # the training check: every 32nd name (913 names, 6,533 bigrams)


def graded_words(words: list[str]) -> list[str]:
    return words[::GRADED_STRIDE]


def train_pairs(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return pairs_of(words[::TRAIN_STRIDE])


def conditional_entropy(xs: np.ndarray, ys: np.ndarray) -> float:
    """The lowest mean NLL any bigram model reaches on (xs, ys): the empirical conditional entropy."""
    counts = np.bincount(xs * V + ys, minlength=V * V).reshape(V, V).astype(np.float64)
    rows = counts.sum(1, keepdims=True)
    seen = counts > 0
    return float(-(counts[seen] * np.log((counts / np.maximum(rows, 1))[seen])).sum() / counts.sum())


NET_WORDS = 2000  # the gradient check uses the bigrams of the first names: plenty, and fast
NET_W_SEED = 20260202


def net_inputs(words: list[str]) -> dict:
    """Inputs of the gradient check: a float32 W and the bigrams of the first NET_WORDS names."""
    xs, ys = pairs_of(words[:NET_WORDS])
    w = np.random.default_rng(NET_W_SEED).standard_normal((V, V)).astype(np.float32)
    return {"w": w, "xs": xs, "ys": ys, "regs": [0.0, 0.01, 0.1]}


def z_free_words(words: list[str], n: int = 300) -> list[str]:
    """The first n names without a 'z', the vocabulary's last letter: code that sizes a tensor from the
    data it is given (bincount without minlength, one_hot without num_classes) comes out short on them."""
    return [w for w in words if "z" not in w][:n]


def net_inputs_z_free(words: list[str]) -> dict:
    """The gradient check again, on names without a 'z' (one reg): W is still 27 x 27."""
    return {**net_inputs(words), **dict(zip(("xs", "ys"), pairs_of(z_free_words(words)))), "regs": [0.01]}


# The grader's own choices for the dataset, reg and seed checks (inputs, not answers).
DATASET_SEED = 20261207
REG_TRAIN = {"steps": 20, "lr": 10.0, "reg": 1.0, "seed": 424242}  # a strong reg shrinks W: ignoring it shows
SAMPLER_SEEDS = (31337, 31337, 271828)  # the same seed twice, then another


def dataset_words(words: list[str]) -> list[str]:
    """Five names drawn with the grader's seed (short and long ones), for make_bigram_dataset."""
    rng = np.random.default_rng(DATASET_SEED)
    return [words[i] for i in sorted(rng.choice(len(words), size=5, replace=False))]
