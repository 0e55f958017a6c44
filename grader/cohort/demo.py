"""`grader demo`: build a small cohort of local forks from the fixture notebooks and grade it.

The cohort shows every path a mentor meets: full marks (two designs), known bugs, the untouched stub
saved as "Copy of week1.ipynb" (not submitted), a late push (its commit backdated to 2020: the
grader's own record of heads at the deadline still catches it), an unreachable fork (the machine's
failure: no score, listed under "needs attention") and a roster line that is refused. Forks are plain git repositories built at run time with fixed
author dates, so a second run makes the same commits and is all cache hits.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from grader.cohort.batch import BatchResult, run_batch
from grader.config import ASSIGNMENTS, REPO_ROOT, SOLUTIONS, Settings
from grader.score import LatePolicy

WEEK = "week1"
UNREACHABLE = "dee"  # the demo's unreachable fork: its fetch failure is expected
POLICY = LatePolicy(grace_hours=0, penalty_per_day=0.1, cap=0.5)
FORGED_DATE = "2020-01-01T12:00:00+00:00"  # what a student might claim for a late commit


def _git(repo: Path, *args: str, date: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=Demo Student", "-c", "user.email=demo@example.com",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True, env=env)


def _commit(repo: Path, files: dict[str, bytes], message: str, day: int) -> None:
    for name, data in files.items():
        (repo / name).write_bytes(data)
    _git(repo, "add", "--", *files, date=f"2026-01-{day:02d}T10:00:00+00:00")
    _git(repo, "commit", "-q", "-m", message, date=f"2026-01-{day:02d}T10:00:00+00:00")


def _fork(work: Path, name: str, history: list[tuple[str, bytes]], notebook: str = "week1.ipynb") -> Path:
    repo = work / name
    if (repo / ".git").is_dir():
        return repo  # built by an earlier run in the same --work folder
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main", date=FORGED_DATE)
    (repo / "README.md").write_text(f"# {name}'s fork of the course\n")
    _commit(repo, {"README.md": (repo / "README.md").read_bytes()}, "fork the course", 1)
    for day, (message, data) in enumerate(history, start=2):
        _commit(repo, {notebook: data}, message, day)
    return repo


def _notebooks() -> dict[str, bytes]:
    """The fixture notebooks the cohort is made of: solution, stub, and known-bug fixtures."""
    found = {"solution": (SOLUTIONS / WEEK / f"{WEEK}.ipynb").read_bytes(),
             "stub": (ASSIGNMENTS / WEEK / f"{WEEK}.ipynb").read_bytes()}
    for path in sorted((REPO_ROOT / "fixtures" / "submissions" / WEEK).glob("*.ipynb")):
        found[path.stem] = path.read_bytes()
    return found


def _pick(nb: dict[str, bytes], *names: str) -> bytes:
    """The first fixture present. Deterministic bugs first: a bug that iterates a set of objects
    (fails_grad_overwrite) scores differently from run to run, which would blur the cache demo."""
    return next((nb[n] for n in names if n in nb), nb["stub"])


def build_cohort(work: Path) -> tuple[Path, str]:
    """Write the forks and the roster; returns (roster path, the late student's id)."""
    nb = _notebooks()
    forks = {
        "ada": _fork(work, "ada", [("start week 1", nb["stub"]), ("value class done", nb["solution"])]),
        "ben": _fork(work, "ben", [("start week 1", nb["stub"]),
                                   ("my attempt", _pick(nb, "fails_parameters_missing_bias", "fails_pow_derivative"))]),
        "cy": _fork(work, "cy", [("start week 1", nb["stub"]),
                                 ("almost", _pick(nb, "fails_tanh_overflow", "fails_pow_derivative"))]),
        "fay": _fork(work, "fay", [("colab copy", nb["stub"])], notebook="Copy of week1.ipynb"),
        "gus": _fork(work, "gus", [("start week 1", nb["stub"]), ("my own design", _pick(nb, "passes_all", "solution"))]),
    }
    rows = [("ada", "Ada Lovelace", "ada-l", forks["ada"], 2001, "A"),
            ("ben", "Ben Bitdiddle", "benb", forks["ben"], 2002, "A"),
            ("cy", "Cy D. Fect", "cyfect", forks["cy"], 2003, "B"),
            ("dee", "Dee Tached", "dee-t", "https://127.0.0.1:9/dee-t/week1.git", 2004, "B"),
            ("fay", "Fay Colab", "faycolab", forks["fay"], 2005, "B"),
            ("gus", "Gus Iterative", "gus-it", forks["gus"], 2007, "A")]
    lines = ["student,name,github,repo,lms_id,section"]
    lines += [",".join(str(v) for v in row) for row in rows]
    lines.append("../eve,Eve Il,eve,--upload-pack=touch /tmp/pwned,2006,B")  # refused, reported
    roster = work / "roster.csv"
    roster.write_text("\n".join(lines) + "\n")
    return roster, "cy"


def _push_late(work: Path, student: str) -> None:
    """After the deadline: cy fixes the notebook, and backdates the commit to 2020."""
    repo = work / student
    _commit(repo, {"week1.ipynb": _notebooks()["solution"]}, "fixed it (honest, before the deadline)", 28)
    _git(repo, "commit", "-q", "--amend", "--no-edit", date=FORGED_DATE)


def run_demo(out_dir: Path, *, work_dir: Path | None = None, jobs: int | None = None, executor: str = "local",
             ray_init: dict | None = None, echo: Callable[[str], None] = print) -> BatchResult:
    """Build the cohort, record heads at the 'deadline', push late, then grade everything."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="grader-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    echo(f"demo forks in {work}")
    roster, late = build_cohort(work)
    # The demo's forks are the course's own fixtures: it runs below bubblewrap too (the reports say so).
    settings = Settings(profile="cpu", allow_weak_isolation=True)
    state = out_dir / "demo.json"  # the deadline of the first run: later runs reuse it (and its cache)
    if state.is_file():
        deadline = datetime.fromisoformat(json.loads(state.read_text())["deadline"])
    else:  # the deadline passes now, and the heads are recorded at once (`batch --fetch-only --deadline`)
        deadline = datetime.now(UTC)
        run_batch(WEEK, roster, out_dir, settings=settings, fetch_only=True, deadline=deadline, echo=lambda s: None)
        state.write_text(json.dumps({"deadline": deadline.isoformat()}) + "\n")
    if len(subprocess.run(["git", "-C", str(work / late), "rev-list", "--all"], capture_output=True,
                          text=True, check=False).stdout.split()) < 4:
        _push_late(work, late)
    echo(f"deadline {deadline.isoformat()} (heads recorded then); {late} pushed after it")
    return run_batch(WEEK, roster, out_dir, settings=settings, jobs=jobs, deadline=deadline, policy=POLICY,
                     executor=executor, address="local" if executor == "ray" else None, ray_init=ray_init,
                     echo=echo)
