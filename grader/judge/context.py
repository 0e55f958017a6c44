"""What the judge is told and what it answers: the context (JSON on the gate) and each check's raw
outcome. Shared by the judge process, its pytest plugin and the stages that start judges, so that none
of them needs another's module (the plugin runs inside the judge; the process starts it)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JudgeContext(BaseModel):
    """What the judge process is told; written as JSON, read back by the plugin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite_dir: str
    answers_dir: str | None
    profile: str
    thresholds: dict[str, Any]
    execution: dict[str, Any]  # the Execution record's JSON
    notebook_path: str | None  # the student's notebook file, read as data (static checks)
    submission_dir: str | None = None  # pristine copy of the student's files, never mounted in the sandbox
    data_dir: str
    artifacts_dir: str
    results_path: str
    check_timeout: float = 600.0
    select: list[str] = Field(default_factory=list)  # check ids to run (empty: all)
    # True in the context a judge gets before the notebook has run: collect the checks and prepare the
    # references, then wait for the final context (answers_dir and execution filled in) on the gate.
    wait_for_answers: bool = False

    def before_run(self) -> JudgeContext:
        """This context as it is known before the run: no answers, no execution yet."""
        return self.model_copy(update={"answers_dir": None, "execution": {}, "wait_for_answers": True})

    def collected_with(self) -> tuple:
        """What decides which checks are collected and what their references are: the same for every
        submission of a batch, whose judge server collects and prepares once (serve_session)."""
        return (self.suite_dir, self.profile, self.thresholds, self.data_dir, self.select, self.check_timeout)


def session_context(suite_dir: Path, profile: str, thresholds: dict[str, Any], select: list[str] | tuple[str, ...],
                    data_dir: Path) -> JudgeContext:
    """A context with only what a batch's submissions share; a grading adds its own paths to it."""
    return JudgeContext(suite_dir=str(suite_dir), answers_dir=None, profile=profile, thresholds=dict(thresholds),
                        execution={}, notebook_path=None, data_dir=str(data_dir), artifacts_dir="",
                        results_path="", select=list(select), wait_for_answers=True)


class RawCheck(BaseModel):
    """One check's outcome as the plugin saw it, before scoring."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    title: str = ""
    category: str
    max_points: float
    outcome: str  # passed | failed | error | skipped
    fraction: float  # 0..1 of max_points earned (bands give partial credit)
    measured: float | None = None
    target: str = ""
    message: str = ""
    seconds: float = 0.0
    details: dict[str, Any] = Field(default_factory=dict)



def read_line(fd: int) -> str:
    """One line from a file descriptor, byte by byte: nothing past the newline is consumed."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace").strip()
