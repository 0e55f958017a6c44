"""TRUSTED data for week 3: the names, the held-out names, the datasets and the inputs the judge sends.

Shared by plan.py (which sends inputs) and the checks (which keep the targets). numpy only, so
planning a grade stays cheap; the torch references live in week3_reference.py.

The grader trains on the sandbox's names.txt (every name in it) and scores the dev loss on the
held-out names (fixtures/data/heldout/names.txt), which never enter the sandbox: not as a file, not
as inputs. The judge computes the dev logits itself from the parameters the grader's training run
returns, so every position of every held-out name is scored and no held-out context is ever sent.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BLOCK_SIZE = 3
VOCAB = 27
HELDOUT = "heldout/names.txt"  # judge-only (grader.config.HELDOUT_DIR)


def load_words(data_dir: Path) -> list[str]:
    """The sandbox's names (what the notebook reads)."""
    return (Path(data_dir) / "names.txt").read_text().split()


def load_heldout(data_dir: Path) -> list[str]:
    """The held-out names: judge-only, never in the sandbox."""
    return (Path(data_dir) / HELDOUT).read_text().split()


def vocab(words: list[str]) -> dict[str, int]:
    """'.' = 0, then the letters in sorted order (1..26), as in the lectures."""
    stoi = {ch: i + 1 for i, ch in enumerate(sorted(set("".join(words))))}
    stoi["."] = 0
    return stoi


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
class Data:
    train_words: list[str]  # every name of the sandbox's names.txt: the grader's training set
    heldout_words: list[str]  # judge-only
    Xtr: np.ndarray
    Ytr: np.ndarray
    Xho: np.ndarray  # every position of every held-out name (block 3): never sent
    Yho: np.ndarray


@functools.lru_cache(maxsize=2)
def load_data(data_dir: Path) -> Data:
    """The training and held-out datasets (cached: plan and checks ask more than once)."""
    words = load_words(data_dir)
    heldout = load_heldout(data_dir)
    stoi = vocab(words)
    Xtr, Ytr = build_dataset(words, stoi)
    Xho, Yho = build_dataset(heldout, stoi)
    return Data(words, heldout, Xtr, Ytr, Xho, Yho)


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


# ---- a sampler test whose answer does not depend on how the random numbers are drawn -------------
# Parameters for which the model's first character is uniform over a..z and every later character
# is (to within e^-GAP) certain: a correct sampler's names are then each a function of their first
# letter, whatever order it draws its random numbers in, and the judge knows that function.

GAP = 20.0  # nats between the most likely next character and the runner-up, on every path
MAX_PATH = 12  # every path ends with '.' within this many letters
END = 0.3  # how much '.' is favoured after a letter, in SCALEs: names of 2 to MAX_PATH letters
SCALE = 1e4  # logits of this size make the argmax certain; float32 keeps them to ~1e-2


def logits_np(params: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    emb = params["C"][X]  # (N, block, n_embd)
    h = np.tanh(emb.reshape(len(X), -1) @ params["W1"] + params["b1"])
    return h @ params["W2"] + params["b2"]


def greedy_path(params: dict[str, np.ndarray], first: int, block_size: int) -> tuple[list[int], float]:
    """The name (indices, without '.') that starts with `first` and follows the argmax after it,
    and the smallest gap between the argmax and the runner-up along the way (-inf: it never ends)."""
    context, out, gap = [0] * (block_size - 1) + [first], [first], np.inf
    for _ in range(MAX_PATH):
        row = logits_np(params, np.array([context]))[0]
        top2 = np.sort(row)[-2:]
        gap = min(gap, top2[1] - top2[0])
        ix = int(np.argmax(row))
        if ix == 0:
            return out, gap
        out.append(ix)
        context = context[1:] + [ix]
    return out, -np.inf


@functools.lru_cache(maxsize=4)
def path_params(seed: int, n_embd: int, block_size: int, n_hidden: int) -> dict[str, np.ndarray]:
    """Parameters for the sampler test, drawn from `seed`; a ValueError when some path keeps a gap
    under GAP or does not end within MAX_PATH letters (`find_path_seed` finds a seed that works).

    Embedding dimension 0 says "a letter" (+1) or "." (-1); hidden unit 0 reads it at the last
    position, so it tells the empty context from every other: there '.' is impossible and the letters
    tie (b2 cancels their logits); everywhere else the logits are of size SCALE, '.' included."""
    fan_in = n_embd * block_size
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((VOCAB, n_embd))
    C[:, 0] = 1.0
    C[0, 0] = -1.0
    W1 = 3.0 * rng.standard_normal((fan_in, n_hidden)) / fan_in**0.5
    W1[:, 0] = 0.0
    W1[0::n_embd] = 0.0  # dimension 0 feeds unit 0 only, from the last position:
    W1[(block_size - 1) * n_embd, 0] = 10.0  # unit 0 = tanh(±10), the last character is a letter
    b1 = 0.5 * rng.standard_normal(n_hidden)
    b1[0] = 0.0
    W2 = SCALE * rng.standard_normal((n_hidden, VOCAB)) / n_hidden**0.5
    W2[0] = 0.0
    W2[0, 0] = 100 * SCALE  # '.' gains 200 SCALE after a letter, over the empty context
    p = {"C": C, "W1": W1, "b1": b1, "W2": W2, "b2": np.zeros(VOCAB)}
    p["b2"] = -logits_np(p, np.zeros((1, block_size), dtype=np.int64))[0]  # every logit 0 when empty...
    p["b2"][0] += -200 * SCALE + END * SCALE  # ... but '.': -200 SCALE there, about END SCALE later
    paths = [greedy_path(p, first, block_size) for first in range(1, VOCAB)]
    letters = {i for path, _ in paths for i in path[1:]}
    if not (all(gap >= GAP for _, gap in paths) and np.mean([len(path) for path, _ in paths]) >= 4
            and len(letters) >= 12):
        raise ValueError(f"seed {seed}: some path is ambiguous or endless, or the names are too plain")
    return p


def find_path_seed(start: int, n_embd: int, block_size: int, n_hidden: int) -> int:
    """The first seed from `start` that path_params accepts (run once when a sampler case changes)."""
    for seed in range(start, start + 10_000):
        try:
            path_params.__wrapped__(seed, n_embd, block_size, n_hidden)
            return seed
        except ValueError:
            continue
    raise RuntimeError("no sampler parameters found")


def path_names(params: dict[str, np.ndarray], block_size: int, itos: dict[int, str]) -> dict[str, str]:
    """First letter -> the only name a correct sampler can produce from it."""
    return {itos[first]: "".join(itos[i] for i in greedy_path(params, first, block_size)[0])
            for first in range(1, VOCAB)}
