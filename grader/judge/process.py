"""Judge probe answers with the week's hidden checks in a fresh, trusted pytest process.

The child runs `python -I -m grader.judge.process --serve` (or is forked from a fork server that was
started that way): isolated mode (no cwd, no PYTHONPATH, no user site), in an empty folder,
never importing student code. It gets its context in two steps on stdin (the gate): what is
known before the notebook runs (it collects the checks and prepares references meanwhile),
then the answers. A batch's judges are forks of one pytest session that collected the week's
checks and prepared their references once, each taken at the gate (serve_session). It reads
answers only through grader.judge.answers and writes raw check outcomes to a JSON file the parent
chose; the parent turns them into CheckResults (grader.score).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from grader import caps
from grader.judge.context import JudgeContext, RawCheck, read_line
from grader.run.forkserver import ForkedChild, ForkServerError, spawn
from grader.run.sandbox import QUIET_BLAS, WAIT_POLICY_VAR

SERVER_WAIT = 60.0  # seconds a judge waits for a batch's judge server to finish starting
# A judge at its wall time that used less than this share of one core since the gate was waiting, not
# working: a harness hang (a lock, a barrier, a pipe), reported as such with its traceback.
STALL_CPU_SHARE = 0.02
TRACEBACK_WAIT = 5.0  # seconds a stalled judge gets to write its traceback before it is killed


class JudgeError(RuntimeError):
    """The trusted judge itself failed: a harness bug, never the student's fault."""


# A single grade's judge imports and prepares beside the notebook at a lower priority: on a 2-core
# runner it takes the core the kernel leaves idle, not a slice of a training cell's two threads
# (0.3 s of week 2's). A batch's judges (forks of its judge server) keep the normal priority: there
# every core is busy anyway, and a starved judge only holds up its slot (scaling 1.79x against 1.86x).
JUDGE_NICE = 10


def lower_priority() -> None:
    """This process (a judge) to JUDGE_NICE; absolute, so calling it twice changes nothing."""
    try:
        os.setpriority(os.PRIO_PROCESS, 0, max(JUDGE_NICE, os.getpriority(os.PRIO_PROCESS, 0)))
    except OSError:
        pass


