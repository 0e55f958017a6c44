"""Week 5 references shared by the public and hidden checks: float64 attention via torch's SDPA.

Computed in the judge from the weights the student's Head reported, so they hold no answer.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

ATTN_TOL = 1e-4  # float32 student vs float64 reference; bugs measure 0.17 (C**-0.5) .. 1.7 (mask)


def f64(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def max_diff(a, b) -> float:
    return float((f64(a) - f64(b)).abs().max())


def reference_head(x, wq, wk, wv) -> torch.Tensor:
    """Causal single-head attention, scaled by head_size ** -0.5, via torch's own SDPA."""
    x = f64(x)
    q, k, v = x @ f64(wq).T, x @ f64(wk).T, x @ f64(wv).T
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)
