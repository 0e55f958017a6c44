"""Week 4 references shared by the public and hidden checks: autograd gradients in float64.

Each layer's gradients and the notebook's network's loss and gradients, computed in the judge from
the inputs cases.py builds for the seed the caller chose (the hidden checks pass their own seeds).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def leaf(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=True)


def _batchnorm(x: torch.Tensor) -> torch.Tensor:
    """The notebook's xhat: unbiased variance (Bessel's n/(n-1)), eps 1e-5."""
    return (x - x.mean(0, keepdim=True)) * (x.var(0, keepdim=True, unbiased=True) + 1e-5) ** -0.5


def unit_references(u: dict[str, np.ndarray], vocab_size: int) -> dict[str, dict[str, torch.Tensor]]:
    """Autograd gradients for each layer on cases.unit_inputs(seed)."""
    out = {}
    logits = leaf(u["ce_logits"])
    F.cross_entropy(logits, torch.from_numpy(u["ce_Y"])).backward()
    out["cross_entropy"] = {"dlogits": logits.grad}
    x, W, b = leaf(u["lin_x"]), leaf(u["lin_W"]), leaf(np.zeros(u["lin_W"].shape[1]))
    ((x @ W + b) * torch.from_numpy(u["lin_dout"])).sum().backward()
    out["linear"] = {"dx": x.grad, "dW": W.grad, "db": b.grad}
    pre = leaf(u["tanh_pre"])
    (torch.tanh(pre) * torch.from_numpy(u["tanh_dout"])).sum().backward()
    out["tanh"] = {"dpre": pre.grad}
    bx, gamma, beta = leaf(u["bn_x"]), leaf(u["bn_gamma"]), leaf(np.zeros_like(u["bn_gamma"]))
    ((gamma * _batchnorm(bx) + beta) * torch.from_numpy(u["bn_dout"])).sum().backward()
    out["batchnorm"] = {"dx": bx.grad, "dgamma": gamma.grad, "dbeta": beta.grad}
    C = leaf(np.zeros((vocab_size, u["emb_demb"].shape[-1])))
    (C[torch.from_numpy(u["emb_X"])] * torch.from_numpy(u["emb_demb"])).sum().backward()
    out["embedding"] = {"dC": C.grad}
    return out


def network_reference(raw: dict[str, np.ndarray], Xb: np.ndarray, Yb: np.ndarray) -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and autograd gradients of the notebook's fixed forward pass on cases.net_inputs(seed)."""
    p = {k: leaf(v) for k, v in raw.items()}
    Xb, Yb = torch.from_numpy(Xb), torch.from_numpy(Yb)
    hprebn = p["C"][Xb].view(Xb.shape[0], -1) @ p["W1"] + p["b1"]
    h = torch.tanh(p["bngain"] * _batchnorm(hprebn) + p["bnbias"])
    loss = F.cross_entropy(h @ p["W2"] + p["b2"], Yb)
    loss.backward()
    return loss.item(), {k: v.grad for k, v in p.items()}
