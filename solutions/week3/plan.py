"""TRUSTED: week 3's probe requests. Inputs only: dev targets and references stay in the judge."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

# Seeds of the inputs the judge sends; the checks rebuild the same inputs from them.
DEV_ORDER_SEED = 3_141_592
FORWARD_SEED = 11
SPLIT_LOSS_SEED = 12
TRAJECTORY_SEED = 13
INIT_SEED = 2147483647
TRAIN_SEED = 1337
BN_SEED = 17
LINEAR_SEED = 19
DATASET_WORDS = ["emma", "olivia", "ava", "x", "christopher"]
TRAJECTORY_LRS = [0.5, 0.5, 0.5, 0.05, 0.05]


def data_module():
    """week3_data.py from beside this file (the judge imports the same file)."""
    spec = importlib.util.spec_from_file_location("week3_data", HERE / "week3_data.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def forward_case(data):
    """block_size 4, n_embd 7, n_hidden 64: a hard-coded view(-1, 30) cannot pass."""
    rng = np.random.default_rng(FORWARD_SEED)
    return data.random_params(FORWARD_SEED, 27, 7, 4, 64), rng.integers(0, 27, size=(50, 4))


def split_loss_case(data):
    rng = np.random.default_rng(SPLIT_LOSS_SEED)
    params = data.random_params(SPLIT_LOSS_SEED, 27, 10, 3, 50)
    return params, rng.integers(0, 27, size=(400, 3)), rng.integers(0, 27, size=400)


def trajectory_case(data, data_dir: Path):
    splits = data.make_splits(Path(data_dir))
    params = data.random_params(TRAJECTORY_SEED, 27, 10, 3, 40)
    return params, splits.Xtr[:2000], splits.Ytr[:2000]


def batchnorm_case():
    rng = np.random.default_rng(BN_SEED)
    x = 3.0 * rng.standard_normal((32, 6)) + rng.standard_normal(6) * 5  # per-feature offsets
    return {
        "x": x,
        "gamma": 1.0 + 0.5 * rng.standard_normal(6),
        "beta": rng.standard_normal(6),
        "x_eval": 2.0 * rng.standard_normal((8, 6)) + 1.0,
        "running_mean": rng.standard_normal(6),
        "running_var": 0.5 + rng.random(6),
    }


def linear_case():
    return {"x": np.random.default_rng(LINEAR_SEED).standard_normal((16, 400)), "fan_in": 400,
            "fan_out": 300, "seed": LINEAR_SEED}


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    data = data_module()
    splits = data.make_splits(Path(data_dir))
    dev_order = data.dev_order(len(splits.Xdev), DEV_ORDER_SEED)
    f_params, f_X = forward_case(data)
    s_params, s_X, s_Y = split_loss_case(data)
    t_params, t_X, t_Y = trajectory_case(data, data_dir)
    dev_words = splits.words[1]
    stoi = data.vocab(data.load_words(data_dir))
    return [
        {"id": "dataset", "probe": "dataset", "checks": ["dataset"], "timeout": 60,
         "args": {"cases": [{"words": DATASET_WORDS, "block_size": 3}, {"words": DATASET_WORDS, "block_size": 5},
                            {"words": dev_words, "block_size": 3}], "stoi": stoi}},
        {"id": "forward", "probe": "forward", "checks": ["forward_reference"], "timeout": 30,
         "args": {"params": f_params, "X": f_X}},
        {"id": "split_loss", "probe": "split_loss", "checks": ["split_loss_reference"], "timeout": 30,
         "args": {"params": s_params, "X": s_X, "Y": s_Y}},
        {"id": "init", "probe": "init", "checks": ["init_api", "initial_loss", "tanh_saturation"], "timeout": 30,
         "args": {"seed": INIT_SEED, "sizes": [27, 10, 3, 200]}},
        {"id": "train_steps", "probe": "train_steps", "checks": ["train_trajectory"], "timeout": 60,
         "args": {"params": t_params, "X": t_X, "Y": t_Y, "batch_size": 16, "lrs": TRAJECTORY_LRS,
                  "seed": TRAJECTORY_SEED}},
        {"id": "batchnorm", "probe": "batchnorm", "timeout": 30,
         "checks": ["batchnorm_train_mode", "batchnorm_running_stats", "batchnorm_eval_mode", "batchnorm_buffers"],
         "args": batchnorm_case()},
        {"id": "linear_tanh", "probe": "linear_tanh", "checks": ["linear_tanh"], "timeout": 30,
         "args": linear_case()},
        {"id": "train_model", "probe": "train_mlp_model", "checks": ["dev_loss", "sample_quality", "sample_sanity"],
         "args": {"Xtr": splits.Xtr, "Ytr": splits.Ytr, "Xdev": splits.Xdev[dev_order],
                  "steps": int(thresholds["train_steps"]), "batch_size": int(thresholds["train_batch"]),
                  "lr": float(thresholds["train_lr"]), "decay_at": int(thresholds["train_decay_at"]),
                  "seed": TRAIN_SEED, "n_samples": int(thresholds["n_samples"]),
                  "device": "cuda" if profile == "cuda" else "cpu"}},
    ]
