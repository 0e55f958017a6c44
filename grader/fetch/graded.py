"""What is graded: one rule for `grade`, `check`, `batch` and the pull-request scripts.

Which commit. A branch the roster (column `branch`) or `--branch` names; otherwise the fork's default
branch and any branch named after the week (`week1`, `Week-1`, ...), as the student guide's flow makes
them (commit on a branch `week1`, open a pull request into the fork's main, never merge). Of these,
the branch with the newest change to the week's work wins (the week's notebook, a renamed copy, and
the folder it sits in unless that is the repository's root; a tie goes to the week's branch). Its tip
is graded (so a helper file committed later is there); when it was handed in is decided by that newest
change to the week's work, so a later commit that leaves the week alone (next week's notebook on the
same branch) does not make this week late. A commit given outright (`--commit`, a pull request's
head) is graded as it is.

Which file. grader.fetch.notebook.pick_notebook: a changed notebook of the week (Colab's "Copy of
week1.ipynb" included) beats the untouched stub; among changed ones the most recently changed.

Commit dates choose only between a student's own branches (a forged date can only pick which of
their own work is graded, and the report says which); lateness never comes from them unless the
mentor says so (grader.fetch.heads).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath

from grader.fetch.forks import Fetched, ForkStore, SourceError, check_source
from grader.fetch.notebook import (
    MAX_NOTEBOOK_BYTES,
    Candidate,
    NotebookError,
    is_week_notebook,
    pick_notebook,
)
from grader.records import Submission

BRANCH = re.compile(r"^(?!-)(?!/)(?!.*\.\.)(?!.*//)[A-Za-z0-9._/-]{1,100}(?<!/)(?<!\.lock)$")


def check_branch(name: str) -> str:
    """A branch name from a roster or the command line: it reaches git as part of a ref name."""
    if not BRANCH.match(name):
        raise ValueError(f"branch {name!r} is not a branch name (letters, digits, '.', '_', '-', '/')")
    return name


def _week_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class Choice:
    sha: str  # the commit to grade
    work: str  # the newest commit at or behind it that changed the week's work: when it was handed in
    branch: str | None  # None when the commit was given
    notebook: str | None  # None when the rule found none (locating the notebook then says why)
    untouched: bool  # the notebook is the released stub, unchanged
    selection: str  # what is graded and why, for every report
    notes: list[str] = field(default_factory=list)  # other branches with the week's work, not graded


def branches(refs: dict[str, str], week: str, branch: str | None = None) -> list[tuple[str, str]]:
    """(name, tip) of the branches the rule looks at: the named one, else the default branch and the
    week's; raises SourceError when the fork has none of them."""
    heads = {name[len("heads/"):]: sha for name, sha in refs.items() if name.startswith("heads/")}
    if branch:
        if branch not in heads:
            have = ", ".join(sorted(heads)[:10]) or "none"
            raise SourceError(f"branch {branch!r} is not in the fork (its branches: {have})")
        return [(branch, heads[branch])]
    out = []
    head = Fetched("", refs).head
    if head:
        named = sorted((n for n, sha in heads.items() if sha == head), key=lambda n: (n not in ("main", "master"), n))
        out.append((named[0] if named else "HEAD", head))
    out += [(name, sha) for name, sha in sorted(heads.items())
            if _week_key(name) == _week_key(week) and (name, sha) not in out]
    if not out:
        raise SourceError("the fork has no commits (no default branch, no branch named after the week)")
    return out


def _week_paths(store: ForkStore, tip: str, expected: str) -> list[str]:
    """The week's notebooks in a commit, and their folders (not the root): the week's work."""
    notebooks = [path for path, _ in store.notebooks(tip)]
    week = [p for p in notebooks if is_week_notebook(PurePosixPath(p).name, expected)] or (
        notebooks if len(notebooks) == 1 else [])
    folders = {str(PurePosixPath(p).parent) for p in week} - {"."}
    return sorted(set(week) | folders)


