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


def reference_attention(state: dict[str, np.ndarray], idx: np.ndarray, n_head: int) -> np.ndarray:
    """The given (vanilla, pre-norm) GPT's attention weights for idx (T,), from its weights, float64.

    Lets the judge confirm that the maps a student returns are the model's own attention.
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
    return np.stack(maps)  # (L, H, T, T)


def softmax_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Causal softmax attention over (..., T, hs) arrays, float64."""
    T, hs = q.shape[-2], q.shape[-1]
    att = q @ np.swapaxes(k, -1, -2) * hs ** -0.5
    att = np.where(np.tril(np.ones((T, T), dtype=bool)), att, -np.inf)
    att = np.exp(att - att.max(-1, keepdims=True))
    return (att / att.sum(-1, keepdims=True)) @ v


def architect_inputs(seed: int) -> dict[str, np.ndarray]:
    """The random inputs of the architect probes; the plan sends them, the judge remakes them."""
    rng = np.random.default_rng(seed)
    return {"q": rng.standard_normal(8), "k": rng.standard_normal(8), "x": rng.standard_normal((16, 8)),
            "attn_x": rng.standard_normal((2, 16, 32)), "swiglu_x": rng.standard_normal((3, 48))}


def is_finite_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
