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

from grader.config import load_week, public_module
from grader.judge import heldout

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


def test_full_val_windows_are_shifted_by_one():
    x, y = plan.full_val_windows(np.arange(100), 8)
    assert x.shape == y.shape == (12, 8)
    assert np.array_equal(y, x + 1) and x[0, 0] == 0 and x[1, 0] == 8


@pytest.mark.parametrize("block_size,max_gap,max_windows", [(8, 3, None), (8, 1, None), (5, 4, 50)])
def test_heldout_windows_never_send_a_scored_target(block_size, max_gap, max_windows):
    """No scored target lies in any window sent, and the order says nothing of the place in the text."""
    ids = np.arange(2_000)
    x, y = heldout.last_position_windows(ids, block_size, seed=3, max_gap=max_gap, max_windows=max_windows)
    assert x.shape == (len(y), block_size) and np.array_equal(y, x[:, -1] + 1)
    assert not np.isin(y, x).any()
    assert len(np.unique(x[:, 0])) == len(x) and not np.array_equal(x[:, 0], np.sort(x[:, 0]))
    assert max_windows is None or len(x) == max_windows
    if max_windows is None:  # the windows cover the text: at most max_gap ids between two of them
        starts = np.sort(x[:, 0])
        assert np.diff(starts).max() <= block_size + max_gap


def test_heldout_windows_depend_on_the_secret_seed():
    a, _ = heldout.last_position_windows(np.arange(500), 8, seed=1)
    b, _ = heldout.last_position_windows(np.arange(500), 8, seed=2)
    assert not np.array_equal(np.sort(a[:, 0]), np.sort(b[:, 0]))


def test_mean_nll_is_cross_entropy():
    g = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(40, 7, generator=g), torch.randint(0, 7, (40,), generator=g)
    want = float(torch.nn.functional.cross_entropy(logits.double(), targets))
    assert abs(heldout.mean_nll(logits.numpy(), targets.numpy()) - want) < 1e-12


def test_week5_scores_the_heldout_plays_only():
    """The training request's windows come from the held-out plays, none of whose lines the sandbox's text holds."""
    data = ROOT / "fixtures" / "data"
    _, chars, _ = plan.corpus(str(data))
    x, y = checks.heldout_windows(str(data), chars, plan.SMALL["block_size"])
    held = (data / checks.HELDOUT).read_text(encoding="utf-8")
    assert len(y) > 10_000
    for row, target in zip(x[:50], y[:50]):
        assert "".join(chars[i] for i in row) + chars[target] in held
    assert "heldout/shakespeare.txt" not in " ".join(load_week(SUITE).data)


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


def test_independent_notebook_is_current(tmp_path, monkeypatch):
    """make_fixtures.py fills the stub into exactly the committed independent notebook."""
    monkeypatch.setattr(fixtures, "HERE", tmp_path)
    fresh = fixtures.make_independent()
    committed = ROOT / "fixtures" / "submissions" / "week5" / f"{fixtures.INDEPENDENT_NAME}.ipynb"
    assert nbformat.read(fresh, as_version=4) == nbformat.read(committed, as_version=4)


# ---------------------------------------------------------------------------------- hostile cases (issue 16.3)
# Two ways a notebook could score the val loss without predicting: look the val text up in the data the
# sandbox holds, or rebuild the targets from the windows the probe sends. Each attack is the same
# honest model (bigram counts from the training split) that, where its trick finds an answer, claims it
# with 99 % certainty. Against the windows the grader used to send (non-overlapping, in order, over the
# sandbox text's own val split) both tricks win by far; against the held-out request neither may.
probes = public_module(SUITE / "plan.py", "probes")


class _Honest(torch.nn.Module):
    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.log_probs = log_probs
        self.unused = torch.nn.Parameter(torch.zeros(1))  # the probe asks the model's device

    def forward(self, idx, targets=None):
        logits = self.log_probs[idx].clone()
        for b, token in self.claims(idx.numpy()):
            p = 0.01 * logits[b, -1].softmax(-1)
            p[token] += 0.99
            logits[b, -1] = p.log()
        return logits, None

    def claims(self, rows: np.ndarray) -> list[tuple[int, int]]:
        return []

    def generate(self, idx, max_new_tokens):
        return idx


