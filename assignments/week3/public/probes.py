"""Public week 3 probes: call your functions on tiny inputs and return what they gave."""

import numpy as np
import torch


def dataset(ns, words, stoi):
    X, Y = ns["build_dataset"](list(words), dict(stoi), 3)
    return {"X": np.asarray(X), "Y": np.asarray(Y)}


def forward(ns, params, X):
    p = {k: torch.as_tensor(v) for k, v in params.items()}
    with torch.no_grad():
        return ns["mlp_forward"](p, torch.as_tensor(X)).numpy()


def init(ns):
    params = ns["init_mlp"](27, 10, 3, 200, generator=torch.Generator().manual_seed(1), scaled=True)
    return {"shapes": {k: list(v.shape) for k, v in params.items()},
            "W2_absmax": float(params["W2"].abs().max()), "b2_absmax": float(params["b2"].abs().max())}


def batchnorm(ns, x):
    bn = ns["BatchNorm1d"](x.shape[1])
    xt = torch.as_tensor(x, dtype=torch.float32)
    y = bn(xt).detach().numpy()
    bn.training = False
    with torch.no_grad():
        single = bn(xt[:1]).numpy()
    return {"train_out": y, "eval_single": single, "n_params": len(bn.parameters()),
            "running_mean": bn.running_mean.detach().numpy().reshape(-1)}
