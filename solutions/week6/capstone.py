"""Week-6 helpers shared by plan.py and the checks (TRUSTED side; never sent to the sandbox).

The declared track is read from the notebook as data (an `ast` parse of the code cells), and every
split, window and baseline is made here, so the plan and the judge agree on them by construction.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np

from grader.judge.heldout import last_position_windows

TRACKS = ("specialist", "inspector", "architect")
CONFIG = {"n_embd": 32, "n_head": 4, "n_layer": 3, "block_size": 32, "dropout": 0.0}
INSPECT_TEXT = "ROMEO:\nBut soft, what li"  # 24 characters whose attention the inspector maps
MIN_CORPUS_BYTES = 50_000
MAX_CORPUS_BYTES = 20 * 2**20
HELDOUT = "heldout/shakespeare.txt"  # fixtures/data: judge-only plays (never in a week's data)
MAPS_CHECKS = ("maps_shape", "maps_rows_sum_to_one", "maps_causal", "maps_match_model", "maps_no_side_effects")
VAL_SEED = 90217  # places the architect's scored windows; secret (the hidden suite's)


def notebook_sources(path: Path | None) -> list[str]:
    """Code-cell sources of a notebook file, read as JSON (never executed)."""
    from grader.fetch.notebook import code_cell_sources

    return code_cell_sources(path)


def declared(sources: list[str]) -> tuple[str | None, str | None]:
    """The last top-level `TRACK = "..."` and `DATASET = "..."` string assignments, if any."""
    found: dict[str, str | None] = {"TRACK": None, "DATASET": None}
    for src in sources:
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name in found:
                    value = node.value
                    found[name] = value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    track = found["TRACK"].strip().lower() if found["TRACK"] else None
    return track, found["DATASET"]


def track_problem(track: str | None) -> str:
    if track is None:
        return ('no track declared: set TRACK = "specialist", "inspector" or "architect" in the '
                "track cell (a plain string, at the top level of the cell)")
    if track not in TRACKS:
        return f'unknown track {track!r}: choose "specialist", "inspector" or "architect"'
    return ""


def read_corpus(submission: Path | None, notebook: Path | None, dataset: str | None) -> tuple[str | None, str]:
    """The specialist's corpus as text, or (None, a student-facing reason)."""
    if not dataset:
        return None, 'no DATASET declared: set DATASET = "your_corpus.txt" (a file beside the notebook)'
    if submission is None or notebook is None:
        return None, "the submission's files are not available"
    root = Path(submission).resolve()
    path = (Path(notebook).parent / dataset)
    if ".." in Path(dataset).parts or Path(dataset).is_absolute():
        return None, f"DATASET {dataset!r} must be a file inside your repository, beside the notebook"
    if path.is_symlink() or not path.is_file() or root not in path.resolve().parents:
        return None, f"DATASET file {dataset!r} is not committed beside the notebook (or is a link)"
    size = path.stat().st_size
    if size > MAX_CORPUS_BYTES:
        return None, f"{dataset} is {size / 2**20:.1f} MiB, over the {MAX_CORPUS_BYTES // 2**20} MiB limit"
    try:
        return path.read_bytes().decode("utf-8"), ""
    except UnicodeDecodeError as exc:
        return None, f"{dataset} is not UTF-8 text (byte {exc.start})"


def vocab(text: str) -> list[str]:
    return sorted(set(text))


def encode(text: str, chars: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(chars)}
    return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))


