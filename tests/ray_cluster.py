"""A two-node Ray cluster on this machine for the Ray executor's tests: a head with no CPUs for tasks, and a
worker node with fake GPUs in a mount and pid namespace of its own that cannot see the tests' folders.

    with TwoNodeCluster(hidden=tmp_path_factory.getbasetemp()) as cluster:
        cluster.address        # "IP:PORT", what a mentor types
        cluster.kill_worker()  # SIGKILL the whole worker node (its pid namespace dies with it)
        cluster.start_worker()

The worker node runs under `unshare --mount --pid --fork --mount-proc --kill-child` with a tmpfs over `hidden`
(every test's tmp_path: the batch's output folder, the forks, the roster) and over /dev/shm, so every grading
runs where no file of the driver's can be read. (bubblewrap's own --proc leaves /proc partly read-only, and
the grader's sandbox then cannot mount a /proc of its own inside the node; unshare's --mount-proc does not.)
Both nodes use the machine's token for Ray's authentication (~/.ray/auth_token, made as ray.init makes it);
neither uses Ray's default ports or temp dir, so other clusters on the machine are left alone, and every
process is killed at the end, by its process group or its pid namespace, never by name.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

VENV_BIN = Path(sys.executable).parent
RAY = str(VENV_BIN / "ray")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "GRADER_"))}
    env.update(RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0", PATH=f"{VENV_BIN}:{env.get('PATH', '')}")
    return env


class TwoNodeCluster:
    def __init__(self, hidden: Path, gpus: int = 2, cpus: int = 2):
        self.hidden, self.gpus, self.cpus = Path(hidden), gpus, cpus
        # Outside `hidden`, so both nodes see it; short: Ray puts unix sockets 60 characters below it (108 at most).
        self.root = Path(tempfile.mkdtemp(prefix="grt-", dir="/tmp"))
        self.binds: list[tuple[Path, Path]] = []  # (what the worker node sees, where) over the shared view
        self.head: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.address = ""
        self._workers = 0

    def __enter__(self) -> Self:
        try:
            self.start_head()
            self.start_worker()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_head(self, cpus: int = 0) -> None:
        """The head node; with `cpus` it grades too (the benchmark's one-node cluster)."""
        if not (Path.home() / ".ray" / "auth_token").is_file():
            subprocess.run([RAY, "get-auth-token", "--generate"], check=True, capture_output=True, env=_env())
        port = free_port()
        log = self.root / "head.log"
        self.head = subprocess.Popen(
            [RAY, "start", "--head", "--block", "--num-cpus", str(cpus), "--port", str(port),
             "--temp-dir", str(self.root / "head"), "--include-dashboard", "false",
             "--dashboard-port", str(free_port()), "--dashboard-agent-listen-port", str(free_port()),
             "--disable-usage-stats"],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=_env(), start_new_session=True)  # noqa: SIM115
        self.address = self._wait(log, re.compile(r"ray start --address='([^']+)'"), self.head, "the head")

    def start_worker(self) -> None:
        self._workers += 1
        log = self.root / f"worker-{self._workers}.log"
        mounts = [f"mount -t tmpfs -o size=64m tmpfs {self.hidden}", "mount -t tmpfs tmpfs /dev/shm"]
        mounts += [f"mount --bind {src} {dst}" for src, dst in self.binds]
        start = (f"exec {RAY} start --address={self.address} --block --num-cpus {self.cpus} --num-gpus {self.gpus} "
                 f"--temp-dir {self.root / f'worker-{self._workers}'} --dashboard-agent-listen-port {free_port()} "
                 "--disable-usage-stats")
        self.worker = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "--",
             "sh", "-c", " && ".join([*mounts, start])],
            stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=_env(), start_new_session=True)  # noqa: SIM115
        self._wait(log, re.compile(r"(Ray runtime started)"), self.worker, "the worker node")

    @staticmethod
    def _wait(log: Path, pattern: re.Pattern, proc: subprocess.Popen, who: str, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = pattern.search(log.read_text(errors="replace"))
            if found:
                return found.group(1)
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"{who} did not start: {log.read_text(errors='replace')[-3000:]}")

    def kill_worker(self) -> None:
        """SIGKILL the worker node: unshare's child is its pid namespace's init, and everything in it dies."""
        if self.worker is not None:
            _kill_group(self.worker)
            self.worker = None

    def ours(self) -> list[int]:
        """Pids of processes still running from this cluster (their command lines name its folder)."""
        pids = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    if str(self.root).encode() in (proc / "cmdline").read_bytes():
                        pids.append(int(proc.name))
                except OSError:
                    continue
        return pids

    def stop(self) -> None:
        self.kill_worker()
        if self.head is not None:
            _kill_group(self.head)
            self.head = None
        deadline = time.monotonic() + 10
        while self.ours() and time.monotonic() < deadline:
            time.sleep(0.2)
        for pid in self.ours():  # a straggler outside both groups, by its pid, never by name
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
