"""Week 4 probes (SANDBOX side): call the student's functions on the judge's inputs.

No expected answers live here. Gradient probes run the student's manual-backward
functions under torch.no_grad() on tensors that do not require grad, and count any call
into autograd while they run. The training probe trains the student's WaveNet with the
grader's loop, seed and budget and returns dev LOGITS only (the targets stay outside).
"""

import contextlib

import numpy as np
import torch
import torch.nn.functional as F

_STATE = {}  # the WaveNet trained by train_wavenet, reused by the eval and sampling probes


@contextlib.contextmanager
def _autograd_trap(counter):
    """Count calls to Tensor.backward / torch.autograd.backward / torch.autograd.grad."""
    originals = (torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad)

    def counting(fn):
        def wrapper(*args, **kwargs):
            counter[0] += 1
            return fn(*args, **kwargs)
        return wrapper

    torch.Tensor.backward = counting(originals[0])
    torch.autograd.backward = counting(originals[1])
    torch.autograd.grad = counting(originals[2])
    try:
        with torch.no_grad():
            yield
    finally:
        torch.Tensor.backward, torch.autograd.backward, torch.autograd.grad = originals


def _t(array):
    return torch.from_numpy(np.array(array))


def _out(value):
    """A tensor, or a tuple/list of tensors, as float64 numpy arrays."""
    if isinstance(value, (tuple, list)):
        return [_out(v) for v in value]
    return value.detach().to("cpu", torch.float64).numpy()


def _call(fn, *args, **kwargs):
    """Run one student function; its failure is recorded, the others still run."""
    counter = [0]
    try:
        with _autograd_trap(counter):
            result = fn(*args, **kwargs)
        return {"ok": True, "value": _out(result), "autograd_calls": counter[0]}
    except Exception as exc:  # the student's error, reported per function
        return {"ok": False, "error": f"{type(exc).__name__}: {str(exc)[:300]}", "autograd_calls": counter[0]}


def grad_units(ns, ce_logits, ce_Y, lin_dout, lin_x, lin_W, tanh_dout, tanh_h,
               bn_dout, bn_xhat, bn_gamma, bn_var_inv, emb_demb, emb_X, vocab_size):
    """Each layer's backward function on the judge's float64 inputs."""
    return {
        "cross_entropy": _call(ns["cross_entropy_backward"], _t(ce_logits), _t(ce_Y)),
        "linear": _call(ns["linear_backward"], _t(lin_dout), _t(lin_x), _t(lin_W)),
        "tanh": _call(ns["tanh_backward"], _t(tanh_dout), _t(tanh_h)),
        "batchnorm": _call(ns["batchnorm_backward"], _t(bn_dout), _t(bn_xhat), _t(bn_gamma), _t(bn_var_inv)),
        "embedding": _call(ns["embedding_backward"], _t(emb_demb), _t(emb_X), int(vocab_size)),
    }


def grad_network(ns, params, Xb, Yb):
    """The student's forward (the stub's fixed one), then manual_backward, all in float64 without autograd."""
    tensors = {k: _t(v) for k, v in params.items()}
    Xb, Yb = _t(Xb), _t(Yb)
    counter = [0]
    with _autograd_trap(counter):
        loss, cache = ns["forward"](tensors, Xb, Yb)
        grads = ns["manual_backward"](cache, tensors, Yb)
    if not isinstance(grads, dict):
        raise TypeError(f"manual_backward returned {type(grads).__name__}, expected a dict of tensors")
    return {"loss": float(loss), "grads": {str(k): _out(v) for k, v in grads.items()},
            "autograd_calls": counter[0]}


def _eval_mode(model):
    """Every layer out of training mode (BatchNorm then uses its running statistics)."""
    for layer in getattr(model, "layers", []):
        if hasattr(layer, "training"):
            layer.training = False


def _weights(model):
    """The model's parameters (in parameters() order) and each BatchNorm's running statistics."""
    params = [_out(p) for p in model.parameters()]
    stats = [[_out(layer.running_mean), _out(layer.running_var)]
             for layer in getattr(model, "layers", []) if hasattr(layer, "running_mean")]
    return params, stats


def wavenet_structure(ns, X, vocab_size, n_embd, n_hidden, block_size, seed):
    """A fresh WaveNet of the judge's sizes: its parameters, moved off their initial values (so that
    every one of them, BatchNorm's gains and biases included, shows in the output), and its EVAL-mode
    logits on the judge's contexts. The judge counts the parameters from their shapes and recomputes
    the logits from them."""
    torch.manual_seed(seed)
    model = ns["build_wavenet"](vocab_size, n_embd, n_hidden, block_size)
    params = list(model.parameters())
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            scale = float(p.abs().mean()) or 1.0  # zeros (BatchNorm's beta) move by 0.5
            p += 0.5 * scale * torch.randn(tuple(p.shape), generator=g, dtype=p.dtype)
    _eval_mode(model)
    with torch.no_grad():
        out = model(_t(X))
    weights, _ = _weights(model)
    return {"n_params": int(sum(p.nelement() for p in params)), "out_shape": list(out.shape),
            "params": weights, "logits": _out(out)}


