"""PUBLIC: week 5's probe requests. Inputs only: every reference stays in the judge.

requests() builds every unit request the hidden plan sends; plan() keeps the public checks' subset.
The judges (test_public.py, and the hidden test_week5.py) import this module to rebuild the same
inputs from the same seeds. The training request's held-out windows are the hidden suite's own
(solutions/week5/plan.py): the text the judge scores on never enters the sandbox.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

CORPUS = "shakespeare.txt"
SMALL = {"n_embd": 32, "n_head": 4, "n_layer": 3, "block_size": 8, "dropout": 0.0}
LECTURE = {"n_embd": 384, "n_head": 6, "n_layer": 6, "block_size": 256, "dropout": 0.2}
UNIT = {"n_embd": 32, "n_head": 4, "n_layer": 2, "block_size": 16, "dropout": 0.0}
# A second shape for the forward check: other sizes, one layer, so nothing hard-coded passes both.
ODD = {"n_embd": 24, "n_head": 3, "n_layer": 1, "block_size": 12, "dropout": 0.0}

HEAD = {"n_embd": 32, "head_size": 8, "block_size": 16, "T": 5, "B": 3}  # T < block_size on purpose
ATTN_T = 8
MHA = {"n_embd": 32, "num_heads": 4, "head_size": 8, "block_size": 16, "T": 7, "B": 2}
GET_BATCH = {"n": 1000, "block_size": 8, "batch_size": 512, "seed": 7}
# Every start of a short text must come up: 12 starts, 512 draws; a second seed must draw other windows.
GET_BATCH_RANGE = {"n": 20, "block_size": 8, "batch_size": 512, "seeds": [7, 8]}
SPLITS = [{"n": 100}, {"n": 50, "frac": 0.8}]
CAUSAL_CUTS = [1, 5, 11, 15]  # positions from which the second input of a pair differs
DROPOUT = {"n_embd": 32, "n_head": 4, "block_size": 16, "p": 0.25, "shape": (4, 16, 32)}
FULL_VAL = {"windows": 300, "block_size": 8}  # more windows than one batch of 256
# Sampling with a stand-in forward whose logits the judge chose: a distribution every row shares
# (temperature and top-k change it in known ways) and a chain (token t -> t + 1) that shows which
# position and how much context generate uses.
SAMPLING = {"config": {**UNIT, "block_size": 8}, "rows": 3, "new_tokens": 800,
            "runs": [{"temperature": 1.0, "top_k": None, "seed": 11}, {"temperature": 1.0, "top_k": None, "seed": 11},
                     {"temperature": 1.0, "top_k": None, "seed": 12}, {"temperature": 0.5, "top_k": None, "seed": 13},
                     {"temperature": 2.0, "top_k": None, "seed": 14}, {"temperature": 1.0, "top_k": 4, "seed": 15},
                     {"temperature": 0.7, "top_k": 6, "seed": 16}]}
SEED = 1337
PUBLIC = {"encode_decode", "get_batch", "head_sdpa", "causality", "generate"}  # what test_public.py reads


@lru_cache(maxsize=2)
def corpus(data_dir: str) -> tuple[str, str, np.ndarray]:
    """(text, chars in id order, token ids) with the vocabulary built from the whole text."""
    text = (Path(data_dir) / CORPUS).read_text(encoding="utf-8")
    chars = "".join(sorted(set(text)))
    return text, chars, encode(text, chars)


def encode(text: str, chars: str) -> np.ndarray:
    """Token ids of `text` in the vocabulary `chars` (every character of text must be in it)."""
    table = np.full(0x110000 if max(map(ord, chars)) > 255 else 256, -1, dtype=np.int64)
    table[[ord(c) for c in chars]] = np.arange(len(chars))
    ids = table[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
    if (ids < 0).any():
        raise ValueError("the text has characters outside the vocabulary")
    return ids


def split(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = int(0.9 * len(ids))
    return ids[:n], ids[n:]


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


def dropout_input() -> np.ndarray:
    return rng("dropout").standard_normal(DROPOUT["shape"]).astype(np.float32)


def causal_pairs(vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    r = rng("causal")
    T = UNIT["block_size"]
    a = r.integers(0, vocab_size, size=(len(CAUSAL_CUTS), T))
    b = a.copy()
    for row, cut in enumerate(CAUSAL_CUTS):
        b[row, cut:] = (a[row, cut:] + 1 + r.integers(0, vocab_size - 1, size=T - cut)) % vocab_size
    return a, b


def forward_inputs(vocab_size: int) -> list[tuple[dict, np.ndarray, np.ndarray]]:
    """(config, idx, targets) for the forward check: a full block and a shorter input, two shapes."""
    r = rng("forward")
    out = []
    for config, T in ((UNIT, UNIT["block_size"]), (ODD, ODD["block_size"] - 5)):
        idx = r.integers(0, vocab_size, size=(3, T))
        out.append((config, idx, r.integers(0, vocab_size, size=(3, T))))
    return out


def full_val_data(vocab_size: int) -> np.ndarray:
    return rng("full_val").integers(0, vocab_size, size=FULL_VAL["windows"] * FULL_VAL["block_size"] + 5)


def full_val_windows(data: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The non-overlapping windows full_val_loss must average over: inputs and targets (N, T)."""
    n = (len(data) - 1) // block_size
    return data[: n * block_size].reshape(n, block_size), data[1: n * block_size + 1].reshape(n, block_size)


