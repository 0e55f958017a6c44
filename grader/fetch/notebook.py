"""Locate the week's notebook in a submission and validate it, saying clearly what is wrong."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

# Limits on what a submission may hand the trusted side, each checked before the step it protects.
# A week's notebook is < 1 MB with about 14 KB of code in at most 15 cells (the reference solutions).
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024  # the file, before it is read as JSON
MAX_JSON_DEPTH = 100  # nesting of arrays and objects, counted before json.loads (it recurses per level)
MAX_JSON_CONTAINERS = 1_000_000  # arrays and objects, counted before json.loads (about 60 bytes each)
MAX_CELLS = 2000
MAX_CELL_BYTES = 2 * 2**20  # any cell's source (a markdown cell may inline an image)
MAX_CODE_CELL_BYTES = 128 * 2**10  # one code cell's source
# All code cells together. Checks parse the code with `ast` (week 1's integrity scan keeps every cell's
# tree): up to ~900 bytes of tree per byte of `a;a;a;...`, so 256 KiB of code costs the judge ~220 MiB.
MAX_CODE_BYTES = 256 * 2**10


class NotebookError(Exception):
    """A student's notebook cannot be graded; the message is shown in the report."""


class NotebookLimitError(NotebookError):
    """The notebook is over one of the limits above; the message names the limit and its value."""


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


def _size(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB" if n >= 2**10 else f"{n} bytes"


def _read_capped(path: Path) -> bytes:
    size = path.stat().st_size
    if size == 0:
        raise NotebookError(f"{path.name} is empty (0 bytes)")
    if size > MAX_NOTEBOOK_BYTES:
        raise NotebookLimitError(
            f"{path.name} is {size / 2**20:.1f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit; "
            "clear large outputs (Edit > Clear all outputs) and commit again"
        )
    with open(path, "rb") as fh:
        return fh.read(MAX_NOTEBOOK_BYTES + 1)


def read_notebook(path: Path):
    """Parse and validate a notebook as nbformat v4; raise NotebookError naming the problem."""
    return parse_notebook(_read_capped(path), path.name)


# A JSON string (escapes included), to be blanked out before the brackets are counted.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JSONShapeError(ValueError):
    """JSON nested deeper, or holding more arrays and objects, than the trusted side parses."""


def check_json_shape(raw: bytes, max_depth: int, max_containers: int) -> None:
    """Refuse JSON whose parse would cost too much, without parsing it: strings are blanked out (C speed),
    then the brackets that remain are counted and their nesting followed. json.loads recurses once per
    level (a 200 KB file of `[` reached Python's recursion limit) and spends ~60 bytes per container."""
    bare = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKETS)
    opened = bare.count(b"[") + bare.count(b"{")
    if opened > max_containers:
        raise JSONShapeError(f"holds {opened:,} arrays and objects, over the limit of {max_containers:,}")
    depth = 0
    for byte in bare:
        if byte in (91, 123):  # [ {
            depth += 1
            if depth > max_depth:
                raise JSONShapeError(f"is nested more than {max_depth} levels deep (the limit)")
        else:
            depth -= 1


def _source_bytes(source: object) -> int:
    """UTF-8 size of a cell's source (a string, or nbformat's list of lines)."""
    parts = source if isinstance(source, list) else [source]
    return sum(len(p.encode("utf-8", "replace")) for p in parts if isinstance(p, str))


def check_cells(data: dict, name: str) -> None:
    """Cell count and source sizes, on the parsed JSON before nbformat reads it (v4 `cells` with
    `source`, or v3 `worksheets` with `input`); NotebookError names the limit and the cell."""
    cells = data.get("cells")
    if cells is None:
        worksheets = data.get("worksheets")
        cells = [c for w in worksheets if isinstance(w, dict) for c in (w.get("cells") or [])] \
            if isinstance(worksheets, list) else []
    if not isinstance(cells, list):
        return  # nbformat's validation says what is wrong
    if len(cells) > MAX_CELLS:
        raise NotebookLimitError(f"{name} has {len(cells)} cells, over the limit of {MAX_CELLS}")
    code = 0
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        size = _source_bytes(cell.get("source", cell.get("input", "")))
        if size > MAX_CELL_BYTES:
            raise NotebookLimitError(f"{name}: cell {index + 1} holds {_size(size)}, over the "
                                f"{_size(MAX_CELL_BYTES)} limit for one cell")
        if cell.get("cell_type") != "code":
            continue
        if size > MAX_CODE_CELL_BYTES:
            raise NotebookLimitError(f"{name}: code cell {index + 1} holds {_size(size)} of code, over the "
                                f"{_size(MAX_CODE_CELL_BYTES)} limit for one code cell; keep data in files "
                                "(np.save, json), not in code")
        code += size
        if code > MAX_CODE_BYTES:
            raise NotebookLimitError(f"{name}: the code cells hold more than {_size(MAX_CODE_BYTES)} of code "
                                f"(the limit; reached at cell {index + 1}); keep data in files, not in code")


def _load_json(raw: bytes, name: str):
    """The notebook's JSON, its shape checked before parsing; NotebookError for anything unreadable."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NotebookError(f"{name} is not UTF-8 text (byte {exc.start}): was it saved by Jupyter?") from None
    try:
        check_json_shape(raw, MAX_JSON_DEPTH, MAX_JSON_CONTAINERS)
    except JSONShapeError as exc:
        raise NotebookLimitError(f"{name} {exc}; a notebook is a shallow document") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise NotebookError(
            f"{name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "a merge conflict or a hand edit may have broken it"
        ) from None
    except (RecursionError, MemoryError) as exc:  # the shape check should have refused it first
        raise NotebookLimitError(f"{name} cannot be read ({type(exc).__name__}): nested or sized beyond the limits") \
            from None


def parse_notebook(raw: bytes, name: str = "notebook"):
    import nbformat  # imported here: validation pulls jsonschema, which the CLI need not load

    data = _load_json(raw, name)
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookError(f"{name} is JSON but not a notebook (no 'cells')")
    check_cells(data, name)
    _drop_colab_widget_state(data)
    _drop_outputs(data)
    try:
        nb = nbformat.reads(json.dumps(data), as_version=4)
        nbformat.validate(nb)
    except (RecursionError, MemoryError) as exc:
        raise NotebookLimitError(f"{name} cannot be read ({type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - nbformat raises several types; all mean the same to a student
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        raise NotebookError(f"{name} is not a valid Jupyter notebook: {first}") from None
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


def _drop_outputs(data: dict) -> None:
    """The grader runs the notebook afresh: the outputs it was saved with are never read, so they are not
    validated either (nbformat's schema check over thousands of saved outputs is slow)."""
    cells = data.get("cells")
    if not isinstance(cells, list):
        cells = [c for w in data.get("worksheets") or [] if isinstance(w, dict) for c in w.get("cells") or []]
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code" and isinstance(cell.get("outputs"), list):
            cell["outputs"] = []


def code_cell_sources(path: Path | str | None) -> list[str]:
    """The code cells' sources of a notebook file, read as plain JSON (for static checks in the
    judge: no validation, never executed; anything unreadable gives []). The same limits as
    read_notebook hold (NotebookError): checks parse these sources, and a parse costs up to ~900 bytes
    per byte of code."""
    if not path:
        return []
    try:
        nb = _load_json(_read_capped(Path(path)), Path(path).name)
        if isinstance(nb, dict):
            check_cells(nb, Path(path).name)
    except NotebookLimitError:
        raise
    except (OSError, NotebookError):
        return []
    out = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            out.append("".join(src) if isinstance(src, list) else str(src))
    return out
