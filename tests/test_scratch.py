"""grader.run.scratch: everything a run writes sits in one size-capped space, never on the host's disk;
a write past the cap is the student's failure, and the report says the disk cap was hit.

Measured on main: the run folder lived on the host's disk with only a per-file cap, and many 255 MiB
files wrote 2.0 GiB there. Graded through the real pipeline against the hostile corpus's private suite,
with the cap lowered to 64 MiB so that a few small files reach it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader import pipeline
from grader.config import Settings
from grader.records import Submission
from grader.run import scratch
from grader.run.sandbox import Isolation, detect_isolation

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "fixtures" / "hostile" / "suite"
HONEST = "def add(a, b):\n    return a + b\n\ndef mean(xs):\n    return sum(xs) / len(xs)\n"
CAP = 64 * 2**20
# 20 MiB files into the scratch copy, then /tmp (in the same space at the bwrap level): the fourth fails.
FILL = ("import os, tempfile\nst = os.statvfs('.')\nprint('capacity', st.f_blocks * st.f_frsize)\n"
        "for i in range(6):\n    with open(f'fill{i}.bin', 'wb') as fh:\n        fh.write(b'x' * (20 * 2**20))\n")
TMP = "import tempfile\nwith open(tempfile.gettempdir() + '/more.bin', 'wb') as fh:\n    fh.write(b'y' * (20 * 2**20))\n"
# Writes a little at a time (as a loop over a dataset would), so that a watcher polling twice a second sees it.
SLOW_FILL = ("import time\nwith open('fill.bin', 'wb') as fh:\n    for _ in range(200):\n"
             "        fh.write(b'x' * 2**20)\n        fh.flush()\n        time.sleep(0.01)\n")

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def _notebook(*cells: str) -> str:
    return json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None, "source": src}
        for i, src in enumerate(cells)]})


@pytest.fixture
def grade(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "week_suite", lambda week, public=False: SUITE)
    monkeypatch.setattr(scratch, "DISK_BYTES", CAP)

    def run(name: str, *cells: str):
        work = tmp_path / name
        work.mkdir()
        (work / "week1.ipynb").write_text(_notebook(*cells))
        sub = Submission(student=f"disk-{name}", week="week1", source=str(work), workdir=str(work),
                         notebook="week1.ipynb")
        return pipeline.grade_submission(sub, Settings(profile="cpu", out_dir=tmp_path / "out"))

    return run


def _mounted(student: str) -> list[str]:
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if f"grader-{student}-" in line]


@pytest.mark.skipif(detect_isolation() is not Isolation.bwrap or not scratch.can_mount(),
                    reason="the run's tmpfs needs bubblewrap and root (elsewhere the run is watched)")
def test_writes_past_the_cap_fail_in_the_students_cell_and_the_run_goes_on(grade):
    got = grade("tmpfs", FILL, TMP, HONEST)
    assert got.status == "graded" and got.score == got.max_score == 10  # answers have their own space
    assert got.execution.disk_cap == got.provenance.caps["disk"] == "64 MiB (tmpfs)"
    assert [f.index for f in got.execution.failures] == [0, 1]  # the scratch copy, then /tmp: one cap
    for failure in got.execution.failures:
        assert "No space left on device" in failure.evalue and "the disk cap was hit" in failure.evalue
    assert _mounted("disk-tmpfs") == []  # released once judged


def test_the_watched_fallback_stops_a_run_past_the_cap(grade, monkeypatch):
    monkeypatch.setattr(scratch, "mechanism", lambda level_is_bwrap: "watched")
    got = grade("watched", SLOW_FILL, HONEST)
    assert got.execution.disk_cap == "64 MiB (watched)"
    assert got.execution.status == "dead_kernel" and "the disk cap was hit" in got.execution.message
    assert got.execution.failures[0].ename == "DiskCap"


@pytest.mark.skipif(not scratch.can_mount(), reason="mounting a tmpfs needs root")
def test_a_killed_graders_run_space_is_swept(tmp_path):
    """A worker killed mid-run (at its cap or timeout) never releases its tmpfs: the pool sweeps it."""
    import subprocess
    import sys

    run_dir = tmp_path / "grader-killed-week1-x"
    code = (f"from pathlib import Path\nfrom grader.run.scratch import Scratch\n"
            f"Scratch(Path({str(run_dir)!r}), level_is_bwrap=True)\nprint('mounted', flush=True)\n"
            "import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "mounted"
        assert len(scratch.mounts_under(run_dir)) == 7  # the box, its five binds, the probes' space
        # Other gradings on this machine may have left stale spaces too: only this run's folder is judged.
        assert run_dir not in scratch.sweep_stale()  # its owner is alive
    finally:
        proc.kill()
        proc.wait()
    assert run_dir in scratch.sweep_stale()
    assert scratch.mounts_under(run_dir) == [] and not run_dir.exists()
