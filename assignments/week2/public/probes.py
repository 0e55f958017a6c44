"""SANDBOX: week 2 probes. Each calls the student's functions with the judge's inputs and returns
plain data. They hold no expected answers; the canonical vocabulary below is an input, not a result."""

import string

import torch

# Probes use this vocabulary rather than the student's build_vocab, so that one bug is not counted
# by every check (build_vocab has its own check).
STOI = {".": 0, **{c: i + 1 for i, c in enumerate(string.ascii_lowercase)}}


def _tensor(value):
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def vocab(ns, words):
    stoi, itos = ns["build_vocab"](list(words))
    return {
        "stoi": {str(k): int(v) for k, v in dict(stoi).items()},
        "itos": {str(int(k)): str(v) for k, v in dict(itos).items()},
    }


def counts(ns, words):
    n = _tensor(ns["bigram_counts"](list(words), dict(STOI)))
    return {"counts": n, "dtype": str(n.dtype)}


def probs(ns, counts):
    n = torch.from_numpy(counts)
    p1 = _tensor(ns["counts_to_probs"](n.clone(), smoothing=1.0))
    p0 = _tensor(ns["counts_to_probs"](n.clone(), smoothing=0.0))
    return {"p1": p1, "p0": p0, "dtype": str(p1.dtype)}


def nll(ns, probs, words, unseen):
    p = torch.from_numpy(probs)
    avg_nll = ns["avg_nll"]
    return {
        "all": float(avg_nll(p, list(words), dict(STOI))),
        "unseen": float(avg_nll(p, [unseen], dict(STOI))),
    }


def pipeline_nll(ns, words, unseen):
    """The student's own counts -> probs -> NLL chain, smoothing 1."""
    p = ns["counts_to_probs"](ns["bigram_counts"](list(words), dict(STOI)), smoothing=1.0)
    avg_nll = ns["avg_nll"]
    return {
        "all": float(avg_nll(p, list(words), dict(STOI))),
        "unseen": float(avg_nll(p, [unseen], dict(STOI))),
    }


def dataset(ns, words):
    xs, ys = ns["make_bigram_dataset"](list(words), dict(STOI))
    xs, ys = _tensor(xs), _tensor(ys)
    return {"xs": xs, "ys": ys, "dtype": str(xs.dtype)}


def net_loss(ns, w, xs, ys, regs):
    out = []
    for reg in regs:
        W = torch.tensor(w, dtype=torch.float32, requires_grad=True)
        loss = ns["bigram_net_loss"](W, torch.from_numpy(xs), torch.from_numpy(ys), reg=float(reg))
        loss.backward()
        out.append({"loss": float(loss.item()), "grad": W.grad.detach().clone()})
    return out


def train(ns, xs, ys, steps, lr, reg, seed):
    W = ns["train_bigram_net"](
        torch.from_numpy(xs),
        torch.from_numpy(ys),
        steps=int(steps),
        lr=float(lr),
        reg=float(reg),
        seed=int(seed),
    )
    return {"w": _tensor(W).detach().to(torch.float64)}


def sampler(ns, probs, n, seed):
    g = torch.Generator().manual_seed(int(seed))
    return [str(s) for s in ns["sample_names"](torch.from_numpy(probs), int(n), g)]


def sampler_seeds(ns, probs, n, seeds):
    """The same sampler under several seeds: a seeded generator must fix the draws."""
    p = torch.from_numpy(probs)
    draws = [[str(s) for s in ns["sample_names"](p, int(n), torch.Generator().manual_seed(int(seed)))]
             for seed in seeds]
    return dict(zip(("first", "same", "other"), draws, strict=True))


def own_samples(ns, words, n, seed):
    """Samples from the student's own model (their counts and probs), for the quality metrics."""
    p = ns["counts_to_probs"](ns["bigram_counts"](list(words), dict(STOI)), smoothing=1.0)
    g = torch.Generator().manual_seed(int(seed))
    return [str(s) for s in ns["sample_names"](p, int(n), g)]
