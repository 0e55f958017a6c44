"""What a failed check tells the student: hard requirements, and numeric failures that show the error.

Two rules every week's checks share (solutions/README.md, "Points and messages"):

- A failed requirement costs the points it is worth. `require(ok, message)` fails the check with 0
  points whatever its bands say; a plain `assert` keeps a band's partial credit only while some
  measured value of the check sits short of its pass line (grader.judge.plugin).
- A numeric failure prints what was measured, the target and the size of the error, with enough digits
  that the two numbers differ on the page ("got 4.913, expected 4.913" says nothing). Never the
  reference value of a hidden input: the error and the ratio are the student's clues.
"""

from __future__ import annotations

import math


class RequirementFailed(AssertionError):
    """A check's hard requirement failed: the check scores 0, whatever partial credit its bands gave."""


def require(ok: object, message: str) -> None:
    """Fail the check with 0 points unless `ok`: for what a band cannot grade (a count, a floor, a format)."""
    if not ok:
        raise RequirementFailed(message)


def rel_error(got: float, want: float) -> float:
    """Relative error, absolute when |want| < 1 (so tiny references do not blow it up)."""
    return abs(got - want) / max(abs(want), 1.0)


def number(x: float, err: float | None = None) -> str:
    """`x` with enough significant digits to show a difference of size `err` (at least 4, at most 17)."""
    if not math.isfinite(x):
        return str(x)
    digits = 6
    if err is not None and err > 0 and math.isfinite(err) and x != 0:
        digits = max(4, min(17, math.ceil(math.log10(max(abs(x), 1.0) / err)) + 2))
    return f"{x:.{digits}g}"


def off_by(got: float, want: float, tol: float | None = None, *, what: str = "") -> str:
    """'what 4.91300012 (error 1.2e-07, target ≤ 1e-09)': the measured value and the error, not `want`."""
    err = rel_error(got, want)
    head = f"{what} " if what else ""
    target = f", target ≤ {tol:g}" if tol is not None else ""
    return f"{head}{number(got, err)} (error {err:.1e}{target}){ratio_note(got, want)}"


def ratio_note(got: float, want: float) -> str:
    """A clue when the value is a simple multiple of the right one (x2: a path counted twice; x-1: a sign)."""
    if want == 0 or not math.isfinite(got) or abs(got - want) <= 1e-9 * max(1.0, abs(want)):
        return ""
    ratio = got / want
    for k in (2.0, 3.0, 0.5, -1.0, 0.0):
        if abs(ratio - k) <= 1e-6 * max(1.0, abs(k)):
            return f"; it is {k:g}x the right value" if k else "; it is 0"
    return ""


def precision_hint(err: float) -> str:
    """A hint when an error is the size of single-precision rounding rather than a wrong formula."""
    if 1e-9 < err < 1e-5:
        return ("errors this small but above 1e-9 are rounding: the numbers went through float32 "
                "(numpy.float32, a float32 tensor) somewhere; keep Python floats (float64)")
    return ""
