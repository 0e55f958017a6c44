"""The answers folder the probe runtime writes, read back on the trusted side: size-capped, never
through a link, its shape checked before it is parsed. The run stage reads it for the probes' statuses
and the kernel's device; the judge (grader.judge.answers) reads the same file strictly, value by value."""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from grader.fetch.notebook import JSONShapeError, check_json_shape

# answers.json holds numbers, strings and small lists (arrays are .npy files beside it): a week's
# answers are a few KB. These bound what the grader spends on one written by hostile code.
MAX_JSON_BYTES = 16 * 2**20
MAX_JSON_DEPTH = 64
MAX_JSON_CONTAINERS = 500_000


class OversizeError(ValueError):
    """A file the sandbox wrote is larger than the trusted side reads."""


class AnswerFileError(ValueError):
    """answers.json exists but the trusted side refuses to read it; the message says why (a student's failure)."""


def read_capped(path: Path, cap: int) -> bytes:
    """The file's bytes, refusing a symbolic link (O_NOFOLLOW), anything but a regular file (a FIFO the
    sandbox made would block the reader forever: O_NONBLOCK opens it at once, then it is refused) and
    anything over `cap` bytes."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(errno.EINVAL, "not a regular file")
        size = info.st_size
        if size > cap:
            raise OversizeError(f"{path.name} is {size} bytes, over the {cap}-byte cap")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(cap + 1)
    finally:
        os.close(fd)


def read_answer_file(answers_dir: Path | str | None) -> dict[str, Any]:
    """The raw answers.json: {} when there is none; AnswerFileError when it is there but refused (a link,
    over the size cap, nested or branching beyond the limits, not JSON, not an object)."""
    if answers_dir is None:
        return {}
    path = Path(answers_dir) / "answers.json"
    try:
        raw = read_capped(path, MAX_JSON_BYTES)
    except FileNotFoundError:
        return {}
    except OversizeError as exc:
        raise AnswerFileError(f"{exc} (answers.json may hold at most {MAX_JSON_BYTES // 2**20} MiB)") from None
    except OSError as exc:  # a symbolic link (ELOOP with O_NOFOLLOW), a folder, unreadable
        raise AnswerFileError(f"answers.json cannot be read ({exc.strerror or exc})") from None
    try:
        check_json_shape(raw, MAX_JSON_DEPTH, MAX_JSON_CONTAINERS)
        data = json.loads(raw, parse_constant=lambda c: float("nan"))
    except JSONShapeError as exc:
        raise AnswerFileError(f"answers.json {exc}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise AnswerFileError(f"answers.json is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise AnswerFileError(f"answers.json holds {type(data).__name__}, not an object")
    return data


def load_answer_file(answers_dir: Path | str | None) -> dict[str, Any]:
    """The raw answers.json, or {} when it is missing or refused (read_answer_file says why)."""
    try:
        return read_answer_file(answers_dir)
    except AnswerFileError:
        return {}


def answer_meta(answers_dir: Path | str | None) -> dict[str, Any]:
    """What the probe runtime said about the kernel (`__meta__`: python, torch, device), {} when it is
    missing or not an object (the sandbox wrote it: every field is checked where it is used)."""
    meta = load_answer_file(answers_dir).get("__meta__")
    value = meta.get("value") if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}
