"""SANDBOX side of week 5: procedures that call the student's code and return plain data.

No expected answers and no held-out targets live here: the judge sends inputs (and, for the
training check, the training split and held-out input windows only) and computes every reference
itself. Where a check recomputes a module from its weights, the probe returns them: found through
the names the contract fixes (Head.key/query/value, MultiHeadAttention.heads/proj) and otherwise by
module type (nn.Embedding, nn.LayerNorm, nn.Linear), so that any layout of the lecture's model works.
"""

import time

import numpy as np
import torch
from torch import nn

# Models this small gain little from a second thread, while spinning OpenMP threads slow to a crawl
# when the grading machine is busy (measured: 1,000 steps in 42 s on one thread at load 15; 100 steps
# did not finish in 180 s on two): one thread keeps every probe's budget predictable.
torch.set_num_threads(1)


def _w(param):
    """A parameter as a plain tensor (the answer writer takes tensors, not nn.Parameter)."""
    return param.detach().clone() if param is not None else None


def _t(a, dtype=None):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def _spread_weights(module, seed):
    """Judge-seeded weights of a useful size: at the lecture's std-0.02 init every attention is nearly
    uniform and a wrong scale, mask or norm changes the output by less than float32 noise."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            scale = p.shape[-1] ** -0.5 if p.dim() > 1 else 0.5
            p.copy_(torch.randn(p.shape, generator=g) * scale + (0.0 if p.dim() > 1 else 1.0))


def _linear(m):
    return {"w": _w(m.weight), "b": _w(m.bias)}


def _norm(m):
    return {"w": _w(m.weight), "b": _w(m.bias), "eps": float(m.eps)}


def _one(module, kind, what):
    found = _of_type(module, kind)
    if len(found) != 1:
        raise ValueError(f"{what} should hold one {kind.__name__}, found {len(found)}")
    return found[0]


def _of_type(module, kind, inside=()):
    skip = {id(m) for outer in inside for m in outer.modules()}
    return [m for m in module.modules() if isinstance(m, kind) and id(m) not in skip]


def _block_weights(ns, block):
    """A Block's weights in the lecture's order: ln1, attention heads, proj, ln2, feed-forward."""
    mha = _of_type(block, ns["MultiHeadAttention"])
    ff = _of_type(block, ns["FeedForward"])
    norms = [block.ln1, block.ln2] if isinstance(getattr(block, "ln1", None), nn.LayerNorm) and \
        isinstance(getattr(block, "ln2", None), nn.LayerNorm) else _of_type(block, nn.LayerNorm)
    return {"attention": [_mha_weights(m) for m in mha], "feedforward": [_ff_weights(m) for m in ff],
            "norms": [_norm(m) for m in norms]}


def _mha_weights(mha):
    return {"heads": [{"wq": _w(h.query.weight), "wk": _w(h.key.weight), "wv": _w(h.value.weight)} for h in mha.heads],
            "proj": _linear(mha.proj)}


def _ff_weights(ff):
    return {"linears": [_linear(m) for m in _of_type(ff, nn.Linear)]}


def _gpt_weights(ns, model, vocab_size, block_size):
    """Everything the judge needs to recompute the lecture's GPT from this model's weights."""
    blocks = _of_type(model, ns["Block"])
    outer = [m for m in _of_type(model, nn.Module, inside=blocks)]
    embeddings = [m for m in outer if isinstance(m, nn.Embedding)]
    position = [_w(m.weight) for m in embeddings if m.num_embeddings == block_size]
    position += [_w(p) for p in model.parameters(recurse=False) if tuple(p.shape[:1]) == (block_size,) and p.dim() == 2]
    return {"token": [_w(m.weight) for m in embeddings if m.num_embeddings == vocab_size],
            "position": position,
            "blocks": [_block_weights(ns, b) for b in blocks],
            "norms": [_norm(m) for m in outer if isinstance(m, nn.LayerNorm)],
            "heads": [_linear(m) for m in outer if isinstance(m, nn.Linear) and m.out_features == vocab_size]}


def encode_decode(ns, text):
    """The student's encode/decode over their own stoi/itos, plus their vocabulary in id order."""
    stoi, itos = ns["stoi"], ns["itos"]
    ids = ns["encode"](text, stoi)
    return {"ids": np.asarray([int(i) for i in ids], dtype=np.int64),
            "decoded": ns["decode"](ids, itos),
            "chars": "".join(itos[i] for i in range(len(itos)))}


