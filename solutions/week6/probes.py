"""Week-6 probes (run in the sandbox after the student's cells). Procedures only: they build and
train the student's model with the grader's data, seed and budget and return plain data."""

import os
import statistics
import tempfile
import time

import numpy as np
import torch


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


def _batches(data, steps, block, batch, seed):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        ix = torch.randint(len(data) - block - 1, (batch,), generator=g)
        yield (torch.stack([data[i:i + block] for i in ix]), torch.stack([data[i + 1:i + block + 1] for i in ix]))


def _model(ns, vocab_size, config, seed, **switches):
    # One thread: small models gain nothing from two, and on a busy grader (or a --jobs 2 batch)
    # two threads per kernel were measured 25x slower per step than one.
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    return ns["GPTLanguageModel"](vocab_size, **config, **switches).to(_device())


def _val_logits(model, val_x):
    model.eval()
    out = []
    with torch.no_grad():
        for chunk in torch.as_tensor(np.asarray(val_x, dtype=np.int64)).split(128):
            logits, _ = model(chunk.to(_device()))
            out.append(logits.float().cpu())
    return torch.cat(out).numpy()


def _train(model, data, steps, block, seed, lr=3e-3, batch=32):
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for x, y in _batches(data, steps, block, batch, seed):
        _, loss = model(x.to(_device()), y.to(_device()))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.item())


def _load(module, weights, what):
    """Copy judge-chosen weights into a student's module, by parameter name; nothing else changes."""
    params = dict(module.named_parameters())
    missing = sorted(set(weights) - set(params))
    if missing:
        raise ValueError(f"{what} has no parameter {missing[0]!r} of the given architecture")
    with torch.no_grad():
        for name, value in weights.items():
            value = torch.as_tensor(np.asarray(value), dtype=params[name].dtype)
            if tuple(params[name].shape) != tuple(value.shape):
                raise ValueError(f"{what}.{name} has shape {tuple(params[name].shape)}, "
                                 f"expected {tuple(value.shape)}")
            params[name].copy_(value)


def inspect(ns, vocab_size, config, seed, state, idx):
    """get_attention_maps on the given GPT holding the judge's weights (the judge recomputes the maps)."""
    model = _model(ns, vocab_size, config, seed)  # with dropout: maps taken in training mode are random
    _load(model, state, "GPTLanguageModel")
    idx = torch.as_tensor(np.asarray(idx, dtype=np.int64)).to(_device())
    model.eval()
    with torch.no_grad():
        before = model(idx)[0].float().cpu().numpy()
    model.train()  # as a notebook leaves it mid-training: get_attention_maps must switch and switch back
    maps = ns["get_attention_maps"](model, idx)
    maps2 = ns["get_attention_maps"](model, idx)
    training_after = bool(model.training)
    model.eval()
    with torch.no_grad():
        after = model(idx)[0].float().cpu().numpy()
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    return {"maps": torch.as_tensor(maps).double().cpu(), "maps2": torch.as_tensor(maps2).double().cpu(),
            "before": before, "after": after, "training_after": training_after, "hooks_left": hooks}


