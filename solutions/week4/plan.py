"""Week 4 plan (TRUSTED): which probes run, with which inputs and budgets.

The inputs come from the public suite's cases.py with this suite's own seeds (the judge's
test_week4.py rebuilds them from the same seeds).
"""

from __future__ import annotations

from pathlib import Path

from grader.config import public_module

UNIT_SEED, NET_SEED, BN3D_SEED = 4, 5, 6
FALLBACK = 20_000  # training rows for the eval/sampling probes when train_wavenet did not run
GRAD_CHECKS = ["grad_cross_entropy", "grad_linear", "grad_tanh", "grad_batchnorm", "grad_embedding"]


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    cases = public_module(__file__, "cases")
    train, dev, _ = cases.split(cases.names(data_dir))
    Xtr, Ytr = cases.dataset(train)
    Xdev, _Ydev = cases.dataset(dev)  # dev targets stay here: the judge computes the loss
    units = {k: v for k, v in cases.unit_inputs(UNIT_SEED).items() if k not in ("bn_x", "tanh_pre")}
    params, Xb, Yb = cases.net_inputs(NET_SEED)
    t = thresholds
    return [
        {"id": "grad_units", "probe": "grad_units", "timeout": 60,
         "args": {**units, "vocab_size": cases.VOCAB}, "checks": GRAD_CHECKS + ["grad_shapes", "no_autograd"]},
        {"id": "grad_network", "probe": "grad_network", "timeout": 60,
         "args": {"params": params, "Xb": Xb, "Yb": Yb}, "checks": ["grad_network", "grad_shapes", "no_autograd"]},
        {"id": "wavenet_structure", "probe": "wavenet_structure", "timeout": 60, "checks": ["wavenet_params"],
         "args": {"X": Xtr[:4], "vocab_size": 27, "n_embd": 24, "n_hidden": 128, "block_size": cases.BLOCK,
                  "seed": 42}},
        {"id": "flatten_consecutive", "probe": "flatten_consecutive", "timeout": 30,
         "args": {"x": cases.flatten_input(), "n": 2}, "checks": ["flatten_consecutive"]},
        {"id": "flatten_all", "probe": "flatten_consecutive", "timeout": 30,
         "args": {"x": cases.flatten_input(), "n": 8}, "checks": ["flatten_consecutive"]},
        {"id": "batchnorm_3d", "probe": "batchnorm_3d", "timeout": 30,
         "args": {"x": cases.bn3d_input(BN3D_SEED)}, "checks": ["batchnorm_3d"]},
        {"id": "train_wavenet", "probe": "train_wavenet", "timeout": t["train_timeout"], "checks": ["wavenet_dev_loss"],
         "args": {"Xtr": Xtr, "Ytr": Ytr, "Xdev": Xdev, "steps": t["train_steps"], "batch_size": t["batch_size"],
                  "seed": t["train_seed"], "lr": 0.1, "lr_final": 0.01, "decay_at": int(t["train_steps"] * 0.75),
                  "block_size": cases.BLOCK, "device": profile}},
        {"id": "eval_single", "probe": "eval_single", "timeout": 60, "checks": ["eval_single_example"],
         "args": {"Xtr": Xtr[:FALLBACK], "Ytr": Ytr[:FALLBACK], "X": Xdev[:16], "block_size": cases.BLOCK}},
        {"id": "samples", "probe": "samples", "timeout": 60, "checks": ["sample_quality"],
         "args": {"Xtr": Xtr[:FALLBACK], "Ytr": Ytr[:FALLBACK], "n": t["n_samples"], "seed": 2147483647, "block_size": cases.BLOCK}},
    ]
