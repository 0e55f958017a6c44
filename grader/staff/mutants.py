"""Mutants of a week's reference solution: one student-like bug each, in the solution cells only.

A mutant is the solution notebook with one edit in one cell, made on libcst's concrete syntax tree
so that everything around the edit keeps its spacing and comments (the diff is the bug, nothing
else). Only code between the solution markers and in solution cells (grader.staff.assign) is
mutated: what a student writes (never an optional cell, grader.run.optional). The operators (grader.staff.operators) mirror how students get
micrograd, makemore and GPT code wrong. A mutant's id hashes its operator, the function it sits in and the
lines it changes, not a line number, so the id survives edits elsewhere in the notebook and course
staff can mark it equivalent in week.toml.

Why not mutmut or cosmic-ray: both mutate .py files of an importable package. mutmut 3 switches
mutants at run time through trampolines that import mutmut inside the code under test (here: the
sandbox, which gets nothing of ours) and it mutates functions only; cosmic-ray runs a shell command
per mutant, serially, so no mutant would share the batch's fork servers and judge session. Neither
can place an edit in a notebook cell, and their operators are generic (every binary operator for
every other, strings with "XX"): no dims, keepdim, `=` for `+=`, ignored parameters or swapped APIs.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import difflib
import hashlib
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, ParentNodeProvider
from pydantic import BaseModel, ConfigDict

from grader.config import MutationVariant
from grader.run.optional import is_optional
from grader.staff.assign import BEGIN, END, SOLUTION_CELL
from grader.staff.operators import Edit, find_edits


class Mutant(BaseModel):
    """One edit of one solution cell, and the cell's source after it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str  # stable: operator, scope and the changed lines, never a line number
    kind: str  # a key of KINDS
    operator: str  # what the edit did, e.g. "+ -> -" or "drop statement"
    cell: int  # the cell's index in the notebook
    scope: str  # the function or class it sits in, e.g. "Value.__add__._backward" ("<cell>" at top level)
    line: int  # first changed line, 1-based within the cell (for people; not part of the id)
    source: str  # the mutated cell source
    diff: str  # unified diff of the cell source

    @property
    def title(self) -> str:
        return f"{self.kind}: {self.operator} in {self.scope} (cell {self.cell}, line {self.line})"


def solution_lines(source: str) -> set[int]:
    """1-based lines of a code cell that hold solution code (markers excluded)."""
    lines = source.splitlines()
    if source.lstrip().startswith(SOLUTION_CELL):
        return {n for n, line in enumerate(lines, 1) if not line.lstrip().startswith(SOLUTION_CELL)}
    inside, found = False, set()
    for number, line in enumerate(lines, 1):
        if BEGIN.match(line):
            inside = True
        elif END.match(line):
            inside = False
        elif inside:
            found.add(number)
    return found


def notebook_mutants(path: Path) -> tuple[list[Mutant], list[str]]:
    """Every mutant of a solution notebook's solution cells, in notebook order; and the cells skipped."""
    nb = read_solution(path)
    mutants, skipped = [], []
    signatures = required_arguments(cell.source for cell in nb.cells if cell.cell_type == "code")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not solution_lines(cell.source):
            continue
        if is_optional(cell.source):  # an optional exercise: no check reads it, so no mutant counts
            skipped.append(f"cell {index}: optional (`# OPTIONAL`), not graded")
            continue
        try:
            mutants += cell_mutants(cell.source, index, signatures)
        except Exception as exc:  # noqa: BLE001 - an IPython magic, say: the cell is reported, not mutated
            skipped.append(f"cell {index}: not parsed as Python ({type(exc).__name__}: {str(exc)[:120]})")
    return mutants, skipped


def required_arguments(sources) -> dict[str, int]:
    """Function or class name -> how many positional arguments a call must pass (the notebook's own
    definitions, and builtins whose last argument has a default): only an optional argument is
    dropped, since dropping a required one is a TypeError, not a student's bug."""
    found = {"sum": 1, "round": 1}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None) \
                if isinstance(node, ast.ClassDef) else node
            if isinstance(init, ast.FunctionDef):
                args = init.args.posonlyargs + init.args.args
                found[node.name] = len(args) - len(init.args.defaults) - (init is not node)
    return found


def cell_mutants(source: str, cell: int, signatures: dict[str, int] | None = None) -> list[Mutant]:
    """The mutants of one cell, deduplicated by the code they produce (a no-op edit makes none).
    `signatures`: required_arguments of the notebook (none known: only keyword arguments are dropped)."""
    lines = solution_lines(source)
    wrapper = MetadataWrapper(cst.parse_module(source))
    edits = find_edits(wrapper, lines, signatures or {})
    render = _renderer(wrapper.module, source, wrapper.resolve(ParentNodeProvider))
    seen: set[str] = {_normal(source)}
    taken: dict[str, int] = {}
    out = []
    for edit in edits:
        code = render(edit)
        try:
            normal = _normal(code)
        except SyntaxError:
            continue
        if normal in seen:
            continue
        seen.add(normal)
        removed, added, first = _changed(source, code)
        if first is None:
            continue
        identity = f"{edit.kind}\x00{edit.operator}\x00{edit.scope}\x00{removed}\x00{added}"
        taken[identity] = taken.get(identity, 0) + 1  # the same edit twice in one function: numbered
        digest = hashlib.sha256(f"{identity}\0{taken[identity]}".encode()).hexdigest()[:10]
        diff = "".join(difflib.unified_diff(source.splitlines(True), code.splitlines(True),
                                            f"cell {cell}", f"cell {cell} (mutant {digest})", n=2))
        out.append(Mutant(id=digest, kind=edit.kind, operator=edit.operator, cell=cell, scope=edit.scope,
                          line=first, source=code, diff=diff if diff.endswith("\n") else diff + "\n"))
    return out


