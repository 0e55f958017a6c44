"""Week 3 extras: the fixtures are what make_fixtures.py writes, the judge's split is the lecture's,
and the public suite gives the solution full marks and the stub none."""

from __future__ import annotations

import importlib.util
import random
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


def test_judge_split_is_the_lecture_split():
    """random.seed(42); random.shuffle(words); 80/10/10 — what the notebook does, and the judge too."""
    data = _load(WEEK3 / "week3_data.py", "week3_data_for_tests")
    words = data.load_words(ROOT / "fixtures" / "data")
    random.seed(42)
    shuffled = words[:]
    random.shuffle(shuffled)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    assert data.split_words(words) == (shuffled[:n1], shuffled[n1:n2], shuffled[n2:])
    splits = data.make_splits(ROOT / "fixtures" / "data")
    # one example per character of each name plus its end token
    assert len(splits.Xdev) == sum(len(w) + 1 for w in shuffled[n1:n2])
    assert splits.Xtr.shape[1] == 3 and splits.Ytr.max() == 26 and splits.Ytr.min() == 0


@pytest.mark.slow
def test_public_checks_solution_full_stub_zero(tmp_path):
    solution = grade_notebook("week3", WEEK3 / "week3.ipynb", tmp_path / "sol", public=True, student="solution")
    assert solution.max_score > 0 and solution.score == solution.max_score, \
        [(c.id, c.message) for c in solution.checks if c.points < c.max_points]
    attempt = first_attempt(ROOT / "assignments" / "week3" / "week3.ipynb", tmp_path / "attempt")
    stub = grade_notebook("week3", attempt, tmp_path / "stub", public=True, student="stub")
    assert stub.status == "graded" and stub.score == 0, [(c.id, c.points) for c in stub.checks if c.points]