def train_val_split(ns, splits):
    out = []
    for s in splits:
        kwargs = {"frac": s["frac"]} if "frac" in s else {}
        train, val = ns["train_val_split"](torch.arange(s["n"]), **kwargs)
        out.append({"train": _t(train), "val": _t(val)})
    return out


def get_batch(ns, n, block_size, batch_size, seed):
    """Windows of arange(n): each token's value is its position, so shifts and ranges show."""
    data = torch.arange(n)
    x, y = ns["get_batch"](data, block_size, batch_size, torch.Generator().manual_seed(seed))
    x2, _ = ns["get_batch"](data, block_size, batch_size, torch.Generator().manual_seed(seed))
    return {"x": x, "y": y, "x_again": x2, "dtypes": [str(x.dtype), str(y.dtype)]}


def get_batch_range(ns, n, block_size, batch_size, seeds):
    data = torch.arange(n)
    return [ns["get_batch"](data, block_size, batch_size, torch.Generator().manual_seed(s)) for s in seeds]


def _table_forward(table, record=None):
    """A stand-in forward: the logits after token t are table[t] (the judge's), for every position."""
    table = _t(table, torch.float32)

    def forward(idx, targets=None):
        if record is not None:
            record.append(idx.detach().clone())
        return table[idx], None

    return forward


def bigram(ns, vocab_size, idx, targets, seed, chain, prompt):
    """Logits from a table the judge knows (set into the model's one embedding), the loss, and
    generate with a stand-in forward whose next token is certain (token t -> t + 1)."""
    torch.manual_seed(seed)
    model = ns["BigramLanguageModel"](vocab_size)
    table = _one(model, nn.Embedding, "BigramLanguageModel")
    with torch.no_grad():
        table.weight.copy_(torch.randn(table.weight.shape, generator=torch.Generator().manual_seed(seed)))
    logits, loss = model(_t(idx, torch.long), _t(targets, torch.long))
    _, no_loss = model(_t(idx, torch.long))
    model.forward = _table_forward(chain)
    return {"logits": logits, "table": table.weight, "loss": float(loss), "loss_without_targets_is_none": no_loss is None,
            "generated": model.generate(_t(prompt, torch.long), 5)}


def head_sdpa(ns, x, n_embd, head_size, block_size, seed):
    """A fresh Head on judge-sent inputs; its own weights come back so the judge can recompute."""
    torch.manual_seed(seed)
    head = ns["Head"](n_embd, head_size, block_size, 0.0).eval()
    with torch.no_grad():
        out = head(_t(x, torch.float32))
    return {"out": out, "wq": _w(head.query.weight), "wk": _w(head.key.weight), "wv": _w(head.value.weight)}


def head_weights(ns, wq, wk, T):
    """Inputs are one-hot positions and value = identity, so the output IS the attention matrix."""
    head = ns["Head"](T, T, T, 0.0).eval()
    with torch.no_grad():
        head.query.weight.copy_(_t(wq, torch.float32))
        head.key.weight.copy_(_t(wk, torch.float32))
        head.value.weight.copy_(torch.eye(T))
        return head(torch.eye(T)[None])[0]


def multihead(ns, x, n_embd, num_heads, head_size, block_size, seed):
    torch.manual_seed(seed)
    mha = ns["MultiHeadAttention"](n_embd, num_heads, head_size, block_size, 0.0).eval()
    with torch.no_grad():
        out = mha(_t(x, torch.float32))
    return {"out": out, **_mha_weights(mha)}


