"""Load the sandbox's probe answers in the trusted judge, strictly.

The answers folder was written by untrusted code: every file is size-checked, never
followed through a link, parsed as JSON or as .npy without pickle, and every value is
type-checked where a check reads it. Anything odd is an AnswerError, which fails that
check (and only that check) with a message a student can act on.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from grader.run.answers_file import (
    AnswerFileError,
    OversizeError,
    load_answer_file,  # noqa: F401 - the lenient reader, re-exported
    read_answer_file,
    read_capped,
)

MAX_ARRAY_BYTES = 512 * 2**20


class AnswerError(AssertionError):
    """A probe answer is missing or not of the promised type: the check fails."""


def _read_capped(path: Path, cap: int) -> bytes:
    try:
        return read_capped(path, cap)
    except OversizeError as exc:
        raise AnswerError(str(exc)) from None


class Answers:
    """Strict accessors over one submission's probe answers."""

    def __init__(self, answers_dir: Path | str | None):
        self.dir = Path(answers_dir) if answers_dir else None
        self.refused = ""  # why answers.json was not read, when it was there
        try:
            self.raw = read_answer_file(self.dir)
        except AnswerFileError as exc:
            self.raw, self.refused = {}, str(exc)

    def get(self, probe_id: str) -> Any:
        """The value a probe returned, with arrays loaded; AnswerError when it failed."""
        if self.refused:
            raise AnswerError(f"the probes' answers were refused: {self.refused}")
        entry = self.raw.get(probe_id)
        if not isinstance(entry, dict):
            raise AnswerError(f"no answer from probe '{probe_id}': the notebook did not get that far")
        if not entry.get("ok"):
            raise AnswerError(f"probe '{probe_id}' failed in your code: {entry.get('error', 'unknown error')}")
        return self._resolve(entry.get("value"))

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if set(value) == {"$array"}:
                return self._array(value["$array"])
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        return value

    def _array(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or "/" in name or name.startswith(".") or not name.endswith(".npy"):
            raise AnswerError(f"bad array reference {name!r}")
        assert self.dir is not None
        try:
            raw = _read_capped(self.dir / "arrays" / name, MAX_ARRAY_BYTES)
        except OSError as exc:  # missing, a symbolic link (O_NOFOLLOW), unreadable: the check fails
            raise AnswerError(f"array {name} cannot be read ({exc.strerror or exc})") from None
        import io

        try:
            arr = np.load(io.BytesIO(raw), allow_pickle=False)
        except Exception as exc:  # noqa: BLE001 - any failure to read the sandbox's bytes is this check's
            raise AnswerError(f"array {name} is not a plain .npy array: {exc}") from None
        if arr.dtype == object or arr.dtype.kind not in "biuf":
            raise AnswerError(f"array {name} has dtype {arr.dtype}; expected numbers")
        return arr

    # ---- typed views: the judge says what it expects, anything else fails -------------

    def number(self, probe_id: str, key: str | None = None, *, finite: bool = True) -> float:
        value = self.get(probe_id)
        return to_number(value[key] if key is not None else value, f"{probe_id}.{key}" if key else probe_id, finite)

    def array(self, probe_id: str, key: str | None = None, *, shape: tuple | None = None,
              finite: bool = True) -> np.ndarray:
        value = self.get(probe_id)
        return to_array(value[key] if key is not None else value, f"{probe_id}.{key}" if key else probe_id,
                        shape=shape, finite=finite)

    def strings(self, probe_id: str, key: str | None = None, *, max_items: int = 100_000) -> list[str]:
        value = self.get(probe_id)
        value = value[key] if key is not None else value
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise AnswerError(f"{probe_id}: expected a list of strings, got {_kind(value)}")
        if len(value) > max_items:
            raise AnswerError(f"{probe_id}: {len(value)} strings, more than {max_items}")
        return value


def _kind(value: Any) -> str:
    if isinstance(value, str) and len(value) > 60:
        return "str"
    return f"{type(value).__name__} {value!r}"[:80]


def to_number(value: Any, name: str = "value", finite: bool = True) -> float:
    """Exactly an int or float (bools and strings are not numbers); finite unless told."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AnswerError(f"{name}: expected a number, got {_kind(value)}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise AnswerError(f"{name}: expected a finite number, got {value}")
    return value


def to_array(value: Any, name: str = "value", *, shape: tuple | None = None, finite: bool = True) -> np.ndarray:
    """A numeric array of the given shape (None in shape = any size on that axis)."""
    if isinstance(value, list):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise AnswerError(f"{name}: expected numbers, got {_kind(value)}") from None
    if not isinstance(value, np.ndarray):
        raise AnswerError(f"{name}: expected an array, got {_kind(value)}")
    if value.dtype.kind not in "biuf":
        raise AnswerError(f"{name}: expected numbers, got dtype {value.dtype}")
    if shape is not None:
        if len(shape) != value.ndim or any(s is not None and s != v for s, v in zip(shape, value.shape)):
            raise AnswerError(f"{name}: expected shape {tuple(shape)}, got {tuple(value.shape)}")
    if finite and value.dtype.kind == "f" and not np.isfinite(value).all():
        raise AnswerError(f"{name}: contains NaN or inf")
    return value
