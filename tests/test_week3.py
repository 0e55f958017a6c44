"""Week 3 extras: the fixtures are what make_fixtures.py writes, the judge scores on held-out names only,
and the public suite gives the solution full marks and the stub none."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from conftest import ROOT, first_attempt, grade_notebook

WEEK3 = ROOT / "solutions" / "week3"
FIXTURES = ROOT / "fixtures" / "submissions" / "week3"


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_fixtures_are_regenerated_from_the_solution(tmp_path):
    """A changed solution must be followed by `make_fixtures.py`, or the fixtures test old code."""
    import nbformat

    maker = _load(FIXTURES / "make_fixtures.py", "week3_make_fixtures")
    for stem, edits in maker.BUGS.items():
        fresh = nbformat.read(maker.make(stem, edits, tmp_path), as_version=4)
        committed = nbformat.read(FIXTURES / f"{stem}.ipynb", as_version=4)
        assert [c.source for c in fresh.cells] == [c.source for c in committed.cells], \
            f"{stem}.ipynb is stale: run fixtures/submissions/week3/make_fixtures.py"


def test_each_fixture_differs_from_the_solution():
    import nbformat

    solution = [c.source for c in nbformat.read(WEEK3 / "week3.ipynb", as_version=4).cells]
    for path in sorted(FIXTURES.glob("*.ipynb")):
        cells = [c.source for c in nbformat.read(path, as_version=4).cells]
        assert cells != solution, f"{path.name} carries no change"


def test_judge_trains_on_the_sandbox_names_and_scores_on_held_out_names_only():
    """The grader's training set is the sandbox's names.txt; the dev loss is scored on held-out names,
    none of which is in names.txt, at every position of every held-out name."""
    data = _load(WEEK3 / "week3_data.py", "week3_data_for_tests")
    d = data.load_data(ROOT / "fixtures" / "data")
    assert d.train_words == data.load_words(ROOT / "fixtures" / "data")
    assert not set(d.heldout_words) & set(d.train_words)
    assert len(d.Xho) == sum(len(w) + 1 for w in d.heldout_words)  # one position per character and the end
    assert d.Xtr.shape[1] == 3 and d.Ytr.max() == 26 and d.Ytr.min() == 0


@pytest.mark.slow
def test_public_checks_solution_full_stub_zero(tmp_path):
    solution = grade_notebook("week3", WEEK3 / "week3.ipynb", tmp_path / "sol", public=True, student="solution")
    assert solution.max_score > 0 and solution.score == solution.max_score, \
        [(c.id, c.message) for c in solution.checks if c.points < c.max_points]
    attempt = first_attempt(ROOT / "assignments" / "week3" / "week3.ipynb", tmp_path / "attempt")
    stub = grade_notebook("week3", attempt, tmp_path / "stub", public=True, student="stub")
    assert stub.status == "graded" and stub.score == 0, [(c.id, c.points) for c in stub.checks if c.points]
