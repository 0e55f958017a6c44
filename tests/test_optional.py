"""grader.run.optional: a `# OPTIONAL` cell may fail without costing points; a graded cell cannot hide."""

from __future__ import annotations

import nbformat

from grader.records import CellFailure, Execution
from grader.run.optional import is_optional, optional_cells, set_apart_optional
from grader.staff.mutants import notebook_mutants

TRIGRAM = "# OPTIONAL: not graded\ndef trigram_counts(words, stoi):\n    raise NotImplementedError\n"


def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# week")]
                                    + [nbformat.v4.new_code_cell(s) for s in sources])


def test_the_marker_is_the_first_non_blank_line():
    assert is_optional(TRIGRAM) and is_optional("\n  # Optional exercise\nx = 1")
    assert not is_optional("x = 1\n# OPTIONAL")
    assert not is_optional("# OPTIONALLY, more") and not is_optional("")


def test_a_cell_defining_a_graded_name_is_never_optional():
    nb = notebook("import torch", TRIGRAM, "# OPTIONAL\ndef sample_names(P, n, g):\n    pass",
                  "# OPTIONAL\nfrom helpers import sample_names", "# OPTIONAL\n%time x = 1\nprint(x)")
    assert optional_cells(nb, ["sample_names"]) == {2, 5}


def failure(index: int, kind: str = "error", evalue: str = "") -> CellFailure:
    return CellFailure(index=index, kind=kind, ename="NotImplementedError" if kind == "error" else "", evalue=evalue)


def test_an_optional_cells_failure_is_set_apart_and_the_run_is_clean():
    ran = Execution(status="errors", failures=[failure(4)])
    clean = set_apart_optional(ran, {4})
    assert clean.status == "ok" and clean.failures == [] and clean.optional_failures == [failure(4)]
    timed_out = Execution(status="timeout", message="cell 5 ran longer than 120 s and was interrupted",
                          failures=[failure(4, "timeout", "cell ran longer than 120 s and was interrupted")])
    assert set_apart_optional(timed_out, {4}).model_dump(include={"status", "message"}) == {"status": "ok",
                                                                                            "message": ""}


def test_graded_failures_and_the_end_of_the_run_still_count():
    both = set_apart_optional(Execution(status="errors", failures=[failure(2), failure(4)]), {4})
    assert both.status == "errors" and both.failures == [failure(2)]
    out_of_time = failure(4, "timeout", "stopped: the notebook ran past its total budget of 420 s")
    ended = Execution(status="timeout", failures=[out_of_time])
    assert set_apart_optional(ended, {4}) == ended  # the cells after it never ran
    died = Execution(status="dead_kernel", failures=[failure(4, "dead_kernel")])
    assert set_apart_optional(died, {4}) == died


def test_mutate_leaves_optional_cells_alone(tmp_path):
    path = tmp_path / "week.ipynb"
    body = "def f(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION\n"
    nbformat.write(notebook(body, "# OPTIONAL: not graded\n" + body.replace("def f", "def g")), path)
    mutants, skipped = notebook_mutants(path)
    assert mutants and {m.cell for m in mutants} == {1}
    assert skipped == ["cell 2: optional (`# OPTIONAL`), not graded"]
