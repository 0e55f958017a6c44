"""`grader release OUT_DIR`: the student template repository, proven free of solutions.

What students get: the assignments (stubs, handouts, public suites) of the weeks released,
the grader package, the datasets with their provenance, the pull-request workflows and the
student guide as README. What they never get: solutions/, hidden checks, reference
notebooks, the project's tests and fixture submissions, and the judge's held-out evaluation data
(fixtures/data/heldout/: the names and text the dev losses are scored on). scan_release() proves it after
every write and a leaking template is deleted, never left behind.

A later week's stub may hand out an earlier week's solution (week 4 gives students week 3's
layers). That is a leak while the earlier week is open, so it is refused unless the mentor
says the earlier weeks are closed (`--allow-handouts`), or releases week by week (`--week`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from grader.config import HELDOUT_DIR, REPO_ROOT

# (source relative to the repository, destination relative to the template)
FILES = [
    ("assignments/README.md", "README.md"),
    ("pyproject.toml", "pyproject.toml"),
    ("ci/constraints.txt", "ci/constraints.txt"),
    ("ci/install.sh", "ci/install.sh"),
    ("ci/check_pr.sh", "ci/check_pr.sh"),
    ("ci/pr_weeks.sh", "ci/pr_weeks.sh"),
    ("ci/post_comment.py", "ci/post_comment.py"),
    ("ci/workflows/student-checks.yml", ".github/workflows/checks.yml"),
    ("ci/workflows/pr-comment.yml", ".github/workflows/pr-comment.yml"),
]
TREES = [("grader", "grader"), ("fixtures/data", "fixtures/data")]
SKIP_PARTS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache"}
HELDOUT = f"fixtures/data/{HELDOUT_DIR}"  # the judge's held-out evaluation data: never in a template
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### SOLUTION CELL", "<!-- BEGIN SOLUTION -->")
MARKER_FILES = {"grader/staff/assign.py", "grader/staff/release.py"}  # they name the markers in order to strip them
# A hidden suite holds no copy of public code (it imports its week's public suite: grader.config.
# public_module), so any other hidden file found in the template, probes included, is a leak.
NOT_SECRET = {"README.md"}
MIN_BLOCK_CHARS = 40  # shorter solution blocks ("return out") are too generic to call a leak
WEEK = re.compile(r"^week(\d+)$")


class ReleaseError(Exception):
    """The template cannot be written, or it would leak mentor-only material."""


COURSE_PLACEHOLDER = "COURSE_ORG/COURSE_REPO"  # the stubs' Colab data URL, until a release fills it in
COURSE_REPO = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")


def check_course_repo(value: str) -> str:
    if not COURSE_REPO.match(value) or value.endswith((".", ".git")) or "/." in value:
        raise ReleaseError(f"--course-repo {value!r}: expected ORG/NAME, the GitHub repository students fork "
                           "(e.g. my-school/llm-course)")
    return value


def write_release(out_dir: Path, force: bool = False, weeks: list[str] | None = None,
                  allow_handouts: bool = False, root: Path = REPO_ROOT, course_repo: str | None = None) -> list[Path]:
    """Copy the template into out_dir (all weeks with a stub, or `weeks`), then scan it.

    `course_repo` (ORG/NAME) fills the stubs' Colab data URL (COURSE_ORG/COURSE_REPO)."""
    out_dir = Path(out_dir)
    if course_repo is not None:
        check_course_repo(course_repo)
    available = sorted((p.name for p in (root / "assignments").glob("week*") if p.is_dir()), key=_week_number)
    weeks = list(weeks or available)
    if missing := sorted(set(weeks) - set(available)):
        raise ReleaseError(f"no assignments for {', '.join(missing)} (have: {', '.join(available) or 'none'})")
    if out_dir.exists():
        if not force:
            raise ReleaseError(f"{out_dir} exists; pass --force to replace it")
        shutil.rmtree(out_dir)
    written = [_copy(root / src, out_dir / dst) for src, dst in FILES if (root / src).is_file()]
    for src, dst in TREES + [(f"assignments/{w}", f"assignments/{w}") for w in weeks]:
        for path in sorted((root / src).rglob("*")):
            rel = path.relative_to(root / src)
            if path.is_file() and not path.is_symlink() and not SKIP_PARTS & set(rel.parts) \
                    and path.suffix not in {".pyc", ".sqlite"} and not (root / HELDOUT) in path.parents:
                written.append(_copy(path, out_dir / dst / rel))
    (out_dir / ".gitignore").write_text("grades/\n.venv/\n__pycache__/\n*.egg-info/\n")
    written.append(out_dir / ".gitignore")
    if course_repo:
        for stub in out_dir.glob("assignments/week*/*.ipynb"):
            stub.write_text(stub.read_text(encoding="utf-8").replace(COURSE_PLACEHOLDER, course_repo), encoding="utf-8")
    leaks = scan_release(out_dir, root / "solutions", allow_handouts=allow_handouts, heldout=root / HELDOUT)
    if leaks:
        shutil.rmtree(out_dir)
        hint = ""
        if _only_handouts(leaks):
            hint = ("\nA later week's stub hands out an earlier week's solution. Release one week at a time "
                    "(`grader release OUT --week week1`, then week2 when week 1 has closed), or pass "
                    "--allow-handouts once the earlier weeks are closed.")
        raise ReleaseError("the template would leak mentor-only material:\n  " + "\n  ".join(leaks[:20]) + hint)
    return written