def _renderer(module, source: str, parents):
    """edit -> the cell's code with it: only the top-level statement it touches is rewritten and
    printed again (the whole cell's tree for every edit cost 20 s for week 1)."""
    head = module.with_changes(body=(), footer=()).code
    foot = module.with_changes(body=(), header=()).code
    parts = [module.code_for_node(stmt) for stmt in module.body]
    whole = head + "".join(parts) + foot == source

    def render(edit: Edit) -> str:
        dirty = set()
        for node, _ in edit.replace.values():
            while node is not None and id(node) not in dirty:
                dirty.add(id(node))
                node = parents.get(node)
        if not whole:
            return _rebuild(module, edit.replace, dirty).code
        new = list(parts)
        for top in edit.tops:
            stmt = _rebuild(module.body[top], edit.replace, dirty)
            new[top] = "" if isinstance(stmt, cst.RemovalSentinel) else module.code_for_node(stmt)
        return head + "".join(new) + foot

    return render


def _rebuild(node, replace: dict, dirty: set):
    """`node` with the replacements made: only the nodes on a path to a replaced one are copied (a
    transformer visiting the whole cell for every mutant took 20 s for week 1)."""
    hit = replace.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    if id(node) not in dirty:
        return node
    changes = {}
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, cst.CSTNode):
            new = _rebuild(value, replace, dirty)
            if new is not value:
                changes[f.name] = new
        elif isinstance(value, (list, tuple)) and any(isinstance(v, cst.CSTNode) for v in value):
            items = [_rebuild(v, replace, dirty) if isinstance(v, cst.CSTNode) else v for v in value]
            if any(a is not b for a, b in zip(items, value, strict=True)):
                changes[f.name] = type(value)(v for v in items if not isinstance(v, cst.RemovalSentinel))
    return node.with_changes(**changes) if changes else node


def _normal(code: str) -> str:
    return ast.dump(ast.parse(code))


def _changed(before: str, after: str) -> tuple[str, str, int | None]:
    """The removed and the added lines (stripped) and the first changed line of `before`."""
    old, new = before.splitlines(), after.splitlines()
    removed, added, first = [], [], None
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_opcodes():
        if tag != "equal":
            first = i1 + 1 if first is None else first
            removed += [line.strip() for line in old[i1:i2]]
            added += [line.strip() for line in new[j1:j2]]
    return "\n".join(removed), "\n".join(added), first


def read_solution(path: Path):
    """The solution notebook (an nbformat node) with its outputs cleared: what every mutant starts from."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nb


def mutate_notebook(solution, mutant: Mutant | None, variant: MutationVariant | None = None):
    """A copy of the solution (read_solution) with the mutant's cell in place, then the variant's line
    replaced (in whichever cell holds it; a mutant that removed it stays as it is)."""
    nb = copy.deepcopy(solution)
    if mutant is not None:
        nb.cells[mutant.cell].source = mutant.source
    if variant is not None:
        for cell in nb.cells:
            if cell.cell_type == "code" and variant.replace in cell.source:
                cell.source = cell.source.replace(variant.replace, variant.by, 1)
                break
    return nb


def check_variant(solution, variant: MutationVariant, root: Path | None = None) -> None:
    """The variant's text occurs exactly once in the solution's code, and its files are there under `root`
    (else week.toml is wrong)."""
    found = sum(cell.source.count(variant.replace) for cell in solution.cells if cell.cell_type == "code")
    if found != 1:
        raise ValueError(f"[[mutation.variants]] {variant.name}: {variant.replace!r} occurs {found} times in the "
                         f"solution's code, not once")
    missing = [name for name in variant.files if root is not None and not (root / name).is_file()]
    if missing:
        raise ValueError(f"[[mutation.variants]] {variant.name}: files not found: {', '.join(missing)}")


def variant_grades(variant: MutationVariant, mutant: Mutant, solution) -> bool:
    """Whether the variant grades this mutant: every one, unless it names `scopes` (then those functions'
    mutants and the ones in the cell that holds the variant's line)."""
    if not variant.scopes:
        return True
    return (any(scope in mutant.scope for scope in variant.scopes)
            or variant.replace in solution.cells[mutant.cell].source)


def files_digest(paths: list[Path]) -> str:
    """sha256 over the files a variant puts beside the notebook (a changed corpus regrades), "" for none."""
    if not paths:
        return ""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0\x1f")
    return digest.hexdigest()


def code_digest(nb) -> str:
    """sha256 of what a grade depends on in a notebook: its code cells' sources, in order."""
    digest = hashlib.sha256()
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0\x1f")
    return digest.hexdigest()
