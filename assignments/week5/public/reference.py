"""Week 5 references shared by the public and hidden checks, in float64: attention via torch's SDPA,
and the lecture's feed-forward, pre-norm block and GPT recomputed from the weights a probe returned.

Computed in the judge from the weights the student's modules reported, so they hold no answer: a
model matches only if it computes what the lecture's architecture computes with those weights.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from grader.judge.answers import AnswerError, to_array, to_number

ATTN_TOL = 1e-4  # float32 student vs float64 reference; bugs measure 0.17 (C**-0.5) .. 1.7 (mask)
MODEL_TOL = 1e-4  # relative to the output's largest magnitude (float32 through a few layers: ~1e-6)


def f64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def max_diff(a, b) -> float:
    return float((f64(a) - f64(b)).abs().max())


def rel_diff(got, want) -> float:
    """max |got - want| over the largest |want| (at least 1): one scale for logits and activations."""
    want = f64(want)
    return float((f64(got) - want).abs().max()) / max(1.0, float(want.abs().max()))


def reference_head(x, wq, wk, wv) -> torch.Tensor:
    """Causal single-head attention, scaled by head_size ** -0.5, via torch's own SDPA."""
    x = f64(x)
    q, k, v = x @ f64(wq).T, x @ f64(wk).T, x @ f64(wv).T
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


def _tensor(value, name, shape=None) -> torch.Tensor:
    return f64(to_array(value, name, shape=shape))


def _affine(x, layer, name) -> torch.Tensor:
    w = _tensor(layer.get("w"), f"{name}.weight")
    out = x @ w.T
    return out if layer.get("b") is None else out + _tensor(layer["b"], f"{name}.bias")


def layer_norm(x: torch.Tensor, norm: dict, name: str) -> torch.Tensor:
    eps = to_number(norm.get("eps", 1e-5), f"{name}.eps")
    w = _tensor(norm.get("w"), f"{name}.weight")
    out = F.layer_norm(x, x.shape[-1:], eps=eps) * w
    return out if norm.get("b") is None else out + _tensor(norm["b"], f"{name}.bias")


def reference_multihead(x, weights: dict) -> torch.Tensor:
    """proj(cat(heads)) with each head the causal SDPA of its own q, k, v weights."""
    heads = [reference_head(x, h["wq"], h["wk"], h["wv"]) for h in weights["heads"]]
    return _affine(torch.cat(heads, dim=-1), weights["proj"], "proj")


def reference_feedforward(x, weights: dict) -> torch.Tensor:
    """Linear(n_embd, 4 n_embd), ReLU, Linear(4 n_embd, n_embd): the module's two nn.Linear layers."""
    linears = weights["linears"]
    if len(linears) != 2:
        raise AnswerError(f"your FeedForward holds {len(linears)} nn.Linear layers; the lecture's has two "
                          "(n_embd -> 4 n_embd, ReLU, 4 n_embd -> n_embd)")
    return _affine(torch.relu(_affine(f64(x), linears[0], "ffwd.0")), linears[1], "ffwd.1")


def reference_block(x, weights: dict) -> torch.Tensor:
    """The pre-norm block: x + sa(ln1(x)), then x + ffwd(ln2(x))."""
    attention, feedforward, norms = weights["attention"], weights["feedforward"], weights["norms"]
    if len(attention) != 1 or len(feedforward) != 1 or len(norms) != 2:
        raise AnswerError(f"your Block holds {len(attention)} MultiHeadAttention, {len(feedforward)} FeedForward "
                          f"and {len(norms)} nn.LayerNorm; the lecture's has one, one and two (ln1, ln2)")
    x = f64(x)
    x = x + reference_multihead(layer_norm(x, norms[0], "ln1"), attention[0])
    return x + reference_feedforward(layer_norm(x, norms[1], "ln2"), feedforward[0])


def reference_gpt(weights: dict, idx) -> torch.Tensor:
    """The lecture's GPT at the reported weights: token + position embeddings, the blocks in order, the
    final LayerNorm, lm_head. A missing piece is named (that is the bug), not guessed around."""
    parts = {"token": "a token embedding (nn.Embedding(vocab_size, n_embd))",
             "position": "a position embedding (nn.Embedding(block_size, n_embd))",
             "norms": "a final LayerNorm (ln_f, outside the blocks)",
             "heads": "an lm_head (nn.Linear(n_embd, vocab_size))"}
    for key, what in parts.items():
        found = weights.get(key) or []
        if len(found) != 1:
            raise AnswerError(f"the GPT should have exactly one {what} besides its blocks; found {len(found)}")
    idx = torch.as_tensor(np.asarray(idx, dtype=np.int64))
    T = idx.shape[-1]
    x = _tensor(weights["token"][0], "token embedding")[idx] + _tensor(weights["position"][0], "position embedding")[:T]
    for block in weights["blocks"]:
        x = reference_block(x, block)
    return _affine(layer_norm(x, weights["norms"][0], "ln_f"), weights["heads"][0], "lm_head")
