"""Public week 2 checks on tiny inputs. Passing them does not mean full marks: the hidden checks
also test the whole names list, the trained network and the statistics of your samples."""

from __future__ import annotations

import math
import string

import numpy as np
import pytest

STOI = {".": 0, **{c: i + 1 for i, c in enumerate(string.ascii_lowercase)}}


@pytest.mark.check(points=1, category="correctness")
def test_vocab(answers):
    """build_vocab: '.' is 0, a..z are 1..26."""
    assert answers.get("vocab")["stoi"] == STOI


@pytest.mark.check(points=1, category="correctness")
def test_counts_small(answers):
    """bigram_counts on ['emma', 'ava', 'zoe'] counts start and end tokens."""
    n = answers.array("counts", "counts", shape=(27, 27))
    assert n.sum() == 5 + 4 + 4, f"N.sum() = {n.sum()}: 'emma' alone has 5 bigrams (.e em mm ma a.)"
    assert n[0].sum() == 3 and n[:, 0].sum() == 3, "each name starts and ends with '.' exactly once"
    assert n[STOI["m"], STOI["m"]] == 1 and n[STOI["a"], 0] == 2


@pytest.mark.check(points=1, category="correctness")
def test_probs_rows(answers):
    """counts_to_probs: float rows summing to one, smoothing added."""
    p = answers.array("probs", "p1", shape=(27, 27))
    assert np.allclose(p.sum(1), 1, atol=1e-5), "each ROW of P must sum to 1 (keepdim=True!)"
    assert math.isclose(p[0, 1], 4 / 30, rel_tol=1e-5), "P[0, 1] should be (3 + 1) / (3 + 27)"


@pytest.mark.check(points=1, category="correctness")
def test_dataset_emma(answers):
    """make_bigram_dataset(['emma']) -> xs [0,5,13,13,1], ys [5,13,13,1,0]."""
    assert answers.array("dataset", "xs").tolist() == [0, 5, 13, 13, 1]
    assert answers.array("dataset", "ys").tolist() == [5, 13, 13, 1, 0]


@pytest.mark.check(points=1, category="gradient")
def test_net_loss_uniform(answers):
    """bigram_net_loss with W = 0 is ln 27 (uniform predictions)."""
    got = answers.get("net_loss")[0]["loss"]
    assert math.isclose(got, math.log(27), rel_tol=1e-5), f"loss {got}, expected ln 27 = {math.log(27):.5f}"


@pytest.mark.check(points=1, category="correctness")
def test_sampler_format(answers):
    """sample_names returns names without the '.' end token."""
    names = answers.strings("sampler")
    assert len(names) == 200 and set(names) <= {"a", "b"}, (
        f"expected only 'a' and 'b', got {sorted(set(names))[:5]}"
    )