def _keys(rows: np.ndarray, vocab: int) -> np.ndarray:
    """One int64 per row of token ids (vocab ** T < 2 ** 63 here)."""
    return (rows.astype(np.int64) * vocab ** np.arange(rows.shape[1])[::-1]).sum(axis=1)


class _LooksUpTheText(_Honest):
    """Reads the sandbox's shakespeare.txt and claims the most frequent continuation of each window."""

    def __init__(self, log_probs, ids, block_size):
        super().__init__(log_probs)
        V = log_probs.shape[0]
        grams = np.lib.stride_tricks.sliding_window_view(ids, block_size + 1)
        pairs, counts = np.unique(_keys(grams, V), return_counts=True)
        order = np.lexsort((-counts, pairs // V))  # per context, its most frequent continuation first
        contexts, first = np.unique(pairs[order] // V, return_index=True)
        self.contexts, self.next = contexts, pairs[order][first] % V

    def claims(self, rows):
        keys = _keys(rows, self.log_probs.shape[0])
        at = np.clip(np.searchsorted(self.contexts, keys), 0, len(self.contexts) - 1)
        return [(b, int(self.next[i])) for b, i in enumerate(at) if self.contexts[i] == keys[b]]


class _RebuildsTheTargets(_Honest):
    """Claims that each window's next character is the first one of the window sent after it."""

    def claims(self, rows):
        return [(b, int(rows[b + 1, 0])) for b in range(len(rows) - 1)]


@pytest.fixture(scope="module")
def attack_setup():
    data = ROOT / "fixtures" / "data"
    _, chars, ids = plan.corpus(str(data))
    train, val = plan.split(ids)
    V, T = len(chars), plan.SMALL["block_size"]
    counts = np.ones((V, V))
    np.add.at(counts, (train[:-1], train[1:]), 1)
    log_probs = torch.as_tensor(np.log(counts / counts.sum(axis=1, keepdims=True)), dtype=torch.float32)
    old_x, old_y = plan.full_val_windows(val, T)
    return {"V": V, "ids": ids, "log_probs": log_probs, "heldout": checks.heldout_windows(str(data), chars, T),
            "old": (old_x, old_y[:, -1])}


def _loss(model, windows, V):
    x, y = windows
    got = probes.train_and_score({"model": model}, "notebook", V, plan.SMALL, x, np.zeros((1, 1), dtype=np.int64), 1, 0)
    return heldout.mean_nll(got["val_logits"].numpy(), y)


@pytest.mark.parametrize("attack", ["looks_up_the_text", "rebuilds_the_targets"])
def test_val_loss_attacks_gain_nothing(attack, attack_setup):
    s = attack_setup
    honest = _Honest(s["log_probs"])
    cheat = (_LooksUpTheText(s["log_probs"], s["ids"], plan.SMALL["block_size"]) if attack == "looks_up_the_text"
             else _RebuildsTheTargets(s["log_probs"]))
    # the attack is real: on the windows the grader used to send it beats the honest model by far
    assert _loss(cheat, s["old"], s["V"]) < _loss(honest, s["old"], s["V"]) - 0.5
    # and on the held-out request it scores no better than the same model without it
    assert _loss(cheat, s["heldout"], s["V"]) >= _loss(honest, s["heldout"], s["V"])


def test_no_check_id_contains_another():
    """The judge selects checks with pytest -k, by substring: a check id inside another (get_batch in
    get_batch_range) would select a check whose probe request was not sent."""
    import ast

    tree = ast.parse((SUITE / "test_week5.py").read_text())
    names = {n.name.removeprefix("test_") for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}
    names |= {t.id.removeprefix("test_") for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name) and t.id.startswith("test_")}
    assert len(names) > 15
    assert not [(a, b) for a in names for b in names if a != b and a in b]