def judge_env(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The judge's environment, made from `environ` (ours, or a batch worker's): no tokens, no
    PYTHONPATH, references on the CPU."""
    env = {k: v for k, v in environ.items() if k in {"PATH", "LANG", "HOME", "TMPDIR", "OMP_NUM_THREADS"}}
    env.setdefault("OMP_NUM_THREADS", environ.get("GRADER_THREADS", "2"))
    env["CUDA_VISIBLE_DEVICES"] = ""  # references are computed on the CPU, in float64
    # Only the plugins _main names: no scan of every installed package's entry points (a fifth of a
    # judge's start-up), and no stray plugin (pytest-randomly, say) can reorder or change the checks.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    if environ.get(WAIT_POLICY_VAR):  # a batch sharing its cores (grader.run.sandbox)
        env["OMP_WAIT_POLICY"] = environ[WAIT_POLICY_VAR]
    return {**env, **QUIET_BLAS}


# pytest's plugins that serve nothing in a judge: checks report through `measure` and assert, and use
# the judge plugin's fixtures only (no tmp_path, monkeypatch or caplog). Every plugin loaded costs each
# judge its registration and a scan for fixtures (a third of its start-up); unraisableexception and
# threadexception ran gc.collect with torch loaded, logging wrapped every check in log capture.
UNUSED_PLUGINS = ("cacheprovider", "randomly", "unraisableexception", "threadexception", "logging", "doctest",
                  "junitxml", "pastebin", "legacypath", "tmpdir", "monkeypatch", "recwarn", "setuponly",
                  "setupplan", "stepwise", "unittest", "subtests", "debugging")


def judge_preload(uses_torch: bool) -> tuple[str, ...]:
    """What a judge imports before it has a context (the checks import these anyway)."""
    return ("numpy", "torch") if uses_torch else ("numpy",)


def import_plugins() -> None:
    """Import the modules of every plugin a judge's pytest loads: a batch's judge server does it once
    for all its forks (pytest imports its own built-in plugins lazily, at every start)."""
    import importlib

    from _pytest.config import default_plugins

    used = [p for p in default_plugins if p not in UNUSED_PLUGINS]
    for name in ("grader.judge.plugin", "pytest_timeout", *(f"_pytest.{p}" for p in used)):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


class JudgeProcess:
    """A judge started before the notebook runs, so that its work overlaps the kernel's.

    While the notebook runs it imports pytest, numpy and torch, collects the week's checks and runs
    each test module's `prepare()` (references that need no answers); then it waits on its stdin
    (the gate) for the final context and only then runs the checks. With `server` (a fork server's
    address) it is a fork of an interpreter that imported all that once for the whole batch.
    """

    def __init__(self, preload: tuple[str, ...] = ("numpy", "torch"), server: str | None = None):
        self._tmp = Path(tempfile.mkdtemp(prefix="grader-judge-"))
        self._log = self._tmp / "judge.log"
        self._ctx: JudgeContext | None = None
        self._preload = preload
        self._proc = None
        self._lock = threading.Lock()
        self._unsent: list[str] = []
        self._guard: caps.Guard | None = None  # memory and CPU caps, from the moment it exists
        self._starting = None
        if server:  # a batch's judge server may still be importing torch: connect in the background
            self._starting = threading.Thread(target=self._start, args=(server,), daemon=True)
            self._starting.start()
        else:
            self._start(None)

    def _start(self, server: str | None) -> None:
        proc = None
        if server:
            try:
                proc = spawn(server, [], log=self._log, cwd=self._tmp, env=judge_env(), wait=SERVER_WAIT)
            except ForkServerError:
                proc = None  # a fresh interpreter instead: slower, same checks
        if proc is None:
            with open(self._log, "ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-I", "-m", "grader.judge.process", "--serve", *self._preload],
                    cwd=self._tmp, env=judge_env(), stdin=subprocess.PIPE, stdout=log,
                    stderr=subprocess.STDOUT, text=True,
                )
        # Before it is sent anything: a fork of the judge server only waits at its gate until then.
        guard = caps.Guard(proc.pid, caps.JUDGE_CAPS, "the judge", kill=proc.kill)
        with self._lock:
            self._proc, self._guard = proc, guard
            for line in self._unsent:
                self._write(line)
            self._unsent.clear()

    def _started(self) -> None:
        if self._starting is not None:
            self._starting.join()
            self._starting = None

    def prepare(self, ctx: JudgeContext) -> None:
        """Send what is known before the run: the judge collects the checks and prepares references."""
        self._ctx = ctx.before_run()
        first = self._tmp / "context.json"
        first.write_text(self._ctx.model_dump_json())
        self._send(str(first))

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None:
                self._unsent.append(line)  # sent as soon as the judge is connected
            else:
                self._write(line)

    def _write(self, line: str) -> None:
        try:
            self._proc.stdin.write(line + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the judge died: run() reports it with its log

    def run(self, ctx: JudgeContext, wall: float | None = None) -> list[RawCheck]:
        """Open the gate with the final context, wait for the checks, and return their raw outcomes.

        `wall`: seconds the checks may take from the gate (at most the judge's cap), so that a grading
        ends before whatever waits on it. A judge still running then is killed: one that was busy
        went over its cap (CapExceeded, the submission's doing); one that sat idle was stuck waiting,
        a harness bug, and the JudgeError says in which check and at which line (its traceback)."""
        if self._ctx is None:
            self.prepare(ctx)
        self._started()
        if ctx.before_run() != self._ctx:
            raise JudgeError("the final judge context differs from the one the judge was started with")
        final = self._tmp / "answers-context.json"
        final.write_text(ctx.model_copy(update={"wait_for_answers": False}).model_dump_json())
        # The results file lies in the run folder the sandbox could write: never read one the
        # judge did not write itself (a crashed judge must not leave a forged file in its place).
        Path(ctx.results_path).unlink(missing_ok=True)
        self._send(str(final))
        self._close_input()
        # The wall-time cap counts from the gate: before it the judge only waited for the notebook.
        walls = [w for w in (wall, caps.JUDGE_CAPS.wall_seconds) if w is not None]
        wall = min(walls) if walls else None
        cpu_at_gate = (caps.cpu_state(self._proc.pid) or (0.0, ""))[0]
        timed_out = self._wait(wall) is None
        if timed_out:
            stalled = self._stalled(ctx, wall, cpu_at_gate)
            self._kill()
            if stalled:
                raise JudgeError(stalled)
        results = Path(ctx.results_path)
        if not results.is_file():
            hit = caps.CapExceeded("the judge", "wall-time", wall) if timed_out else \
                self._guard.verdict(self._proc.returncode)
            if hit is not None:  # the student's submission drove the judge there: that student's report
                raise hit
            output = self._log.read_text(errors="replace")[-3000:] if self._log.is_file() else ""
            raise JudgeError(f"the judge exited {self._proc.returncode} without results:\n{output}")
        return [RawCheck(**item) for item in json.loads(results.read_text())]

    def _stalled(self, ctx: JudgeContext, wall: float, cpu_at_gate: float) -> str | None:
        """Why a judge still running at its wall time is stuck, or None when it kept working: it is
        asleep and used less than STALL_CPU_SHARE of a core since the gate (a busy judge starved by a
        loaded machine is still runnable). Its faulthandler writes every thread's traceback to its log
        on SIGABRT; the innermost frame in the suite names the check and line."""
        now = caps.cpu_state(self._proc.pid)
        if now is None or now[1] == "R" or now[0] - cpu_at_gate >= STALL_CPU_SHARE * wall:
            return None  # gone after all, or busy: its cap decides
        used = now[0] - cpu_at_gate
        try:
            os.kill(self._proc.pid, signal.SIGABRT)
            self._wait(TRACEBACK_WAIT)
        except (ProcessLookupError, PermissionError):
            pass
        log = self._log.read_text(errors="replace") if self._log.is_file() else ""
        return (f"the judge stalled: {wall:g} s after the answers it had used {used:.1f} s of CPU, "
                f"waiting {waiting_in(log, ctx.suite_dir)}")

    def memory_peak(self) -> int:
        """The most memory its guard saw it use (bytes; its cgroup's count, or the watchdog's RSS samples)."""
        self._started()
        return self._guard.peak() if self._guard is not None else 0

    def _close_input(self) -> None:
        if isinstance(self._proc, ForkedChild):
            self._proc.close_input()
        else:
            try:
                self._proc.stdin.close()
            except OSError:
                pass

    def _wait(self, timeout: float | None) -> int | None:
        try:
            return self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        self._proc.kill()
        self._proc.wait()

    def close(self) -> None:
        self._started()
        if self._proc.poll() is None:
            self._kill()
        self._close_input()
        if self._guard is not None:
            self._guard.close()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> JudgeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def waiting_in(log: str, suite_dir: str) -> str:
    """Where a judge's faulthandler traceback (in its log) shows it waiting: the check, the innermost
    frame of the suite (faulthandler prints the most recent call first) and the innermost frame overall
    when that is elsewhere (a library). Only the main thread's traceback is read."""
    main = log[log.rfind("Current thread"):] if "Current thread" in log else log
    frames = [(Path(f), line, fn) for f, line, fn in re.findall(r'File "([^"]+)", line (\d+) in (\S+)', main)]
    if not frames:
        return "where its log does not show (no traceback)"
    suite = Path(suite_dir).resolve()
    ours = [frame for frame in frames if frame[0].resolve().is_relative_to(suite)]
    where = [f"{fn} ({path.name}:{line})" for path, line, fn in (ours[:1] + frames[:1])]
    checks = [fn for _, _, fn in ours if fn.startswith("test_")]
    said = f"in check {checks[-1].removeprefix('test_')}, " if checks else ("outside the checks, " if not ours else "")
    return said + "at " + where[0] + (f" (innermost: {where[1]})" if len(where) > 1 and where[1] != where[0] else "")


def run_judge(ctx: JudgeContext) -> list[RawCheck]:
    """Run the hidden checks in a fresh child process and return their raw outcomes."""
    with JudgeProcess(preload=()) as judge:
        return judge.run(ctx)


def _main(ctx_path: str) -> int:
    import pytest

    ctx = JudgeContext(**json.loads(Path(ctx_path).read_text()))
    os.environ["GRADER_JUDGE_CONTEXT"] = ctx_path
    args = [
        ctx.suite_dir, "-p", "grader.judge.plugin", "-p", "pytest_timeout",
        *(arg for name in UNUSED_PLUGINS for arg in ("-p", f"no:{name}")),
        # No output capture: a batch's judges are forks of one pytest session (serve_session), and fd
        # capture's temporary files and saved descriptors would be shared by all of them.
        "--capture=no", "-q", "--no-header", "-rN", "--rootdir", ctx.suite_dir, "--confcutdir", ctx.suite_dir,
        "-o", "python_files=test_*.py", "-o", "addopts=", "-o", "console_output_style=classic",
        "--timeout", str(int(ctx.check_timeout)), "-W", "ignore::DeprecationWarning",
    ]
    code = pytest.main(args)
    return 0 if code in (0, 1) else int(code)


def serve_forked() -> int:
    """A judge whose interpreter already imported what the checks need (a fork, or `--serve`)."""
    # pytest captures fd 0 while it runs: the gate (both context lines) is read from a copy of it,
    # unbuffered by anyone else, so that the second line is still there when the plugin asks.
    import faulthandler

    faulthandler.enable(sys.stderr)  # a stalled judge's traceback, on the SIGABRT its parent sends (_stalled)
    gate_fd = os.dup(0)
    os.set_inheritable(gate_fd, False)
    line = read_line(gate_fd)
    if not line:
        return 2  # the grader went away before judging: nothing to do
    os.environ["GRADER_JUDGE_GATE_FD"] = str(gate_fd)
    code = _main(line)
    # The results file is written: skip the interpreter's teardown (torch's alone took 0.2-0.3 s).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve_session(fork_children) -> int:
    """A batch's judge server: one pytest session collects the week's checks and prepares their
    references, then forks one judge per submission at the gate (grader.judge.plugin). A fork judges
    exactly like a judge started on its own, without a pytest start-up (40 ms of CPU for week 1) or
    a prepare() (0.35 s for week 2) of its own. The context comes in GRADER_JUDGE_SESSION (JSON)."""
    from grader.judge import plugin as judge_plugin

    ctx = JudgeContext.model_validate_json(os.environ["GRADER_JUDGE_SESSION"])
    path = Path("session-context.json").resolve()  # the server's private folder
    path.write_text(ctx.model_dump_json())
    threads = _torch_threads(1)

    def fork_point() -> list[str]:
        forked = fork_children()
        _torch_threads(threads)  # in the fork: its checks get the threads every other judge gets
        return forked

    judge_plugin.fork_point = fork_point
    return _main(str(path))


def _torch_threads(count: int | None) -> int | None:
    """Set torch's intra-op threads (when the server imported torch); returns the count it had.

    A judge server forks after collecting and preparing, and GNU OpenMP (torch's libgomp) is not
    fork-safe: once the server has run one parallel region, every fork's first parallel region waits
    forever at a barrier for pool threads the fork does not have (week 2's mutate run, 0 % CPU in
    gomp_team_barrier_wait_end). With one thread torch never opens a region, so no pool exists to inherit.
    """
    torch = sys.modules.get("torch")
    if torch is None or count is None:
        return None
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    return before


serve_session.forks_itself = True  # grader.run.forkserver: this entry calls fork_children itself


def _serve(preload: list[str]) -> int:
    """Import what the checks will need, then wait for the context path on stdin."""
    import importlib

    lower_priority()
    for name in ["pytest", "grader.judge.answers", *preload]:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return serve_forked()


if __name__ == "__main__":
    if sys.argv[1] == "--serve":
        sys.exit(_serve(sys.argv[2:]))
    sys.exit(_main(sys.argv[1]))
