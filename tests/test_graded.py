"""What is graded: one rule (grader.fetch.graded) for forks made the way the student guide says.

Forks are built from the released stub: commit on a branch `week1` and open a pull request into the
fork's main without merging; save "Copy of week1.ipynb" from Colab beside the untouched stub; or
change nothing. The batch grades them with a tiny private week (one check: answer() == 42).
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from cohort import git, notebook, scores, tiny_suite, write_roster
from conftest import ROOT

from grader.cohort.batch import run_batch
from grader.cohort.gradebook import Gradebook
from grader.config import Settings
from grader.fetch.forks import ForkStore, SourceError
from grader.fetch.graded import branches, choose
from grader.fetch.notebook import Candidate, code_cells, pick_notebook, stub_code

STUB = ROOT / "assignments" / "week1" / "week1.ipynb"
SOLVED = notebook("def answer():\n    return 42\n")


@pytest.fixture
def suite(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(tiny_suite(tmp_path / "solutions")))
    monkeypatch.setenv("CI", "true")


def template_fork(path: Path) -> Path:
    """A fork of the released template: the stub on main, as GitHub's Fork button makes it."""
    (path / "assignments" / "week1").mkdir(parents=True)
    shutil.copyfile(STUB, path / "assignments" / "week1" / "week1.ipynb")
    (path / "README.md").write_text("# the course\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "template")
    return path


def commit(repo: Path, files: dict[str, str], message: str, *, branch: str | None = None, date: str | None = None):
    if branch:
        git(repo, "switch", "-q", "-c", branch)
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    args = ["commit", "-q", "-m", message] + ([f"--date={date}"] if date else [])
    git(repo, *args)
    return git(repo, "rev-parse", "HEAD")


def readme_cohort(root: Path) -> dict[str, Path]:
    forks = {}
    forks["ada"] = template_fork(root / "ada")  # the guide's flow: a branch week1 and an unmerged PR
    head = commit(forks["ada"], {"assignments/week1/week1.ipynb": SOLVED}, "week 1", branch="week1")
    git(forks["ada"], "update-ref", "refs/pull/1/head", head)
    git(forks["ada"], "switch", "-q", "main")
    forks["ben"] = template_fork(root / "ben")  # Colab: "Save a copy in GitHub" beside the untouched stub
    commit(forks["ben"], {"assignments/week1/Copy of week1.ipynb": SOLVED}, "Created using Colab", branch="week1")
    git(forks["ben"], "switch", "-q", "main")
    forks["cy"] = template_fork(root / "cy")  # forked, never started
    forks["dee"] = template_fork(root / "dee")  # worked on main directly, a wrong answer
    commit(forks["dee"], {"assignments/week1/week1.ipynb": notebook("def answer():\n    return 7\n")}, "mine")
    forks["eve"] = template_fork(root / "eve")  # her own branch name, given in the roster
    commit(forks["eve"], {"assignments/week1/week1.ipynb": SOLVED}, "done", branch="patch-1")
    git(forks["eve"], "switch", "-q", "main")
    return forks


def test_forks_made_the_student_guide_way_are_graded_as_handed_in(suite, tmp_path):
    forks = readme_cohort(tmp_path / "forks")
    roster = write_roster(tmp_path / "roster.csv", [(s, str(p)) for s, p in forks.items()])
    text = roster.read_text().splitlines()
    text[0] += ",branch"
    text[1:] = [line + (",patch-1" if line.startswith("eve,") else ",") for line in text[1:]]
    roster.write_text("\n".join(text) + "\n")
    out = tmp_path / "out"
    result = run_batch("week1", roster, out, settings=Settings(profile="cpu"), jobs=2, echo=lambda s: None)
    assert scores(result) == {"ada": (2.0, "graded", 0), "ben": (2.0, "graded", 0), "cy": (0.0, "not_submitted", 0),
                              "dee": (0.0, "graded", 0), "eve": (2.0, "graded", 0)}
    book = {g.student: g for g in Gradebook(out / "gradebook.sqlite").latest("week1")}
    assert book["ada"].submission.branch == "week1"
    assert book["ada"].submission.notebook == "assignments/week1/week1.ipynb"
    assert book["ben"].submission.notebook == "assignments/week1/Copy of week1.ipynb"
    assert "branch week1" in book["ben"].submission.selection and "changed one" in book["ben"].submission.selection
    assert book["cy"].execution.status == "not_run" and "released stub, unchanged" in book["cy"].message
    assert book["dee"].submission.branch == "main" and book["eve"].submission.branch == "patch-1"
    report = (out / "reports" / "ben-week1.md").read_text()
    assert "Graded: commit " in report and "Copy of week1.ipynb" in report  # the report says what was graded
    summary = (out / "summary-week1.md").read_text()
    assert "| not submitted |" in summary and "| week1 |" in summary  # status and branch columns
    canvas = {row[0]: row[-1] for row in csv.reader(io.StringIO((out / "canvas-week1.csv").read_text()))}
    assert canvas["Student cy"] == "0"  # the student's own zero: exported, unlike a machine failure
    summary_json = json.loads((out / "summary-week1.json").read_text())
    assert {r["student"]: r["status"] for r in summary_json["students"]}["cy"] == "not_submitted"
    import sqlite3

    with sqlite3.connect(out / "gradebook.sqlite") as db:
        assert db.execute("SELECT status FROM gradings WHERE student='cy'").fetchone()[0] == "not_submitted"
    assert not list((out / "work").glob("*")), "each fork's files are exported to grade it, then deleted"
    one = write_roster(tmp_path / "one.csv", [("ben", str(forks["ben"]))])
    kept = run_batch("week1", one, out, settings=Settings(profile="cpu"), jobs=1, regrade=True, keep_exports=True,
                     echo=lambda s: None)
    assert kept.graded == 1 and (out / "work" / "ben" / "assignments" / "week1" / "Copy of week1.ipynb").is_file()


def test_the_rule_prefers_the_newest_change_and_a_changed_copy(tmp_path):
    fork = template_fork(tmp_path / "fork")
    commit(fork, {"assignments/week1/Copy of week1.ipynb": SOLVED}, "colab", branch="week1", date="2026-01-02T10:00")
    git(fork, "switch", "-q", "main")
    later = commit(fork, {"assignments/week2/week2.ipynb": SOLVED}, "next week", date="2026-01-09T10:00")
    store = ForkStore(tmp_path / "store.git")
    refs = store.fetch("ann", str(fork)).refs
    assert [name for name, _ in branches(refs, "week1")] == ["main", "week1"]
    choice = choose(store, refs, "week1", "week1.ipynb", stub_code(STUB))
    # main's newest commit is next week's work: it leaves week 1 alone, so week1's change is the newest
    assert choice.branch == "week1" and choice.notebook == "assignments/week1/Copy of week1.ipynb"
    assert not choice.untouched and choice.sha != later
    with pytest.raises(SourceError, match="branch 'nope' is not in the fork"):
        choose(store, refs, "week1", "week1.ipynb", stub_code(STUB), branch="nope")
    stub_only = choose(store, refs, "week1", "week1.ipynb", stub_code(STUB), branch="main")
    assert stub_only.untouched and stub_only.notebook == "assignments/week1/week1.ipynb"


def test_pick_notebook_a_changed_copy_beats_the_untouched_stub():
    stub = code_cells(STUB.read_bytes())
    released = STUB.read_text().replace("COURSE_ORG/COURSE_REPO", "my-org/course")  # a release fills the URL
    cands = [Candidate("week1.ipynb", released.encode()), Candidate("Copy of week1.ipynb", SOLVED.encode())]
    assert pick_notebook(cands, "week1.ipynb", stub).rel == "Copy of week1.ipynb"
    only_stubs = [Candidate("week1.ipynb", released.encode()), Candidate("Copy of week1.ipynb", released.encode())]
    pick = pick_notebook(only_stubs, "week1.ipynb", stub)
    assert pick.rel == "week1.ipynb" and pick.untouched and "unchanged" in pick.reason
    with_outputs = json.loads(STUB.read_text())  # run and saved, nothing written: still the stub
    for cell in with_outputs["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
            cell["execution_count"] = 1
    assert code_cells(json.dumps(with_outputs).encode()) == stub


def test_grade_and_check_on_the_untouched_stub_say_not_submitted(suite, tmp_path):
    from click.testing import CliRunner

    from grader.cli import main

    fork = template_fork(tmp_path / "fork")
    result = CliRunner().invoke(main, ["grade", "week1", f"file://{fork}", "--out", str(tmp_path / "g"),
                                       "--profile", "cpu", "--format", "json"])
    assert result.exit_code == 1, result.output
    grade = json.loads((tmp_path / "g" / "local-week1.json").read_text())
    assert grade["status"] == "not_submitted" and grade["score"] == 0 and grade["submission"]["branch"] == "main"
    assert grade["max_score"] == 2  # the checks are listed, none earned
    result = CliRunner().invoke(main, ["check", "week1", str(fork), "--out", str(tmp_path / "c"), "--profile", "cpu"])
    assert result.exit_code == 1 and "the stub as released" in result.output, result.output
