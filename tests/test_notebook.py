"""grader.fetch.notebook: find the week's notebook in a submission and say clearly what is wrong with it."""

from __future__ import annotations

import json
import os

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from grader.fetch.notebook import MAX_NOTEBOOK_BYTES, NotebookError, locate_notebook, read_notebook


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
