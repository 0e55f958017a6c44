"""Caps on the grader's own processes: trusted code that does work on untrusted input (the judge, the batch's
fork servers and workers, git export) runs under a memory, a CPU-time and a wall-time cap.

    guard = Guard(proc.pid, JUDGE_CAPS, "the judge", kill=proc.kill)
    ...                                  # the process runs; the guard watches it
    hit = guard.verdict(proc.wait())     # CapExceeded naming the cap and its value, or None
    guard.close()

How each cap is enforced, strongest first (`mechanisms()` says which this machine gives; `grader doctor`
prints it):
- memory: a cgroup of the process's own with a limit (cgroup v2 `memory.max`, or v1
  `memory.limit_in_bytes`) where this machine lets the grader make one; otherwise a watchdog thread
  polls the process's RSS and kills it over the cap. Never RLIMIT_AS: the judge imports torch, whose CPU
  build already maps ~790 MiB of address space at import and a CUDA build several GiB (DESIGN: never
  RLIMIT_AS with CUDA).
- CPU time: RLIMIT_CPU, the soft limit only (SIGXCPU ends the process), so that a process it starts
  (the sandbox's kernel) may still set its own.
- wall time: the watchdog kills the process when its time is up.
A guarded process that has children (a grading worker starts the kernel and the judge) never gets a
cgroup: they would be charged to it. Its memory is watched instead (its own RSS only).
"""

from __future__ import annotations

import functools
import os
import resource
import secrets
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

POLL_SECONDS = 0.1
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Caps:
    """The caps of one kind of process (None: not capped)."""

    memory_bytes: int | None = None
    cpu_seconds: int | None = None
    wall_seconds: float | None = None


def _env_caps(name: str, default: Caps) -> Caps:
    """A cap set from the environment (GRADER_CAP_<NAME>=memory_mib,cpu_s,wall_s), for machines whose
    weeks need more than the defaults; empty fields keep the default."""
    raw = os.environ.get(f"GRADER_CAP_{name.upper()}")
    if not raw:
        return default
    fields = (raw.split(",") + ["", "", ""])[:3]
    mem, cpu, wall = (f.strip() for f in fields)
    return Caps(memory_bytes=int(float(mem) * 2**20) if mem else default.memory_bytes,
                cpu_seconds=int(cpu) if cpu else default.cpu_seconds,
                wall_seconds=float(wall) if wall else default.wall_seconds)


# Measured judge peaks grading the reference solutions (CPU profile): 246-387 MiB (week 5 the most); one
# that parses a notebook at the code limit: 355 MiB. A grading worker decodes kernel messages of up to
# 16 MiB each (grader.run.execute). The caps leave room for the cuda profile's larger references.
JUDGE_CAPS = _env_caps("judge", Caps(memory_bytes=2 * 2**30, cpu_seconds=1800, wall_seconds=1800.0))
WORKER_CAPS = _env_caps("worker", Caps(memory_bytes=2 * 2**30, cpu_seconds=3600, wall_seconds=None))
SERVER_CAPS = _env_caps("server", Caps(memory_bytes=2 * 2**30, cpu_seconds=3600, wall_seconds=None))
GIT_CAPS = _env_caps("git", Caps(memory_bytes=1 * 2**30, cpu_seconds=60, wall_seconds=60.0))


def human_bytes(n: int) -> str:
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB" if n >= 2**20 else f"{n} bytes"


class CapExceeded(RuntimeError):
    """A guarded process went over one of its caps: the submission it worked on caused it (its report
    says which cap), never the batch's crash."""

    def __init__(self, who: str, cap: str, limit: float):
        self.who, self.cap, self.limit = who, cap, limit
        value = human_bytes(int(limit)) if cap == "memory" else f"{limit:g} s"
        super().__init__(f"{who} went over its {cap} cap of {value} on this submission and was stopped")


# ---- cgroups --------------------------------------------------------------------------------------