def feedforward(ns, x, n_embd, seed):
    torch.manual_seed(seed)
    ff = ns["FeedForward"](n_embd, 0.0).eval()
    _spread_weights(ff, seed)
    with torch.no_grad():
        return {"out": ff(_t(x, torch.float32)), **_ff_weights(ff)}


def block(ns, x, n_embd, n_head, block_size, seed):
    torch.manual_seed(seed)
    blk = ns["Block"](n_embd, n_head, block_size, 0.0).eval()
    _spread_weights(blk, seed)
    with torch.no_grad():
        return {"out": blk(_t(x, torch.float32)), **_block_weights(ns, blk)}


def _gpt(ns, vocab_size, config, seed):
    torch.manual_seed(seed)
    return ns["GPTLanguageModel"](vocab_size, **config)


def causality(ns, vocab_size, config, seed, a, b):
    """Logits for judge-chosen pairs of inputs that differ only from some position on."""
    model = _gpt(ns, vocab_size, config, seed).eval()
    _spread_weights(model, seed)
    with torch.no_grad():
        return {"a": model(_t(a, torch.long))[0], "b": model(_t(b, torch.long))[0],
                "weights": _gpt_weights(ns, model, vocab_size, config["block_size"])}


def gpt_forward(ns, vocab_size, seed, cases, count_configs):
    """Logits and loss of models of several shapes, with their weights; parameter counts of others."""
    out = []
    for case in cases:
        model = _gpt(ns, vocab_size, case["config"], seed).eval()
        _spread_weights(model, seed)
        with torch.no_grad():
            logits, loss = model(_t(case["idx"], torch.long), _t(case["targets"], torch.long))
            _, no_loss = model(_t(case["idx"], torch.long))
        out.append({"logits": logits, "loss": float(loss), "loss_without_targets_is_none": no_loss is None,
                    "weights": _gpt_weights(ns, model, vocab_size, case["config"]["block_size"])})
    counts = [sum(p.numel() for p in _gpt(ns, vocab_size, c, 0).parameters()) for c in count_configs]
    return {"cases": out, "counts": counts}


def dropout(ns, x, n_embd, n_head, block_size, p, seed):
    """Each module built with dropout p and with 0: two forwards in train() mode and one in eval()."""
    x = _t(x, torch.float32)
    hs = n_embd // n_head
    build = {"head": lambda q: ns["Head"](n_embd, hs, block_size, q),
             "multihead": lambda q: ns["MultiHeadAttention"](n_embd, n_head, hs, block_size, q),
             "feedforward": lambda q: ns["FeedForward"](n_embd, q),
             "block": lambda q: ns["Block"](n_embd, n_head, block_size, q)}
    out = {}
    for name, make in build.items():
        runs = {}
        for label, q in (("p", p), ("zero", 0.0)):
            torch.manual_seed(seed)
            module = make(q).train()
            with torch.no_grad():
                first, second = module(x), module(x)
                module.eval()
                runs[label] = {"train": [first, second], "eval": module(x)}
        if name == "feedforward":
            runs["weights"] = _ff_weights(module)
        out[name] = runs
    # The whole GPT built with dropout p must pass it on to its blocks (its logits then vary in train()).
    idx = torch.randint(0, 20, (x.shape[0], x.shape[1]), generator=torch.Generator().manual_seed(seed))
    runs = {}
    for label, q in (("p", p), ("zero", 0.0)):
        config = {"n_embd": n_embd, "n_head": n_head, "n_layer": 2, "block_size": block_size, "dropout": q}
        model = _gpt(ns, 20, config, seed).train()
        with torch.no_grad():
            first, second = model(idx)[0], model(idx)[0]
            model.eval()
            runs[label] = {"train": [first, second], "eval": model(idx)[0]}
    out["gpt"] = runs
    return out


def generate(ns, vocab_size, config, seed, idx, new_tokens):
    model = _gpt(ns, vocab_size, config, seed).eval()
    _spread_weights(model, seed)
    idx = _t(idx, torch.long)
    runs = {}
    for name, kwargs, sample_seed in (("sampled", {}, 1), ("sampled_again", {}, 1),
                                      ("greedy_1", {"top_k": 1}, 2), ("greedy_2", {"top_k": 1}, 3)):
        torch.manual_seed(sample_seed)
        runs[name] = model.generate(idx.clone(), new_tokens, **kwargs)
    runs["weights"] = _gpt_weights(ns, model, vocab_size, config["block_size"])
    return runs


