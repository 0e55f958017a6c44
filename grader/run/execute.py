"""Run a student's notebook top to bottom in a sandboxed kernel, then the week's probes.

The kernel is started from the grader's own Python (never the kernel the notebook names),
talks to us over unix sockets in the run folder, and is wrapped by sandbox.sandbox_prefix.
Probes run in the same kernel after the student's cells, answering into a folder chosen
only then, so nothing the student's cells wrote beforehand can pass for an answer.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from grader.fetch.notebook import JSONShapeError, check_json_shape
from grader.records import CellFailure, Execution, ProbeStatus
from grader.run.answers_file import answer_meta, load_answer_file
from grader.run.sandbox import (
    Isolation,
    Limits,
    SandboxSpec,
    give_to_sandbox,
    gpu_holders,
    prepare_run_dir,
    reap,
    release_cgroup,
    run_uid,
    sandbox_prefix,
)
from grader.run.scratch import SPACE_ERRORS, Scratch

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
MAX_OUTPUT_BYTES = 2 * 2**20  # kept per notebook; the rest is counted and dropped
MAX_TRACEBACK = 4000
MAX_MESSAGE_BYTES = 16 * 2**20  # ZMQ cap per message: a bigger one drops the link, not our memory
RUNTIME = Path(__file__).with_name("probe_runtime.py")
# The kernel holds its session key, so a cell can send the grader any message it likes; each one is
# decoded with json.loads here (200 KB of nested brackets raised RecursionError: no report at all).
MAX_MESSAGE_DEPTH = 100
MAX_MESSAGE_CONTAINERS = 200_000


class MessageRefused(ValueError):
    """A message from the kernel nested or branching beyond what the grader decodes (the student's doing)."""


def bounded_unpack(raw: Any) -> Any:
    """jupyter_client's JSON unpacker, after a shape check that needs no parse (grader.fetch.notebook)."""
    from jupyter_client.session import json_unpacker

    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    try:
        check_json_shape(data, MAX_MESSAGE_DEPTH, MAX_MESSAGE_CONTAINERS)
    except JSONShapeError as exc:
        raise MessageRefused(f"a message from the kernel {exc}") from None
    return json_unpacker(data)
# The fixed-address allocator the probes run on (detalloc.c), built into the environment by ci/install.sh;
# the sandbox mounts the environment, so the kernel loads it from there. Without it grades still work,
# and an order-dependent bug may score differently between runs (the grade records which).
DETERMINISTIC_HEAP = Path(sys.prefix) / "lib" / "grader-detalloc.so"


@dataclass(frozen=True)
class KernelPlan:
    """What the sandbox and its kernel need, known before the notebook is found: the kernel
    (interpreter, ipykernel, `import torch`) starts while the pipeline locates, reads and copies
    the notebook and plans its probes."""

    workdir: Path  # scratch copy of the submission, filled while the kernel starts
    cell_timeout: float
    total_timeout: float
    probe_timeout: float
    seeds: dict[str, int]
    uses_torch: bool
    level: Isolation = Isolation.process
    gpu: int | None = None
    limits: Limits = Limits()
    forbid: tuple[str, ...] = ()  # packages the sandbox must not let the notebook import
    forbid_note: str = ""  # the week's rule, quoted by the failing import


@dataclass(frozen=True)
class RunPlan:
    """The located notebook and its probes, handed to the kernel once it is up."""

    notebook: Any  # nbformat NotebookNode (v4, validated)
    notebook_rel: str  # in workdir; the notebook's cells run in its folder
    probes_file: Path  # the week's probes.py (sandbox side: procedures, no answers)
    write_requests: Callable[[Path], None]  # writes requests.json (+ inputs/) into a folder


def warm_up() -> None:
    """What every grading would build for itself: a batch's worker server does it once for all its
    forks. nbformat compiles a schema validator per format version on first use (30-60 ms) and
    jupyter_client scans every package's entry points for kernel provisioners."""
    import nbformat
    from jupyter_client.provisioning import KernelProvisionerFactory
    from nbformat.validator import get_validator

    for minor in sorted({4, nbformat.v4.nbformat_minor}):  # Colab saves 4.4 (minor 4); Jupyter the newest
        get_validator(version=4, version_minor=minor)
    KernelProvisionerFactory.instance()


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def _excerpt(source: str, lineno: int | None) -> str:
    lines = source.splitlines()
    if not lines:
        return ""
    if lineno is None or not 1 <= lineno <= len(lines):
        return "\n".join(lines[:6])
    lo, hi = max(0, lineno - 3), min(len(lines), lineno + 2)
    return "\n".join(("-> " if i + 1 == lineno else "   ") + lines[i] for i in range(lo, hi))


def _error_line(traceback: str) -> int | None:
    """The line in the cell that raised: the last '----> N' or 'line N' of the cell frame."""
    hits = re.findall(r"-+> ?(\d+)", traceback) or re.findall(r"line (\d+)", traceback)
    return int(hits[0]) if hits else None


def _make_client(plan: KernelPlan, run_dir: Path, spec: SandboxSpec):
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbformat.v4 import new_notebook

    prefix = sandbox_prefix(spec)

    class SandboxedKernelManager(AsyncKernelManager):
        def format_kernel_cmd(self, extra_arguments=None):  # noqa: D401 - jupyter API
            return prefix + [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                             "--HistoryManager.enabled=False", "--IPKernelApp.quiet=True"]

        def write_connection_file(self, **kwargs):  # the kernel runs as the sandbox uid
            super().write_connection_file(**kwargs)
            give_to_sandbox(Path(self.connection_file), spec)

        def client(self, **kwargs):
            import zmq

            kc = super().client(**kwargs)
            kc.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # before any socket exists
            kc.session.unpack = bounded_unpack
            return kc

        async def _async_wait(self, pollinterval: float = 0.1) -> None:
            # jupyter polls a killed kernel every 100 ms; about half of ours were still there at the
            # first poll, and that idle 0.1 s was the gap between a batch slot's jobs.
            await super()._async_wait(pollinterval=min(pollinterval, 0.005))

    class ReadyClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            """Ready once the kernel answers kernel_info on shell and iopub delivers.

            jupyter_client then waits for 0.2 s of silence on iopub at every kernel start, the CPU
            idle (a tenth of a week-1 grade). Not needed here: nbclient reads only the iopub
            messages whose parent is the cell it sent, so this kernel_info's late ones are skipped."""
            from queue import Empty

            deadline = time.monotonic() + (timeout if timeout is not None else float("inf"))
            while True:
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    try:
                        await self.iopub_channel.get_msg(timeout=0.2)  # iopub is connected too
                    except Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    km = SandboxedKernelManager(kernel_name="python3", transport="ipc", client_factory=ReadyClient)
    # Our own kernel spec, never one looked up on the machine (the search imported IPython in the
    # grader: 40 ms). Interrupt by message: a SIGINT to our child (env -> bwrap) would end the
    # sandbox, not the cell; the kernel then signals its own process group from inside.
    km._kernel_spec = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                                 display_name="Python 3 (grader)", language="python", interrupt_mode="message")
    km.connection_file = str(run_dir / "kernel" / "connection.json")
    km.ip = str(run_dir / "kernel" / "ipc")  # ipc socket path prefix: loopback is cut off

    class GradingClient(NotebookClient):
        output_bytes = 0

        def output(self, outs, msg, display_id, cell_index):
            size = len(json.dumps(msg.get("content", {}), default=str))
            GradingClient.output_bytes += size
            if GradingClient.output_bytes > MAX_OUTPUT_BYTES:
                return None  # counted, not kept: a print flood must not fill the grader
            return super().output(outs, msg, display_id, cell_index)

    client = GradingClient(
        new_notebook(),  # the student's notebook is set once it is located (_execute)
        km=km,
        timeout=int(plan.cell_timeout),
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        startup_timeout=60,
        record_timing=False,
        shutdown_kernel="immediate",  # graceful shutdown measured 0.7-0.8 s with 3 s stalls; nothing to save
        resources={"metadata": {"path": str(plan.workdir)}},
    )
    return client, km


