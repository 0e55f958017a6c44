"""`grader release OUT_DIR`: the student template repository, proven free of solutions.

What students get: the assignments (stubs, handouts, public suites), the grader package,
the datasets with their provenance, the pull-request workflows and the student guide as
README. What they never get: solutions/, hidden checks, reference notebooks, the project's
tests and fixture submissions. scan_release() proves it after every write.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from .config import REPO_ROOT, SOLUTIONS

# (source relative to the repository, destination relative to the template)
FILES = [
    ("assignments/README.md", "README.md"),
    ("pyproject.toml", "pyproject.toml"),
    ("ci/constraints.txt", "ci/constraints.txt"),
    ("ci/install.sh", "ci/install.sh"),
    ("ci/check_pr.sh", "ci/check_pr.sh"),
    ("ci/post_comment.py", "ci/post_comment.py"),
    ("ci/workflows/student-checks.yml", ".github/workflows/checks.yml"),
    ("ci/workflows/pr-comment.yml", ".github/workflows/pr-comment.yml"),
]
TREES = [("grader", "grader"), ("assignments", "assignments"), ("fixtures/data", "fixtures/data")]
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### SOLUTION CELL", "<!-- BEGIN SOLUTION -->")
MIN_BLOCK_CHARS = 40  # shorter solution blocks ("return out") are too generic to call a leak


class ReleaseError(Exception):
    """The template cannot be written, or it would leak mentor-only material."""


def write_release(out_dir: Path, force: bool = False, root: Path = REPO_ROOT) -> list[Path]:
    """Copy the template into out_dir, then scan it; returns the files written."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not force:
            raise ReleaseError(f"{out_dir} exists; pass --force to replace it")
        shutil.rmtree(out_dir)
    written = []
    for src, dst in FILES:
        if (root / src).is_file():
            written.append(_copy(root / src, out_dir / dst))
    for src, dst in TREES:
        for path in sorted((root / src).rglob("*")):
            rel = path.relative_to(root / src)
            if path.is_file() and not path.is_symlink() and not SKIP_PARTS & set(rel.parts) \
                    and path.suffix not in {".pyc", ".sqlite"}:
                written.append(_copy(path, out_dir / dst / rel))
    (out_dir / ".gitignore").write_text("grades/\n.venv/\n__pycache__/\n*.egg-info/\n")
    written.append(out_dir / ".gitignore")
    leaks = scan_release(out_dir, root / "solutions")
    if leaks:
        shutil.rmtree(out_dir)
        raise ReleaseError("the template would leak mentor-only material:\n  " + "\n  ".join(leaks[:20]))
    return written


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


def solution_blocks(solutions: Path = SOLUTIONS) -> list[str]:
    """The code between solution markers in every reference notebook, whitespace-normalised."""
    blocks = []
    for nb_path in sorted(solutions.glob("week*/week*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            source = "".join(cell.get("source", []))
            if source.lstrip().startswith("### SOLUTION CELL"):
                blocks.append(source.split("\n", 1)[1] if "\n" in source else "")
            blocks += re.findall(r"### BEGIN SOLUTION[^\n]*\n(.*?)\n[ \t]*### END SOLUTION", source, re.S)
    normal = [_normalise(b) for b in blocks]
    return [b for b in normal if len(b) >= MIN_BLOCK_CHARS]


def _normalise(text: str) -> str:
    return " ".join(text.split())


def scan_release(out_dir: Path, solutions: Path = SOLUTIONS) -> list[str]:
    """Every leak in a template tree: a solutions/ path, a solution marker, a file identical to a
    hidden suite file, or a reference solution block inside any file. Empty means clean."""
    hidden = {}
    for path in solutions.rglob("*"):
        if path.is_file() and path.name != "README.md" and not SKIP_PARTS & set(path.parts):
            hidden[hashlib.sha256(path.read_bytes()).hexdigest()] = path.relative_to(solutions).as_posix()
    blocks = solution_blocks(solutions)
    leaks = []
    for path in sorted(Path(out_dir).rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out_dir).as_posix()
        if "solutions" in Path(rel).parts:
            leaks.append(f"{rel}: a solutions/ path")
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() in hidden:
            leaks.append(f"{rel}: identical to solutions/{hidden[hashlib.sha256(raw).hexdigest()]}")
        text = raw.decode("utf-8", errors="ignore")
        if rel != "grader/assign.py" and rel != "grader/release.py":  # these name the markers to strip them
            leaks += [f"{rel}: contains {m!r}" for m in MARKERS if m in text]
        flat = _normalise(_notebook_text(text) if rel.endswith(".ipynb") else text)
        leaks += [f"{rel}: contains a reference solution block ({b[:40]}...)" for b in blocks if b in flat]
    return leaks


def _notebook_text(text: str) -> str:
    """A notebook's cell sources joined, so a block is found however the JSON splits its lines."""
    try:
        nb = json.loads(text)
        return "\n".join("".join(c.get("source", [])) for c in nb.get("cells", []))
    except (ValueError, AttributeError, TypeError):
        return text
