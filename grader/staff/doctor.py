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

from grader.run.sandbox import Isolation, SandboxSpec, prepare_run_dir, probe_level, sandbox_prefix


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
    return d


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
    return "\n".join(lines)
