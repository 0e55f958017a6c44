"""Locate the week's notebook in a submission and validate it, saying clearly what is wrong."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024  # reject before parsing; a week's notebook is < 1 MB
MAX_CELLS = 2000


class NotebookError(Exception):
    """A student's notebook cannot be graded; the message is shown in the report."""


def _normalise(name: str) -> str:
    """'Copy of Week 1 (2).ipynb' -> 'week1': how Colab and students rename files."""
    stem = unicodedata.normalize("NFKC", name).lower()
    stem = re.sub(r"\.ipynb$", "", stem)
    stem = re.sub(r"^(copy of\s+)+", "", stem)
    stem = re.sub(r"\s*\(\d+\)$", "", stem)  # "week1 (1)"
    stem = re.sub(r"[-_ ]*(copy|final|solution|submission|v\d+)$", "", stem)
    return re.sub(r"[^a-z0-9]", "", stem)


def locate_notebook(workdir: Path, expected: str) -> Path:
    """Find the notebook for `expected` (e.g. 'week1.ipynb') under workdir.

    Prefers the exact name, then a renamed copy ('Copy of week1.ipynb', 'Week_1.ipynb'), then
    the only notebook in the folder. Symlinks are never followed: a committed link could point
    at a file outside the submission.
    """
    workdir = workdir.resolve()
    candidates = [
        p
        for p in sorted(workdir.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in p.parts and ".git" not in p.parts
    ]
    exact = [p for p in candidates if p.name == expected]
    want = _normalise(expected)
    renamed = [p for p in candidates if _normalise(p.name) == want]
    for group in (exact, renamed):
        if group:
            chosen = min(group, key=lambda p: (len(p.relative_to(workdir).parts), str(p)))
            return _refuse_link(chosen, workdir)
    if len(candidates) == 1:
        return _refuse_link(candidates[0], workdir)
    if not candidates:
        raise NotebookError(f"no notebook found: expected {expected} in the submission")
    names = ", ".join(p.relative_to(workdir).as_posix() for p in candidates[:8])
    raise NotebookError(f"could not tell which notebook to grade: expected {expected}, found {names}")


def _refuse_link(path: Path, workdir: Path) -> Path:
    rel = path.relative_to(workdir)
    probe = workdir
    for part in rel.parts:
        probe = probe / part
        if probe.is_symlink():
            raise NotebookError(f"{rel.as_posix()} is a symbolic link; commit the notebook itself")
    return path


def read_notebook(path: Path):
    """Parse and validate a notebook as nbformat v4; raise NotebookError naming the problem."""
    size = path.stat().st_size
    if size == 0:
        raise NotebookError(f"{path.name} is empty (0 bytes)")
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookError(
            f"{path.name} is {size / 2**20:.1f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit; "
            "clear large outputs (Edit > Clear all outputs) and commit again"
        )
    return parse_notebook(path.read_bytes(), path.name)


def parse_notebook(raw: bytes, name: str = "notebook"):
    import nbformat  # imported here: validation pulls jsonschema, which the CLI need not load

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{name} is not UTF-8 text (byte {exc.start}): was it saved by Jupyter?") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "a merge conflict or a hand edit may have broken it"
        ) from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookError(f"{name} is JSON but not a notebook (no 'cells')")
    _drop_colab_widget_state(data)
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # nbformat raises several types; all mean the same to a student
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"{name} is not a valid Jupyter notebook: {first}") from None
    if len(nb.cells) > MAX_CELLS:
        raise NotebookError(f"{name} has {len(nb.cells)} cells, over the limit of {MAX_CELLS}")
    for index, cell in enumerate(nb.cells):
        cell.setdefault("metadata", {})
        if "id" not in cell:
            cell["id"] = f"cell-{index}"
    return nb


def _drop_colab_widget_state(data: dict) -> None:
    """Colab saves widget metadata without 'state', which fails nbformat's schema; it is only
    display data, so drop it rather than reject the notebook."""
    meta = data.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("widgets"), dict):
        widgets = meta["widgets"].get("application/vnd.jupyter.widget-state+json")
        if not isinstance(widgets, dict) or "state" not in widgets:
            meta.pop("widgets")


def code_cell_sources(path: Path | str | None) -> list[str]:
    """The code cells' sources of a notebook file, read as plain JSON (for static checks in the
    judge: no validation, never executed; anything unreadable gives [])."""
    if not path:
        return []
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError):
        return []
    out = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return out