def flatten_consecutive(ns, x, n):
    """FlattenConsecutive(n) applied to the judge's tensor."""
    return {"out": ns["FlattenConsecutive"](n)(_t(x))}


def batchnorm_3d(ns, x):
    """One training-mode call of BatchNorm1d on a 3-D input: output and running statistics."""
    x = _t(x)
    bn = ns["BatchNorm1d"](x.shape[-1])
    with torch.no_grad():
        out = bn(x)
    return {"out": out, "running_mean": bn.running_mean, "running_var": bn.running_var}


def _train(ns, Xtr, Ytr, steps, batch_size, seed, lr, lr_final, decay_at, block_size, curve_every=1000):
    torch.manual_seed(seed)
    model = ns["build_wavenet"](27, 24, 128, block_size)
    params = model.parameters()
    for p in params:
        p.requires_grad = True
    g = torch.Generator(device=Xtr.device).manual_seed(seed)
    curve = []
    for i in range(steps):
        ix = torch.randint(0, Xtr.shape[0], (batch_size,), generator=g, device=Xtr.device)
        loss = F.cross_entropy(model(Xtr[ix]), Ytr[ix])
        for p in params:
            p.grad = None
        loss.backward()
        step_lr = lr if i < decay_at else lr_final
        with torch.no_grad():
            for p in params:
                p -= step_lr * p.grad
        if i % curve_every == 0 or i == steps - 1:
            curve.append([i, float(loss.detach())])
    return model, curve


def train_wavenet(ns, Xtr, Ytr, Xdev, steps, batch_size, seed, lr, lr_final, decay_at, block_size,
                  device="cpu"):
    """Train build_wavenet() with the grader's loop; return dev logits from evaluate_logits(), and the
    trained parameters and running statistics they must come from."""
    use_cuda = device == "cuda" and torch.cuda.is_available()
    target = torch.device("cuda" if use_cuda else "cpu")
    if not use_cuda:  # small matmuls: a second thread only adds contention (measured 25x slower
        torch.set_num_threads(1)  # per step on a busy 2-core grader, no gain on an idle one)
    if use_cuda:  # the student's layers create their tensors with torch.randn/zeros: put them on the GPU
        torch.set_default_device(target)
    try:
        model, curve = _train(ns, _t(Xtr).to(target), _t(Ytr).to(target), steps, batch_size, seed,
                              lr, lr_final, decay_at, block_size)
        logits = ns["evaluate_logits"](model, _t(Xdev).to(target))
    finally:
        if use_cuda:
            torch.set_default_device("cpu")
    _STATE["model"] = model
    _STATE["device"] = target
    params, stats = _weights(model)  # the judge recomputes the dev logits from them
    return {"dev_logits": logits.detach().float().cpu(), "curve": curve, "device": str(target),
            "params": params, "bn_stats": stats}


def _trained(ns, Xtr, Ytr, block_size):
    """The model train_wavenet trained, or (when that probe did not run) a briefly trained one."""
    if "model" not in _STATE:
        model, _ = _train(ns, _t(Xtr), _t(Ytr), 300, 32, 1, 0.1, 0.1, 300, block_size)
        _STATE["model"], _STATE["device"] = model, torch.device("cpu")
    return _STATE["model"], _STATE["device"]


def eval_single(ns, Xtr, Ytr, X, block_size):
    """evaluate_logits on one example and on a batch holding it, with the trained model's parameters
    and running statistics: the judge recomputes the eval-mode logits from them."""
    model, device = _trained(ns, Xtr, Ytr, block_size)
    X = _t(X).to(device)
    one = ns["evaluate_logits"](model, X[:1])
    batch = ns["evaluate_logits"](model, X)
    params, stats = _weights(model)
    return {"single": one.detach().double().cpu(), "batch": batch.detach().double().cpu(),
            "params": params, "bn_stats": stats}


def samples(ns, Xtr, Ytr, n, seed, block_size):
    """sample_names() from the trained model with the grader's seed, and that model's parameters and
    running statistics (the judge checks that the names are what the model samples)."""
    model, device = _trained(ns, Xtr, Ytr, block_size)
    g = torch.Generator(device=device).manual_seed(seed)
    if device.type == "cuda":
        torch.set_default_device(device)
    try:
        names = ns["sample_names"](model, n, g, block_size)
    finally:
        torch.set_default_device("cpu")
    params, stats = _weights(model)
    return {"names": [str(s)[:100] for s in list(names)[: 2 * n]], "params": params, "bn_stats": stats}
