"""SANDBOX side of week 3: procedures that call the student's code and return plain data.

No expected answers and no held-out data live here: the judge sends inputs (contexts, parameters,
batches, seeds) and computes every reference and every loss itself. What the student's functions
return is passed back as it came (a tensor stays an array, a float a float): the judge checks types.
"""

import numpy as np
import torch
import torch.nn.functional as F

_STATE = {}  # the parameters train_mlp_model trained, for the sampling probe


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


def forward(ns, cases):
    """mlp_forward with judge-given float64 parameters (any block size / embedding width)."""
    out = []
    for case in cases:
        p = {k: _tensor(v, torch.float64) for k, v in case["params"].items()}
        with torch.no_grad():
            out.append(_as_numpy(ns["mlp_forward"](p, _tensor(case["X"]))))
    return out


def split_loss(ns, params, X, Y):
    """split_loss on judge parameters: returned as it came (the judge wants a Python float)."""
    p = {k: _tensor(v, torch.float64) for k, v in params.items()}
    return ns["split_loss"](p, _tensor(X), _tensor(Y))


def init(ns, calls):
    """init_mlp with the judge's sizes, generator seeds and flags: the tensors it made. A call that raises is
    reported on its own, so that sizes it cannot handle cost only the checks that use them."""
    out = {}
    for name, call in calls.items():
        try:
            params = ns["init_mlp"](*call["sizes"], generator=torch.Generator().manual_seed(call["seed"]),
                                    scaled=call["scaled"])
            out[name] = {"params": {str(k): _as_numpy(v).astype(np.float64) for k, v in params.items()},
                         "requires_grad": {str(k): bool(getattr(v, "requires_grad", False))
                                           for k, v in params.items()}}
        except Exception as exc:  # noqa: BLE001 - reported to the checks that read this call
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return out


def train_steps(ns, params, X, Y, batch_size, lrs, seed):
    """The student's train_mlp for a few steps from judge-given parameters (float64)."""
    p = {k: _tensor(v, torch.float64).clone().requires_grad_(True) for k, v in params.items()}
    losses = ns["train_mlp"](p, _tensor(X), _tensor(Y), len(lrs), batch_size, lambda i: lrs[i],
                             torch.Generator().manual_seed(seed))
    return {"losses": list(losses), "params": {k: _as_numpy(v) for k, v in p.items()}}


def _train(ns, Xtr, Ytr, steps, batch_size, lr, decay_at, seed, dev):
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
    return {k: v.detach().cpu().requires_grad_(False) for k, v in params.items()}


class _one_thread:
    """Tiny matmuls ((1..128, 200)): a second thread only adds contention (sampling 500 names took
    69 s with 2 threads against 3.4 s with 1 on a loaded 2-core machine)."""

    def __enter__(self):
        self.threads = torch.get_num_threads()
        torch.set_num_threads(1)

    def __exit__(self, *exc):
        torch.set_num_threads(self.threads)


def train_mlp_model(ns, Xtr, Ytr, steps, batch_size, lr, decay_at, seed, device="cpu"):
    """Train a model made by the student's init_mlp/mlp_forward with the GRADER's loop and budget,
    and return its parameters: the judge computes the dev loss on names the sandbox never sees."""
    dev = torch.device("cuda" if device == "cuda" and torch.cuda.is_available() else "cpu")
    with _one_thread():
        params = _train(ns, Xtr, Ytr, steps, batch_size, lr, decay_at, seed, dev)
    _STATE["params"] = params
    return {"params": {k: _as_numpy(v).astype(np.float32) for k, v in params.items()}, "device": str(dev)}


def samples(ns, Xtr, Ytr, n, seed):
    """n names from the student's sample_mlp on the trained model (a short run when training failed)."""
    with _one_thread():
        if "params" not in _STATE:
            _STATE["params"] = _train(ns, Xtr, Ytr, 1000, 64, 0.3, 1000, seed, torch.device("cpu"))
        names = ns["sample_mlp"](_STATE["params"], n, torch.Generator().manual_seed(seed), 3)
    return {"names": [str(s)[:100] for s in list(names)[: 2 * n]]}


