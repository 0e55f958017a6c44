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
    submission_dir: str | None = None  # pristine copy of the student's files, never mounted in the sandbox
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


class JudgeProcess:
    """A judge started before the notebook runs, so that its interpreter start and its imports
    (pytest, numpy, torch) overlap the kernel's work instead of adding to the grade's time.

    It waits for one line on stdin: the path of the JudgeContext file; then runs the checks.
    """

    def __init__(self, preload: tuple[str, ...] = ("numpy", "torch")):
        self._tmp = tempfile.mkdtemp(prefix="grader-judge-")
        env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR", "OMP_NUM_THREADS"}}
        env.setdefault("OMP_NUM_THREADS", os.environ.get("GRADER_THREADS", "2"))
        env["CUDA_VISIBLE_DEVICES"] = ""  # references are computed on the CPU, in float64
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "grader.judge", "--serve", *preload],
            cwd=self._tmp, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )

    def run(self, ctx: JudgeContext) -> list[RawCheck]:
        """Hand the context over, wait for the checks, and return their raw outcomes."""
        ctx_path = Path(self._tmp) / "context.json"
        ctx_path.write_text(ctx.model_dump_json())
        # The results file lies in the run folder the sandbox could write: never read one the
        # judge did not write itself (a crashed judge must not leave a forged file in its place).
        Path(ctx.results_path).unlink(missing_ok=True)
        try:
            output, _ = self._proc.communicate(str(ctx_path) + "\n", timeout=JUDGE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            output, _ = self._proc.communicate()
        results = Path(ctx.results_path)
        if not results.is_file():
            raise JudgeError(f"the judge exited {self._proc.returncode} without results:\n{(output or '')[-3000:]}")
        return [RawCheck(**item) for item in json.loads(results.read_text())]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream:
                stream.close()
        import shutil

        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "JudgeProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_judge(ctx: JudgeContext) -> list[RawCheck]:
    """Run the hidden checks in a fresh child process and return their raw outcomes."""
    with JudgeProcess(preload=()) as judge:
        return judge.run(ctx)


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


def _serve(preload: list[str]) -> int:
    """Import what the checks will need, then wait for the context path on stdin."""
    import importlib

    for name in ["pytest", "grader.answers", *preload]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    line = sys.stdin.readline().strip()
    if not line:
        return 2  # the grader went away before judging: nothing to do
    return _main(line)


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        sys.exit(_serve(sys.argv[2:]))
    sys.exit(_main(sys.argv[1]))
