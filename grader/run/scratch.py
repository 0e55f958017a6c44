"""The sandbox's writable space, with a total size cap: what a submission writes never reaches the host's disk.

Before: the run folder lived on the host's disk with only a per-file cap (RLIMIT_FSIZE), and many 255 MiB
files wrote 2.0 GiB there. Now, where the grader may mount (root, bubblewrap level), each run gets:

    run_dir/box      tmpfs, size=DISK_BYTES, nr_inodes=DISK_INODES: the scratch copy (work/), home/, tmp/,
                     kernel/ (sockets) and shm/, each bound over the run folder's path of the same name,
                     and the sandbox's /tmp and /dev/shm (grader.run.sandbox binds them from here)
    run_dir/probes   tmpfs, size=ANSWERS_BYTES: each probe folder is made here after the student's cells
                     ran; only its answers/ is the sandbox's, so a full box still leaves room for answers

A write past the cap fails with ENOSPC in the student's own cell ("No space left on device"), and the report
says it was the disk cap. Where no mount is possible (grading as a normal user, or below bubblewrap) the
run's folder is *watched* instead: a thread sums what it holds every WATCH_SECONDS and stops the run past
the cap (the kernel then dies with a message naming the cap); /tmp and /dev/shm are bubblewrap's own tmpfs
of Limits.tmp_bytes each. The mechanism and the cap are recorded in every grade (Execution.disk_cap).
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

DISK_BYTES = 1 * 2**30  # everything a run may write: scratch copy, home, /tmp, /dev/shm
DISK_INODES = 200_000
ANSWERS_BYTES = 256 * 2**20  # the probes' answers (arrays as .npy), beside the box
WATCH_SECONDS = 0.5
BOXED = ("work", "home", "tmp", "kernel", "shm")  # the run folder's paths that live in the box
MS_BIND, MNT_DETACH = 4096, 2
SPACE_ERRORS = ("No space left on device", "Disk quota exceeded")
_OCTAL = re.compile(r"\\([0-7]{3})")


def cap_text(mechanism: str) -> str:
    return f"{DISK_BYTES // 2**20} MiB ({mechanism})"


@functools.lru_cache(maxsize=1)
def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: Path, fstype: str | None, flags: int, options: str | None) -> None:
    done = _libc().mount(source.encode(), str(target).encode(), fstype.encode() if fstype else None, flags,
                         options.encode() if options else None)
    if done != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {target}: {os.strerror(err)}")


def _umount(target: Path) -> None:
    _libc().umount2(str(target).encode(), MNT_DETACH)


def _tmpfs(target: Path, size: int, inodes: int, tag: str) -> None:
    """A tmpfs named after its owner (grader-<tag>-<pid>): sweep_stale finds those of a killed grader."""
    target.mkdir(parents=True, exist_ok=True)
    _mount(f"grader-{tag}-{os.getpid()}", target, "tmpfs", 0, f"size={size},nr_inodes={inodes},mode=0755")


@functools.lru_cache(maxsize=1)
def can_mount() -> bool:
    """Whether this process may mount a tmpfs (root in the machine's own mount namespace); probed once."""
    if os.geteuid() != 0:
        return False
    probe = Path(f"/tmp/grader-mount-probe-{os.getpid()}")
    try:
        _tmpfs(probe, 2**20, 16, "probe")
    except OSError:
        return False
    finally:
        _umount(probe)
        shutil.rmtree(probe, ignore_errors=True)
    return True


def mechanism(level_is_bwrap: bool) -> str:
    """How this machine caps a run's writable space at this isolation level."""
    return "tmpfs" if level_is_bwrap and can_mount() else "watched"


class Scratch:
    """One run's writable space: mounted (tmpfs) or watched. `release` ends it (the pipeline, after judging)."""

    def __init__(self, run_dir: Path, level_is_bwrap: bool):
        self.run_dir = run_dir
        self.mechanism = mechanism(level_is_bwrap)
        self.hit = False  # the watcher stopped the run
        self._done = threading.Event()
        if self.mechanism == "tmpfs":
            try:
                self._mount_box()
            except OSError:
                release(run_dir)
                self.mechanism = "watched"

    @property
    def cap(self) -> str:
        return cap_text(self.mechanism)

    @property
    def probes_dir(self) -> Path:
        """Where probe folders are made: the answers' own tmpfs, or the run folder itself."""
        return self.run_dir / "probes" if self.mechanism == "tmpfs" else self.run_dir

    def _mount_box(self) -> None:
        box = self.run_dir / "box"
        _tmpfs(box, DISK_BYTES, DISK_INODES, "box")
        for name in BOXED:
            (box / name).mkdir()
            target = self.run_dir / name
            target.mkdir(exist_ok=True)
            if any(target.iterdir()):  # the scratch copy is made into the box, never before it
                raise OSError(f"{target} is not empty")
            _mount(str(box / name), target, None, MS_BIND, None)
        os.chmod(box / "tmp", 0o1777)
        os.chmod(box / "shm", 0o1777)
        _tmpfs(self.run_dir / "probes", ANSWERS_BYTES, 10_000, "probes")

    def watch(self, stop: Callable[[], None]) -> None:
        """Below a mounted box: stop the run (`stop`) once its folder holds more than the cap."""
        if self.mechanism != "watched":
            return

        def loop() -> None:
            while not self._done.wait(WATCH_SECONDS):
                if usage(self.run_dir) > DISK_BYTES:
                    self.hit = True
                    stop()
                    return

        threading.Thread(target=loop, name="scratch-watch", daemon=True).start()

    def stop_watching(self) -> None:
        self._done.set()

    def full_message(self) -> str:
        return (f"the run's writable space is capped at {DISK_BYTES // 2**20} MiB (scratch copy, home, /tmp "
                "and /dev/shm together): the disk cap was hit")


def usage(folder: Path) -> int:
    """Bytes the files under `folder` occupy (allocated blocks; an inode counts a block), never following links."""
    total = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += max(st.st_blocks * 512, 4096)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
        except OSError:
            continue
    return total


def _mounts() -> list[tuple[Path, str]]:
    """(mount point, source) of every mount, from /proc/self/mountinfo."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if " - " in line and len(fields) > 4:
            source = line.split(" - ", 1)[1].split()[1]
            out.append((Path(_OCTAL.sub(lambda m: chr(int(m[1], 8)), fields[4])), source))  # \040 is a space
    return out


def mounts_under(run_dir: Path) -> list[Path]:
    """Mount points at or below run_dir, deepest first."""
    root = run_dir.resolve()
    found = {target for target, _ in _mounts() if target == root or root in target.parents}
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


_OWNED = re.compile(r"^grader-(box|probes)-(\d+)$")


def sweep_stale() -> set[Path]:
    """Unmount the run spaces of graders that were killed before they released them (a worker stopped at
    its cap or timeout), and remove their run folders; returns the run folders freed."""
    stale = set()
    for target, source in _mounts():
        match = _OWNED.match(source)
        if match and not Path(f"/proc/{match[2]}").exists():
            stale.add(target.parent)
    for run_dir in stale:
        release(run_dir)
        if run_dir.name.startswith("grader-"):
            shutil.rmtree(run_dir, ignore_errors=True)
    return stale


def release(run_dir: Path, keep: bool = False) -> None:
    """Unmount the run's writable space (its files go with it); with `keep`, copy them to disk first."""
    mounts = mounts_under(run_dir)
    if keep and mounts:
        kept = run_dir / "kept"
        for name in (*BOXED, "probes"):
            if (run_dir / name).is_dir():
                shutil.copytree(run_dir / name, kept / name, symlinks=True, dirs_exist_ok=True)
    for target in mounts:
        _umount(target)
