"""grader.fetch.notebook: find the week's notebook in a submission and say clearly what is wrong with it."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.fetch.notebook import (
    MAX_CODE_CELL_BYTES,
    MAX_JSON_CONTAINERS,
    MAX_NOTEBOOK_BYTES,
    NotebookError,
    NotebookLimitError,
    code_cell_sources,
    locate_notebook,
    read_notebook,
)


def write_nb(path, source="x = 1"):
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=[new_code_cell(source)]), path)
    return path


# ---- locate ----------------------------------------------------------------------------------

def test_exact_name_wins_over_renamed_copies(tmp_path):
    write_nb(tmp_path / "Copy of week1.ipynb")
    exact = write_nb(tmp_path / "week1.ipynb")
    assert locate_notebook(tmp_path, "week1.ipynb") == exact.resolve()


def test_shallowest_exact_match_is_chosen(tmp_path):
    write_nb(tmp_path / "old" / "week1.ipynb")
    top = write_nb(tmp_path / "week1.ipynb")
    assert locate_notebook(tmp_path, "week1.ipynb") == top.resolve()


@pytest.mark.parametrize("name", ["Copy of week1.ipynb", "Week 1.ipynb", "week_1 (2).ipynb",
                                  "week1-final.ipynb", "Copy of Copy of Week1.ipynb"])
def test_renamed_copies_are_found(tmp_path, name):
    found = write_nb(tmp_path / name)
    write_nb(tmp_path / "scratch.ipynb")  # another notebook must not confuse it
    assert locate_notebook(tmp_path, "week1.ipynb") == found.resolve()


def test_a_single_notebook_under_any_name_is_taken(tmp_path):
    only = write_nb(tmp_path / "my_homework.ipynb")
    assert locate_notebook(tmp_path, "week1.ipynb") == only.resolve()


def test_ambiguous_submission_names_the_candidates(tmp_path):
    write_nb(tmp_path / "a.ipynb")
    write_nb(tmp_path / "b.ipynb")
    with pytest.raises(NotebookError, match=r"could not tell which notebook.*a\.ipynb.*b\.ipynb"):
        locate_notebook(tmp_path, "week1.ipynb")


def test_no_notebook_at_all(tmp_path):
    (tmp_path / "README.md").write_text("hi")
    with pytest.raises(NotebookError, match="no notebook found: expected week1.ipynb"):
        locate_notebook(tmp_path, "week1.ipynb")


def test_checkpoints_are_ignored(tmp_path):
    write_nb(tmp_path / ".ipynb_checkpoints" / "week1-checkpoint.ipynb")
    real = write_nb(tmp_path / "week1.ipynb")
    assert locate_notebook(tmp_path, "week1.ipynb") == real.resolve()


def test_symlinked_notebook_is_refused(tmp_path):
    secret = write_nb(tmp_path / "outside" / "secret.ipynb")
    sub = tmp_path / "submission"
    sub.mkdir()
    os.symlink(secret, sub / "week1.ipynb")
    with pytest.raises(NotebookError, match="symbolic link"):
        locate_notebook(sub, "week1.ipynb")


def test_notebook_under_a_symlinked_folder_is_refused(tmp_path):
    write_nb(tmp_path / "outside" / "week1.ipynb")
    sub = tmp_path / "submission"
    sub.mkdir()
    os.symlink(tmp_path / "outside", sub / "linked", target_is_directory=True)
    with pytest.raises(NotebookError):
        # rglob does not descend into the linked folder, so nothing is found; either way not read
        locate_notebook(sub, "week1.ipynb")


# ---- read --------------------------------------------------------------------------------------

def test_valid_notebook_reads_and_gets_cell_ids(tmp_path):
    raw = {"nbformat": 4, "nbformat_minor": 4, "metadata": {},
           "cells": [{"cell_type": "code", "metadata": {}, "source": "1", "outputs": [], "execution_count": None}]}
    path = tmp_path / "week1.ipynb"
    path.write_text(json.dumps(raw))
    nb = read_notebook(path)
    assert nb.cells[0].source == "1"
    assert nb.cells[0]["id"]


def test_empty_file(tmp_path):
    path = tmp_path / "week1.ipynb"
    path.write_bytes(b"")
    with pytest.raises(NotebookError, match="empty"):
        read_notebook(path)


def test_not_json_names_line_and_column(tmp_path):
    good = nbformat.writes(new_notebook(cells=[new_code_cell("x = 1")]))
    path = tmp_path / "week1.ipynb"
    path.write_text(good.replace('"cells": [', '"cells": [\n<<<<<<< HEAD', 1))
    with pytest.raises(NotebookError, match=r"not valid JSON \(line 3, column 1"):
        read_notebook(path)


def test_not_utf8(tmp_path):
    path = tmp_path / "week1.ipynb"
    path.write_bytes(b'{"cells": [], "note": "\xff\xfe"}')
    with pytest.raises(NotebookError, match="not UTF-8"):
        read_notebook(path)


def test_json_but_not_a_notebook(tmp_path):
    path = tmp_path / "week1.ipynb"
    path.write_text(json.dumps({"hello": "world"}))
    with pytest.raises(NotebookError, match="not a notebook"):
        read_notebook(path)


def test_schema_violation_is_a_notebook_error(tmp_path):
    path = tmp_path / "week1.ipynb"
    path.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 4, "metadata": {},
                                "cells": [{"cell_type": "code", "source": 42}]}))
    with pytest.raises(NotebookError, match="not a valid Jupyter notebook"):
        read_notebook(path)


def test_nbformat_v3_is_converted(tmp_path):
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "old"},
          "worksheets": [{"cells": [{"cell_type": "code", "input": "y = 2", "language": "python",
                                     "outputs": [], "metadata": {}}], "metadata": {}}]}
    path = tmp_path / "week1.ipynb"
    path.write_text(json.dumps(v3))
    nb = read_notebook(path)
    assert nb.nbformat == 4
    assert [c.source for c in nb.cells if c.cell_type == "code"] == ["y = 2"]


def test_oversized_is_refused_before_parsing(tmp_path):
    path = tmp_path / "week1.ipynb"
    with open(path, "wb") as fh:  # sparse: not valid JSON either, so only the size check can answer
        fh.truncate(MAX_NOTEBOOK_BYTES + 1)
    with pytest.raises(NotebookError, match="over the 20 MiB limit"):
        read_notebook(path)


def test_colab_widget_metadata_without_state_is_accepted(tmp_path):
    nb = json.loads(nbformat.writes(new_notebook(cells=[new_code_cell("z = 3")])))
    nb["metadata"]["widgets"] = {"application/vnd.jupyter.widget-state+json": {"abc123": {"model_name": "X"}}}
    path = tmp_path / "Copy of week1.ipynb"
    path.write_text(json.dumps(nb))
    parsed = read_notebook(path)
    assert parsed.cells[0].source == "z = 3"
    assert "widgets" not in parsed.metadata


# ---- limits checked before parsing (issue 17) ----------------------------------------------------

def _code_notebook(path, cells):
    """A notebook of code cells written as plain JSON (nbformat's writer would take seconds on these)."""
    doc = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
           "cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None,
                      "source": src} for i, src in enumerate(cells)]}
    path.write_text(json.dumps(doc))
    return path


