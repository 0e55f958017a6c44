"""Wrap a command so that student code runs isolated: the argv prefix and nothing else.

Every sandboxed process (the notebook's kernel, a probe worker) is started as
`prefix(spec) + argv`. The prefix clears the environment, applies resource limits and,
where the machine allows, new namespaces. The level reached is recorded in every grade.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path


class Isolation(str, Enum):
    bwrap = "bwrap"  # bubblewrap: mount, pid, net, ipc namespaces, caps dropped, uid switched
    unshare = "unshare"  # util-linux unshare: net + pid namespaces, rlimits
    process = "process"  # separate process, scrubbed environment and rlimits only

    @property
    def rank(self) -> int:
        return {"process": 0, "unshare": 1, "bwrap": 2}[self.value]


class IsolationError(RuntimeError):
    """The machine cannot give the isolation the mentor required."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 3600
    memory_bytes: int | None = 8 * 2**30  # None when CUDA is used: never RLIMIT_AS with CUDA
    file_bytes: int = 256 * 2**20
    pids: int = 256
    open_files: int = 1024


@dataclass(frozen=True)
class SandboxSpec:
    run_dir: Path  # the submission's scratch copy; the only writable place
    env: dict[str, str] = field(default_factory=dict)  # added to the scrubbed environment
    limits: Limits = Limits()
    level: Isolation = Isolation.process
    gpu: int | None = None  # CUDA device index given to this submission, if any


def base_env(spec: SandboxSpec) -> dict[str, str]:
    """The whole environment student code sees: nothing of the grader's (tokens, paths)."""
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(spec.run_dir / "home"),
        "TMPDIR": str(spec.run_dir / "tmp"),
        "LANG": "C.UTF-8",
        "GRADER": "1",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": os.environ.get("GRADER_THREADS", "2"),
        "MKL_NUM_THREADS": os.environ.get("GRADER_THREADS", "2"),
        "CUDA_VISIBLE_DEVICES": "" if spec.gpu is None else str(spec.gpu),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(spec.run_dir / "home" / ".ipython"),
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks, not secrets
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(spec.env)
    return env


def detect_isolation() -> Isolation:
    """The strongest level this machine gives (probed by running `true` under it)."""
    import subprocess

    for level in (Isolation.bwrap, Isolation.unshare):
        argv = _namespace_prefix(level, SandboxSpec(run_dir=Path("/tmp"), level=level)) + ["/bin/true"]
        if argv and shutil.which(argv[0]):
            try:
                if subprocess.run(argv, capture_output=True, timeout=10).returncode == 0:
                    return level
            except (OSError, subprocess.TimeoutExpired):
                pass
    return Isolation.process


def _namespace_prefix(level: Isolation, spec: SandboxSpec) -> list[str]:
    if level is Isolation.unshare:
        # A fresh network namespace (loopback only, down) and pid namespace: nothing of the
        # kernel survives its process tree, and no socket reaches the network.
        return ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc"]
    if level is Isolation.bwrap:
        return ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/",
                "--bind", str(spec.run_dir), str(spec.run_dir), "--dev", "/dev", "--proc", "/proc"]
    return []


def sandbox_prefix(spec: SandboxSpec) -> list[str]:
    """argv to put before the command: clear the environment, set limits, enter namespaces."""
    env = base_env(spec)
    limits = [
        "prlimit",
        f"--cpu={spec.limits.cpu_seconds}",
        f"--fsize={spec.limits.file_bytes}",
        f"--nofile={spec.limits.open_files}",
        "--core=0",
    ]
    if spec.limits.memory_bytes is not None and spec.gpu is None:
        limits.append(f"--as={spec.limits.memory_bytes}")
    return ["env", "-i", *(f"{k}={v}" for k, v in sorted(env.items()))] + _namespace_prefix(
        spec.level, spec
    ) + limits + ["--"]


def require(level: Isolation, wanted: Isolation | None) -> None:
    if wanted is not None and level.rank < wanted.rank:
        raise IsolationError(
            f"this machine gives '{level.value}' isolation but '{wanted.value}' was required; "
            "run `grader doctor` to see what is missing"
        )