def _only_handouts(leaks: list[str]) -> bool:
    """Whether every leak is a later released week's file holding an earlier week's solution."""
    for leak in leaks:
        match = re.search(r"assignments/(week\d+)/.*: contains (week\d+)'s solution", leak)
        if not match or _week_number(match[2]) >= _week_number(match[1]):
            return False
    return True


def _copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dst)
    return dst


def _week_number(name: str) -> int:
    match = WEEK.match(name)
    return int(match[1]) if match else 0


def solution_blocks(solutions: Path) -> dict[str, list[str]]:
    """Per week, the code between solution markers of its reference notebook, whitespace-normalised."""
    out = {}
    for nb_path in sorted(solutions.glob("week*/week*.ipynb")):
        blocks = []
        for cell in json.loads(nb_path.read_text(encoding="utf-8")).get("cells", []):
            source = "".join(cell.get("source", []))
            if source.lstrip().startswith("### SOLUTION CELL"):
                blocks.append(source.split("\n", 1)[1] if "\n" in source else "")
            blocks += re.findall(r"### BEGIN SOLUTION[^\n]*\n(.*?)\n[ \t]*### END SOLUTION", source, re.DOTALL)
        out[nb_path.parent.name] = [b for b in map(_normalise, blocks) if len(b) >= MIN_BLOCK_CHARS]
    return out


def _normalise(text: str) -> str:
    return " ".join(text.split())


def scan_release(out_dir: Path, solutions: Path, allow_handouts: bool = False,
                 heldout: Path | None = None) -> list[str]:
    """Every leak in a template tree: a solutions/ or held-out data path, a solution marker, a file
    identical to a hidden suite file or to a held-out data file (`heldout`, default: the repository's
    fixtures/data/heldout), or a reference solution block inside any file. Empty means clean.

    With allow_handouts, week W's solution may appear in the files of a later week (W closed)."""
    hidden = {}
    for path in solutions.rglob("*"):
        if path.is_file() and path.name not in NOT_SECRET and not SKIP_PARTS & set(path.parts):
            hidden[hashlib.sha256(path.read_bytes()).hexdigest()] = path.relative_to(solutions).as_posix()
    heldout = REPO_ROOT / HELDOUT if heldout is None else Path(heldout)
    for path in heldout.rglob("*") if heldout.is_dir() else ():
        if path.is_file():
            hidden[hashlib.sha256(path.read_bytes()).hexdigest()] = f"{HELDOUT}/{path.relative_to(heldout).as_posix()}"
    blocks = solution_blocks(solutions)
    leaks = []
    for path in sorted(Path(out_dir).rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out_dir).as_posix()
        if "solutions" in Path(rel).parts:
            leaks.append(f"{rel}: a solutions/ path")
        if rel.startswith(HELDOUT + "/"):
            leaks.append(f"{rel}: held-out evaluation data (judge-only)")
        raw = path.read_bytes()
        if (digest := hashlib.sha256(raw).hexdigest()) in hidden:
            where = hidden[digest]
            leaks.append(f"{rel}: identical to {where if where.startswith(HELDOUT) else 'solutions/' + where}")
        text = raw.decode("utf-8", errors="ignore")
        if rel not in MARKER_FILES:
            leaks += [f"{rel}: contains {m!r}" for m in MARKERS if m in text]
        flat = _normalise(_notebook_text(text) if rel.endswith(".ipynb") else text)
        file_week = max((_week_number(part) for part in Path(rel).parts), default=0)
        for week, week_blocks in blocks.items():
            if allow_handouts and 0 < _week_number(week) < file_week:
                continue
            leaks += [f"{rel}: contains {week}'s solution ({b[:40]}...)" for b in week_blocks if b in flat]
    return leaks


def _notebook_text(text: str) -> str:
    """A notebook's cell sources joined, so a block is found however the JSON splits its lines."""
    try:
        nb = json.loads(text)
        return "\n".join("".join(c.get("source", [])) for c in nb.get("cells", []))
    except (ValueError, AttributeError, TypeError):
        return text