def sampling(ns, vocab_size, config, seed, shared, chain, prompt, new_tokens, runs):
    """generate() with a stand-in forward: draws from logits the judge chose (each run's temperature,
    top-k and seed), and the contexts generate passed to the model on a chain table."""
    model = _gpt(ns, vocab_size, config, seed).eval()
    prompt = _t(prompt, torch.long)
    draws = []
    model.forward = _table_forward(np.tile(shared, (vocab_size, 1)))
    for run in runs:
        torch.manual_seed(run["seed"])
        kwargs = {"temperature": run["temperature"]} | ({"top_k": run["top_k"]} if run["top_k"] is not None else {})
        draws.append(model.generate(prompt.clone(), new_tokens, **kwargs))
    contexts = []
    model.forward = _table_forward(chain, contexts)
    torch.manual_seed(seed)
    chained = model.generate(prompt.clone(), 2 * config["block_size"])
    block_size = config["block_size"]
    seen = torch.full((len(contexts), prompt.shape[0], block_size + 1), -1, dtype=torch.long)
    for i, c in enumerate(contexts):  # at most block_size + 1 columns: a context longer than that shows
        seen[i, :, : min(c.shape[1], block_size + 1)] = c[:, : block_size + 1]
    return {"draws": draws, "chained": chained, "contexts": seen,
            "context_lengths": [int(c.shape[1]) for c in contexts]}


def full_val_loss(ns, vocab_size, config, seed, data, windows):
    """The student's full_val_loss on a model left in train() mode with dropout, and that model's
    eval-mode logits on the windows the judge expects it to average over."""
    model = _gpt(ns, vocab_size, config, seed)
    _spread_weights(model, seed)
    model.train()
    loss = ns["full_val_loss"](model, _t(data, torch.long), config["block_size"])
    training_after = model.training
    model.eval()
    with torch.no_grad():
        logits = model(_t(windows, torch.long))[0]
    return {"loss": float(loss), "training_after": bool(training_after), "logits": logits}


def train_and_score(ns, source, vocab_size, config, val_x, start, sample_len, sample_seed,
                    train=None, steps=0, batch_size=32, lr=1e-3, seed=1337, model_name="model"):
    """Train the student's GPT with the grader's own loop (source="train"), or take the model the
    notebook trained (source="notebook"); return logits at the last position of the judge's windows
    (the only position whose target no window holds) and samples."""
    t0 = time.perf_counter()
    curve = []
    if source == "train":
        model = _gpt(ns, vocab_size, config, seed)
        data = _t(train, torch.long)
        gen = torch.Generator().manual_seed(seed)
        block_size = config["block_size"]
        opt = torch.optim.AdamW(model.parameters(), lr=lr)
        model.train()
        for step in range(steps):
            ix = torch.randint(len(data) - block_size, (batch_size,), generator=gen)
            x = torch.stack([data[i:i + block_size] for i in ix])
            y = torch.stack([data[i + 1:i + block_size + 1] for i in ix])
            _, loss = model(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 100 == 0 or step == steps - 1:
                curve.append([step, float(loss)])
    else:
        model = ns[model_name]
    train_seconds = time.perf_counter() - t0
    model.eval()
    device = next(model.parameters()).device
    val_x = _t(val_x, torch.long)
    chunks = []
    with torch.no_grad():
        for i in range(0, len(val_x), 512):
            chunks.append(model(val_x[i:i + 512].to(device))[0][:, -1, :].float().cpu())
        torch.manual_seed(sample_seed)
        samples = model.generate(_t(start, torch.long).to(device), sample_len).cpu()
    return {"val_logits": torch.cat(chunks), "samples": samples, "curve": curve,
            "train_seconds": train_seconds, "device": str(device)}
