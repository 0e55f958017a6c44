"""Generate a week's stub notebook from its reference solution (the single source).

In code cells, the lines between `### BEGIN SOLUTION` and `### END SOLUTION` become
`raise NotImplementedError(...)` at the marker's indentation; a cell whose first line is
`### SOLUTION CELL` is emptied to a `# YOUR CODE HERE` placeholder; cells tagged
`solution-only` are dropped. Markdown between `<!-- BEGIN SOLUTION -->` and
`<!-- END SOLUTION -->` is removed. Outputs and execution counts are cleared.
"""

from __future__ import annotations

import re
from pathlib import Path

BEGIN = re.compile(r"^(\s*)### BEGIN SOLUTION\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")
MD_BLOCK = re.compile(r"<!-- BEGIN SOLUTION -->.*?<!-- END SOLUTION -->\n?", re.DOTALL)
SOLUTION_CELL = "### SOLUTION CELL"  # a cell's first line: the whole cell is the solution
STUB_LINE = 'raise NotImplementedError("your code here")'


PLACEHOLDER = re.compile(r"( *)# YOUR CODE HERE\n *" + re.escape(STUB_LINE))  # what strip_code leaves


def fill_placeholders(nb, answers: list[str | None]) -> int:
    """Fill a stub notebook's placeholders in place, in notebook order, with `answers` (each indented as its
    placeholder; None, or no answer left, keeps that one): the inverse of stubbing, for the independent
    fixture notebooks. Returns how many placeholders the notebook has, for the caller to compare."""
    seen = 0

    def fill(match: re.Match) -> str:
        nonlocal seen
        answer = answers[seen] if seen < len(answers) else None
        seen += 1
        if answer is None:
            return match[0]
        return "\n".join(match[1] + line if line else line for line in answer.split("\n"))

    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = PLACEHOLDER.sub(fill, cell.source)
    return seen


class MarkerError(ValueError):
    """The solution notebook's markers do not pair up: a course-staff error."""


def strip_code(source: str, where: str = "cell") -> str:
    if source.lstrip().startswith(SOLUTION_CELL):
        return "# YOUR CODE HERE\n"
    out, inside = [], None
    for number, line in enumerate(source.splitlines(), 1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside is not None:
                raise MarkerError(f"{where} line {number}: BEGIN SOLUTION inside another")
            inside = begin.group(1)
            out.append(f"{inside}# YOUR CODE HERE")
            out.append(f"{inside}{STUB_LINE}")
        elif end:
            if inside is None:
                raise MarkerError(f"{where} line {number}: END SOLUTION without BEGIN")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise MarkerError(f"{where}: BEGIN SOLUTION never ended")
    return "\n".join(out)


def make_stub(solution_path: Path):
    """The student notebook made from a solution notebook (an nbformat node)."""
    import nbformat

    nb = nbformat.read(solution_path, as_version=4)
    cells = []
    for index, cell in enumerate(nb.cells):
        if "solution-only" in cell.metadata.get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = strip_code(cell.source, f"{solution_path.name} cell {index + 1}")
            cell.outputs = []
            cell.execution_count = None
        elif cell.cell_type == "markdown":
            cell.source = MD_BLOCK.sub("", cell.source)
        cell.metadata.pop("execution", None)
        cells.append(cell)
    nb.cells = cells
    nb.metadata.pop("widgets", None)
    return nb


def write_stub(week: str, solutions: Path, assignments: Path) -> Path:
    """solutions/weekN/weekN.ipynb -> assignments/weekN/weekN.ipynb; returns the stub path."""
    import nbformat

    source = solutions / week / f"{week}.ipynb"
    target = assignments / week / f"{week}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    stub = make_stub(source)
    text = nbformat.writes(stub) + "\n" if not nbformat.writes(stub).endswith("\n") else nbformat.writes(stub)
    target.write_text(text)
    return target


def stub_is_current(week: str, solutions: Path, assignments: Path) -> bool:
    """True when the committed stub equals what the solution generates (a CI check)."""
    import nbformat

    target = assignments / week / f"{week}.ipynb"
    if not target.is_file():
        return False
    expected = nbformat.writes(make_stub(solutions / week / f"{week}.ipynb"))
    return target.read_text().rstrip("\n") == expected.rstrip("\n")
