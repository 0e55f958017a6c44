"""The pipeline as folders: each stage imports only the stages below it, and no import runs in a circle.

Every `import` in grader/ counts, at module level or inside a function (a lazy import closes a circle
at run time just the same).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "grader"

# grader.caps: the caps on the grader's own processes, used from git export (fetch) up to the batch.
BASE = {"grader", "grader.records", "grader.config", "grader.caps"}
# A unit (a stage's subpackage or a top-level module) -> the units it may import besides itself.
ALLOWED = {
    "grader": set(), "grader.records": set(), "grader.config": set(), "grader.caps": set(),
    "grader.fetch": BASE,
    "grader.run": BASE | {"grader.fetch"},
    "grader.judge": BASE | {"grader.fetch", "grader.run"},
    "grader.score": BASE | {"grader.judge"},
    "grader.pipeline": BASE | {"grader.fetch", "grader.run", "grader.judge", "grader.score"},
    "grader.report": BASE,
    "grader.cohort": BASE | {"grader.fetch", "grader.run", "grader.judge", "grader.score", "grader.pipeline",
                             "grader.report"},
    "grader.staff": BASE | {"grader.fetch", "grader.run", "grader.judge", "grader.score", "grader.pipeline",
                            "grader.report", "grader.cohort"},
}
ALLOWED["grader.cli"] = BASE | set(ALLOWED) - {"grader.cli"}
STAGES = ("grader.fetch", "grader.run", "grader.judge", "grader.report", "grader.cohort")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py")) if "__pycache__" not in p.parts}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The grader modules `name` imports (absolute or relative, anywhere in the file)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]  # a module, or a name in `base`
        else:
            continue
        for target in targets:
            while target and target not in known:  # `from grader.x import func` -> grader.x
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def unit(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else name


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def test_at_least_four_stage_subpackages_each_saying_what_it_may_import():
    for stage in STAGES:
        init = PACKAGE / stage.split(".")[1] / "__init__.py"
        assert init.is_file(), f"{stage} is not a subpackage"
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, f"{stage}/__init__.py does not say what it may import"


def test_stages_import_only_lower_stages():
    wrong = []
    for name, targets in graph().items():
        allowed = ALLOWED.get(unit(name))
        assert allowed is not None, f"{name} belongs to no stage: add it to ALLOWED"
        for target in targets:
            if unit(target) != unit(name) and unit(target) not in allowed and target not in ("grader",):
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the stage order:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


def test_the_checker_sees_a_cycle_and_a_wrong_way_import(tmp_path, monkeypatch):
    """The walk is not vacuous: a planted upward import and a planted cycle are both caught."""
    names = {"grader.fetch.a": "from grader.report.b import x\n", "grader.report.b": "from grader.fetch import a\n"}
    paths = {}
    for name, source in names.items():
        path = tmp_path / (name.replace(".", "/") + ".py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
        paths[name] = path
    known = set(paths) | {"grader.fetch", "grader.report"}
    assert imports_of("grader.fetch.a", paths["grader.fetch.a"], known) == {"grader.report.b"}
    assert imports_of("grader.report.b", paths["grader.report.b"], known) == {"grader.fetch.a"}
    assert "grader.report" not in ALLOWED["grader.fetch"]
