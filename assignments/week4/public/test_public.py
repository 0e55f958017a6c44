"""Week 4 public checks: run them with `grader check week4 week4.ipynb`.

References are computed here with autograd in float64; your functions ran in the sandbox on
the same inputs. Passing these does not guarantee the hidden checks (training, samples,
integrity) pass.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cases
from plan import NET_SEED, UNIT_SEED

PARAMS = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def _leaf(a):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


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
    u = cases.unit_inputs(UNIT_SEED)
    logits = _leaf(u["ce_logits"])
    F.cross_entropy(logits, torch.from_numpy(u["ce_Y"])).backward()
    _close("dlogits", _unit(answers, "cross_entropy"), logits.grad)
    x, W, b = _leaf(u["lin_x"]), _leaf(u["lin_W"]), _leaf(np.zeros(u["lin_W"].shape[1]))
    ((x @ W + b) * torch.from_numpy(u["lin_dout"])).sum().backward()
    for name, got, want in zip(("dx", "dW", "db"), _unit(answers, "linear"), (x.grad, W.grad, b.grad)):
        _close(f"linear {name}", got, want)
    pre = _leaf(u["tanh_pre"])
    (torch.tanh(pre) * torch.from_numpy(u["tanh_dout"])).sum().backward()
    _close("tanh dpre", _unit(answers, "tanh"), pre.grad)
    bx, g, beta = _leaf(u["bn_x"]), _leaf(u["bn_gamma"]), _leaf(np.zeros_like(u["bn_gamma"]))
    xhat = (bx - bx.mean(0, keepdim=True)) * (bx.var(0, keepdim=True) + 1e-5) ** -0.5
    ((g * xhat + beta) * torch.from_numpy(u["bn_dout"])).sum().backward()
    for name, got, want in zip(("dx", "dgamma", "dbeta"), _unit(answers, "batchnorm"), (bx.grad, g.grad, beta.grad)):
        _close(f"batchnorm {name}", got, want)
    C = _leaf(np.zeros((cases.VOCAB, u["emb_demb"].shape[-1])))
    (C[torch.from_numpy(u["emb_X"])] * torch.from_numpy(u["emb_demb"])).sum().backward()
    _close("embedding dC", _unit(answers, "embedding"), C.grad)


@pytest.mark.check(points=1, category="gradient")
def test_manual_backward(answers):
    """manual_backward matches autograd for every parameter, with the parameter's shape."""
    raw, Xb, Yb = cases.net_inputs(NET_SEED)
    p = {k: _leaf(v) for k, v in raw.items()}
    Xb = torch.from_numpy(Xb)
    hprebn = p["C"][Xb].view(Xb.shape[0], -1) @ p["W1"] + p["b1"]
    xhat = (hprebn - hprebn.mean(0, keepdim=True)) * (hprebn.var(0, keepdim=True) + 1e-5) ** -0.5
    h = torch.tanh(p["bngain"] * xhat + p["bnbias"])
    F.cross_entropy(h @ p["W2"] + p["b2"], torch.from_numpy(Yb)).backward()
    grads = answers.get("grad_network")["grads"]
    for name in PARAMS:
        _close(f"d{name}", grads[name], p[name].grad)


@pytest.mark.check(points=1, category="correctness")
def test_wavenet(answers):
    """build_wavenet() has 76,579 parameters; BatchNorm1d keeps (1, 1, C) running stats for 3-D input."""
    got = answers.get("wavenet_structure")
    assert got["n_params"] == 76579, f"{got['n_params']} parameters, expected 76,579"
    assert got["out_shape"] == [4, 27], f"output shape {got['out_shape']}"
    mean = np.asarray(answers.get("batchnorm_3d")["running_mean"])
    assert mean.shape == (1, 1, 16), f"running_mean shape {mean.shape}, expected (1, 1, 16)"