def _own_cgroup() -> tuple[Path, str, str] | None:
    """This process's memory cgroup folder, its limit file and the version (v1 memory controller first:
    a hybrid machine mounts both, and only v1 has the controller then)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") and (CGROUP_ROOT / "memory").is_dir():
            return CGROUP_ROOT / "memory" / path.lstrip("/"), "memory.limit_in_bytes", "v1"
    for line in lines:
        if line.startswith("0::") and (CGROUP_ROOT / "cgroup.controllers").is_file():
            return CGROUP_ROOT / line[3:].lstrip("/"), "memory.max", "v2"
    return None


class MemoryCgroup:
    """A child cgroup of ours with a memory limit, for one process (made, joined, read, removed)."""

    def __init__(self, limit: int, tag: str):
        where = _own_cgroup()
        if where is None:
            raise OSError("no memory cgroup")
        base, self.limit_file, self.version = where
        self.path = base / f"grader-{tag}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path.mkdir()
        try:
            (self.path / self.limit_file).write_text(str(limit))
            if self.version == "v2":  # no swap to hide in; ends the whole group at the limit
                for name, value in (("memory.swap.max", "0"), ("memory.oom.group", "1")):
                    try:
                        (self.path / name).write_text(value)
                    except OSError:
                        pass
        except OSError:
            self.remove()
            raise

    def join(self, pid: int) -> None:
        (self.path / "cgroup.procs").write_text(str(pid))

    def oom_kills(self) -> int:
        """How many processes the kernel killed at this group's limit."""
        name = "memory.events" if self.version == "v2" else "memory.oom_control"
        try:
            for line in (self.path / name).read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        if self.version == "v1":  # an older kernel without the count: the limit was hit at least
            try:
                return int((self.path / "memory.failcnt").read_text())
            except (OSError, ValueError):
                return 0
        return 0

    def peak(self) -> int | None:
        name = "memory.max_usage_in_bytes" if self.version == "v1" else "memory.peak"
        try:
            return int((self.path / name).read_text())
        except (OSError, ValueError):
            return None

    def remove(self) -> None:
        for _ in range(50):  # a killed process leaves its group a moment later
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)


def sweep_cgroups() -> int:
    """Remove the empty cgroups of graders killed before they removed them (grader-cap-<pid>-*, that pid
    gone); returns how many were removed."""
    where = _own_cgroup()
    removed = 0
    for group in where[0].glob("grader-*-*-*") if where else ():
        owner = group.name.split("-")[2]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            try:
                group.rmdir()
                removed += 1
            except OSError:  # still holds a process: not stale yet
                pass
    return removed


@functools.lru_cache(maxsize=1)
def cgroup_memory() -> str | None:
    """'cgroup v1' or 'cgroup v2' when this machine lets the grader make a memory cgroup of its own and
    set its limit (probed once by making and removing one); None otherwise."""
    try:
        group = MemoryCgroup(2**30, "probe")
    except OSError:
        return None
    group.remove()
    return f"cgroup {group.version}"


def mechanisms(caps: Caps, own_cgroup: bool = True, wall: str = "watchdog") -> dict[str, str]:
    """How each of these caps is enforced on this machine: cap -> 'value (mechanism)'."""
    memory = (cgroup_memory() if own_cgroup else None) or f"RSS watchdog every {POLL_SECONDS:g} s"
    out = {}
    if caps.memory_bytes is not None:
        out["memory"] = f"{human_bytes(caps.memory_bytes)} ({memory})"
    if caps.cpu_seconds is not None:
        out["cpu"] = f"{caps.cpu_seconds} s (RLIMIT_CPU, soft)"
    if caps.wall_seconds is not None:
        out["wall"] = f"{caps.wall_seconds:g} s ({wall})"
    return out


# ---- the guard --------------------------------------------------------------------------------------


