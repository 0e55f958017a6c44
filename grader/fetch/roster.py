"""Read a cohort roster (CSV or TOML), validating every line: bad lines are reported and skipped.

A roster line names a student, their fork and their LMS ids. Every value is untrusted: a student
id becomes a file name and a git remote name, a fork URL reaches git, so each is checked here
and a bad line gets a message naming its line number; the good lines are graded.
"""

from __future__ import annotations

import csv
import re
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from grader.fetch.forks import SourceError, check_source
from grader.fetch.graded import check_branch

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
GITHUB_USER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
LMS_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9@._:-]{0,63}$")
SAFE_TEXT = re.compile(r"^[^\x00-\x1f\x7f]{0,200}$")

# Column names as mentors write them -> our field names.
ALIASES = {
    "student": "student", "id": "student", "student_id": "student",
    "name": "name", "github": "github", "github_user": "github", "user": "github",
    "repo": "repo", "fork": "repo", "url": "repo", "fork_url": "repo",
    "lms_id": "lms_id", "canvas_id": "lms_id", "sis_id": "sis_id", "sis_login": "sis_login",
    "section": "section", "branch": "branch",
}


class RosterEntry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    student: str  # safe as a file name and a git remote name
    repo: str  # validated URL or absolute local path
    name: str = ""
    github: str = ""
    lms_id: str = ""
    sis_id: str = ""
    sis_login: str = ""
    section: str = ""
    branch: str = ""  # grade this branch of the fork (else the rule's choice, grader.fetch.graded)
    line: int = 0


class Roster(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    entries: list[RosterEntry]
    problems: list[str]  # one message per skipped line, naming the line


def check_student_id(value: str) -> str:
    """A student id becomes a folder and a remote name: letters, digits, . _ - only."""
    if not STUDENT_ID.match(value) or ".." in value or value.lower().endswith((".lock", ".git")):
        raise ValueError(f"student id {value!r} is not allowed (letters, digits, '.', '_', '-'; "
                         "must start with a letter or digit; no '..')")
    return value


def _check_fields(raw: dict[str, str], base: Path, line: int) -> RosterEntry:
    fields: dict[str, str] = {}
    for key, value in raw.items():
        name = ALIASES.get((key or "").strip().lower().replace(" ", "_"))
        if name is None:
            continue  # extra columns (notes, emails) are ignored
        value = "" if value is None else str(value).strip()
        if not SAFE_TEXT.match(value):
            raise ValueError(f"{name} contains control characters or is too long")
        fields[name] = value
    if not fields.get("student"):
        raise ValueError("missing student id")
    check_student_id(fields["student"])
    if fields.get("github") and not GITHUB_USER.match(fields["github"]):
        raise ValueError(f"github user {fields['github']!r} is not a valid GitHub login")
    for key in ("lms_id", "sis_id", "sis_login"):
        if fields.get(key) and not LMS_ID.match(fields[key]):
            raise ValueError(f"{key} {fields[key]!r} is not allowed")
    if fields.get("branch"):
        check_branch(fields["branch"])
    if not fields.get("repo"):
        raise ValueError("missing fork URL (column 'repo')")
    fields["repo"] = check_source(fields["repo"], base=base)
    return RosterEntry(line=line, **fields)


def _rows(path: Path) -> list[tuple[int, dict]]:
    if path.suffix == ".toml":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        rows = data.get("student", data.get("students", []))
        if not isinstance(rows, list):
            raise ValueError(f"{path}: expected [[student]] tables")
        return [(i + 1, r if isinstance(r, dict) else {}) for i, r in enumerate(rows)]
    text = path.read_text(encoding="utf-8-sig")
    kept = [(i + 1, ln) for i, ln in enumerate(text.splitlines()) if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(ln for _, ln in kept)
    if reader.fieldnames is None:  # reads the header now, so line_num counts from the first row
        return []
    out = []
    while True:
        start = reader.line_num  # lines consumed so far: the next row starts on the one after
        try:
            row = next(reader)
        except StopIteration:
            return out
        row.pop(None, None)  # cells beyond the header are ignored
        out.append((kept[start][0] if start < len(kept) else start + 1, row))


def load_roster(path: Path) -> Roster:
    """Parse and validate; raises only when the file itself is unreadable (a usage error)."""
    path = Path(path)
    base = path.resolve().parent
    entries: list[RosterEntry] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    seen_github: dict[str, int] = {}
    label = "entry" if path.suffix == ".toml" else "line"
    for line, row in _rows(path):
        try:
            entry = _check_fields(row, base, line)
            key = entry.student.lower()  # remote names and folders are case-insensitive on some disks
            if key in seen:
                raise ValueError(f"duplicate student {entry.student!r} (first on {label} {seen[key]})")
            if entry.github and entry.github.lower() in seen_github:
                raise ValueError(f"duplicate github user {entry.github!r} "
                                 f"(first on {label} {seen_github[entry.github.lower()]})")
        except (ValueError, SourceError) as exc:
            problems.append(f"{path.name} {label} {line}: {exc}; skipped")
            continue
        seen[key] = line
        if entry.github:
            seen_github[entry.github.lower()] = line
        entries.append(entry)
    return Roster(path=str(path), entries=entries, problems=problems)
