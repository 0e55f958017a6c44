"""SANDBOX side of week 5: procedures that call the student's code and return plain data.

No expected answers and no held-out targets live here: the judge sends inputs (and, for the
training check, the training split and the val *inputs* only) and computes every reference itself.
"""

import time

import numpy as np
import torch

# Models this small gain little from a second thread, while spinning OpenMP threads slow to a crawl
# when the grading machine is busy (measured: 1,000 steps in 42 s on one thread at load 15; 100 steps
# did not finish in 180 s on two): one thread keeps every probe's budget predictable.
torch.set_num_threads(1)


def _w(param):
    """A parameter as a plain tensor (the answer writer takes tensors, not nn.Parameter)."""
    return param.detach().clone() if param is not None else None


def _t(a, dtype=None):
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def encode_decode(ns, text):
    """The student's encode/decode over their own stoi/itos, plus their vocabulary in id order."""
    stoi, itos = ns["stoi"], ns["itos"]
    ids = ns["encode"](text, stoi)
    return {"ids": np.asarray([int(i) for i in ids], dtype=np.int64),
            "decoded": ns["decode"](ids, itos),
            "chars": "".join(itos[i] for i in range(len(itos)))}


def train_val_split(ns, n):
    train, val = ns["train_val_split"](torch.arange(n))
    return {"train": _t(train), "val": _t(val)}


def get_batch(ns, n, block_size, batch_size, seed):
    """Windows of arange(n): each token's value is its position, so shifts and ranges show."""
    data = torch.arange(n)
    x, y = ns["get_batch"](data, block_size, batch_size, torch.Generator().manual_seed(seed))
    x2, _ = ns["get_batch"](data, block_size, batch_size, torch.Generator().manual_seed(seed))
    return {"x": x, "y": y, "x_again": x2, "dtypes": [str(x.dtype), str(y.dtype)]}


def bigram(ns, vocab_size, idx, targets, seed):
    torch.manual_seed(seed)
    model = ns["BigramLanguageModel"](vocab_size)
    logits, loss = model(_t(idx, torch.long), _t(targets, torch.long))
    _, no_loss = model(_t(idx, torch.long))
    out = model.generate(_t(idx, torch.long)[:, :2], 5)
    return {"logits": logits, "loss": float(loss), "loss_without_targets_is_none": no_loss is None,
            "generated_shape": list(out.shape)}


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
    return {"out": out,
            "heads": [{"wq": _w(h.query.weight), "wk": _w(h.key.weight), "wv": _w(h.value.weight)} for h in mha.heads],
            "proj_w": _w(mha.proj.weight), "proj_b": _w(mha.proj.bias)}


def feedforward(ns, x, n_embd, seed, position):
    torch.manual_seed(seed)
    ff = ns["FeedForward"](n_embd, 0.0).eval()
    x = _t(x, torch.float32)
    bumped = x.clone()
    bumped[:, position] += 1.0
    with torch.no_grad():
        return {"out": ff(x), "out_bumped": ff(bumped), "out_double": ff(2 * x)}


def block(ns, x, n_embd, n_head, block_size, seed, shift, position):
    torch.manual_seed(seed)
    blk = ns["Block"](n_embd, n_head, block_size, 0.0).eval()
    x = _t(x, torch.float32)
    changed = x.clone()
    changed[:, position:] = torch.randn_like(changed[:, position:])
    with torch.no_grad():
        return {"out": blk(x), "out_shifted": blk(x + shift), "out_future_changed": blk(changed)}


def _gpt(ns, vocab_size, config, seed):
    torch.manual_seed(seed)
    return ns["GPTLanguageModel"](vocab_size, **config)


def causality(ns, vocab_size, config, seed, a, b):
    """Logits for judge-chosen pairs of inputs that differ only from some position on."""
    model = _gpt(ns, vocab_size, config, seed).eval()
    with torch.no_grad():
        return {"a": model(_t(a, torch.long))[0], "b": model(_t(b, torch.long))[0]}


def dropout(ns, vocab_size, config, seed, idx):
    model = _gpt(ns, vocab_size, config, seed)
    idx = _t(idx, torch.long)
    with torch.no_grad():
        model.eval()
        eval_pair = [model(idx)[0], model(idx)[0]]
        model.train()
        train_pair = [model(idx)[0], model(idx)[0]]
    return {"eval": eval_pair, "train": train_pair}


def generate(ns, vocab_size, config, seed, idx, new_tokens):
    model = _gpt(ns, vocab_size, config, seed).eval()
    idx = _t(idx, torch.long)
    runs = {}
    for name, kwargs, sample_seed in (("sampled", {}, 1), ("sampled_again", {}, 1),
                                      ("greedy_1", {"top_k": 1}, 2), ("greedy_2", {"top_k": 1}, 3)):
        torch.manual_seed(sample_seed)
        runs[name] = model.generate(idx.clone(), new_tokens, **kwargs)
    return runs


def param_count(ns, vocab_size, configs):
    return [sum(p.numel() for p in _gpt(ns, vocab_size, c, 0).parameters()) for c in configs]


def train_and_score(ns, source, vocab_size, config, val_x, start, sample_len, sample_seed,
                    train=None, steps=0, batch_size=32, lr=1e-3, seed=1337, model_name="model"):
    """Train the student's GPT with the grader's own loop (source="train"), or take the model the
    notebook trained (source="notebook"); return logits on the judge's val windows and samples."""
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
            chunks.append(model(val_x[i:i + 512].to(device))[0].float().cpu())
        torch.manual_seed(sample_seed)
        samples = model.generate(_t(start, torch.long).to(device), sample_len).cpu()
    return {"val_logits": torch.cat(chunks), "samples": samples, "curve": curve,
            "train_seconds": train_seconds, "device": str(device)}