def plot(ns, maps, tokens):
    """plot_attention on maps the judge chose, then on their first layer alone (a one-layer model's maps,
    where plt.subplots without squeeze=False gives a flat row of axes); returns each PNG and what each saved
    figure draws. Its own probe: a plotting failure costs the figure check only."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    original = Figure.savefig

    def draw(these):
        drawn, scaled = [], []

        def savefig(fig, *args, **kwargs):  # note every image and mesh the saved figure holds
            for ax in fig.axes:
                for artist in [*ax.images, *ax.collections]:
                    arr = artist.get_array() if hasattr(artist, "get_array") else None
                    if arr is not None and len(drawn) < 64:
                        drawn.append(np.ma.filled(np.ma.asarray(arr, dtype=np.float64), np.nan))
                        try:  # the colours the map is drawn with, 0..1
                            scaled.append(np.ma.filled(np.ma.asarray(artist.norm(arr), dtype=np.float64), np.nan))
                        except Exception:  # noqa: BLE001 - no usable norm: the data as drawn
                            scaled.append(drawn[-1])
            return original(fig, *args, **kwargs)

        path = os.path.join(tempfile.mkdtemp(), "attention.png")
        Figure.savefig = savefig
        try:
            ns["plot_attention"](torch.as_tensor(np.asarray(these), dtype=torch.float32), list(tokens), path)
        finally:
            Figure.savefig = original
        with open(path, "rb") as fh:
            return np.frombuffer(fh.read(), dtype=np.uint8), drawn, scaled

    png, drawn, scaled = draw(maps)
    try:
        _, drawn_one, _ = draw(np.asarray(maps)[:1])
        one_error = ""
    except Exception as exc:  # noqa: BLE001 - reported to the figure check, which says what failed
        drawn_one, one_error = [], f"{type(exc).__name__}: {exc}"[:300]
    return {"png": png, "drawn": drawn, "scaled": scaled, "drawn_one_layer": drawn_one, "one_layer_error": one_error}


def rope(ns, head_size, T, q, k, x, other_base):
    cos, sin = ns["rope_cache"](head_size, T)
    q = torch.as_tensor(q, dtype=torch.float32).expand(T, head_size)
    k = torch.as_tensor(k, dtype=torch.float32).expand(T, head_size)
    apply = ns["apply_rope"]
    out = {"rq": apply(q, cos, sin), "rk": apply(k, cos, sin),
           "rx": apply(torch.as_tensor(x, dtype=torch.float32), cos, sin), "cos": cos, "sin": sin}
    try:  # `base` honoured, not only its default; a rope_cache without it costs only the table check
        out["cos_other_base"], out["sin_other_base"] = ns["rope_cache"](head_size, T, other_base)
    except Exception as exc:  # noqa: BLE001 - reported to rope_norm_and_identity
        out["other_base_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def rope_attention(ns, n_embd, n_head, block_size, seed, x, qkv_w, proj_w, proj_b):
    """The student's attention (rope=True) holding the judge's weights, on the judge's input; and apply_rope
    of the basis vectors, laid out as the attention's heads are (1, head_size, T, head_size): the rotation
    at every position, which the judge verifies is a RoPE before checking the attention against it."""
    torch.manual_seed(seed)
    attn = ns["CausalSelfAttention"](n_embd, n_head, block_size, 0.0, True).eval()
    _load(attn, {"qkv.weight": qkv_w, "proj.weight": proj_w, "proj.bias": proj_b}, "CausalSelfAttention")
    hs = n_embd // n_head
    cos, sin = ns["rope_cache"](hs, block_size)
    with torch.no_grad():
        y = attn(torch.as_tensor(x, dtype=torch.float32))
        basis = ns["apply_rope"](torch.eye(hs)[None, :, None, :].repeat(1, 1, block_size, 1), cos, sin)
    return {"y": y, "basis": basis}


def swiglu(ns, n_embd, seed, x, w1, w2, w3, given_hidden):
    """The student's SwiGLU holding the judge's weights (top-left blocks at the module's hidden size), built
    with its default hidden size and again with the one the judge gives (`hidden=`, not only the default)."""
    w1, w2, w3 = np.asarray(w1), np.asarray(w2), np.asarray(w3)

    def run(**kwargs):
        torch.manual_seed(seed)
        mod = ns["SwiGLU"](n_embd, **kwargs).eval()
        hidden = int(mod.w1.weight.shape[0])
        if hidden > np.shape(w1)[0]:
            raise ValueError(f"SwiGLU's hidden size {hidden} is over {np.shape(w1)[0]}")
        _load(mod, {"w1.weight": w1[:hidden, :n_embd], "w3.weight": w3[:hidden, :n_embd],
                    "w2.weight": w2[:n_embd, :hidden]}, "SwiGLU")
        with torch.no_grad():
            return mod(torch.as_tensor(x, dtype=torch.float32)), hidden, sum(p.numel() for p in mod.parameters())

    def drops():
        torch.manual_seed(seed)
        mod = ns["SwiGLU"](n_embd, dropout=0.5).train()  # its dropout must drop in training mode
        with torch.no_grad():
            xt = torch.as_tensor(x, dtype=torch.float32)
            return [mod(xt), mod(xt)]

    y, hidden, params = run()
    out = {"y": y, "hidden": hidden, "params": params}
    # The arguments beyond the default: a failure there is reported to swiglu_forward, never taking the
    # default-size answers (and the parameter count) with it.
    for key, build in (("given", lambda: run(hidden=int(given_hidden))[:2]), ("drop", drops)):
        try:
            out[key] = build()
        except Exception as exc:  # noqa: BLE001 - the student's error, said by the check
            out[f"{key}_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return out


def compare(ns, vocab_size, config, seed, steps, train_ids, val_x):
    """Vanilla and RoPE+SwiGLU models, same seed and batches, steps interleaved so both are timed
    under the same conditions; returns per-step times and val logits after equal steps."""
    data = torch.as_tensor(np.asarray(train_ids, dtype=np.int64))
    models = {"vanilla": _model(ns, vocab_size, config, seed),
              "modified": _model(ns, vocab_size, config, seed, rope=True, swiglu=True)}
    opts = {k: torch.optim.AdamW(m.parameters(), lr=3e-3) for k, m in models.items()}
    times = {k: [] for k in models}
    for m in models.values():
        m.train()
    for x, y in _batches(data, steps, config["block_size"], 32, seed):
        x, y = x.to(_device()), y.to(_device())
        for name, model in models.items():
            if _device() == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            _, loss = model(x, y)
            opts[name].zero_grad(set_to_none=True)
            loss.backward()
            opts[name].step()
            if _device() == "cuda":
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t)
    out = {}
    for name, model in models.items():
        ms = statistics.median(times[name][20:] or times[name]) * 1000
        out[name] = {"ms_per_step": ms, "tokens_per_s": 32 * config["block_size"] / (ms / 1000),
                     "params": sum(p.numel() for p in model.parameters()), "logits": _val_logits(model, val_x)}
    return out


def load_corpus(ns, path):
    """The notebook's load_corpus(DATASET): what it returned, as its length and sha256."""
    import hashlib

    text = ns["load_corpus"](path)
    if not isinstance(text, str):
        raise TypeError(f"load_corpus returned {type(text).__name__}, not the text (str)")
    return {"length": len(text), "sha256": hashlib.sha256(text.encode("utf-8")).hexdigest()}


def specialist(ns, vocab_size, config, seed, steps, train_ids, val_x, n_samples, sample_len):
    data = torch.as_tensor(np.asarray(train_ids, dtype=np.int64))
    model = _model(ns, vocab_size, config, seed)
    _train(model, data, steps, config["block_size"], seed)
    logits = _val_logits(model, val_x)
    samples = []
    for i in range(n_samples):
        torch.manual_seed(seed + i)
        start = torch.as_tensor(np.asarray(train_ids[:1], dtype=np.int64))[None, :].to(_device())
        samples.append(model.generate(start, sample_len)[0, 1:].cpu().numpy())
    return {"logits": logits, "samples": samples}
