"""`grader doctor`: what this machine gives the grader (sandbox tools, isolation, GPU, env)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from grader import caps
from grader.run.sandbox import Isolation, Limits, SandboxSpec, prepare_run_dir, probe_level, sandbox_prefix


@dataclass
class Diagnosis:
    tools: dict[str, str | None] = field(default_factory=dict)  # name -> path, or None if missing
    levels: dict[str, tuple[bool, str]] = field(default_factory=dict)  # level -> (works, detail)
    level: Isolation = Isolation.process
    gpus: list[str] = field(default_factory=list)
    torch: str | None = None
    python: str = ""
    kernel_start_seconds: float | None = None
    kernel_start_error: str = ""
    caps: list[tuple[str, bool, str]] = field(default_factory=list)  # (what, enforced here, caps and how)

    @property
    def full(self) -> bool:
        return self.level is Isolation.bwrap


def _gpus() -> list[str]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in out.splitlines() if line.startswith("GPU")]


def _kernel_start(level: Isolation) -> tuple[float | None, str]:
    """Seconds to start the sandboxed interpreter and import ipykernel (the bulk of a kernel start)."""
    with tempfile.TemporaryDirectory(prefix="grader-doctor-") as tmp:
        spec = SandboxSpec(run_dir=Path(tmp) / "run", level=level)
        prepare_run_dir(spec)
        argv = sandbox_prefix(spec) + [sys.executable, "-c", "import ipykernel.kernelapp"]
        start = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, str(exc)
        if proc.returncode != 0:
            return None, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]
        return round(time.monotonic() - start, 2), ""


def diagnose() -> Diagnosis:
    d = Diagnosis(python=sys.version.split()[0])
    d.tools = {name: shutil.which(name) for name in ("bwrap", "unshare", "setpriv", "prlimit", "nvidia-smi")}
    for level in (Isolation.bwrap, Isolation.unshare, Isolation.process):
        d.levels[level.value] = probe_level(level)
    d.level = next((lvl for lvl in Isolation if d.levels[lvl.value][0]), Isolation.process)
    d.gpus = _gpus()
    try:
        d.torch = metadata.version("torch")
    except metadata.PackageNotFoundError:
        d.torch = None
    d.kernel_start_seconds, d.kernel_start_error = _kernel_start(d.level)
    d.caps = cap_rows(d.level)
    return d


def _join(shown: dict[str, str]) -> str:
    return " · ".join(f"{name} {how}" for name, how in shown.items())


def cap_rows(level: Isolation) -> list[tuple[str, bool, str]]:
    """Every cap on what a submission can make the grader do, whether this machine enforces it, and how."""
    from grader.fetch import forks, notebook
    from grader.run import answers_file, execute, scratch

    mib, kib, size = 2**20, 2**10, caps.human_bytes
    cpu_ok = caps.cpu_limit_works()
    export = (f"{forks.MAX_TREE_ENTRIES:,} paths and {forks.MAX_LISTING_BYTES // mib} MiB of listing (refused "
              f"past them); {forks.MAX_EXPORT_FILES} files, {forks.MAX_EXPORT_BYTES // mib} MiB, "
              f"{forks.MAX_BLOB_BYTES // mib} MiB a file (skipped past them)")
    limits = Limits()
    kernel = (f"memory {size(limits.memory_bytes)} (RLIMIT_AS; {size(limits.gpu_memory_bytes)} by a memory cgroup "
              f"on a GPU run) · cpu {limits.cpu_seconds} s (RLIMIT_CPU) · file {size(limits.file_bytes)} "
              f"(RLIMIT_FSIZE) · {limits.pids} processes (RLIMIT_NPROC) · the week's budgets (watchdog)")
    how = scratch.mechanism(level is Isolation.bwrap)
    detail = ("its own, a write past it fails with ENOSPC" if how == "tmpfs" else
              f"its folder summed every {scratch.WATCH_SECONDS:g} s; /tmp and /dev/shm {size(limits.tmp_bytes)} "
              "each at the bwrap level; below it, writes outside the run folder are capped per file only")
    space = f"{size(scratch.DISK_BYTES)} in all ({how}: {detail}) · answers {size(scratch.ANSWERS_BYTES)}"
    inputs = (f"notebook {notebook.MAX_NOTEBOOK_BYTES // mib} MiB, JSON depth {notebook.MAX_JSON_DEPTH}, "
              f"{notebook.MAX_JSON_CONTAINERS:,} arrays/objects, {notebook.MAX_CELLS} cells, a cell "
              f"{size(notebook.MAX_CELL_BYTES)}, a code cell {notebook.MAX_CODE_CELL_BYTES // kib} KiB, all code "
              f"{notebook.MAX_CODE_BYTES // kib} KiB · answers.json {answers_file.MAX_JSON_BYTES // mib} MiB, depth "
              f"{answers_file.MAX_JSON_DEPTH}, {answers_file.MAX_JSON_CONTAINERS:,} arrays/objects · kernel "
              f"messages {execute.MAX_MESSAGE_BYTES // mib} MiB, depth {execute.MAX_MESSAGE_DEPTH}, "
              f"{execute.MAX_MESSAGE_CONTAINERS:,} arrays/objects · outputs kept {execute.MAX_OUTPUT_BYTES // mib} MiB")
    server = _join(caps.mechanisms(caps.SERVER_CAPS, own_cgroup=False))
    worker = _join(caps.mechanisms(caps.WORKER_CAPS, own_cgroup=False))
    return [
        ("judge", cpu_ok, _join(caps.mechanisms(caps.JUDGE_CAPS, wall="timer from its gate"))),
        ("judge server", cpu_ok, server),
        ("worker server", cpu_ok, server),
        ("grading worker", cpu_ok, f"{worker} · wall the week's total budget + 300 s (watchdog)"),
        ("git export", cpu_ok, f"{_join(caps.mechanisms(caps.GIT_CAPS))} · {export}"),
        ("sandboxed kernel", shutil.which("prlimit") is not None, kernel),
        ("run's writable space", True, space),
        ("inputs, before parsing", True, inputs),
    ]


def render(d: Diagnosis) -> str:
    lines = ["sandbox tools:"]
    lines += [f"  {name:<11} {path or 'missing'}" for name, path in d.tools.items()]
    lines.append("isolation levels:")
    lines += [f"  {name:<8} {'ok  ' if ok else 'FAIL'} {detail}" for name, (ok, detail) in d.levels.items()]
    verdict = "full" if d.full else "REDUCED: install bubblewrap (apt-get install bubblewrap) for full isolation"
    lines.append(f"isolation reached: {d.level.value} ({verdict})")
    lines.append(f"GPU: {', '.join(d.gpus) if d.gpus else 'none (cpu profile)'}")
    lines.append(f"grading env: python {d.python}, torch {d.torch or 'not installed'}")
    from grader.run.execute import DETERMINISTIC_HEAP
    from grader.run.sandbox import layout_fixed

    heap = "built" if DETERMINISTIC_HEAP.is_file() else "MISSING (ci/install.sh builds grader/run/detalloc.c)"
    lines.append(f"reproducible grades: address layout {'fixed (setarch -R)' if layout_fixed() else 'RANDOM (no setarch)'}, "
                 f"probe heap {heap}")
    start = f"{d.kernel_start_seconds:.2f} s" if d.kernel_start_seconds is not None else f"FAILED ({d.kernel_start_error})"
    lines.append(f"kernel start (sandboxed interpreter + ipykernel import): {start}")
    lines.append("caps on what a submission can make the grader do (enforced here?):")
    lines += [f"  {what:<22} {'yes' if ok else 'NO '}  {how}" for what, ok, how in d.caps]
    return "\n".join(lines)
