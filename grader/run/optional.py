"""Optional cells: found in the located notebook, their failures set apart from the graded run.

A week's notebook may hold an exercise that is not graded (week 2's trigram model). Its cell starts
with a `# OPTIONAL` line, which the stub carries and Colab keeps (a comment survives every editor;
cell tags do not). Such a cell may fail, as shipped or half done, without costing `runs_clean`: its
failure moves to `Execution.optional_failures`, which reports list apart. A cell that defines one of
the week's graded names is never optional, whatever its first line says, so the marker cannot hide a
graded cell's failure.
"""

from __future__ import annotations

import ast
import re

from grader.records import Execution

MARKER = re.compile(r"#\s*OPTIONAL\b", re.IGNORECASE)
DEFINES = re.compile(r"^\s*(?:def|class)\s+([A-Za-z_]\w*)|^\s*([A-Za-z_]\w*)\s*=", re.MULTILINE)


def is_optional(source: str) -> bool:
    """Whether a code cell's first non-blank line is a `# OPTIONAL` comment."""
    for line in source.splitlines():
        if line.strip():
            return bool(MARKER.match(line.strip()))
    return False


def defined_names(source: str) -> set[str]:
    """Names a cell binds at its top level (functions, classes, assignments, imports)."""
    try:
        tree = ast.parse("\n".join("" if line.lstrip().startswith(("%", "!")) else line
                                   for line in source.splitlines()))
    except SyntaxError:
        return {a or b for a, b in DEFINES.findall(source)}
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        else:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AnnAssign, ast.AugAssign)) else []
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def optional_cells(notebook, graded_names: list[str] | tuple[str, ...] = ()) -> set[int]:
    """Indices (among all cells) of the notebook's optional code cells that define no graded name."""
    graded = set(graded_names)
    return {i for i, cell in enumerate(notebook.cells)
            if cell.cell_type == "code" and is_optional(cell.source) and not defined_names(cell.source) & graded}


def set_apart_optional(execution: Execution, optional: set[int]) -> Execution:
    """The execution with the optional cells' own failures (an error, or a cell interrupted at its
    timeout) moved to `optional_failures`, and its status as if only the graded cells had run."""
    moved = [f for f in execution.failures
             if f.index in optional and f.kind in ("error", "timeout") and not _ends_the_run(f)]
    if not moved:
        return execution
    kept = [f for f in execution.failures if f not in moved]
    status, message = execution.status, execution.message
    if status in ("errors", "timeout") and not any(f.kind == "timeout" for f in kept):
        status = "errors" if kept else "ok"
        message = "" if status == "ok" or execution.status == "timeout" else message
    return execution.model_copy(update={"failures": kept, "optional_failures": moved, "status": status,
                                        "message": message})


def _ends_the_run(failure) -> bool:
    """The whole run's budget ran out in this cell: the cells after it never ran, which costs."""
    return failure.kind == "timeout" and "total budget" in failure.evalue
