"""Temporary folders that do not outlive the grader, even a killed one.

Every temporary folder a grading makes (the sandbox's run folder, the judge's pristine copy, a batch's
job files, a fetched repository) lies under one root per grader process, `$TMPDIR/grader-<pid>-<random>/`,
which holds a `pid` file naming its owner (pid and start time). `claim()` makes the root and points
TMPDIR at it (the processes the grader starts inherit it), removes it when the grader exits, and first
removes the roots of grader processes that are gone: a `kill -9` cannot clean up after itself, the
next grader on the machine does. A root whose owner is alive is never touched.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from pathlib import Path

ROOT_PREFIX = "grader-"


def _started(pid: int) -> str | None:
    """A process's start time (clock ticks since boot), which tells a live pid from a reused one."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner_alive(root: Path) -> bool:
    try:
        pid_text, started = (root / "pid").read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return True  # not one of ours, or being written right now: leave it
    return _started(pid) == started


def sweep(base: Path) -> list[Path]:
    """Remove the scratch roots under `base` whose grader process is gone; returns them."""
    removed = []
    for root in base.glob(f"{ROOT_PREFIX}[0-9]*-*"):
        if root.is_dir() and not root.is_symlink() and (root / "pid").is_file() and not _owner_alive(root):
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed


def claim() -> Path:
    """This process's scratch root (made once): sweep the dead ones, then use it for every temp folder."""
    current = os.environ.get("GRADER_SCRATCH_ROOT")
    if current and Path(current).is_dir() and _owner_alive(Path(current)) and \
            (Path(current) / "pid").read_text().split()[0] == str(os.getpid()):
        return Path(current)
    base = Path(tempfile.gettempdir())
    sweep(base)
    root = Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-", dir=base))
    (root / "pid").write_text(f"{os.getpid()} {_started(os.getpid())}\n")
    os.environ["TMPDIR"] = str(root)
    os.environ["GRADER_SCRATCH_ROOT"] = str(root)
    tempfile.tempdir = str(root)
    atexit.register(shutil.rmtree, root, True)
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:  # a plain `kill`: clean up as on Ctrl-C
        signal.signal(signal.SIGTERM, _interrupt)
    return root


def _interrupt(signum, frame):
    raise KeyboardInterrupt
