"""TRUSTED data for week 3: the names, the fixed split, the datasets and the inputs the judge sends.

Shared by plan.py (which sends inputs) and the checks (which keep the targets). numpy only, so
planning a grade stays cheap; the torch references live in week3_reference.py.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK_SIZE = 3
SPLIT_SEED = 42


def load_words(data_dir: Path) -> list[str]:
    return (Path(data_dir) / "names.txt").read_text().split()


def vocab(words: list[str]) -> dict[str, int]:
    """'.' = 0, then the letters in sorted order (1..26), as in the lectures."""
    stoi = {ch: i + 1 for i, ch in enumerate(sorted(set("".join(words))))}
    stoi["."] = 0
    return stoi


def split_words(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """The lecture split: random.seed(42) shuffle, then 80/10/10."""
    words = list(words)
    random.Random(SPLIT_SEED).shuffle(words)  # same sequence as random.seed(42); random.shuffle
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    return words[:n1], words[n1:n2], words[n2:]


def build_dataset(words: list[str], stoi: dict[str, int], block_size: int = BLOCK_SIZE):
    """(X, Y) int64 arrays: every context of block_size previous characters and the next one."""
    xs, ys = [], []
    for word in words:
        context = [0] * block_size
        for ch in word + ".":
            ix = stoi[ch]
            xs.append(context)
            ys.append(ix)
            context = context[1:] + [ix]
    return np.array(xs, dtype=np.int64).reshape(-1, block_size), np.array(ys, dtype=np.int64)


@dataclass(frozen=True)
class Splits:
    words: tuple[list[str], list[str], list[str]]
    Xtr: np.ndarray
    Ytr: np.ndarray
    Xdev: np.ndarray
    Ydev: np.ndarray


@functools.lru_cache(maxsize=2)
def make_splits(data_dir: Path) -> Splits:
    """The fixed split and its block-3 datasets (cached: plan and checks ask more than once)."""
    words = load_words(data_dir)
    stoi = vocab(words)
    train, dev, test = split_words(words)
    Xtr, Ytr = build_dataset(train, stoi)
    Xdev, Ydev = build_dataset(dev, stoi)
    return Splits((train, dev, test), Xtr, Ytr, Xdev, Ydev)


def dev_order(n: int, seed: int) -> np.ndarray:
    """The order in which dev contexts are sent: shuffled so nothing can align them with targets."""
    return np.random.default_rng(seed).permutation(n)


def random_params(seed: int, vocab_size: int, n_embd: int, block_size: int, n_hidden: int) -> dict[str, np.ndarray]:
    """Well-scaled random MLP parameters for unit checks (keys as in the stub's API)."""
    rng = np.random.default_rng(seed)
    fan_in = n_embd * block_size
    return {
        "C": rng.standard_normal((vocab_size, n_embd)),
        "W1": rng.standard_normal((fan_in, n_hidden)) / fan_in**0.5,
        "b1": 0.1 * rng.standard_normal(n_hidden),
        "W2": 0.3 * rng.standard_normal((n_hidden, vocab_size)),
        "b2": 0.1 * rng.standard_normal(vocab_size),
    }
