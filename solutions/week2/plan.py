"""TRUSTED: the probe requests for week 2. Inputs only (words, matrices, seeds); no expected answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np


def _cases():
    spec = importlib.util.spec_from_file_location("week2_cases", Path(__file__).with_name("cases.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan(profile: str, thresholds: dict, data_dir: Path, **_) -> list[dict]:
    cases = _cases()
    words = cases.load_words(data_dir)
    counts = cases.bigram_counts(words)
    p_mle = (counts / counts.sum(1, keepdims=True)).astype(np.float32)
    p_add1 = ((counts + 1.0) / (counts + 1.0).sum(1, keepdims=True)).astype(np.float32)
    graded = cases.graded_words(words)
    xs, ys = cases.train_pairs(words)
    t = thresholds
    return [
        {"id": "vocab", "probe": "vocab", "args": {"words": graded}, "checks": ["vocab"]},
        {"id": "counts", "probe": "counts", "args": {"words": graded},
         "checks": ["bigram_counts_exact", "runs_clean"]},  # runs clean counts once the counts are right
        {"id": "counts_z_free", "probe": "counts", "args": {"words": cases.z_free_words(words)},
         "checks": ["bigram_counts_exact"]},
        {
            "id": "probs",
            "probe": "probs",
            "args": {"counts": counts},
            "checks": ["probs_rows_sum_to_one", "probs_values"],
        },
        {
            "id": "nll",
            "probe": "nll",
            "args": {"probs": p_add1, "words": graded, "unseen": t["unseen_word"]},
            "checks": ["avg_nll_value"],
        },
        {
            "id": "pipeline",
            "probe": "pipeline_nll",
            "args": {"words": graded, "unseen": t["unseen_word"]},
            "checks": ["nll_band", "nll_unseen_finite"],
        },
        {
            "id": "dataset",
            "probe": "dataset",
            "args": {"words": cases.dataset_words(words)},
            "checks": ["bigram_dataset"],
        },
        {
            "id": "net_loss",
            "probe": "net_loss",
            "args": cases.net_inputs(words),
            "checks": ["net_loss_and_grad"],
        },
        {"id": "net_loss_z_free", "probe": "net_loss", "args": cases.net_inputs_z_free(words),
         "checks": ["net_loss_and_grad"]},
        {
            "id": "train",
            "probe": "train",
            "args": {
                "xs": xs,
                "ys": ys,
                "steps": t["train_steps"],
                "lr": t["train_lr"],
                "reg": t["train_reg"],
                "seed": 2147483647,
            },
            "checks": ["trained_net_loss"],
            "timeout": 240,
        },
        {
            "id": "train_reg",  # another reg, seed and budget: each must be honoured
            "probe": "train",
            "args": {"xs": xs, "ys": ys, **cases.REG_TRAIN},
            "checks": ["trained_net_loss"],
            "timeout": 120,
        },
        {
            "id": "sampler",
            "probe": "sampler",
            "args": {"probs": p_mle, "n": t["sampler_n"], "seed": 2147483647},
            "checks": ["sampler_statistics"],
            "timeout": 90,
        },
        {
            "id": "sampler_seeds",
            "probe": "sampler_seeds",
            "args": {"probs": p_mle, "n": 20, "seeds": list(cases.SAMPLER_SEEDS)},
            "checks": ["sampler_statistics"],
            "timeout": 60,
        },
        {
            "id": "own_samples",
            "probe": "own_samples",
            "args": {"words": graded, "n": t["quality_n"], "seed": 7},
            "checks": ["sample_quality"],
            "timeout": 90,
        },  # a model that never ends a name must not stall
    ]
