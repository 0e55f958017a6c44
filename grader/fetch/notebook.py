"""Locate the week's notebook in a submission and validate it, saying clearly what is wrong."""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath

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


def is_week_notebook(name: str, expected: str) -> bool:
    """Whether a file name is the week's notebook: the stub's name or a renamed copy of it."""
    return name == expected or _normalise(name) == _normalise(expected)


def code_cells(raw: bytes) -> tuple[str, ...] | None:
    """A notebook's code as the grader compares it with the stub: the non-empty code cells, each with
    trailing spaces trimmed, the course's data URL made neutral (a release fills it in); outputs,
    metadata and cell ids ignored. None for anything that is not a notebook."""
    try:
        nb = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        return None
    out = []
    for cell in cells:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            src = cell.get("source", "")
            src = "".join(src) if isinstance(src, list) else str(src)
            src = "\n".join(line.rstrip() for line in COURSE_URL.sub(COURSE_PLACEHOLDER, src).strip().splitlines())
            if src:
                out.append(src)
    return tuple(out)


COURSE_URL = re.compile(r"https://raw\.githubusercontent\.com/[^/\s\"']+/[^/\s\"']+/")
COURSE_PLACEHOLDER = "https://raw.githubusercontent.com/COURSE_ORG/COURSE_REPO/"


@dataclass(frozen=True)
class Candidate:
    """A notebook that may be the week's: its path, bytes (None when too big to compare) and the
    time of its last change, where a history says it (a commit; never a file's mtime)."""

    rel: str
    raw: bytes | None
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Pick:
    rel: str
    untouched: bool  # the released stub's code, unchanged: nothing to grade
    reason: str


def pick_notebook(candidates: list[Candidate], expected: str, stub: tuple[str, ...] | None) -> Pick:
    """The file rule: of the week's notebooks (its name or a renamed copy such as Colab's "Copy of
    week1.ipynb"; else the only notebook), one changed from the released stub beats an untouched one;
    among changed ones the most recently changed (when a history says), then the exact name, then
    the shallowest path. Raises NotebookError when there is none, or no way to tell."""
    week = [c for c in candidates if is_week_notebook(PurePosixPath(c.rel).name, expected)]
    if not week:
        if len(candidates) == 1:
            week = candidates
        elif not candidates:
            raise NotebookError(f"no notebook found: expected {expected} in the submission")
        else:
            names = ", ".join(sorted(c.rel for c in candidates)[:8])
            raise NotebookError(f"could not tell which notebook to grade: expected {expected}, found {names}")

    def untouched(c: Candidate) -> bool:
        return stub is not None and c.raw is not None and code_cells(c.raw) == stub

    def key(c: Candidate):
        when = -c.changed_at.timestamp() if c.changed_at else 0.0
        return (untouched(c), when, PurePosixPath(c.rel).name != expected, len(PurePosixPath(c.rel).parts), c.rel)

    chosen = min(week, key=key)
    others = len(week) - 1
    if untouched(chosen):
        reason = f"{chosen.rel}: the released stub, unchanged" + (
            f" (as are the other {others} notebook(s) of the week)" if others else "")
    else:
        reason = f"{chosen.rel}" + (
            f": of {len(week)} notebooks of the week, the {'most recently ' if chosen.changed_at else ''}changed one"
            if others else "")
    return Pick(chosen.rel, untouched(chosen), reason)


@functools.lru_cache(maxsize=16)
def stub_code(path: Path) -> tuple[str, ...] | None:
    """The released stub's code (code_cells), or None when there is no stub to compare with."""
    try:
        return code_cells(Path(path).read_bytes())
    except OSError:
        return None


def locate_notebook(workdir: Path, expected: str, stub: tuple[str, ...] | None = None) -> Path:
    """Find the notebook for `expected` (e.g. 'week1.ipynb') under workdir by pick_notebook's rule
    (with `stub`, a changed copy beats the untouched stub). Symlinks are never followed: a committed
    link could point at a file outside the submission."""
    workdir = workdir.resolve()
    paths = [
        p
        for p in sorted(workdir.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in p.parts and ".git" not in p.parts
    ]
    candidates = []
    for path in paths:
        raw = None
        if stub is not None and not path.is_symlink() and is_week_notebook(path.name, expected):
            try:
                raw = path.read_bytes() if path.stat().st_size <= MAX_NOTEBOOK_BYTES else None
            except OSError:
                raw = None
        candidates.append(Candidate(path.relative_to(workdir).as_posix(), raw))
    chosen = pick_notebook(candidates, expected, stub)
    return _refuse_link(workdir / chosen.rel, workdir)


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
