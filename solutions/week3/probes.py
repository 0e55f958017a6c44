"""SANDBOX side of week 3: procedures that call the student's code and return plain data.

No expected answers and no held-out targets live here: the judge sends inputs (contexts,
parameters, batches) and computes every reference and every loss itself.
"""

import numpy as np
import torch
import torch.nn.functional as F


def _tensor(a, dtype=None):
    t = torch.as_tensor(np.asarray(a))
    return t.to(dtype) if dtype is not None else t


def _as_numpy(t):
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def dataset(ns, cases, stoi):
    """build_dataset on judge-chosen words and block sizes, with the judge's vocabulary."""
    out = []
    for case in cases:
        X, Y = ns["build_dataset"](list(case["words"]), dict(stoi), case["block_size"])
        out.append({"X": _as_numpy(X).astype(np.int64), "Y": _as_numpy(Y).astype(np.int64)})
    return out


def forward(ns, params, X):
    """mlp_forward with judge-given float64 parameters (any block size / embedding width)."""
    p = {k: _tensor(v, torch.float64) for k, v in params.items()}
    with torch.no_grad():
        return _as_numpy(ns["mlp_forward"](p, _tensor(X)))


def split_loss(ns, params, X, Y):
    p = {k: _tensor(v, torch.float64) for k, v in params.items()}
    return float(ns["split_loss"](p, _tensor(X), _tensor(Y)))


def init(ns, seed, sizes):
    """init_mlp(scaled=True) twice with the same seed (reproducibility) and its parameters."""
    a = ns["init_mlp"](*sizes, generator=torch.Generator().manual_seed(seed), scaled=True)
    b = ns["init_mlp"](*sizes, generator=torch.Generator().manual_seed(seed), scaled=True)
    return {
        "params": {k: _as_numpy(v).astype(np.float64) for k, v in a.items()},
        "requires_grad": {k: bool(getattr(v, "requires_grad", False)) for k, v in a.items()},
        "same_seed_equal": all(torch.equal(a[k], b[k]) for k in a),
    }


def train_steps(ns, params, X, Y, batch_size, lrs, seed):
    """The student's train_mlp for a few steps from judge-given parameters (float64)."""
    p = {k: _tensor(v, torch.float64).clone().requires_grad_(True) for k, v in params.items()}
    losses = ns["train_mlp"](p, _tensor(X), _tensor(Y), len(lrs), batch_size, lambda i: lrs[i],
                             torch.Generator().manual_seed(seed))
    return {"losses": [float(x) for x in losses], "params": {k: _as_numpy(v) for k, v in p.items()}}


def train_mlp_model(ns, Xtr, Ytr, Xdev, steps, batch_size, lr, decay_at, seed, n_samples, device="cpu"):
    """Train a model made by the student's init_mlp/mlp_forward with the GRADER's loop and budget,
    then return logits for the judge's dev contexts and names from the student's sampler."""
    dev = torch.device("cuda" if device == "cuda" and torch.cuda.is_available() else "cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # (32..128, 200) matmuls: a second thread only adds contention
    try:
        return _train_and_answer(ns, Xtr, Ytr, Xdev, steps, batch_size, lr, decay_at, seed, n_samples, dev)
    finally:
        torch.set_num_threads(threads)


def _train_and_answer(ns, Xtr, Ytr, Xdev, steps, batch_size, lr, decay_at, seed, n_samples, dev):
    g = torch.Generator().manual_seed(seed)
    params = ns["init_mlp"](27, 10, 3, 200, generator=g, scaled=True)
    params = {k: v.detach().to(dev).requires_grad_(True) for k, v in params.items()}
    forward = ns["mlp_forward"]
    Xt, Yt = _tensor(Xtr).to(dev), _tensor(Ytr).to(dev)
    gb = torch.Generator(device=dev).manual_seed(seed + 1)
    for i in range(steps):
        ix = torch.randint(0, Xt.shape[0], (batch_size,), generator=gb, device=dev)
        loss = F.cross_entropy(forward(params, Xt[ix]), Yt[ix])
        for p in params.values():
            p.grad = None
        loss.backward()
        step = lr if i < decay_at else lr / 10
        with torch.no_grad():
            for p in params.values():
                p -= step * p.grad
    with torch.no_grad():
        logits = torch.cat([forward(params, chunk) for chunk in _tensor(Xdev).to(dev).split(8192)])
        cpu_params = {k: v.detach().cpu().requires_grad_(False) for k, v in params.items()}
        names = ns["sample_mlp"](cpu_params, n_samples, torch.Generator().manual_seed(seed + 2), 3)
    return {"dev_logits": _as_numpy(logits).astype(np.float32), "samples": [str(s) for s in names],
            "device": str(dev)}


def _bn_state(bn):
    return {"running_mean": _as_numpy(bn.running_mean).astype(np.float64).reshape(-1),
            "running_var": _as_numpy(bn.running_var).astype(np.float64).reshape(-1)}


def batchnorm(ns, x, gamma, beta, x_eval, running_mean, running_var):
    """The student's BatchNorm1d: parameters, one training call, then eval mode (float64)."""
    BatchNorm1d = ns["BatchNorm1d"]
    dim = x.shape[1]
    bn = BatchNorm1d(dim)
    params = bn.parameters()
    out = {
        "params_are_gamma_beta": len(params) == 2 and params[0] is bn.gamma and params[1] is bn.beta,
        "n_params": len(params),
        "starts_training": bool(bn.training),
        "init": _bn_state(bn),
    }
    # float64 state so the comparison is exact; the student's formula is what is tested
    bn.gamma = _tensor(gamma, torch.float64).requires_grad_(True)
    bn.beta = _tensor(beta, torch.float64).requires_grad_(True)
    bn.running_mean = torch.zeros(dim, dtype=torch.float64)
    bn.running_var = torch.ones(dim, dtype=torch.float64)
    xt = _tensor(x, torch.float64).requires_grad_(True)  # a real layer input carries a graph
    y = bn(xt)
    out["train_out"] = _as_numpy(y)
    out["after_one_call"] = _bn_state(bn)
    out["buffers_require_grad"] = bool(getattr(bn.running_mean, "requires_grad", False)
                                       or getattr(bn.running_var, "requires_grad", False))
    # eval mode with judge-given running statistics
    bn.training = False
    bn.running_mean = _tensor(running_mean, torch.float64)
    bn.running_var = _tensor(running_var, torch.float64)
    with torch.no_grad():
        xe = _tensor(x_eval, torch.float64)
        out["eval_out"] = _as_numpy(bn(xe))
        out["eval_single"] = _as_numpy(bn(xe[:1]))
    out["after_eval"] = _bn_state(bn)
    return out


def linear_tanh(ns, x, fan_in, fan_out, seed):
    """The student's Linear and Tanh layers."""
    torch.manual_seed(seed)
    lin = ns["Linear"](fan_in, fan_out)
    nob = ns["Linear"](fan_in, fan_out, bias=False)
    tanh = ns["Tanh"]()
    params = lin.parameters()
    with torch.no_grad():
        xt = _tensor(x, torch.float32)
        return {
            "weight": _as_numpy(lin.weight), "bias": _as_numpy(lin.bias),
            "params_ok": len(params) == 2 and params[0] is lin.weight and params[1] is lin.bias,
            "nobias_params": len(nob.parameters()),
            "out": _as_numpy(lin(xt)),
            "tanh_out": _as_numpy(tanh(xt)),
            "tanh_params": len(tanh.parameters()),
        }