def test_deep_nesting_is_refused_before_json_loads(tmp_path):
    path = tmp_path / "week1.ipynb"
    path.write_text('{"cells": [], "metadata": {"x": ' + "[" * 100_000 + "]" * 100_000 + "}}")
    with pytest.raises(NotebookLimitError, match="nested more than 100 levels"):
        read_notebook(path)
    with pytest.raises(NotebookLimitError):
        code_cell_sources(path)


def test_brackets_inside_strings_do_not_count(tmp_path):
    path = _code_notebook(tmp_path / "week1.ipynb", ["s = '" + "[{" * 5000 + "'\n", 'q = "\\"[["'])
    assert len(read_notebook(path).cells) == 2


def test_too_many_containers_are_refused(tmp_path):
    path = tmp_path / "week1.ipynb"
    path.write_text('{"cells": [], "metadata": {"x": [' + ",".join(["{}"] * (MAX_JSON_CONTAINERS + 1)) + "]}}")
    with pytest.raises(NotebookLimitError, match="arrays and objects, over the limit"):
        read_notebook(path)


def test_code_cell_and_total_code_limits_name_the_cell_and_the_limit(tmp_path):
    big = _code_notebook(tmp_path / "big.ipynb", ["x = 1\n", "a;" * (MAX_CODE_CELL_BYTES // 2 + 1)])
    with pytest.raises(NotebookLimitError, match=r"code cell 2 holds 128 KiB of code, over the 128 KiB limit"):
        read_notebook(big)
    many = _code_notebook(tmp_path / "many.ipynb", ["a;" * (60 * 2**10 // 2)] * 6)
    with pytest.raises(NotebookLimitError, match=r"more than 256 KiB of code .*reached at cell 5"):
        read_notebook(many)
    markdown = tmp_path / "md.ipynb"
    markdown.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "![img](data:image/png;base64," + "A" * 500_000 + ")"},
        {"cell_type": "code", "id": "c", "metadata": {}, "outputs": [], "execution_count": None, "source": "x = 1"}]}))
    assert len(read_notebook(markdown).cells) == 2  # a pasted image is not code


def test_a_notebook_of_tiny_statements_costs_the_judges_reader_little(tmp_path):
    """2 MiB of `a;a;a;...` took the judge from 247 MiB to 2 GiB when week 1 parsed the cells with ast:
    the judge's reader refuses it before anything parses it."""
    import tracemalloc

    path = _code_notebook(tmp_path / "week1.ipynb", ["a;" * (32 * 2**10)] * 32)  # 2 MiB of code
    tracemalloc.start()
    with pytest.raises(NotebookLimitError, match="256 KiB"):
        code_cell_sources(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 40 * 2**20, f"{peak / 2**20:.0f} MiB"
    at_limit = _code_notebook(tmp_path / "ok.ipynb", ["a;" * (32 * 2**10)] * 4)  # 256 KiB: accepted
    assert len(code_cell_sources(at_limit)) == 4


def test_saved_outputs_are_not_parsed_or_kept(tmp_path):
    doc = json.loads(nbformat.writes(new_notebook(cells=[new_code_cell("x = 1")])))
    doc["cells"][0]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi\n"}] * 3
    path = tmp_path / "week1.ipynb"
    path.write_text(json.dumps(doc))
    assert read_notebook(path).cells[0].outputs == []
