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

def batchnorm_train_out(x: np.ndarray, gamma, beta, eps: float = EPS) -> dict[str, np.ndarray]:
    """Training-mode output per convention: 'unbiased' (the lecture, x.var(0)) or 'biased'
    (torch.nn.BatchNorm1d, whose output is the reference for that convention)."""
    xt = torch.as_tensor(x, dtype=torch.float64)
    bn = torch.nn.BatchNorm1d(x.shape[1], eps=eps).double()
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(np.asarray(gamma, dtype=np.float64)))
        bn.bias.copy_(torch.as_tensor(np.asarray(beta, dtype=np.float64)))
        biased = bn.train()(xt).numpy()
    g, b = torch.as_tensor(np.asarray(gamma, dtype=np.float64)), torch.as_tensor(np.asarray(beta, dtype=np.float64))
    unbiased = (g * (xt - xt.mean(0)) / torch.sqrt(xt.var(0) + eps) + b).numpy()
    return {"unbiased": unbiased, "biased": biased}


def running_stats(xs: list[np.ndarray], momentum: float) -> dict[str, list[np.ndarray]]:
    """running_mean after each call from zeros, and running_var from ones with the unbiased batch
    variance (the lecture and torch) or the biased one, after each call."""
    mean, var_u, var_b = np.zeros(xs[0].shape[1]), np.ones(xs[0].shape[1]), np.ones(xs[0].shape[1])
    out = {"mean": [], "var_unbiased": [], "var_biased": []}
    for x in xs:
        mean = (1 - momentum) * mean + momentum * x.mean(0)
        var_u = (1 - momentum) * var_u + momentum * x.var(0, ddof=1)
        var_b = (1 - momentum) * var_b + momentum * x.var(0)
        out["mean"].append(mean)
        out["var_unbiased"].append(var_u)
        out["var_biased"].append(var_b)
    return out


def batchnorm_eval_ref(x: np.ndarray, gamma, beta, running_mean, running_var, eps: float = EPS) -> np.ndarray:
    """Eval mode: torch.nn.BatchNorm1d with the given running statistics (no batch statistics)."""
    bn = torch.nn.BatchNorm1d(x.shape[1], eps=eps, momentum=MOMENTUM).double()
    with torch.no_grad():
        bn.weight.copy_(torch.as_tensor(gamma))
        bn.bias.copy_(torch.as_tensor(beta))
        bn.running_mean.copy_(torch.as_tensor(running_mean))
        bn.running_var.copy_(torch.as_tensor(running_var))
        return bn.eval()(torch.as_tensor(x, dtype=torch.float64)).numpy()


# ---- the sampler on judge parameters --------------------------------------------------------

def first_letter_chi2(first_letters: list[str]) -> float:
    """Pearson's chi-square of the first letters against the uniform a..z the model gives them."""
    counts = np.array([sum(1 for f in first_letters if f == chr(97 + i)) for i in range(26)], dtype=np.float64)
    expected = len(first_letters) / 26
    return float(((counts - expected) ** 2 / expected).sum())
