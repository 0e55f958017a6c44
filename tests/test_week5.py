"""Week 5's judge-side pieces, without the pipeline: the parameter formula, the attention
reference's power to separate the known bugs, the val windows, and fixture freshness."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from conftest import ROOT

from grader.config import public_module

SUITE = ROOT / "solutions" / "week5"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


checks = _load("week5_reference_under_test", SUITE / "week5_reference.py")
plan = public_module(SUITE / "plan.py", "plan")  # the public plan builds the inputs of both suites
ref = public_module(SUITE / "plan.py", "reference")
fixtures = _load("week5_make_fixtures", ROOT / "fixtures" / "submissions" / "week5" / "make_fixtures.py")


def test_param_formula_matches_the_lecture():
    assert checks.gpt_param_count(65, **plan.LECTURE) == 10_788_929  # "10.788929 M parameters"
    assert checks.gpt_param_count(65, **plan.SMALL) == 42_369


def _head(x, wq, wk, wv, scale, diagonal=0, dim=-1):
    """A float64 single head with the knobs the classic bugs turn."""
    q, k, v = x @ wq.T, x @ wk.T, x @ wv.T
    T = x.shape[1]
    wei = (q @ k.transpose(-2, -1)) * scale
    wei = wei.masked_fill(torch.tril(torch.ones(T, T, dtype=torch.float64), diagonal=diagonal) == 0, float("-inf"))
    return torch.softmax(wei, dim=dim).nan_to_num(0.0) @ v


@pytest.mark.parametrize("bug,kwargs", [
    ("scale by n_embd", {"scale": 32 ** -0.5}),
    ("no scale", {"scale": 1.0}),
    ("mask off by one", {"diagonal": 1}),
    ("softmax over queries", {"dim": 1}),
])
def test_attention_reference_separates_bugs(bug, kwargs):
    """Each bug sits orders of magnitude above the tolerance; the correct head sits far below."""
    g = torch.Generator().manual_seed(0)
    x = torch.as_tensor(plan.head_input(), dtype=torch.float64)
    wq, wk, wv = (torch.randn(8, 32, generator=g, dtype=torch.float64) * 32 ** -0.5 for _ in range(3))
    want = ref.reference_head(x.numpy(), wq.numpy(), wk.numpy(), wv.numpy())
    correct = _head(x, wq, wk, wv, scale=8 ** -0.5)
    assert ref.max_diff(correct.float().numpy(), want) < ref.ATTN_TOL / 10
    args = {"scale": 8 ** -0.5, **kwargs}
    assert ref.max_diff(_head(x, wq, wk, wv, **args).float().numpy(), want) > 10 * ref.ATTN_TOL, bug


def test_val_windows_are_shifted_by_one():
    val = np.arange(100)
    x, y = plan.val_windows(val, 8)
    assert x.shape == y.shape == (12, 8)
    assert np.array_equal(y, x + 1) and x[0, 0] == 0 and x[1, 0] == 8


def test_corpus_vocabulary_comes_from_the_text():
    text, chars, ids = plan.corpus(str(ROOT / "fixtures" / "data"))
    assert chars == "".join(sorted(set(text)))
    assert len(ids) == len(text) and "".join(chars[i] for i in ids[:200]) == text[:200]


def test_causal_pairs_differ_exactly_from_their_cut():
    a, b = plan.causal_pairs(64)
    for row, cut in enumerate(plan.CAUSAL_CUTS):
        assert np.array_equal(a[row, :cut], b[row, :cut]) and (a[row, cut:] != b[row, cut:]).all()


@pytest.mark.parametrize("name", sorted(fixtures.BUGS))
def test_fixture_notebooks_are_current(name, tmp_path, monkeypatch):
    """make_fixtures.py regenerates exactly the committed notebooks (they track the solution)."""
    monkeypatch.setattr(fixtures, "HERE", tmp_path)
    fresh = fixtures.make(name, fixtures.BUGS[name])
    committed = ROOT / "fixtures" / "submissions" / "week5" / f"{name}.ipynb"
    assert nbformat.read(fresh, as_version=4) == nbformat.read(committed, as_version=4)
