"""Week 4 plan (TRUSTED): which probes run, with which inputs and budgets.

The inputs come from the public suite's cases.py with this suite's own seeds (the judge's
test_week4.py rebuilds them from the same seeds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from grader.config import HELDOUT_DIR, public_module

UNIT_SEED, NET_SEED, BN3D_SEED, STRUCTURE_SEED = 4, 5, 6, 7
# build_wavenet() at the lecture's sizes (the 76,579 parameters) and at sizes the judge picks, every one
# of them other than the lecture's (a hard-coded 27 or 8 shows): (vocab_size, n_embd, n_hidden, block_size)
STRUCTURES = {"wavenet_structure": (27, 24, 128, 8), "wavenet_small": (31, 5, 12, 4)}
HELDOUT_SEED = 4_2017  # which position of each held-out name is scored
FALLBACK = 20_000  # training rows for the eval/sampling probes when train_wavenet did not run
GRAD_CHECKS = ["grad_cross_entropy", "grad_linear", "grad_tanh", "grad_batchnorm", "grad_embedding"]


def structure_input(block_size: int) -> np.ndarray:
    """The structure probe's contexts for a WaveNet of this block size: the last block_size characters."""
    return public_module(__file__, "cases").structure_input(STRUCTURE_SEED)[:, -block_size:]


def heldout_names(data_dir: Path) -> list[str]:
    """The judge's held-out names (fixtures/data/heldout/names.txt): none is in the sandbox's names.txt."""
    return (Path(data_dir) / HELDOUT_DIR / "names.txt").read_text().split()


def heldout_windows(data_dir: Path, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The scored held-out positions: contexts (block_size characters, '.'-padded) and targets.

    At most one position per held-out name, and no window sent reveals the target of another: every
    window starts inside its name's padding (position t < block_size, so it is the name's whole prefix
    w[:t]), and no chosen prefix is a proper prefix of another (a window 'em' beside a window 'emm'
    would say what follows 'em'). Consecutive windows of one name would give away each other's next
    characters; these give away nothing the training names do not."""
    rng = np.random.default_rng(HELDOUT_SEED)
    words = heldout_names(data_dir)
    chosen: set[str] = set()  # prefixes sent
    inside: set[str] = set()  # every proper prefix of a prefix sent
    xs, ys = [], []
    for i in rng.permutation(len(words)):
        w = words[i]
        for t in rng.permutation(min(len(w), block_size - 1) + 1):
            p = w[:t]
            if p in inside or any(p[:k] in chosen for k in range(t)):
                continue
            chosen.add(p)
            inside.update(p[:k] for k in range(t))
            ixs = [ord(ch) - 96 for ch in w] + [0]
            xs.append([0] * (block_size - t) + ixs[:t])
            ys.append(ixs[t])
            break
    return np.array(xs, dtype=np.int64), np.array(ys, dtype=np.int64)


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    cases = public_module(__file__, "cases")
    Xtr, Ytr = cases.dataset(cases.names(data_dir))  # every name the sandbox has
    Xdev, _Ydev = heldout_windows(data_dir, cases.BLOCK)  # targets stay here: the judge computes the loss
    units = {k: v for k, v in cases.unit_inputs(UNIT_SEED).items() if k not in ("bn_x", "tanh_pre")}
    params, Xb, Yb = cases.net_inputs(NET_SEED)
    t = thresholds
    return [
        {"id": "grad_units", "probe": "grad_units", "timeout": 60,
         "args": {**units, "vocab_size": cases.VOCAB}, "checks": GRAD_CHECKS + ["grad_shapes", "no_autograd"]},
        {"id": "grad_network", "probe": "grad_network", "timeout": 60,
         "args": {"params": params, "Xb": Xb, "Yb": Yb}, "checks": ["grad_network", "grad_shapes", "no_autograd"]},
        *({"id": key, "probe": "wavenet_structure", "timeout": 60, "checks": ["wavenet_params"],
           "args": {"X": structure_input(b), "vocab_size": v, "n_embd": e, "n_hidden": h,
                    "block_size": b, "seed": 42}} for key, (v, e, h, b) in STRUCTURES.items()),
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
