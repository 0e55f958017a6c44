"""The peers' assignment in tests/benchmarks/peers.py: the same three checks in both formats, and
they pass on week 1's solution, so that a benchmark times real grading, not a failing set-up."""

from __future__ import annotations

import ast
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
import peers


def test_otter_tests_are_ok_format_doctests_of_the_three_checks(tmp_path):
    peers.write_otter_tests(tmp_path)
    files = sorted(tmp_path.glob("*.py"))
    assert [f.stem for f in files] == sorted(name for name, _, _ in peers.CHECKS)
    for path in files:
        scope = {node.targets[0].id: ast.literal_eval(node.value)  # plain literals, as otter reads them
                 for node in ast.parse(path.read_text()).body if isinstance(node, ast.Assign)}
        assert scope["OK_FORMAT"] is True and scope["test"]["points"] == 1
        code = scope["test"]["suites"][0]["cases"][0]["code"]
        assert code.splitlines()[-1] == "True" and code.splitlines()[-2].startswith(">>> bool(")


def test_the_checks_pass_on_the_solution_in_nbgrader_form(tmp_path, monkeypatch):
    """Executed as nbgrader would: the grade cells run after the notebook's and raise nothing."""
    from nbclient import NotebookClient

    nb = peers.nbgrader_source()
    grade_cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(grade_cells) == len(peers.CHECKS)
    for cell in grade_cells:
        ast.parse(cell.source)
    answers = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert answers, "no answer cells marked: nbgrader would refuse the solution regions"
    monkeypatch.setenv("GRADER", "1")  # the notebook takes its short training path, as in the benchmark
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=False,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert all(not any(o.get("output_type") == "error" for o in c.outputs) for c in grade_cells)
