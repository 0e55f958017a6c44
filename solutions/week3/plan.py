"""TRUSTED: week 3's probe requests. Inputs only: held-out names, targets and references stay in the judge.

Every graded function is called with arguments other than its defaults (sizes, flags, seeds,
momentum, eps), so that a hard-coded size or an ignored argument shows. No held-out name is sent
in any form: the dev loss is computed in the judge from the parameters the training probe returns.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Seeds of the inputs the judge sends; the checks rebuild the same inputs from them.
FORWARD_SEEDS = (11, 21)
SPLIT_LOSS_SEED = 12
TRAJECTORY_SEED = 13
TRAIN_SEED = 1337
BN_SEED = 17
LINEAR_SEED = 19
DATASET_WORDS = ["emma", "olivia", "ava", "x", "christopher"]
DATASET_STRIDE = 97  # every 97th name of the sandbox's names.txt also goes through build_dataset
TRAJECTORY_LRS = [0.5, 0.5, 0.5, 0.05, 0.05]
# init_mlp calls: (vocab_size, n_embd, block_size, n_hidden), generator seed, scaled
INIT_CALLS = {
    "lecture": ((27, 10, 3, 200), 2147483647, True),
    "again": ((27, 10, 3, 200), 2147483647, True),  # same seed: the same draws
    "other_seed": ((27, 10, 3, 200), 42, True),  # another seed: other draws
    "other_sizes": ((31, 6, 5, 50), 7, True),  # fan_in 30 again but other shapes, n_hidden 50, 31 tokens
    "wide": ((27, 12, 4, 300), 8, True),  # fan_in 48
    # the lecture's first init, every tensor randn; 200 tokens, so that b2 alone shows rand for randn
    "unscaled": ((200, 10, 3, 200), 9, False),
    "unscaled_again": ((200, 10, 3, 200), 9, False),  # same seed: the same draws, b2 included
}
# The sampler case (week3_data.path_params): seed found by week3_data.find_path_seed(31, 5, 4, 32)
SAMPLER = {"seed": 308, "n_embd": 5, "block_size": 4, "n_hidden": 32, "n": 300, "gen_seeds": (5, 5, 6)}
BN_MOMENTUM, BN_EPS = 0.3, 0.25  # not the defaults (0.1, 1e-5)


def data_module():
    """week3_data.py from beside this file (the judge imports the same file)."""
    spec = importlib.util.spec_from_file_location("week3_data", HERE / "week3_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def forward_cases(data) -> list[tuple[dict, np.ndarray]]:
    """block_size 4, n_embd 7, n_hidden 64; block_size 2, n_embd 5, n_hidden 16: no fixed sizes pass."""
    shapes = [(27, 7, 4, 64), (27, 5, 2, 16)]
    out = []
    for seed, (vocab, n_embd, block, hidden) in zip(FORWARD_SEEDS, shapes):
        rng = np.random.default_rng(seed)
        out.append((data.random_params(seed, vocab, n_embd, block, hidden), rng.integers(0, vocab, size=(50, block))))
    return out


def split_loss_case(data):
    rng = np.random.default_rng(SPLIT_LOSS_SEED)
    params = data.random_params(SPLIT_LOSS_SEED, 27, 10, 3, 50)
    return params, rng.integers(0, 27, size=(400, 3)), rng.integers(0, 27, size=400)


def trajectory_case(data, data_dir: Path):
    d = data.load_data(Path(data_dir))
    params = data.random_params(TRAJECTORY_SEED, 27, 10, 3, 40)
    return params, d.Xtr[:2000], d.Ytr[:2000]


def batchnorm_case() -> dict:
    """Three training batches with per-feature offsets, gamma/beta, then eval-mode inputs and
    running statistics; a (8, 1) batch for a one-feature BatchNorm1d."""
    rng = np.random.default_rng(BN_SEED)
    offsets, scales = rng.standard_normal(6) * 5, 0.3 + rng.random(6)  # small variances: eps matters
    return {
        "xs": [scales * rng.standard_normal((32, 6)) + offsets for _ in range(3)],
        "gamma": 1.0 + 0.5 * rng.standard_normal(6),
        "beta": rng.standard_normal(6),
        "x_eval": 2.0 * rng.standard_normal((8, 6)) + 1.0,
        "running_mean": rng.standard_normal(6),
        "running_var": 0.5 + rng.random(6),
        "x_one": 2.0 * rng.standard_normal((8, 1)) + 3.0,
        "momentum": BN_MOMENTUM,
        "eps": BN_EPS,
    }


def linear_case() -> dict:
    rng = np.random.default_rng(LINEAR_SEED)
    return {"x": rng.standard_normal((16, 400)), "fan_in": 400, "fan_out": 300, "seeds": [LINEAR_SEED, LINEAR_SEED, 3],
            "weight": rng.standard_normal((400, 300)) / 20.0, "bias": rng.standard_normal(300)}


def dataset_cases(data, data_dir: Path) -> list[tuple[list[str], int]]:
    words = data.load_words(Path(data_dir))[::DATASET_STRIDE]  # the sandbox's own names
    return [(DATASET_WORDS, 3), (DATASET_WORDS, 5), (words, 3)]


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    data = data_module()
    d = data.load_data(Path(data_dir))
    s_params, s_X, s_Y = split_loss_case(data)
    t_params, t_X, t_Y = trajectory_case(data, data_dir)
    stoi = data.vocab(d.train_words)
    t = thresholds
    return [
        {"id": "dataset", "probe": "dataset", "checks": ["dataset", "runs_clean"], "timeout": 60,
         "args": {"cases": [{"words": w, "block_size": b} for w, b in dataset_cases(data, data_dir)], "stoi": stoi}},
        {"id": "forward", "probe": "forward", "checks": ["forward_reference", "runs_clean"], "timeout": 30,
         "args": {"cases": [{"params": p, "X": X} for p, X in forward_cases(data)]}},
        {"id": "split_loss", "probe": "split_loss", "checks": ["split_loss_reference"], "timeout": 30,
         "args": {"params": s_params, "X": s_X, "Y": s_Y}},
        {"id": "init", "probe": "init", "checks": ["init_api", "init_scale", "initial_loss", "tanh_saturation"],
         "timeout": 30, "args": {"calls": {k: {"sizes": list(sz), "seed": sd, "scaled": sc}
                                           for k, (sz, sd, sc) in INIT_CALLS.items()}}},
        {"id": "train_steps", "probe": "train_steps", "checks": ["train_trajectory"], "timeout": 60,
         "args": {"params": t_params, "X": t_X, "Y": t_Y, "batch_size": 16, "lrs": TRAJECTORY_LRS,
                  "seed": TRAJECTORY_SEED}},
        {"id": "batchnorm", "probe": "batchnorm", "timeout": 30,
         "checks": ["batchnorm_train_mode", "batchnorm_running_stats", "batchnorm_eval_mode", "batchnorm_buffers"],
         "args": batchnorm_case()},
        {"id": "linear_tanh", "probe": "linear_tanh", "checks": ["linear_tanh"], "timeout": 30,
         "args": linear_case()},
        {"id": "sampler", "probe": "sampler", "checks": ["sampler"], "timeout": 60,
         "args": {"params": data.path_params(SAMPLER["seed"], SAMPLER["n_embd"], SAMPLER["block_size"],
                                             SAMPLER["n_hidden"]),
                  "n": SAMPLER["n"], "seeds": list(SAMPLER["gen_seeds"]), "block_size": SAMPLER["block_size"]}},
        # The grader's training run: its parameters come back, the judge scores them on held-out names.
        {"id": "train_model", "probe": "train_mlp_model", "checks": ["dev_loss", "sample_quality", "sample_sanity"],
         "args": {"Xtr": d.Xtr, "Ytr": d.Ytr, "steps": int(t["train_steps"]), "batch_size": int(t["train_batch"]),
                  "lr": float(t["train_lr"]), "decay_at": int(t["train_decay_at"]), "seed": TRAIN_SEED,
                  "device": "cuda" if profile == "cuda" else "cpu"}},
        # Sampling has its own probe and deadline: a sampler that hangs costs only the sample checks.
        {"id": "samples", "probe": "samples", "checks": ["sample_quality", "sample_sanity"], "timeout": 30,
         "args": {"Xtr": d.Xtr, "Ytr": d.Ytr, "n": int(t["n_samples"]), "seed": TRAIN_SEED + 2}},
    ]