def _preamble(plan: KernelPlan) -> str:
    """Seed the kernel's generators before the notebook runs. Inside a function that deletes itself, so
    the student's namespace gets no name from it (a week that forbids torch never imports it)."""
    body = [
        "import random",
        f"random.seed({plan.seeds.get('python', 0)})",
        "try:",
        "    import numpy",
        f"    numpy.random.seed({plan.seeds.get('numpy', 0)})",
        "except ImportError:",
        "    pass",
    ]
    if plan.uses_torch:
        body += [
            "import os, torch",
            f"torch.manual_seed({plan.seeds.get('torch', 0)})",
            "torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '2')))",
        ]
    return "def __grader_preamble():\n" + "".join(f"    {line}\n" for line in body) + \
        "__grader_preamble()\ndel __grader_preamble\n"


def _cell_failure(cell, index: int) -> CellFailure | None:
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            lines = out.get("traceback", [])  # the kernel's words: strings, unless it lies
            tb = strip_ansi("\n".join(str(x) for x in lines if isinstance(x, str)) if isinstance(lines, list)
                            else "")[-MAX_TRACEBACK:]
            count = cell.get("execution_count")
            return CellFailure(
                index=index,
                execution_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                kind="error",
                ename=str(out.get("ename", ""))[:200],
                evalue=strip_ansi(str(out.get("evalue", "")))[:500],
                source_excerpt=_excerpt(cell.source, _error_line(tb)),
                traceback=tb,
            )
    return None


