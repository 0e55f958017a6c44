"""otter-grader and nbgrader on an assignment equivalent to ours, for bench.py to time beside it.

The assignment is week 1's solution notebook (a micrograd engine; its self-check cell imports
torch) with three checks, written once below and rendered into each tool's own format: otter's
OK-format doctests in an autograder.zip (`otter run`, no container), nbgrader's locked grade
cells in a course folder (`nbgrader autograde`). Our `grader grade` runs all 39 of week 1's
checks on the same notebook, so the comparison, if anything, flatters the peers.

The peers live in their own environment (tests/benchmarks/install_peers.sh); each runner checks
that the peer really gave 3 of 3 points, so that a broken set-up is never timed as a fast one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEEK = "week1"
# (name, setup statements, a boolean expression): the same three checks for both peers.
CHECKS = [
    ("mlp_params", [], "len(MLP(3, [4, 4, 1]).parameters()) == 41"),
    ("tanh_grad", ["x = Value(0.5)", "y = x.tanh()", "y.backward()"],
     "abs(x.grad - (1 - math.tanh(0.5) ** 2)) < 1e-9"),
    ("nll_grads_sum_to_zero", ["logits = [Value(v) for v in (0.0, 3.0, -2.0, 1.0)]", "nll(logits, 3).backward()"],
     "abs(sum(v.grad for v in logits)) < 1e-9"),
]


def default_python(name: str) -> str | None:
    """OTTER_PYTHON / NBGRADER_PYTHON, else the environment install_peers.sh made, else None."""
    # Absolute (not resolved: a venv's python is a link to the base interpreter): the peers run in
    # their own folders, where a relative path would name nothing.
    named = os.environ.get(f"{name.upper()}_PYTHON")
    if named:
        return os.path.abspath(named)
    venv = Path(os.path.abspath(os.environ.get("PEERS_VENV", ROOT / ".peers-venv")))
    return str(venv / "bin" / "python") if (venv / "bin" / "python").is_file() else None


def versions(python: str) -> dict[str, str]:
    code = ("import importlib.metadata as m, json; print(json.dumps({p: m.version(p) for p in "
            "('otter-grader', 'nbgrader', 'torch', 'nbclient')}))")
    return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout)


def _env(python: str) -> dict[str, str]:
    # The peers call their own console scripts (nbgrader runs `alembic`): their bin first on PATH.
    # GRADER=1 as for our runs: the notebook's training cell takes its short path.
    bin_dir = str(Path(python).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "GRADER": "1"}


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)
    took = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"{' '.join(argv[:3])} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
    return took


def _solution():
    import nbformat

    return nbformat.read(ROOT / "solutions" / WEEK / f"{WEEK}.ipynb", as_version=4)


def write_otter_tests(folder: Path) -> None:
    """The three checks as otter OK-format doctests, one file each."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, setup, expr in CHECKS:
        code = "".join(f">>> {line}\n" for line in setup) + f">>> bool({expr})\nTrue"
        test = {"name": name, "points": 1, "suites": [{"cases": [{"code": code, "hidden": False, "locked": False}],
                                                       "scored": True, "setup": "", "teardown": "", "type": "doctest"}]}
        (folder / f"{name}.py").write_text(f"OK_FORMAT = True\ntest = {test!r}\n")


def nbgrader_source():
    """Week 1's solution with its answer cells marked nbgrader's way and the checks as grade cells."""
    import nbformat

    nb = _solution()
    for i, cell in enumerate(nb.cells):  # our notebooks already delimit answers nbgrader's way
        if cell.cell_type == "code" and "BEGIN SOLUTION" in cell.source:
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": f"answer{i}", "locked": False,
                                         "schema_version": 3, "solution": True, "task": False}
    for name, setup, expr in CHECKS:
        cell = nbformat.v4.new_code_cell("\n".join([*setup, f"assert {expr}"]))
        cell.metadata["nbgrader"] = {"grade": True, "grade_id": name, "locked": True, "points": 1,
                                     "schema_version": 3, "solution": False, "task": False}
        nb.cells.append(cell)
    return nb


def otter(python: str, work: Path) -> Callable[[int], float]:
    """Build the otter assignment once; return a runner that grades one fresh submission."""
    import nbformat

    folder = work / "otter"
    write_otter_tests(folder / "tests")
    env = _env(python)
    _run([str(Path(python).parent / "otter"), "generate"], env, folder)
    nbformat.write(_solution(), folder / f"{WEEK}.ipynb")

    def grade(i: int) -> float:
        out = folder / f"out{i}"
        out.mkdir()
        took = _run([str(Path(python).parent / "otter"), "run", "-a", "autograder.zip", "-o", str(out),
                     f"{WEEK}.ipynb"], env, folder)
        tests = json.loads((out / "results.json").read_text())["tests"]
        score = sum(t.get("score") or 0 for t in tests)
        if score != len(CHECKS):
            raise RuntimeError(f"otter gave {score} of {len(CHECKS)}: {tests}")
        return took

    return grade


def nbgrader(python: str, work: Path) -> Callable[[int], float]:
    """A course folder with the assignment generated; the runner autogrades a new student's copy."""
    import nbformat

    folder = work / "nbgrader"
    (folder / "source" / WEEK).mkdir(parents=True)
    (folder / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.root = {str(folder)!r}\nc.CourseDirectory.course_id = 'bench'\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{folder / 'gradebook.db'}'\n")
    nb = nbgrader_source()
    nbformat.write(nb, folder / "source" / WEEK / f"{WEEK}.ipynb")
    env = _env(python)
    tool = str(Path(python).parent / "nbgrader")
    _run([tool, "generate_assignment", WEEK, "--force"], env, folder)
    if not (folder / "release" / WEEK / f"{WEEK}.ipynb").is_file():
        raise RuntimeError("nbgrader generate_assignment wrote no release notebook")

    def grade(i: int) -> float:
        student = f"s{i:02d}"
        _run([tool, "db", "student", "add", student], env, folder)
        (folder / "submitted" / student / WEEK).mkdir(parents=True)
        nbformat.write(nb, folder / "submitted" / student / WEEK / f"{WEEK}.ipynb")
        took = _run([tool, "autograde", WEEK, "--student", student, "--force"], env, folder)
        with sqlite3.connect(folder / "gradebook.db") as db:
            score = db.execute(
                "SELECT SUM(g.auto_score) FROM grade g JOIN submitted_notebook n ON g.notebook_id = n.id "
                "JOIN submitted_assignment a ON n.assignment_id = a.id WHERE a.student_id = ?", (student,)).fetchone()[0]
        if score != len(CHECKS):
            raise RuntimeError(f"nbgrader gave {score} of {len(CHECKS)} (see {folder})")
        return took

    return grade


RUNNERS = {"otter": otter, "nbgrader": nbgrader}