def _rss(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None  # a zombie has no VmRSS


def cpu_state(pid: int) -> tuple[float, str] | None:
    """The CPU time (user + system, seconds) a live process has used so far and its scheduler state
    (R running or runnable, S sleeping, D waiting on a device...); None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), fields[0]
    except (OSError, ValueError, IndexError):
        return None


def set_cpu_limit(pid: int, seconds: int) -> bool:
    """RLIMIT_CPU's soft limit for a running process (ours, same uid); False where it cannot be set."""
    try:
        _, hard = resource.prlimit(pid, resource.RLIMIT_CPU)
        soft = seconds if hard == resource.RLIM_INFINITY else min(seconds, hard)
        resource.prlimit(pid, resource.RLIMIT_CPU, (soft, hard))
        return True
    except (OSError, ValueError):
        return False


@functools.lru_cache(maxsize=1)
def cpu_limit_works() -> bool:
    """Whether RLIMIT_CPU can be set on a child from outside (probed once on a short-lived one)."""
    import subprocess

    try:
        child = subprocess.Popen(["sleep", "5"])
    except OSError:
        return False
    try:
        return set_cpu_limit(child.pid, 77) and resource.prlimit(child.pid, resource.RLIMIT_CPU)[0] == 77
    except OSError:
        return False
    finally:
        child.kill()
        child.wait()


class Guard:
    """Caps on one running process, applied from its parent (see the module docstring).

    `kill` ends the process (and what it leads); `own_cgroup=False` for a process whose children must not
    be charged to it. Call verdict() once it has ended, then close()."""

    def __init__(self, pid: int, caps: Caps, who: str, *, kill: Callable[[], None] | None = None,
                 own_cgroup: bool = True):
        self.pid, self.caps, self.who = pid, caps, who
        self._kill = kill or (lambda: os.kill(pid, signal.SIGKILL))
        self.hit: CapExceeded | None = None  # set by the watchdog when it killed the process
        self.peak_rss = 0
        self.cgroup: MemoryCgroup | None = None
        self._started = time.monotonic()
        self._done = threading.Event()
        if caps.cpu_seconds is not None:
            set_cpu_limit(pid, caps.cpu_seconds)
        if caps.memory_bytes is not None and own_cgroup and cgroup_memory():
            try:
                self.cgroup = MemoryCgroup(caps.memory_bytes, "cap")
                self.cgroup.join(pid)
            except OSError:  # gone already, or the machine changed its mind: the watchdog instead
                if self.cgroup is not None:
                    self.cgroup.remove()
                self.cgroup = None
        self._watch_memory = caps.memory_bytes is not None and self.cgroup is None
        self._thread = None
        if self._watch_memory or caps.wall_seconds is not None:
            self._thread = threading.Thread(target=self._watch, name=f"guard-{pid}", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(POLL_SECONDS):
            rss = _rss(self.pid) if self._watch_memory else None
            if rss is None and self._watch_memory and not Path(f"/proc/{self.pid}").exists():
                return  # gone (and reaped)
            if rss is not None:
                self.peak_rss = max(self.peak_rss, rss)
                if rss > self.caps.memory_bytes:
                    self._stop(CapExceeded(self.who, "memory", self.caps.memory_bytes))
                    return
            wall = self.caps.wall_seconds
            if wall is not None and time.monotonic() - self._started > wall:
                self._stop(CapExceeded(self.who, "wall-time", wall))
                return

    def _stop(self, why: CapExceeded) -> None:
        self.hit = why
        try:
            self._kill()
        except (ProcessLookupError, PermissionError):
            pass

    def verdict(self, returncode: int | None) -> CapExceeded | None:
        """Which cap ended the process (from its exit status and what the guard saw), or None."""
        self._done.set()
        if self.hit is not None:
            return self.hit
        if returncode == -signal.SIGXCPU and self.caps.cpu_seconds is not None:
            return CapExceeded(self.who, "CPU-time", self.caps.cpu_seconds)
        if returncode == -signal.SIGKILL and self.cgroup is not None and self.cgroup.oom_kills() > 0:
            return CapExceeded(self.who, "memory", self.caps.memory_bytes)
        return None

    def peak(self) -> int:
        """The highest memory use seen: the cgroup's own count, or the watchdog's RSS samples."""
        return (self.cgroup.peak() if self.cgroup is not None else None) or self.peak_rss

    def close(self) -> None:
        self._done.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1)
        if self.cgroup is not None:
            self.cgroup.remove()

