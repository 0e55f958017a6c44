"""The grader's own record of every fork's branches over time: the trusted "when".

Commit dates are whatever the student's machine says (DESIGN, "Fetch facts"), so lateness is decided
from what the grader itself saw, and when. heads.jsonl is append-only, one JSON object a line, each
line fsynced (a line cut short by a kill is skipped, the rest still counts):

    {"run": ID, "kind": "fetch-only" | "batch", "at": T, "deadline": D | null}    a fetch run began
    {"run": ID, "student": S, "at": T, "refs": {"HEAD": sha, "heads/main": sha}}  what a fork showed
    {"run": ID, "student": S, "at": T, "error": "could not fetch ..."}            a fetch that failed

A fetch-only run tagged with a deadline (`grader batch weekN --fetch-only --deadline D`, run when the
deadline has passed) is that deadline's record: the branches it saw are what was handed in on time.
Lines written before runs were tagged ({"student", "sha", "at"}: the default branch only) still count.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from grader.fetch.forks import Fetched

FETCH_ONLY, BATCH = "fetch-only", "batch"


@dataclass(frozen=True)
class Run:
    id: str
    kind: str
    at: datetime
    deadline: datetime | None


@dataclass(frozen=True)
class Sighting:
    """One fork as one fetch saw it: its branch tips, or why the fetch failed."""

    at: datetime
    refs: dict[str, str] = field(default_factory=dict)
    run: str | None = None
    error: str = ""


def record_hint(week: str = "weekN", deadline: datetime | None = None) -> str:
    """How a mentor records the heads at a deadline (said wherever a record is missing)."""
    when = deadline.isoformat() if deadline else "DEADLINE"
    return (f"record them when the deadline passes with `grader batch {week} --roster ROSTER --out OUT "
            f"--fetch-only --deadline {when}` (the same --out)")


class HeadsLog:
    """Append-only: every fetch the grader made, with the branch tips it saw and when."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lines: list[dict] | None = None

    def _append(self, item: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(item, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self._lines = None

    def start_run(self, kind: str, deadline: datetime | None = None, at: datetime | None = None) -> str:
        """Mark the start of a fetch run; returns its id (recorded with every fork it fetches)."""
        run = secrets.token_hex(6)
        self._append({"run": run, "kind": kind, "at": (at or datetime.now(UTC)).isoformat(),
                      "deadline": deadline.isoformat() if deadline else None})
        return run

    def record(self, fetched: Fetched, run: str | None = None, at: datetime | None = None) -> None:
        """What one fetch saw: every branch tip of the fork, or the error when it saw nothing."""
        item: dict = {"student": fetched.student, "at": (at or datetime.now(UTC)).isoformat()}
        if run:
            item["run"] = run
        if fetched.refs:
            item["refs"] = dict(fetched.refs)
        elif fetched.error:
            item["error"] = fetched.error[:500]
        else:
            return
        self._append(item)

    def _read(self) -> list[dict]:
        if self._lines is None:
            self._lines = []
            if self.path.is_file():
                for line in self.path.read_text(encoding="utf-8").splitlines():
                    try:
                        item = json.loads(line)
                        if isinstance(item, dict) and isinstance(item.get("at"), str):
                            item["at"] = _when(item["at"])
                            self._lines.append(item)
                    except (ValueError, TypeError):
                        continue  # a line cut by a kill, or not ours
        return self._lines

    def runs(self) -> list[Run]:
        return [Run(i["run"], i.get("kind", ""), i["at"], _when(i["deadline"]) if i.get("deadline") else None)
                for i in self._read() if "student" not in i and isinstance(i.get("run"), str)]

    def deadline_run(self, deadline: datetime) -> Run | None:
        """The first fetch-only run recorded for this deadline, or None (no trusted record)."""
        tagged = [r for r in self.runs() if r.kind == FETCH_ONLY and r.deadline == deadline]
        return min(tagged, key=lambda r: r.at) if tagged else None

    def sightings(self, student: str) -> list[Sighting]:
        out = []
        for item in self._read():
            if item.get("student") != student:
                continue
            refs = item.get("refs")
            if not isinstance(refs, dict) and isinstance(item.get("sha"), str):
                refs = {"HEAD": item["sha"]}  # a line from before branches were recorded
            refs = {str(k): str(v) for k, v in (refs or {}).items()}
            out.append(Sighting(item["at"], refs, item.get("run"), str(item.get("error", ""))))
        return sorted(out, key=lambda s: s.at)

    def at_deadline(self, student: str, deadline: datetime) -> Sighting | None:
        """The fork as the deadline's fetch-only runs saw it: the first successful sighting, else the
        first failure (its error says why), else None (the fork was not fetched then)."""
        runs = {r.id for r in self.runs() if r.kind == FETCH_ONLY and r.deadline == deadline}
        seen = [s for s in self.sightings(student) if s.run in runs]
        ok = [s for s in seen if s.refs]
        return (ok or seen or [None])[0]

    def first_seen(self, student: str, sha: str,
                   contains: Callable[[str, str], bool] | None = None) -> datetime | None:
        """When the grader first saw this commit on one of the fork's branches (the tip, or, with
        `contains(tip, sha)`, behind it): the trusted submission time."""
        known: dict[str, bool] = {}
        for sighting in self.sightings(student):
            for tip in set(sighting.refs.values()):
                if tip == sha:
                    return sighting.at
                if contains is not None:
                    if tip not in known:
                        known[tip] = contains(tip, sha)
                    if known[tip]:
                        return sighting.at
        return None

    # The default branch alone, as the log was read before branches were recorded.
    def head_at(self, student: str, deadline: datetime) -> str | None:
        """The default branch's last recorded tip at or before `deadline`."""
        before = [s for s in self.sightings(student) if s.at <= deadline and Fetched(student, s.refs).head]
        return Fetched(student, before[-1].refs).head if before else None


def _when(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
