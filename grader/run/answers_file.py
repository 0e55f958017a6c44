"""The answers folder the probe runtime writes, read back on the trusted side: size-capped, never
through a link. The run stage reads it for the probes' statuses and the kernel's device; the judge
(grader.judge.answers) reads the same file strictly, value by value."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 64 * 2**20


class OversizeError(ValueError):
    """A file the sandbox wrote is larger than the trusted side reads."""


def read_capped(path: Path, cap: int) -> bytes:
    """The file's bytes, refusing a symbolic link (O_NOFOLLOW) and anything over `cap` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        size = os.fstat(fd).st_size
        if size > cap:
            raise OversizeError(f"{path.name} is {size} bytes, over the {cap}-byte cap")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(cap + 1)
    finally:
        os.close(fd)


def load_answer_file(answers_dir: Path | str | None) -> dict[str, Any]:
    """The raw answers.json ({} when missing or unreadable)."""
    if answers_dir is None:
        return {}
    path = Path(answers_dir) / "answers.json"
    try:
        data = json.loads(read_capped(path, MAX_JSON_BYTES), parse_constant=lambda c: float("nan"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
