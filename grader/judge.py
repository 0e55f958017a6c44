"""Judge probe answers with the week's hidden checks in a fresh, trusted pytest process.

The child runs `python -I -m grader.judge CONTEXT.json`: isolated mode (no cwd, no
PYTHONPATH, no user site), started in an empty folder, never importing student code. It
reads answers only through grader.answers and writes raw check outcomes to a JSON file
the parent chose; the parent turns them into CheckResults (grader.score).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

JUDGE_TIMEOUT = 1800


class JudgeContext(BaseModel):
    """What the judge process is told; written as JSON, read back by the plugin."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    suite_dir: str
    answers_dir: str | None
    profile: str
    thresholds: dict[str, Any]
    execution: dict[str, Any]  # the Execution record's JSON
    notebook_path: str | None  # the student's notebook file, read as data (static checks)
    data_dir: str
    artifacts_dir: str
    results_path: str
    check_timeout: float = 600.0
    select: list[str] = Field(default_factory=list)  # check ids to run (empty: all)


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


class JudgeError(RuntimeError):
    """The trusted judge itself failed: a harness bug, never the student's fault."""


def run_judge(ctx: JudgeContext) -> list[RawCheck]:
    """Run the hidden checks in a child process and return their raw outcomes."""
    with tempfile.TemporaryDirectory(prefix="grader-judge-") as tmp:
        ctx_path = Path(tmp) / "context.json"
        ctx_path.write_text(ctx.model_dump_json())
        env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR", "OMP_NUM_THREADS"}}
        env.setdefault("OMP_NUM_THREADS", os.environ.get("GRADER_THREADS", "2"))
        env["CUDA_VISIBLE_DEVICES"] = ""  # references are computed on the CPU, in float64
        proc = subprocess.run(
            [sys.executable, "-I", "-m", "grader.judge", str(ctx_path)],
            cwd=tmp, env=env, capture_output=True, text=True, timeout=JUDGE_TIMEOUT,
        )
        results = Path(ctx.results_path)
        if not results.is_file():
            tail = (proc.stdout + proc.stderr)[-3000:]
            raise JudgeError(f"the judge exited {proc.returncode} without results:\n{tail}")
        raw = json.loads(results.read_text())
    return [RawCheck(**item) for item in raw]


def _main(ctx_path: str) -> int:
    import pytest

    ctx = JudgeContext(**json.loads(Path(ctx_path).read_text()))
    os.environ["GRADER_JUDGE_CONTEXT"] = ctx_path
    args = [
        ctx.suite_dir, "-p", "grader.judge_plugin", "-p", "no:cacheprovider", "-p", "no:randomly",
        "-q", "--no-header", "-rN", "--rootdir", ctx.suite_dir, "--confcutdir", ctx.suite_dir,
        "-o", "python_files=test_*.py", "-o", "addopts=", "-o", "console_output_style=classic",
        "--timeout", str(int(ctx.check_timeout)), "-W", "ignore::DeprecationWarning",
    ]
    if ctx.select:
        args += ["-k", " or ".join(ctx.select)]
    code = pytest.main(args)
    return 0 if code in (0, 1) else int(code)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