def sampler(ns, params, n, seeds, block_size):
    """sample_mlp on judge parameters: n names for each of the judge's generator seeds."""
    p = {k: _tensor(v, torch.float32) for k, v in params.items()}
    out = []
    for seed in seeds:
        with _one_thread():
            names = ns["sample_mlp"](p, n, torch.Generator().manual_seed(seed), block_size)
        out.append([str(s)[:100] for s in list(names)[: 2 * n]])
    return out


def _bn_state(bn):
    return {"running_mean": _as_numpy(bn.running_mean).astype(np.float64),
            "running_var": _as_numpy(bn.running_var).astype(np.float64)}


def batchnorm(ns, xs, gamma, beta, x_eval, running_mean, running_var, x_one, momentum, eps):
    """The student's BatchNorm1d, float64: a fresh layer on a batch; a layer with the judge's momentum
    and eps over three training batches; eval mode with given running statistics; a one-feature layer."""
    BatchNorm1d = ns["BatchNorm1d"]
    dim = xs[0].shape[1]
    out = {}
    fresh = BatchNorm1d(dim)
    out["fresh_state"] = _bn_state(fresh)
    out["starts_training"] = bool(fresh.training)
    fresh.gamma, fresh.beta = fresh.gamma.double(), fresh.beta.double()
    fresh.running_mean, fresh.running_var = fresh.running_mean.double(), fresh.running_var.double()
    with torch.no_grad():
        out["fresh_out"] = _as_numpy(fresh(_tensor(xs[0], torch.float64)))  # in whatever mode it starts
    bn = BatchNorm1d(dim, eps=eps, momentum=momentum)
    # float64 state so the comparison is exact; the student's formula is what is tested
    bn.gamma = _tensor(gamma, torch.float64).requires_grad_(True)
    bn.beta = _tensor(beta, torch.float64).requires_grad_(True)
    bn.running_mean = torch.zeros(dim, dtype=torch.float64)
    bn.running_var = torch.ones(dim, dtype=torch.float64)
    out["parameters"] = [_as_numpy(p) for p in bn.parameters()]
    out["train_out"], out["after_call"] = [], []
    for x in xs:
        xt = _tensor(x, torch.float64).requires_grad_(True)  # a real layer input carries a graph
        out["train_out"].append(_as_numpy(bn(xt)))
        out["after_call"].append(_bn_state(bn))
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
    one = BatchNorm1d(1)
    one.gamma, one.beta = one.gamma.double(), one.beta.double()
    one.running_mean, one.running_var = one.running_mean.double(), one.running_var.double()
    with torch.no_grad():
        out["one_out"] = _as_numpy(one(_tensor(x_one, torch.float64)))
    out["one_state"] = _bn_state(one)
    return out


def linear_tanh(ns, x, fan_in, fan_out, seeds, weight, bias):
    """The student's Linear (drawn from generators of the judge's seeds; then given the judge's
    weight and bias) and Tanh."""
    Linear = ns["Linear"]
    made = [Linear(fan_in, fan_out, generator=torch.Generator().manual_seed(s)) for s in seeds]
    nob = Linear(fan_in, fan_out, bias=False, generator=torch.Generator().manual_seed(seeds[0]))
    lin = made[0]
    out = {"weights": [_as_numpy(m.weight) for m in made], "bias": _as_numpy(lin.bias),
           "nobias_is_none": nob.bias is None}
    lin.weight = _tensor(weight, torch.float64)
    lin.bias = _tensor(bias, torch.float64)
    nob.weight = _tensor(weight, torch.float64)
    tanh = ns["Tanh"]()
    with torch.no_grad():
        xt = _tensor(x, torch.float64)
        out.update({
            "out": _as_numpy(lin(xt)),
            "nobias_out": _as_numpy(nob(xt)),
            "parameters": [_as_numpy(p) for p in lin.parameters()],
            "nobias_parameters": [_as_numpy(p) for p in nob.parameters()],
            "tanh_out": _as_numpy(tanh(xt)),
            "tanh_parameters": len(tanh.parameters()),
        })
    return out
