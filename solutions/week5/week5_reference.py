"""TRUSTED references for week 5's hidden suite: the held-out val windows (secret seed), the lecture
GPT's parameter count from its architecture, and the judge's own GPT, trained like the student's.

The attention and model recomputations the public checks share live in the public suite's
reference.py; the training loop is the public probe's own (so both models get the same budget,
seed and batches), called here on the judge's model.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from grader.config import public_module
from grader.judge.heldout import last_position_windows, mean_nll

HELDOUT = "heldout/shakespeare.txt"  # fixtures/data: judge-only (never in a week's data, never released)
VAL_SEED = 48611  # the gaps between and order of the scored windows; secret (the hidden suite's)


def gpt_param_count(vocab: int, n_embd: int, n_head: int, n_layer: int, block_size: int, **_) -> int:
    """The lecture's GPT: embeddings, n_layer pre-norm blocks, final LayerNorm, biased lm_head."""
    C, hs = n_embd, (n_embd // n_head) * n_head
    attention = 3 * C * hs + hs * C + C  # q, k, v without bias; proj with bias
    ffwd = C * 4 * C + 4 * C + 4 * C * C + C
    block = attention + ffwd + 4 * C  # two LayerNorms
    return vocab * C + block_size * C + n_layer * block + 2 * C + C * vocab + vocab


@lru_cache(maxsize=4)
def heldout_windows(data_dir: str, chars: str, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, T) over the held-out plays and the targets of their last positions (N,): no target
    lies in any window sent (grader.judge.heldout)."""
    plan = public_module(__file__, "plan")
    ids = plan.encode((Path(data_dir) / HELDOUT).read_text(encoding="utf-8"), chars)
    return last_position_windows(ids, block_size, VAL_SEED)


class _Attention(nn.Module):
    """All heads from one fused projection (the lecture's per-head q, k, v side by side)."""

    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.out = nn.Linear(n_embd, n_embd)
        self.register_buffer("causal", torch.ones(block_size, block_size, dtype=torch.bool).tril())

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in self.qkv(x).chunk(3, dim=-1))
        scores = (q @ k.transpose(-1, -2)) / (C // self.n_head) ** 0.5
        weights = scores.masked_fill(~self.causal[:T, :T], float("-inf")).softmax(-1)
        return self.out((weights @ v).transpose(1, 2).reshape(B, T, C))


class _Layer(nn.Module):
    def __init__(self, n_embd, n_head, block_size):
        super().__init__()
        self.norm_a, self.norm_b = nn.LayerNorm(n_embd), nn.LayerNorm(n_embd)
        self.attend = _Attention(n_embd, n_head, block_size)
        self.mlp = nn.Sequential(nn.Linear(n_embd, 4 * n_embd), nn.ReLU(), nn.Linear(4 * n_embd, n_embd))

    def forward(self, x):
        x = x + self.attend(self.norm_a(x))
        return x + self.mlp(self.norm_b(x))


class ReferenceGPT(nn.Module):
    """The judge's lecture GPT (dropout 0): the student's model must train as well as this one does
    with the same steps, batches, learning rate and seed."""

    def __init__(self, vocab_size, n_embd, n_head, n_layer, block_size, dropout=0.0):
        super().__init__()
        self.block_size = block_size
        self.tokens = nn.Embedding(vocab_size, n_embd)
        self.positions = nn.Embedding(block_size, n_embd)
        self.layers = nn.Sequential(*(_Layer(n_embd, n_head, block_size) for _ in range(n_layer)))
        self.norm = nn.LayerNorm(n_embd)
        self.logits = nn.Linear(n_embd, vocab_size)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        h = self.layers(self.tokens(idx) + self.positions.weight[:T])
        logits = self.logits(self.norm(h))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss

    @torch.no_grad()
    def generate(self, idx, max_new_tokens, temperature=1.0, top_k=None):
        for _ in range(max_new_tokens):
            last = self(idx[:, -self.block_size:])[0][:, -1] / temperature
            idx = torch.cat([idx, torch.multinomial(last.softmax(-1), 1)], dim=1)
        return idx


@lru_cache(maxsize=4)
def reference_val_loss(data_dir: str, steps: int, batch_size: int, lr: float, seed: int) -> float:
    """The judge's GPT trained by the public probe's own loop on the training split, scored like the
    student's model on the held-out windows (~15 s of one core at 1,000 steps)."""
    plan = public_module(__file__, "plan")
    probes = public_module(__file__, "probes")  # the loop the sandbox runs; torch.set_num_threads(1)
    _, chars, ids = plan.corpus(data_dir)
    train, _ = plan.split(ids)
    x, y = heldout_windows(data_dir, chars, plan.SMALL["block_size"])
    got = probes.train_and_score({"GPTLanguageModel": ReferenceGPT}, "train", len(chars), plan.SMALL, x,
                                 np.zeros((1, 1), dtype=np.int64), 1, seed, train=train, steps=steps,
                                 batch_size=batch_size, lr=lr, seed=seed)
    return mean_nll(got["val_logits"].numpy(), y)
