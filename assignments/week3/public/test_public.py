"""Public week 3 checks on tiny inputs. Passing them does not mean full marks: the hidden checks
also train your model, score its dev loss and samples, and compare your layers with PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.check(points=1, category="correctness")
def test_dataset_emma(answers):
    """build_dataset(['emma']): contexts ..., ..e, .em, emm, mma -> e, m, m, a, '.'."""
    X = answers.array("dataset", "X", shape=(5, 3))
    Y = answers.array("dataset", "Y", shape=(5,))
    assert X.tolist() == [[0, 0, 0], [0, 0, 5], [0, 5, 13], [5, 13, 13], [13, 13, 1]], f"X = {X.tolist()}"
    assert Y.tolist() == [5, 13, 13, 1, 0], f"Y = {Y.tolist()}"


@pytest.mark.check(points=1, category="correctness")
def test_forward_any_size(answers):
    """mlp_forward works for block_size 4, n_embd 7: with zero weights every row of logits is b2."""
    logits = answers.array("forward", shape=(3, 27))
    assert np.allclose(logits, np.arange(27)), "with C, W1, b1, W2 = 0 the logits must equal b2 in every row"


@pytest.mark.check(points=1, category="correctness")
def test_init_shapes(answers):
    """init_mlp(scaled=True): the five shapes, small W2 and zero b2 (a near-uniform first guess)."""
    got = answers.get("init")
    assert got["shapes"] == {"C": [27, 10], "W1": [30, 200], "b1": [200], "W2": [200, 27], "b2": [27]}, got["shapes"]
    assert got["W2_absmax"] < 0.1 and got["b2_absmax"] == 0, "scale W2 by 0.01 and zero b2 when scaled=True"


@pytest.mark.check(points=1, category="correctness")
def test_batchnorm_small(answers):
    """BatchNorm1d: each column normalised (mean 0), parameters [gamma, beta], one example finite in eval mode."""
    got = answers.get("batchnorm")
    y = answers.array("batchnorm", "train_out", shape=(3, 2))
    assert np.allclose(y.mean(0), 0, atol=1e-5), f"column means {y.mean(0)}: normalise over dim 0 (the batch)"
    assert np.allclose(y[:, 0], y[:, 1], atol=1e-4), "both columns are the same up to scale: same output"
    assert got["n_params"] == 2, "parameters() should be [gamma, beta] only"
    assert np.allclose(answers.array("batchnorm", "running_mean", shape=(2,)), [0.3, 0.6]), \
        "running_mean after one call: 0.9 * 0 + 0.1 * [3, 6]"
    answers.array("batchnorm", "eval_single", shape=(1, 2))  # NaN fails: eval mode must use running stats
