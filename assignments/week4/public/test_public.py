"""Week 4 public checks: run them with `grader check week4 week4.ipynb`.

References are computed here with autograd in float64; your functions ran in the sandbox on
the same inputs. Passing these does not guarantee the hidden checks (training, samples,
integrity) pass.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.config import public_module

cases = public_module(__file__, "cases")
plan = public_module(__file__, "plan")
reference = public_module(__file__, "reference")

PARAMS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def _unit(answers, key):
    entry = answers.get("grad_units")[key]
    assert entry.get("ok"), f"{key}_backward raised {entry.get('error')}"
    return entry["value"]


def _close(name, got, want):
    got = np.asarray(got)
    assert got.shape == tuple(want.shape), f"{name}: shape {got.shape}, expected {tuple(want.shape)}"
    diff = float(np.abs(got - want.numpy()).max())
    assert diff <= 1e-9, f"{name}: max |manual - autograd| = {diff:.2e}"


@pytest.mark.check(points=1, category="gradient")
def test_layer_gradients(answers):
    """Each layer's backward matches autograd (cross-entropy, linear, tanh, BatchNorm, embedding)."""
    want = reference.unit_references(cases.unit_inputs(plan.UNIT_SEED), cases.VOCAB)
    _close("dlogits", _unit(answers, "cross_entropy"), want["cross_entropy"]["dlogits"])
    for layer in ("linear", "tanh", "batchnorm", "embedding"):  # in the notebook's order
        got = _unit(answers, layer)
        for name, part in zip(want[layer], got if len(want[layer]) > 1 else [got]):
            _close(f"{layer} {name}", part, want[layer][name])


@pytest.mark.check(points=1, category="gradient")
def test_manual_backward(answers):
    """manual_backward matches autograd for every parameter, with the parameter's shape."""
    _, want = reference.network_reference(*cases.net_inputs(plan.NET_SEED))
    grads = answers.get("grad_network")["grads"]
    for name in PARAMS:
        _close(f"d{name}", grads[name], want[name])


@pytest.mark.check(points=1, category="correctness")
def test_wavenet(answers):
    """build_wavenet() has 76,579 parameters; BatchNorm1d keeps (1, 1, C) running stats for 3-D input."""
    got = answers.get("wavenet_structure")
    assert got["n_params"] == 76579, f"{got['n_params']} parameters, expected 76,579"
    assert got["out_shape"] == [4, 27], f"output shape {got['out_shape']}"
    mean = np.asarray(answers.get("batchnorm_3d")["running_mean"])
    assert mean.shape == (1, 1, 16), f"running_mean shape {mean.shape}, expected (1, 1, 16)"
