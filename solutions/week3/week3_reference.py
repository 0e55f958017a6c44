"""TRUSTED references for week 3 (MLP language model, BatchNorm), computed in the judge in float64.

Written from the lecture's definitions; torch.nn.BatchNorm1d is the BatchNorm reference.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

EPS = 1e-5
MOMENTUM = 0.1


# ---- the model, float64 -------------------------------------------------------------------

def mlp_logits(params: dict, X: np.ndarray):
    """Bengio et al. 2003 as in the lecture: embed, concatenate in context order, tanh, linear."""
    p = {k: torch.as_tensor(np.asarray(v), dtype=torch.float64) for k, v in params.items()}
    emb = p["C"][torch.as_tensor(X)]  # (N, block, n_embd)
    h = torch.tanh(emb.reshape(emb.shape[0], -1) @ p["W1"] + p["b1"])  # (N, n_hidden)
    return h @ p["W2"] + p["b2"]  # (N, vocab)


def hidden_preact(params: dict, X: np.ndarray):
    p = {k: torch.as_tensor(np.asarray(v), dtype=torch.float64) for k, v in params.items()}
    emb = p["C"][torch.as_tensor(X)]
    return emb.reshape(emb.shape[0], -1) @ p["W1"] + p["b1"]


def cross_entropy(logits, Y: np.ndarray) -> float:
    logits = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    return F.cross_entropy(logits, torch.as_tensor(Y)).item()


def reference_training(params: dict, X: np.ndarray, Y: np.ndarray, batch_size: int, lrs: list[float],
                       seed: int) -> tuple[list[float], dict[str, np.ndarray]]:
    """The stub's train_mlp contract: randint batches from `generator`, fresh grads, SGD step."""
    p = {k: torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    g = torch.Generator().manual_seed(seed)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    losses = []
    for lr in lrs:
        ix = torch.randint(0, Xt.shape[0], (batch_size,), generator=g)
        emb = p["C"][Xt[ix]]
        logits = torch.tanh(emb.reshape(batch_size, -1) @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
        loss = F.cross_entropy(logits, Yt[ix])
        for t in p.values():
            t.grad = None
        loss.backward()
        with torch.no_grad():
            for t in p.values():
                t -= lr * t.grad
        losses.append(loss.item())
    return losses, {k: v.detach().numpy() for k, v in p.items()}


# ---- BatchNorm1d, both accepted variance conventions ---------------------------------------

def batchnorm_train_refs(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Training-mode output and the running stats after one call from (0, 1), per convention.

    'lecture': unbiased variance for both normalisation and running_var (x.var(0)).
    'torch':   torch.nn.BatchNorm1d: biased variance to normalise, unbiased for running_var.
    """
    xt = torch.as_tensor(x, dtype=torch.float64)
    out = {}
    bn = torch.nn.BatchNorm1d(x.shape[1], eps=EPS, momentum=MOMENTUM).double()
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(beta))
        y = bn.train()(xt)
    out["torch"] = {"out": y.numpy(), "running_mean": bn.running_mean.numpy().copy(),
                    "running_var": bn.running_var.numpy().copy()}
    mean, var = xt.mean(0), xt.var(0)  # unbiased
    y = torch.as_tensor(gamma) * (xt - mean) / torch.sqrt(var + EPS) + torch.as_tensor(beta)
    out["lecture"] = {"out": y.numpy(), "running_mean": (MOMENTUM * mean).numpy(),
                      "running_var": ((1 - MOMENTUM) + MOMENTUM * var).numpy()}
    return out


def batchnorm_eval_ref(x: np.ndarray, gamma, beta, running_mean, running_var) -> np.ndarray:
    """Eval mode: torch.nn.BatchNorm1d with the given running statistics (no batch statistics)."""
    bn = torch.nn.BatchNorm1d(x.shape[1], eps=EPS, momentum=MOMENTUM).double()
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(beta))
        bn.running_mean.copy_(torch.as_tensor(running_mean))
        bn.running_var.copy_(torch.as_tensor(running_var))
        return bn.eval()(torch.as_tensor(x, dtype=torch.float64)).numpy()