def choose(store: ForkStore, refs: dict[str, str], week: str, expected: str, stub: tuple[str, ...] | None, *,
           branch: str | None = None, commit: str | None = None, before: datetime | None = None) -> Choice:
    """Apply the rule to a fork's refs (or to a given commit): the commit and notebook to grade.

    `before`: only commits dated at or before it (commit dates: --trust-commit-dates alone asks this).
    Raises SourceError when nothing can be graded.
    """
    notes: list[str] = []
    if commit:
        sha, work, chosen_branch, why = commit, commit, None, f"commit {commit[:12]}"
    else:
        found = []  # (name, tip, (sha, time) of the newest change to the week's work, or None)
        for name, tip in branches(refs, week, branch):
            found.append((name, tip, store.last_change(tip, _week_paths(store, tip, expected), before)))
        changed = [f for f in found if f[2]]
        if not changed:
            if before is not None:
                raise SourceError(f"no commit of the week's work is dated at or before {before.isoformat()}")
            name, tip, _ = found[0]
            sha, work, chosen_branch = tip, tip, name
            why = f"commit {sha[:12]}, the tip of branch {name} (no commit there changes the week's notebook)"
        else:
            name, tip, (work, _) = max(changed, key=lambda f: (f[2][1], _week_key(f[0]) == _week_key(week)))
            sha = work if before is not None else tip  # by commit date: the tip may be after the deadline
            chosen_branch = name
            looked = ", ".join(f[0] for f in found)
            why = (f"commit {sha[:12]}, {'on' if before is not None else 'the tip of'} branch {name}: the branch "
                   f"with the newest change to the week's notebook (commit {work[:12]}; branches looked at: {looked})")
            notes += [f"branch {other} also changes the week's notebook (commit {change[0][:12]}, dated "
                      f"{change[1]:%Y-%m-%d %H:%M} UTC): not graded, the change on {name} is newer"
                      for other, _, change in changed if other != name and change[0] != work]
    candidates = []
    for path, blob in store.notebooks(sha):
        mine = is_week_notebook(PurePosixPath(path).name, expected)
        raw = store.blob(blob, MAX_NOTEBOOK_BYTES) if mine else None
        last = store.last_change(sha, [path]) if mine else None
        candidates.append(Candidate(path, raw, last[1] if last else None))
    try:
        pick = pick_notebook(candidates, expected, stub)
    except NotebookError:
        return Choice(sha, work, chosen_branch, None, False, why, notes)
    return Choice(sha, work, chosen_branch, pick.rel, pick.untouched, f"{why}; notebook {pick.reason}", notes)


def fetch_submission(source: str, week: str, *, commit: str | None, student: str, dest: Path,
                     pull: int | None = None, branch: str | None = None, expected: str | None = None,
                     stub: tuple[str, ...] | None = None) -> Submission:
    """Fetch one repository (URL or local path), choose what to grade by the one rule
    (grader.fetch.graded: a given commit or pull request as it is; else the branch and notebook the
    rule picks) and export that commit into dest/work.

    Problems that are the student's (unknown commit or branch) are listed in Submission.problems;
    the pipeline then reports the submission as invalid. A fork that cannot be fetched at all is a
    fetch failure (the machine's or the network's, grader.records.MACHINE_FAILURES).
    """
    dest = Path(dest)
    workdir = dest / "work"
    problems: list[str] = []
    update: dict = {}
    try:
        url = check_source(source)
        store = ForkStore(dest / "store.git")
        fetched = store.fetch("fork", url)  # one fork in this store: the remote name is ours, not the student's
        if fetched.error:
            problems.append(fetched.error)
            update["fetch_error"] = fetched.error if not fetched.refs else ""
        if fetched.refs:
            given = store.resolve("fork", commit, pull, refs=fetched.refs) if commit or pull is not None else None
            choice = choose(store, fetched.refs, week, expected or f"{week}.ipynb", stub, branch=branch, commit=given)
            update = {"commit": choice.sha, "branch": choice.branch, "selection": choice.selection,
                      "submitted_at": store.commit_time(choice.sha), "notebook": choice.notebook}
            problems += choice.notes
            problems += [f"not exported: {s}" for s in store.export(choice.sha, workdir)]
    except SourceError as exc:
        problems.append(str(exc))
    return Submission(student=student, week=week, source=source, workdir=str(workdir), problems=problems, **update)
