"""Print the week whose deadline has just passed, and that deadline: "week3 2026-11-23T12:00:00+00:00".

For the scheduled fetch-only run (mentor-batch.yml): the schedule fires a few minutes after a deadline,
and this says which one, from the course's deadlines file (TOML, a [deadlines] table of weekN = ISO time
with a timezone). Prints nothing when no deadline passed within the last WINDOW. Standard library only.

    python ci/due_week.py deadlines.toml
"""

from __future__ import annotations

import sys
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

WINDOW = timedelta(hours=6)  # GitHub may start a scheduled run late; a record hours late is still useful


def due(deadlines: dict[str, str], now: datetime) -> tuple[str, datetime] | None:
    passed = []
    for week, text in deadlines.items():
        when = datetime.fromisoformat(str(text))
        if when.tzinfo is None:
            raise ValueError(f"{week}: deadline {text!r} has no timezone")
        if now - WINDOW <= when <= now:
            passed.append((when, week))
    return (max(passed)[1], max(passed)[0]) if passed else None


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "deadlines.toml")
    if not path.is_file():
        print(f"error: no deadlines file at {path}", file=sys.stderr)
        return 4
    try:
        found = due(tomllib.loads(path.read_text()).get("deadlines", {}), datetime.now(UTC))
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 4
    if found:
        print(f"{found[0]} {found[1].isoformat()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
