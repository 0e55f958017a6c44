"""PUBLIC: week 5's probe requests. Inputs only: the val targets and every reference stay in the judge.

requests() builds every request the hidden plan sends; plan() keeps the public checks' subset. The
judges (test_public.py, and the hidden test_week5.py) import this module to rebuild the same
inputs from the same seeds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

CORPUS = "shakespeare.txt"
SMALL = {"n_embd": 32, "n_head": 4, "n_layer": 3, "block_size": 8, "dropout": 0.0}
LECTURE = {"n_embd": 384, "n_head": 6, "n_layer": 6, "block_size": 256, "dropout": 0.2}
UNIT = {"n_embd": 32, "n_head": 4, "n_layer": 2, "block_size": 16, "dropout": 0.0}

HEAD = {"n_embd": 32, "head_size": 8, "block_size": 16, "T": 5, "B": 3}  # T < block_size on purpose
ATTN_T = 8
MHA = {"n_embd": 32, "num_heads": 4, "head_size": 8, "block_size": 16, "T": 7, "B": 2}
GET_BATCH = {"n": 1000, "block_size": 8, "batch_size": 512, "seed": 7}
CAUSAL_CUTS = [1, 5, 11, 15]  # positions from which the second input of a pair differs
SEED = 1337
PUBLIC = {"encode_decode", "get_batch", "head_sdpa", "causality", "generate"}  # what test_public.py reads


@lru_cache(maxsize=2)
def corpus(data_dir: str) -> tuple[str, str, np.ndarray]:
    """(text, chars in id order, token ids) with the vocabulary built from the whole text."""
    text = (Path(data_dir) / CORPUS).read_text(encoding="utf-8")
    chars = "".join(sorted(set(text)))
    table = np.zeros(0x110000 if max(map(ord, chars)) > 255 else 256, dtype=np.int64)
    table[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    return text, chars, ids


def split(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:]


def val_windows(val: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows over the whole val split: (inputs, targets), targets shifted by one."""
    n = (len(val) - 1) // block_size
    return val[: n * block_size].reshape(n, block_size), val[1: n * block_size + 1].reshape(n, block_size)


def rng(name: str) -> np.random.Generator:
    return np.random.default_rng(abs(hash_name(name)))


def hash_name(name: str) -> int:
    return sum((i + 1) * ord(c) for i, c in enumerate(name)) * 7919


def head_input() -> np.ndarray:
    return rng("head").standard_normal((HEAD["B"], HEAD["T"], HEAD["n_embd"])).astype(np.float32)


def attn_weights() -> tuple[np.ndarray, np.ndarray]:
    r = rng("attn")  # large weights make the attention peaky, so a leak shows clearly
    return (r.standard_normal((ATTN_T, ATTN_T)) * 2).astype(np.float32), \
        (r.standard_normal((ATTN_T, ATTN_T)) * 2).astype(np.float32)


def mha_input() -> np.ndarray:
    return rng("mha").standard_normal((MHA["B"], MHA["T"], MHA["n_embd"])).astype(np.float32)


def unit_input(T: int) -> np.ndarray:
    return rng("unit").standard_normal((2, T, UNIT["n_embd"])).astype(np.float32)


def causal_pairs(vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    r = rng("causal")
    T = UNIT["block_size"]
    a = r.integers(0, vocab_size, size=(len(CAUSAL_CUTS), T))
    b = a.copy()
    for row, cut in enumerate(CAUSAL_CUTS):
        b[row, cut:] = (a[row, cut:] + 1 + r.integers(0, vocab_size - 1, size=T - cut)) % vocab_size
    return a, b


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    return [r for r in requests(thresholds, data_dir) if r["id"] in PUBLIC]


def requests(thresholds: dict, data_dir: Path) -> list[dict]:
    """Every probe request of week 5, with the thresholds' training budget."""
    text, chars, ids = corpus(str(data_dir))
    vocab = len(chars)
    train, val = split(ids)
    r = rng("small")
    small_idx = r.integers(0, vocab, size=(3, 6))
    train_cfg = SMALL if thresholds["train_source"] == "train" else LECTURE
    val_x, _ = val_windows(val, train_cfg["block_size"])
    score_args = {"source": thresholds["train_source"], "vocab_size": vocab, "config": train_cfg,
                  "val_x": val_x, "start": np.full((thresholds["n_samples"], 1), chars.index("\n")),
                  "sample_len": thresholds["sample_len"], "sample_seed": SEED}
    if thresholds["train_source"] == "train":
        score_args.update(train=train.astype(np.int64), steps=thresholds["train_steps"],
                          batch_size=thresholds["train_batch"], lr=thresholds["train_lr"], seed=SEED)
    return [
        {"id": "encode_decode", "probe": "encode_decode", "args": {"text": text[:500]},
         "checks": ["encode_decode"]},
        {"id": "train_val_split", "probe": "train_val_split", "args": {"n": 100}, "checks": ["train_val_split"]},
        {"id": "get_batch", "probe": "get_batch", "args": GET_BATCH, "checks": ["get_batch"]},
        {"id": "bigram", "probe": "bigram", "checks": ["bigram_model"],
         "args": {"vocab_size": vocab, "idx": small_idx, "targets": np.roll(small_idx, -1, axis=1), "seed": SEED}},
        {"id": "head_sdpa", "probe": "head_sdpa", "checks": ["attention_matches_sdpa"],
         "args": {"x": head_input(), "n_embd": HEAD["n_embd"], "head_size": HEAD["head_size"],
                  "block_size": HEAD["block_size"], "seed": SEED}},
        {"id": "head_weights", "probe": "head_weights", "checks": ["attention_weights"],
         "args": {"wq": attn_weights()[0], "wk": attn_weights()[1], "T": ATTN_T}},
        {"id": "multihead", "probe": "multihead", "checks": ["multihead"],
         "args": {"x": mha_input(), **{k: MHA[k] for k in ("n_embd", "num_heads", "head_size", "block_size")},
                  "seed": SEED}},
        {"id": "feedforward", "probe": "feedforward", "checks": ["feedforward"],
         "args": {"x": unit_input(6), "n_embd": UNIT["n_embd"], "seed": SEED, "position": 3}},
        {"id": "block", "probe": "block", "checks": ["block_prenorm"],
         "args": {"x": unit_input(UNIT["block_size"]), "n_embd": UNIT["n_embd"], "n_head": UNIT["n_head"],
                  "block_size": UNIT["block_size"], "seed": SEED, "shift": 3.0, "position": 9}},
        {"id": "causality", "probe": "causality", "checks": ["causality"],
         "args": {"vocab_size": vocab, "config": UNIT, "seed": SEED,
                  "a": causal_pairs(vocab)[0], "b": causal_pairs(vocab)[1]}},
        {"id": "dropout", "probe": "dropout", "checks": ["dropout_eval"],
         "args": {"vocab_size": vocab, "config": {**UNIT, "dropout": 0.5}, "seed": SEED, "idx": small_idx}},
        {"id": "generate", "probe": "generate", "checks": ["generate"],
         "args": {"vocab_size": vocab, "config": {**UNIT, "block_size": 8}, "seed": SEED,
                  "idx": small_idx[:2, :3], "new_tokens": 20}},
        {"id": "param_count", "probe": "param_count", "checks": ["param_count"],
         "args": {"vocab_size": vocab, "configs": [LECTURE, SMALL, UNIT]}},
        {"id": "train_and_score", "probe": "train_and_score", "args": score_args,
         "timeout": thresholds["train_timeout"], "checks": ["val_loss", "samples"]},
    ]