async def _execute(plan: KernelPlan, prepare: Callable[[], RunPlan], run_dir: Path,
                   spec: SandboxSpec, scratch: Scratch) -> dict[str, Any]:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client, km = _make_client(plan, run_dir, spec)
    state: dict[str, Any] = {"failures": [], "cells_run": 0, "cells_total": 0, "status": "ok", "message": ""}
    prepared = asyncio.ensure_future(asyncio.to_thread(prepare))  # runs while the kernel starts
    run: RunPlan | None = None
    code_cells: list[tuple[int, Any]] = []
    try:
        # The kernel's own stdout/stderr (banners, C-level prints) are not the student's outputs.
        async with client.async_setup_kernel(cleanup_kc=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            watchdog = None
            try:
                await _run_aside(client, _preamble(plan))
                run = await prepared  # a NotebookError from locating ends the run here, unrun
                give_to_sandbox(plan.workdir, spec)  # the files copied in while the kernel started
                client.nb = run.notebook
                code_cells = [(i, c) for i, c in enumerate(run.notebook.cells) if c.cell_type == "code"]
                state["cells_total"] = len(code_cells)
                folder = (plan.workdir / run.notebook_rel).parent
                if folder != plan.workdir:
                    await _run_aside(client, f"__import__('os').chdir({str(folder)!r})")
                # The whole-run watchdog: kill the sandbox's process group (and anything carrying this
                # run's id) from a thread, whatever the event loop is stuck on; the cell then sees a dead kernel.
                watchdog = threading.Timer(plan.total_timeout, _kill_run, (km, spec, state))
                watchdog.daemon = True
                watchdog.start()
                for index, cell in code_cells:
                    started = time.monotonic()
                    try:
                        await client.async_execute_cell(cell, index)
                        # nbclient interrupts a cell past its timeout and returns: the cell then holds
                        # a KeyboardInterrupt error, which is our timeout, not the student's exception.
                        failure = _cell_failure(cell, index)
                        if (failure and failure.ename == "KeyboardInterrupt"
                                and time.monotonic() - started >= plan.cell_timeout):
                            raise CellTimeoutError("interrupted")
                    except DeadKernelError:
                        raise
                    except CellTimeoutError:
                        state["failures"].append(CellFailure(
                            index=index, kind="timeout",
                            evalue=f"cell ran longer than {plan.cell_timeout:.0f} s and was interrupted",
                            source_excerpt=_excerpt(cell.source, None)))
                        state["status"] = "timeout"
                        # The grade's headline names the first timed-out cell (the report's Grade.message).
                        state["message"] = state["message"] or (
                            f"cell {index + 1} ran longer than {plan.cell_timeout:.0f} s and was interrupted; "
                            "the cells after it still ran")
                        if not await km.is_alive():
                            raise DeadKernelError("kernel died after a timeout") from None
                        continue
                    except Exception as exc:  # noqa: BLE001 - the kernel can send anything, signed
                        # A message that cannot be read (nested too deep, malformed, of the wrong types): the
                        # cell's output stops there and the run goes on; its later messages are ignored.
                        state["failures"].append(_refused(cell, index, exc))
                        state["status"] = "errors" if state["status"] == "ok" else state["status"]
                        continue
                    state["cells_run"] += 1
                    failure = _cell_failure(cell, index)
                    if failure and any(e in failure.evalue for e in SPACE_ERRORS):  # ENOSPC in the box
                        failure = failure.model_copy(update={"evalue": f"{failure.evalue} ({scratch.full_message()})"})
                    if failure:
                        state["failures"].append(failure)
                        if state["status"] == "ok":
                            state["status"] = "errors"
                state["answers"] = await _run_probes(client, plan, run, scratch.probes_dir, spec)
            except DeadKernelError as exc:
                if run is None:  # died in our preamble: the notebook is still to be told apart
                    run = await prepared
                    code_cells = [(i, c) for i, c in enumerate(run.notebook.cells) if c.cell_type == "code"]
                    state["cells_total"] = len(code_cells)
                index = code_cells[min(state["cells_run"], len(code_cells) - 1)][0] if code_cells else 0
                state["failures"].append(CellFailure(
                    index=index, kind="dead_kernel",
                    evalue="the kernel died while running this cell (os._exit, a crash, or out of memory)",
                    source_excerpt=_excerpt(run.notebook.cells[index].source, None) if code_cells else ""))
                state["status"] = "dead_kernel"
                state["message"] = str(exc)[:300]
                outside = not scratch.hit and not state.get("watchdog")
                killer = await _outside_signal(km, spec) if outside else None
                if killer is not None:  # the machine's failure: a signal neither we nor the notebook sent
                    cells = len(code_cells)
                    state["status"] = "killed"
                    state["message"] = (f"the kernel was killed from outside the sandbox ({killer}) after "
                                        f"{state['cells_run']} of {cells} cells; not the notebook's doing, "
                                        "so it is not graded now and will be graded again")
                    state["failures"][-1] = state["failures"][-1].model_copy(update={
                        "evalue": f"the kernel was killed from outside ({killer}) while running this cell"})
                if scratch.hit:  # the watcher stopped a run that wrote past the disk cap
                    state["failures"][-1] = state["failures"][-1].model_copy(update={
                        "kind": "output_limit", "ename": "DiskCap", "evalue": scratch.full_message()})
                    state["message"] = scratch.full_message()
                elif state.get("watchdog"):
                    state["failures"][-1] = state["failures"][-1].model_copy(update={
                        "kind": "timeout", "evalue": f"stopped: the notebook ran past its total budget "
                                                     f"of {plan.total_timeout:.0f} s"})
                    state["status"] = "timeout"
                    state["message"] = f"the notebook ran past its total budget of {plan.total_timeout:.0f} s"
            finally:
                if watchdog is not None:
                    watchdog.cancel()
                state["output_bytes"] = type(client).output_bytes
    finally:
        if not prepared.done():  # the kernel failed to start: let the locating thread finish first
            await asyncio.wait([prepared])
    return state


# Signals that end a kernel from outside: a person's or a supervisor's kill, the host's OOM killer.
# What the notebook itself does ends differently: os._exit and sys.exit give an exit status, a crash
# SIGSEGV/SIGBUS/SIGABRT/SIGFPE/SIGILL, the sandbox's limits SIGXCPU/SIGXFSZ or a MemoryError, and the
# run's memory cgroup (GPU runs) counts its OOM kills. A notebook that signals its own kernel with one
# of these reads as killed from outside: it earns nothing by it (never a score, graded again, and a
# mentor sees it under "needs attention").
OUTSIDE_SIGNALS = {signal.SIGKILL: "SIGKILL", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP",
                   signal.SIGQUIT: "SIGQUIT"}


async def _outside_signal(km, spec: SandboxSpec) -> str | None:
    """The name of the signal that ended a dead kernel when it came from outside, else None."""
    proc = getattr(km.provisioner, "process", None)
    code = None
    for _ in range(100):  # the kernel died; its launcher may take a moment to report it
        code = proc.poll() if proc is not None else None
        if code is not None:
            break
        await asyncio.sleep(0.01)
    if code is None:
        return None
    if code < 0:  # the launcher itself died of a signal (the kernel's own process at the process level)
        number = -code
    elif code > 128 and spec.level is not Isolation.process:  # bwrap and unshare report 128 + signal
        number = code - 128
    else:
        return None
    if number not in OUTSIDE_SIGNALS or _oom_kills(spec):
        return None
    return OUTSIDE_SIGNALS[number]


def _oom_kills(spec: SandboxSpec) -> int:
    """OOM kills the run's own memory cgroup counted (GPU runs have one): the notebook's memory."""
    from grader.run.sandbox import _cgroup_location

    where = _cgroup_location() if spec.gpu is not None else None
    try:
        events = (where[0] / f"grader-{spec.run_id}" / "memory.events").read_text() if where else ""
    except OSError:
        return 0
    return sum(int(v) for k, v in (line.split() for line in events.splitlines()) if k == "oom_kill")


def _refused(cell, index: int, exc: BaseException) -> CellFailure:
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    reason = str(exc) if isinstance(exc, MessageRefused) else \
        f"a message from the kernel could not be read ({type(exc).__name__}: {first})"
    return CellFailure(index=index, kind="output_limit", ename="OutputRefused",
                       evalue=f"{reason}; the grader read no more of this cell's output",
                       source_excerpt=_excerpt(cell.source, None))


async def _run_aside(client, source: str) -> None:
    """Run the grader's own code (preamble, chdir, probes) in the kernel, outside the notebook."""
    from nbformat.v4 import new_code_cell, new_notebook

    notebook, client.nb = client.nb, new_notebook(cells=[new_code_cell(source)])
    try:
        await client.async_execute_cell(client.nb.cells[0], 0, store_history=False)
    finally:
        client.nb = notebook


def _kill_run(km, spec: SandboxSpec, state: dict[str, Any]) -> None:
    """Watchdog: SIGKILL the kernel's process group, then every process carrying the run id."""
    state["watchdog"] = True
    pgid = getattr(km.provisioner, "pgid", None)
    try:
        if pgid:
            os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    reap(spec.run_id, uid=run_uid(spec))


async def _run_probes(client, plan: KernelPlan, run: RunPlan, probes_dir: Path, spec: SandboxSpec) -> Path:
    """Write the requests now (after the student's cells ran) and run the probe runtime."""
    token = secrets.token_hex(8)
    probe_dir = probes_dir / f"probe-{token}"
    answers_dir = probe_dir / "answers"
    answers_dir.mkdir(parents=True)
    give_to_sandbox(answers_dir, spec)  # the only folder of the probe dir the sandbox may write
    shutil.copyfile(run.probes_file, probe_dir / "probes.py")
    shutil.copyfile(RUNTIME, probe_dir / "probe_runtime.py")
    run.write_requests(probe_dir)
    heap_lib = str(DETERMINISTIC_HEAP) if DETERMINISTIC_HEAP.is_file() else None
    code = (
        "__import__('runpy').run_path("
        f"{str(probe_dir / 'probe_runtime.py')!r}, "
        f"init_globals={{'STUDENT_NS': globals(), 'PROBE_DIR': {str(probe_dir)!r}, "
        f"'PROBE_TIMEOUT': {plan.probe_timeout!r}, 'HEAP_LIB': {heap_lib!r}}}, run_name='__grader_probes__')\n"
    )
    client.timeout = int(plan.probe_timeout) + 30
    try:
        await _run_aside(client, code)
    except Exception:  # the answers written so far still count; a missing one fails its check
        pass
    return answers_dir


def execute_notebook(plan: KernelPlan, prepare: Callable[[], RunPlan], run_dir: Path) -> Execution:
    """Start the kernel, run the notebook that `prepare` locates meanwhile, then the probes.

    `prepare` runs in a thread while the kernel starts; what it raises (a NotebookError for a
    notebook that cannot be run) is raised here, after the kernel is stopped. A student's failure
    in the notebook itself is data, never an exception.
    """
    start = time.monotonic()
    spec = SandboxSpec(run_dir=run_dir, level=plan.level, gpu=plan.gpu, limits=plan.limits,
                       writable=(plan.workdir,), forbid=plan.forbid, forbid_note=plan.forbid_note)
    # The run's writable space, size-capped (the pipeline releases it once the answers are judged).
    scratch = Scratch(run_dir, level_is_bwrap=plan.level is Isolation.bwrap)
    prepare_run_dir(spec)
    scratch.watch(stop=lambda: reap(spec.run_id))
    try:  # the watchdog fires at total_timeout; this outer bound only catches a stuck start or shutdown
        state = asyncio.run(asyncio.wait_for(_execute(plan, prepare, run_dir, spec, scratch),
                                             plan.total_timeout + 120))
    except (asyncio.TimeoutError, TimeoutError):
        state = {"status": "timeout", "cells_total": 0, "cells_run": 0, "failures": [],
                 "message": f"the notebook ran past its total budget of {plan.total_timeout:.0f} s"}
    finally:
        scratch.stop_watching()
        reap(spec.run_id, uid=run_uid(spec))  # nothing of the submission outlives its run (daemons, double forks)
        release_cgroup(spec)
    if plan.gpu is not None and gpu_holders(spec.run_id):  # reaped, yet still on the GPU: a harness bug
        raise RuntimeError(f"a process of run {spec.run_id} still holds GPU memory after the run")
    answers_dir = state.get("answers")
    probes = _probe_statuses(answers_dir) if answers_dir else []
    meta = _read_meta(answers_dir) if answers_dir else {}
    return Execution(
        status=state["status"],
        message=state.get("message", ""),
        cells_total=state.get("cells_total", 0),
        cells_run=state.get("cells_run", 0),
        failures=state.get("failures", []),
        probes=probes,
        wall_seconds=round(time.monotonic() - start, 3),
        device=meta.get("device", "cpu") if isinstance(meta.get("device"), str) else "cpu",
        isolation=plan.level.value,
        answers_dir=str(answers_dir) if answers_dir else None,
        output_bytes=state.get("output_bytes", 0),
        disk_cap=scratch.cap,
    )


def _read_meta(answers_dir: Path) -> dict:
    return answer_meta(answers_dir)


def _probe_statuses(answers_dir: Path) -> list[ProbeStatus]:
    """Each probe's bookkeeping as the sandbox wrote it, typed here (a string for seconds reads as 0)."""
    statuses = []
    for pid, entry in load_answer_file(answers_dir).items():
        if pid.startswith("__") or not isinstance(entry, dict):
            continue
        seconds = entry.get("seconds")
        ok_seconds = isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and math.isfinite(seconds)
        statuses.append(ProbeStatus(id=pid[:200], ok=bool(entry.get("ok")),
                                    seconds=float(seconds) if ok_seconds else 0.0,
                                    error=str(entry.get("error", ""))[:2000]))
    return statuses
