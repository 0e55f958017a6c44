"""Week 2's suite itself: stub and fixtures are current, the judge's references agree with the
reference solution, and the recorded trained-loss reference still reproduces."""

from __future__ import annotations

import ast
import importlib.util
import sys
import tomllib
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from grader.config import ASSIGNMENTS, DATA_DIR, SOLUTIONS
from grader.staff.assign import stub_is_current

SUITE = SOLUTIONS / "week2"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "submissions" / "week2"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cases():
    return load(SUITE / "cases.py", "week2_cases_under_test")


@pytest.fixture(scope="module")
def solution():
    """The solution notebook's function definitions, executed here (no data loading, no demos)."""
    nb = nbformat.read(SUITE / "week2.ipynb", as_version=4)
    ns: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            tree = ast.parse(cell.source)
            tree.body = [
                node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef))
            ]
            exec(compile(tree, "week2-solution", "exec"), ns)
    return ns


def test_stub_is_current():
    assert stub_is_current("week2", SOLUTIONS, ASSIGNMENTS), "run: .venv/bin/grader assign week2"


def test_hidden_suite_uses_the_public_probes():
    from grader.config import probes_file, suite_hash

    assert not (SUITE / "probes.py").exists()
    assert probes_file(SUITE) == ASSIGNMENTS / "week2" / "public" / "probes.py"
    assert probes_file(SUITE).is_file()
    assert suite_hash(SUITE) != suite_hash(ASSIGNMENTS / "week2" / "public")


def test_fixtures_are_current(tmp_path):
    maker = load(FIXTURES / "make_fixtures.py", "week2_make_fixtures")
    expected = tomllib.loads((FIXTURES / "expected.toml").read_text())
    assert set(expected) == set(maker.BUGS)
    original = maker.HERE
    maker.HERE = tmp_path
    try:
        for stem, edits in maker.BUGS.items():
            fresh = nbformat.read(maker.make(stem, edits), as_version=4)
            committed = nbformat.read(FIXTURES / f"{stem}.ipynb", as_version=4)
            assert [c.source for c in fresh.cells] == [c.source for c in committed.cells], stem
    finally:
        maker.HERE = original


def test_judge_references_agree_with_solution(cases, solution):
    words = cases.load_words(DATA_DIR)
    stoi, _ = solution["build_vocab"](words)
    assert stoi == cases.STOI
    n = solution["bigram_counts"](words, stoi)
    assert np.array_equal(n.numpy(), cases.bigram_counts(words))
    assert int(n.sum()) == 208_448 and int(n[:, 0].sum()) == 29_213
    p = solution["counts_to_probs"](n, 1.0)
    assert (
        abs(
            solution["avg_nll"](p, words, stoi)
            - cases.avg_nll(cases.probs(cases.bigram_counts(words), 1.0), words)
        )
        < 1e-6
    )
    args = cases.net_inputs(words)
    w = torch.tensor(args["w"], dtype=torch.float64)
    got = solution["bigram_net_loss"](w, torch.from_numpy(args["xs"]), torch.from_numpy(args["ys"]), reg=0.1)
    assert abs(got.item() - cases.net_loss(args["w"], args["xs"], args["ys"], 0.1)) < 1e-10


def test_graded_samples_cover_the_alphabet_and_bound_the_loss(cases):
    """The evenly spaced samples the probes get still hold every letter; no W beats their entropy."""
    words = cases.load_words(DATA_DIR)
    graded = cases.graded_words(words)
    assert set("".join(graded)) == set("abcdefghijklmnopqrstuvwxyz") and len(graded) == 3652
    xs, ys = cases.train_pairs(words)
    h = cases.conditional_entropy(xs, ys)
    assert abs(h - 2.4217) < 1e-4
    p = cases.probs(cases.bigram_counts(words[:: cases.TRAIN_STRIDE]), 0.0)
    assert abs(cases.avg_nll(p, words[:: cases.TRAIN_STRIDE]) - h) < 1e-12  # the MLE reaches it exactly


def test_nll_reference_matches_course_notes(cases):
    words = cases.load_words(DATA_DIR)
    counts = cases.bigram_counts(words)
    assert abs(cases.avg_nll(cases.probs(counts, 0.0), words) - 2.4532) < 5e-4
    assert abs(cases.avg_nll(cases.probs(counts, 1.0), words) - 2.4539) < 5e-4


@pytest.mark.parametrize("run", [0, 1])
def test_the_judges_own_training_run_matches_the_solution(cases, solution, run, monkeypatch):
    """The training check's reference is the judge's own run (same seed, steps, lr, reg, data): the
    solution's train_bigram_net lands on it, so a correct submission sits at 0 error."""
    t = tomllib.loads((SUITE / "week.toml").read_text())["profiles"]["cpu"]["thresholds"]
    monkeypatch.syspath_prepend(str(SUITE))  # the checks import their `cases` as the judge gives it
    monkeypatch.delitem(sys.modules, "cases", raising=False)
    suite = load(SUITE / "week2_reference.py", "week2_reference_under_test")
    monkeypatch.delitem(sys.modules, "cases", raising=False)
    key, args = suite.train_runs(t)[run]
    xs, ys = cases.train_pairs(cases.load_words(DATA_DIR))
    w = solution["train_bigram_net"](torch.from_numpy(xs), torch.from_numpy(ys), **args).detach().numpy()
    loss = cases.net_loss(w, xs, ys, args["reg"])
    ref = cases.net_loss(suite.reference_train(DATA_DIR, **args), xs, ys, args["reg"])
    assert abs(loss - ref) < 1e-6, (key, loss, ref)
