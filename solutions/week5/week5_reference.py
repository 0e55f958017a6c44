"""TRUSTED reference for week 5's hidden judge: the lecture GPT's parameter count, from its architecture.

The attention references the public checks share live in the public suite's reference.py.
"""

from __future__ import annotations


def gpt_param_count(vocab: int, n_embd: int, n_head: int, n_layer: int, block_size: int, **_) -> int:
    """The lecture's GPT: embeddings, n_layer pre-norm blocks, final LayerNorm, biased lm_head."""
    C, hs = n_embd, (n_embd // n_head) * n_head
    attention = 3 * C * hs + hs * C + C  # q, k, v without bias; proj with bias
    ffwd = C * 4 * C + 4 * C + 4 * C * C + C
    block = attention + ffwd + 4 * C  # two LayerNorms
    return vocab * C + block_size * C + n_layer * block + 2 * C + C * vocab + vocab