def split(ids: np.ndarray, frac: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    n = int(frac * len(ids))
    return ids[:n], ids[n:]


def val_windows(val: np.ndarray, block: int, max_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping windows spread evenly over the held-out part: inputs (N, T), targets (N, T)."""
    count = (len(val) - 1) // block
    starts = np.linspace(0, (count - 1) * block, num=min(count, max_windows)).astype(np.int64) // block * block
    x = np.stack([val[s:s + block] for s in starts])
    y = np.stack([val[s + 1:s + block + 1] for s in starts])
    return x, y


def cross_entropy(logits: np.ndarray, targets: np.ndarray) -> float:
    """Mean NLL (nats) of integer targets under logits (..., V), in float64."""
    z = logits.astype(np.float64).reshape(-1, logits.shape[-1])
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(z)), targets.reshape(-1)].mean())


def bigram_nll(train: np.ndarray, x: np.ndarray, y: np.ndarray, vocab_size: int) -> float:
    """Add-one bigram of the training ids, scored on the held-out (x -> y) pairs."""
    counts = np.ones((vocab_size, vocab_size))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    logp = np.log(counts / counts.sum(axis=1, keepdims=True))
    return float(-logp[x.reshape(-1), y.reshape(-1)].mean())


def shakespeare_overlap(text: str, shakespeare: str, window: int = 40, max_windows: int = 2000) -> float:
    """Share of the corpus's 40-char windows (spread evenly) found verbatim in the course corpus."""
    if len(text) < window:
        return 0.0
    starts = np.linspace(0, len(text) - window, num=min(max_windows, len(text) - window + 1)).astype(int)
    return float(np.mean([text[s:s + window] in shakespeare for s in starts]))


def heldout_windows(data_dir: Path, chars: list[str], block: int, max_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows (N, block) over the held-out plays and the targets of their last positions (N,): the only
    position scored, since no window sent holds it (grader.judge.heldout); the sandbox never has the text."""
    ids = encode((Path(data_dir) / HELDOUT).read_text(encoding="utf-8"), chars)
    return last_position_windows(ids, block, VAL_SEED, max_windows=max_windows)


def shakespeare_data(data_dir: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    text = (Path(data_dir) / "shakespeare.txt").read_text(encoding="utf-8")
    chars = vocab(text)
    train, val = split(encode(text, chars))
    return chars, train, val


def reference_attention(state: dict[str, np.ndarray], idx: np.ndarray, n_head: int,
                        with_logits: bool = False):
    """The given (vanilla, pre-norm) GPT's attention weights for idx (T,), from its weights, float64;
    with_logits: (maps, logits (T, V)).

    Lets the judge confirm that the maps a student returns are the model's own attention, and that the
    model still computes the same logits after its maps were taken.
    """
    def layer_norm(x, w, b):
        mu = x.mean(-1, keepdims=True)
        var = x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-5) * w + b

    def gelu_free_ffwd(x, prefix):
        h = np.maximum(0.0, x @ state[f"{prefix}.net.0.weight"].T + state[f"{prefix}.net.0.bias"])
        return h @ state[f"{prefix}.net.2.weight"].T + state[f"{prefix}.net.2.bias"]

    T = len(idx)
    x = state["token_embedding.weight"][idx] + state["position_embedding.weight"][:T]  # (T, C)
    C = x.shape[-1]
    hs = C // n_head
    mask = np.tril(np.ones((T, T), dtype=bool))
    maps = []
    layer = 0
    while f"blocks.{layer}.attn.qkv.weight" in state:
        p = f"blocks.{layer}"
        h = layer_norm(x, state[f"{p}.ln1.weight"], state[f"{p}.ln1.bias"])
        q, k, v = np.split(h @ state[f"{p}.attn.qkv.weight"].T, 3, axis=-1)
        q, k, v = (t.reshape(T, n_head, hs).transpose(1, 0, 2) for t in (q, k, v))  # (H, T, hs)
        att = q @ k.transpose(0, 2, 1) * hs ** -0.5
        att = np.where(mask, att, -np.inf)
        att = np.exp(att - att.max(-1, keepdims=True))
        att = att / att.sum(-1, keepdims=True)  # (H, T, T)
        maps.append(att)
        y = (att @ v).transpose(1, 0, 2).reshape(T, C)
        x = x + y @ state[f"{p}.attn.proj.weight"].T + state[f"{p}.attn.proj.bias"]
        h = layer_norm(x, state[f"{p}.ln2.weight"], state[f"{p}.ln2.bias"])
        x = x + gelu_free_ffwd(h, f"{p}.ffwd")
        layer += 1
    if with_logits:
        h = layer_norm(x, state["ln_f.weight"], state["ln_f.bias"])
        return np.stack(maps), h @ state["lm_head.weight"].T + state["lm_head.bias"]
    return np.stack(maps)  # (L, H, T, T)


def softmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal softmax attention over (..., T, hs) arrays, float64."""
    T, hs = q.shape[-2], q.shape[-1]
    att = q @ np.swapaxes(k, -1, -2) * hs ** -0.5
    att = np.where(np.tril(np.ones((T, T), dtype=bool)), att, -np.inf)
    att = np.exp(att - att.max(-1, keepdims=True))
    return (att / att.sum(-1, keepdims=True)) @ v


def architect_inputs(seed: int) -> dict[str, np.ndarray]:
    """The random inputs and weights of the architect probes; the plan sends them, the judge remakes them.

    The probes load the judge's weights into the student's modules, so every output is checked against
    the judge's own computation on the same weights, never against weights the notebook reports."""
    rng = np.random.default_rng(seed)
    out = {"q": rng.standard_normal(8), "k": rng.standard_normal(8), "x": rng.standard_normal((16, 8)),
           "attn_x": rng.standard_normal((2, 16, 32)), "swiglu_x": rng.standard_normal((3, 48))}
    out["qkv_w"] = rng.standard_normal((96, 32)) * 0.3
    out["proj_w"] = rng.standard_normal((32, 32)) * 0.2
    out["proj_b"] = rng.standard_normal(32) * 0.1
    # SwiGLU weights for any hidden size up to 256: the probe loads the top-left (hidden, 48) blocks
    out["swiglu_w1"] = rng.standard_normal((SWIGLU_POOL, 48)) * 0.2
    out["swiglu_w3"] = rng.standard_normal((SWIGLU_POOL, 48)) * 0.2
    out["swiglu_w2"] = rng.standard_normal((48, SWIGLU_POOL)) * 0.1
    return out


SWIGLU_POOL = 256  # the largest SwiGLU hidden size the probe can load judge weights into
SWIGLU_GIVEN = 72  # the hidden size the probe passes as SwiGLU(48, hidden=...): not the default 128


ROPE_OTHER_BASE = 500.0  # rope_cache is also called with this base (a short one: its frequencies differ at T=16)


def rope_reference(head_size: int, T: int, base: float = 10000.0) -> tuple[np.ndarray, np.ndarray]:
    """cos, sin (T, head_size) of the half-split convention the notebook asks for, float64."""
    half = head_size // 2
    freqs = base ** (-np.arange(half) / half)
    angles = np.arange(T)[:, None] * freqs[None, :]
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles), np.sin(angles)


def rotate(x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Half-split RoPE of x (..., T, hs), float64."""
    x1, x2 = np.split(x, 2, axis=-1)
    return x * cos + np.concatenate([-x2, x1], axis=-1) * sin


def rope_rotations(turned: np.ndarray, atol: float = 1e-4) -> tuple[np.ndarray | None, str]:
    """The rotation a notebook's apply_rope applies at each position, if it is a RoPE of any pairing or sign.

    turned (hs, T, hs) is apply_rope of the basis vectors: turned[j, m] = R_m e_j. Returns (R (T, hs, hs),
    "") when R_0 = I, every R_m is orthogonal, R_mᵀ R_n = R_(n-m) for m <= n (so q_m·k_n depends on n - m
    only) and some R_m is not I; else (None, what fails). The judge then checks the attention module
    against the student's own rotation: the pairing (half-split, interleaved) and the sign are the
    convention check's business, not the queries-and-keys-only check's.
    """
    R = np.asarray(turned, dtype=np.float64).transpose(1, 2, 0)  # R[m, i, j] = turned[j, m, i]
    T, hs, _ = R.shape
    eye = np.eye(hs)
    if np.abs(R[0] - eye).max() > atol:
        return None, "apply_rope changes position 0"
    if max(float(np.abs(r.T @ r - eye).max()) for r in R) > atol:
        return None, "apply_rope is not a rotation (it changes lengths or angles between vectors)"
    if max(float(np.abs(R[m].T @ R[n] - R[n - m]).max()) for m in range(T) for n in range(m, T)) > atol:
        return None, "apply_rope's rotation is not relative (R_m^T R_n differs from R_(n-m))"
    if np.abs(R - eye).max() <= atol:
        return None, "apply_rope rotates nothing"
    return R, ""


def reference_rope_attention(x: np.ndarray, qkv_w: np.ndarray, proj_w: np.ndarray, proj_b: np.ndarray,
                             n_head: int, rotate_values: bool = False,
                             rotations: np.ndarray | None = None) -> np.ndarray:
    """The given CausalSelfAttention with rope=True on judge weights: x (B, T, C) -> (B, T, C), float64.
    rotate_values=True gives the classic bug (values rotated too), to name it in the message. rotations
    (T, hs, hs), from rope_rotations, replaces the half-split rotation with the notebook's verified own."""
    B, T, C = x.shape
    hs = C // n_head
    if rotations is None:
        cos, sin = rope_reference(hs, T)

        def turn(t):
            return rotate(t, cos, sin)
    else:
        def turn(t):
            return np.einsum("tij,...tj->...ti", rotations[:T], t)
    q, k, v = (t.reshape(B, T, n_head, hs).transpose(0, 2, 1, 3) for t in np.split(x @ qkv_w.T, 3, axis=-1))
    q, k = turn(q), turn(k)
    if rotate_values:
        v = turn(v)
    heads = softmax_attention(q, k, v)
    return heads.transpose(0, 2, 1, 3).reshape(B, T, C) @ proj_w.T + proj_b


def swiglu_reference(x: np.ndarray, w1: np.ndarray, w2: np.ndarray, w3: np.ndarray) -> np.ndarray:
    a = x @ w1.T
    return ((a / (1 + np.exp(-a))) * (x @ w3.T)) @ w2.T


def inspector_state(seed: int, vocab_size: int) -> dict[str, np.ndarray]:
    """Judge-chosen weights for the given (vanilla) GPT of CONFIG: the inspector probe loads them, so the
    judge recomputes the attention maps from weights it chose (reference_attention), not reported ones.
    Scaled so that the heads attend sharply enough to tell one map from another."""
    rng = np.random.default_rng(seed + 6)
    C, L, T = CONFIG["n_embd"], CONFIG["n_layer"], CONFIG["block_size"]

    def normal(*shape, std):
        return (rng.standard_normal(shape) * std).astype(np.float32)

    state = {"token_embedding.weight": normal(vocab_size, C, std=1.0),
             "position_embedding.weight": normal(T, C, std=1.0)}
    for layer in range(L):
        p = f"blocks.{layer}"
        for ln in ("ln1", "ln2"):
            state[f"{p}.{ln}.weight"] = 1 + normal(C, std=0.1)
            state[f"{p}.{ln}.bias"] = normal(C, std=0.1)
        state[f"{p}.attn.qkv.weight"] = normal(3 * C, C, std=0.3)
        state[f"{p}.attn.proj.weight"] = normal(C, C, std=0.1)
        state[f"{p}.attn.proj.bias"] = normal(C, std=0.05)
        state[f"{p}.ffwd.net.0.weight"] = normal(4 * C, C, std=0.1)
        state[f"{p}.ffwd.net.0.bias"] = normal(4 * C, std=0.05)
        state[f"{p}.ffwd.net.2.weight"] = normal(C, 4 * C, std=0.1)
        state[f"{p}.ffwd.net.2.bias"] = normal(C, std=0.05)
    state["ln_f.weight"] = 1 + normal(C, std=0.1)
    state["ln_f.bias"] = normal(C, std=0.1)
    state["lm_head.weight"] = normal(vocab_size, C, std=0.2)
    state["lm_head.bias"] = normal(vocab_size, std=0.05)
    return state


def figure_maps_found(drawn: list[np.ndarray], maps: np.ndarray, atol: float = 1e-3) -> int:
    """How many of the (L, H, T, T) maps sent to plot_attention appear among the arrays the saved figure
    draws (images, meshes): a grid of empty axes, or a figure of something else, finds none."""
    T = maps.shape[-1]
    tables = []
    for arr in drawn:
        a = np.asarray(arr, dtype=np.float64)
        if a.size == T * T:
            tables.append(a.reshape(T, T))
    found = 0
    for m in maps.reshape(-1, T, T):
        for a in tables:
            ok = np.isfinite(a)  # a masked upper triangle (seaborn's mask=) is drawn as nothing
            if ok.sum() >= T * (T + 1) // 2 and np.allclose(a[ok], m[ok], atol=atol):
                found += 1
                break
    return found


def is_finite_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
