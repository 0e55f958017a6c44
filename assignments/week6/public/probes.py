"""Public week-6 probes: tiny, untrained models; structure only."""

import os

import torch


def maps(ns):
    torch.manual_seed(0)
    model = ns["GPTLanguageModel"](10, n_embd=16, n_head=2, n_layer=2, block_size=8)
    return ns["get_attention_maps"](model, torch.randint(10, (1, 8)))


def rope(ns):
    cos, sin = ns["rope_cache"](8, 12)
    q = torch.randn(8, generator=torch.Generator().manual_seed(0)).expand(12, 8)
    rq = ns["apply_rope"](q, cos, sin)
    return {"scores": rq @ rq.T, "norms": rq.norm(dim=-1)}


def corpus(ns):
    path = ns.get("DATASET")
    return {"bytes": os.path.getsize(path) if isinstance(path, str) and os.path.isfile(path) else -1}
