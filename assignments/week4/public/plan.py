"""Week 4 public plan: the gradient and structure probes, with public inputs (other seeds)."""

from __future__ import annotations

from pathlib import Path

from grader.config import public_module

UNIT_SEED, NET_SEED, BN3D_SEED = 14, 15, 16  # the hidden suite passes its own seeds


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    cases = public_module(__file__, "cases")
    units = {k: v for k, v in cases.unit_inputs(UNIT_SEED).items() if k not in ("bn_x", "tanh_pre")}
    params, Xb, Yb = cases.net_inputs(NET_SEED)
    return [
        {"id": "grad_units", "probe": "grad_units", "timeout": 30, "args": {**units, "vocab_size": cases.VOCAB}},
        {"id": "grad_network", "probe": "grad_network", "timeout": 30, "args": {"params": params, "Xb": Xb, "Yb": Yb}},
        {"id": "wavenet_structure", "probe": "wavenet_structure", "timeout": 30,
         "args": {"X": cases.structure_input(UNIT_SEED, 4), "vocab_size": 27, "n_embd": 24, "n_hidden": 128, "block_size": cases.BLOCK, "seed": 42}},
        {"id": "batchnorm_3d", "probe": "batchnorm_3d", "timeout": 30, "args": {"x": cases.bn3d_input(BN3D_SEED)}},
    ]
