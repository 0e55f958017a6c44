"""grader.staff.assign: stubs are generated from the solution notebooks, and the committed ones are current."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest
from conftest import ROOT
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from grader.staff.assign import (
    STUB_LINE,
    MarkerError,
    fill_placeholders,
    make_stub,
    strip_code,
    stub_is_current,
    write_stub,
)

SOLUTION_WEEKS = sorted(p.parent.name for p in (ROOT / "solutions").glob("week*/week*.ipynb")
                        if p.stem == p.parent.name)


def test_solution_block_becomes_raise_at_its_indentation():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n\ny = 2"
    assert strip_code(source) == f"def f(x):\n    # YOUR CODE HERE\n    {STUB_LINE}\n\ny = 2"


def test_several_blocks_in_one_cell():
    source = "### BEGIN SOLUTION\na = 1\n### END SOLUTION\nb = 2\n### BEGIN SOLUTION\nc = 3\n### END SOLUTION"
    out = strip_code(source)
    assert out.count(STUB_LINE) == 2 and "b = 2" in out and "a = 1" not in out and "c = 3" not in out


def test_fill_placeholders_is_stubbing_undone():
    """The independent fixtures are the stub filled in order: each answer at its placeholder's indentation,
    None keeps a placeholder (another track's), and the count is what the stub has."""
    first = strip_code("def f(x):\n    ### BEGIN SOLUTION\n    return x\n    ### END SOLUTION\n")
    second = strip_code("class A:\n    def g(self):\n        ### BEGIN SOLUTION\n        pass\n        ### END SOLUTION\n"
                        "### BEGIN SOLUTION\nz = 1\n### END SOLUTION")
    nb = new_notebook(cells=[new_code_cell(first), new_markdown_cell(f"# YOUR CODE HERE\n{STUB_LINE}"),
                             new_code_cell(second)])
    assert fill_placeholders(nb, ["y = x + 1\n\nreturn y", None, "z = 2"]) == 3
    assert nb.cells[0].source == "def f(x):\n    y = x + 1\n\n    return y"
    assert nb.cells[1].source == f"# YOUR CODE HERE\n{STUB_LINE}"  # markdown is never filled
    assert nb.cells[2].source == f"class A:\n    def g(self):\n        # YOUR CODE HERE\n        {STUB_LINE}\nz = 2"


def test_solution_cell_becomes_a_placeholder():
    assert strip_code("### SOLUTION CELL\nsecret = 42\n") == "# YOUR CODE HERE\n"


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1", "never ended"),
    ("x = 1\n### END SOLUTION", "END SOLUTION without BEGIN"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
])
def test_unbalanced_markers_are_an_error(source, problem):
    with pytest.raises(MarkerError, match=problem):
        strip_code(source, "week9.ipynb cell 3")


def make_solution(tmp_path, week="week9"):
    cells = [
        new_markdown_cell("Intro<!-- BEGIN SOLUTION -->\nthe answer is 42\n<!-- END SOLUTION -->\nend"),
        new_code_cell("def f():\n    ### BEGIN SOLUTION\n    return 42\n    ### END SOLUTION",
                      outputs=[new_output("stream", name="stdout", text="42\n")], execution_count=3),
        new_code_cell("print('mentor notes')", metadata={"tags": ["solution-only"]}),
    ]
    nb = new_notebook(cells=cells)
    path = tmp_path / "solutions" / week / f"{week}.ipynb"
    path.parent.mkdir(parents=True)
    nbformat.write(nb, path)
    return path


def test_make_stub_strips_answers_outputs_and_solution_only_cells(tmp_path):
    stub = make_stub(make_solution(tmp_path))
    assert len(stub.cells) == 2
    assert "42" not in stub.cells[0].source and stub.cells[0].source.startswith("Intro")
    code = stub.cells[1]
    assert STUB_LINE in code.source and "return 42" not in code.source
    assert code.outputs == [] and code.execution_count is None


def test_write_stub_then_check_detects_staleness(tmp_path):
    solution = make_solution(tmp_path)
    solutions, assignments = tmp_path / "solutions", tmp_path / "assignments"
    assert not stub_is_current("week9", solutions, assignments)  # nothing written yet
    target = write_stub("week9", solutions, assignments)
    assert target == assignments / "week9" / "week9.ipynb"
    assert stub_is_current("week9", solutions, assignments)
    nb = nbformat.read(solution, as_version=4)
    nb.cells.append(new_code_cell("z = 1"))
    nbformat.write(nb, solution)
    assert not stub_is_current("week9", solutions, assignments)


@pytest.mark.parametrize("week", SOLUTION_WEEKS)
def test_committed_stub_is_current(week):
    assert stub_is_current(week, ROOT / "solutions", ROOT / "assignments"), \
        f"assignments/{week}/{week}.ipynb is stale: run `grader assign {week}`"


def test_cli_assign_check_passes_for_committed_stubs():
    proc = subprocess.run([sys.executable, "-m", "grader.cli", "assign", "--check", *SOLUTION_WEEKS],
                          check=False, capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_week1_stub_leaves_no_solution_code():
    """The week 1 stub keeps the given parts (Value.__init__) and none of the answers."""
    stub = nbformat.read(ROOT / "assignments" / "week1" / "week1.ipynb", as_version=4)
    code = "\n".join(c.source for c in stub.cells if c.cell_type == "code")
    assert "self.grad = 0.0" in code  # given: grad starts at 0
    for answer in ("self.grad += out.grad", "visited.add", "math.tanh(self.data)", "p.data -= lr * p.grad"):
        assert answer not in code, answer
    assert "BEGIN SOLUTION" not in code and all(not c.get("outputs") for c in stub.cells if c.cell_type == "code")