def sampling_tables(vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(shared, chain): logits (V,) that every context gets, and logits (V, V) where token t is followed
    by t + 1 almost surely. The shared logits put clearly ordered mass on a few tokens."""
    order = rng("sampling").permutation(vocab_size)
    shared = np.full(vocab_size, -6.0)
    shared[order[:8]] = [2.0, 1.6, 1.2, 0.8, 0.4, 0.0, -0.4, -0.8]
    chain = np.zeros((vocab_size, vocab_size))
    chain[np.arange(vocab_size), (np.arange(vocab_size) + 1) % vocab_size] = 30.0
    return shared.astype(np.float32), chain.astype(np.float32)


def sampling_prompt(vocab_size: int) -> np.ndarray:
    """(rows, 3) prompts whose first and last tokens differ."""
    r = rng("prompt")
    return r.integers(0, vocab_size, size=(SAMPLING["rows"], 3))


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    return [r for r in requests(thresholds, data_dir) if r["id"] in PUBLIC]


def score_request(thresholds: dict, chars: str, train: np.ndarray, val_x: np.ndarray) -> dict:
    """The training request: train (source "train") or take the notebook's model, then logits at the last
    position of each window of `val_x` and samples. The hidden plan gives the held-out windows."""
    config = SMALL if thresholds["train_source"] == "train" else LECTURE
    args = {"source": thresholds["train_source"], "vocab_size": len(chars), "config": config,
            "val_x": val_x, "start": np.full((thresholds["n_samples"], 1), chars.index("\n")),
            "sample_len": thresholds["sample_len"], "sample_seed": SEED}
    if thresholds["train_source"] == "train":
        args.update(train=train.astype(np.int64), steps=thresholds["train_steps"],
                    batch_size=thresholds["train_batch"], lr=thresholds["train_lr"], seed=SEED)
    return {"id": "train_and_score", "probe": "train_and_score", "args": args,
            "timeout": thresholds["train_timeout"], "checks": ["val_loss", "samples"]}


def requests(thresholds: dict, data_dir: Path) -> list[dict]:
    """Every unit probe request of week 5 (the hidden plan adds the training request)."""
    text, chars, _ = corpus(str(data_dir))
    vocab = len(chars)
    small_idx = rng("small").integers(0, vocab, size=(3, 6))
    shared, chain = sampling_tables(vocab)
    return [
        {"id": "encode_decode", "probe": "encode_decode", "args": {"text": text[:500]},
         "checks": ["encode_decode"]},
        {"id": "train_val_split", "probe": "train_val_split", "args": {"splits": SPLITS}, "checks": ["train_val_split"]},
        {"id": "get_batch", "probe": "get_batch", "args": GET_BATCH, "checks": ["get_batch"]},
        {"id": "get_batch_range", "probe": "get_batch_range", "args": GET_BATCH_RANGE, "checks": ["batch_starts"]},
        {"id": "bigram", "probe": "bigram", "checks": ["bigram_model"],
         "args": {"vocab_size": vocab, "idx": small_idx, "targets": np.roll(small_idx, -1, axis=1), "seed": SEED,
                  "chain": chain, "prompt": sampling_prompt(vocab)}},
        {"id": "head_sdpa", "probe": "head_sdpa", "checks": ["attention_matches_sdpa"],
         "args": {"x": head_input(), "n_embd": HEAD["n_embd"], "head_size": HEAD["head_size"],
                  "block_size": HEAD["block_size"], "seed": SEED}},
        {"id": "head_weights", "probe": "head_weights", "checks": ["attention_weights"],
         "args": {"wq": attn_weights()[0], "wk": attn_weights()[1], "T": ATTN_T}},
        {"id": "multihead", "probe": "multihead", "checks": ["multihead"],
         "args": {"x": mha_input(), **{k: MHA[k] for k in ("n_embd", "num_heads", "head_size", "block_size")},
                  "seed": SEED}},
        {"id": "feedforward", "probe": "feedforward", "checks": ["feedforward"],
         "args": {"x": unit_input(6), "n_embd": UNIT["n_embd"], "seed": SEED}},
        {"id": "block", "probe": "block", "checks": ["block_prenorm"],
         "args": {"x": unit_input(UNIT["block_size"]), "n_embd": UNIT["n_embd"], "n_head": UNIT["n_head"],
                  "block_size": UNIT["block_size"], "seed": SEED}},
        {"id": "causality", "probe": "causality", "checks": ["causality"],
         "args": {"vocab_size": vocab, "config": UNIT, "seed": SEED,
                  "a": causal_pairs(vocab)[0], "b": causal_pairs(vocab)[1]}},
        {"id": "gpt_forward", "probe": "gpt_forward", "checks": ["gpt_forward"],
         "args": {"vocab_size": vocab, "seed": SEED,
                  "cases": [{"config": c, "idx": i, "targets": t} for c, i, t in forward_inputs(vocab)],
                  "count_configs": [LECTURE, SMALL, UNIT]}},
        {"id": "dropout", "probe": "dropout", "checks": ["dropout"],
         "args": {"x": dropout_input(), "seed": SEED, **{k: DROPOUT[k] for k in ("n_embd", "n_head", "block_size", "p")}}},
        {"id": "generate", "probe": "generate", "checks": ["generate"],
         "args": {"vocab_size": vocab, "config": {**UNIT, "block_size": 8}, "seed": SEED,
                  "idx": small_idx[:2, :3], "new_tokens": 20}},
        {"id": "sampling", "probe": "sampling", "checks": ["sampling"],
         "args": {"vocab_size": vocab, "config": SAMPLING["config"], "seed": SEED, "shared": shared, "chain": chain,
                  "prompt": sampling_prompt(vocab), "new_tokens": SAMPLING["new_tokens"], "runs": SAMPLING["runs"]}},
        {"id": "full_val_loss", "probe": "full_val_loss", "checks": ["full_split_loss"],
         "args": {"vocab_size": vocab, "config": {**UNIT, "block_size": FULL_VAL["block_size"], "dropout": 0.5},
                  "seed": SEED, "data": full_val_data(vocab),
                  "windows": full_val_windows(full_val_data(vocab), FULL_VAL["block_size"])[0]}},
    ]
