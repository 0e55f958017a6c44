"""The machine's failures are never the student's zero: an unreachable fork, a kernel killed from
outside the sandbox, a full disk under the grader's own output. None is cached or exported as a score;
the batch grades them a second time, lists them under "needs attention" and exits 3, in one line."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cohort import make_fork, notebook, tiny_suite, write_roster

ROOT = Path(__file__).resolve().parent.parent
GRADER = [sys.executable, "-m", "grader.cli"]


@pytest.fixture
def env(tmp_path):
    return {**os.environ, "GRADER_SOLUTIONS_DIR": str(tiny_suite(tmp_path / "solutions")), "CI": "true"}


def batch(env, *args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*GRADER, "batch", "week1", *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout, check=False)


def _kill_victims(stop: threading.Event, student: str, killed: list[int]) -> None:
    """From outside: SIGKILL the student's kernel once its second cell has begun (it leaves a file)."""
    while not stop.is_set():
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[1:3] != [b"-m", b"ipykernel_launcher"] or int(proc.name) in killed:
                continue  # the kernel's own Python, not the sandbox around it
            conn = next((a.decode() for a in argv if f"grader-{student}-week1-".encode() in a), None)
            if conn and (Path(conn).parent.parent / "work" / "started").exists():
                os.kill(int(proc.name), signal.SIGKILL)
                killed.append(int(proc.name))
        time.sleep(0.05)


def test_an_unreachable_fork_and_a_kernel_killed_from_outside_are_not_the_students_zero(env, tmp_path):
    forks = tmp_path / "forks"
    make_fork(forks / "ok", [42])
    victim = make_fork(forks / "victim", [42])
    cells = json.loads(notebook("def answer():\n    return 42\n"))
    cells["cells"].append({**cells["cells"][0], "source": "open('started', 'w').close()\nimport time\ntime.sleep(60)\n"})
    (victim / "week1.ipynb").write_text(json.dumps(cells))
    subprocess.run(["git", "-C", str(victim), "-c", "user.name=S", "-c", "user.email=s@e", "commit", "-qam", "sleep"],
                   check=True)
    roster = write_roster(tmp_path / "roster.csv", [("ok", "forks/ok"), ("victim", "forks/victim"),
                                                    ("gone", "https://127.0.0.1:9/gone/week1.git")])
    out = tmp_path / "out"
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_victims, args=(stop, "victim", killed), daemon=True)
    killer.start()
    try:
        done = batch(env, "--roster", str(roster), "--out", str(out), "--jobs", "2")
    finally:
        stop.set()
        killer.join()
    assert done.returncode == 3, done.stderr
    assert len(killed) == 2, "the victim's kernel was graded twice (a retry) and killed both times"
    assert "grading again what the machine failed: victim, gone" in done.stderr
    assert "Traceback" not in done.stderr
    grades = {s: json.loads((out / "reports" / f"{s}-week1.json").read_text()) for s in ("ok", "victim", "gone")}
    assert grades["ok"]["status"] == "graded" and grades["ok"]["score"] == 2
    assert grades["victim"]["status"] == "kernel_killed" and grades["victim"]["execution"]["status"] == "killed"
    assert "killed from outside the sandbox (SIGKILL) after 1 of 2 cells" in grades["victim"]["message"]
    assert grades["gone"]["status"] == "fetch_failed"
    cached = [json.loads(p.read_text())["student"] for p in (out / "cache").glob("*.json")]
    assert cached == ["ok"], "a machine failure must never be cached"
    canvas = {r[0]: r[-1] for r in csv.reader(io.StringIO((out / "canvas-week1.csv").read_text()))}
    assert canvas["Student ok"] == "2" and canvas["Student victim"] == "" and canvas["Student gone"] == ""
    summary = (out / "summary-week1.md").read_text()
    attention = summary[summary.index("## Needs attention"):summary.index("## Score distribution")]
    assert "**victim**: kernel killed" in attention and "**gone**: fetch failed" in attention
    assert "**ok**" not in attention


def test_the_students_own_crash_stays_the_students(tmp_path, monkeypatch):
    """os._exit in a cell ends the kernel from inside: dead_kernel, graded (not a machine failure)."""
    from conftest import grade_notebook

    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(tiny_suite(tmp_path / "solutions")))
    path = tmp_path / "week1.ipynb"
    cells = json.loads(notebook("def answer():\n    return 42\n"))
    cells["cells"].append({**cells["cells"][0], "source": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n"})
    path.write_text(json.dumps(cells))
    grade = grade_notebook("week1", path, tmp_path)
    assert grade.status == "graded" and grade.execution.status == "dead_kernel", grade.execution


# --- a full disk under --out ------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs for --out (mounting needs root; skipped where it is not allowed)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.strip() or done.returncode}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(path: Path) -> Path:
    """Fill the filesystem holding `path` to the last byte."""
    filler = path / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (2**16, 2**12, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")
def test_a_full_disk_under_out_stops_the_batch_in_one_line_and_loses_nothing(env, tmp_path, small_disk):
    forks = tmp_path / "forks"
    for i, s in enumerate(("ann", "bo", "cy")):
        make_fork(forks / s, [42 if i != 1 else 0])
    roster = write_roster(tmp_path / "roster.csv", [(s, f"forks/{s}") for s in ("ann", "bo")])
    out = small_disk / "out"
    first = batch(env, "--roster", str(roster), "--out", str(out), "--jobs", "2")
    assert first.returncode == 0, first.stderr
    write_roster(roster, [(s, f"forks/{s}") for s in ("ann", "bo", "cy")])
    filler = _fill(small_disk)
    for room in (0, 96 * 1024):  # full to the last byte, then a little room: it runs out part way
        if room:
            os.truncate(filler, filler.stat().st_size - room)
        full = batch(env, "--roster", str(roster), "--out", str(out), "--jobs", "2")
        assert full.returncode == 3, full.stdout + full.stderr
        errors = [line for line in full.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "the grader ran out of disk space" in errors[0], full.stderr
        assert str(out) in errors[0] and "Traceback" not in full.stderr
        cached = [json.loads(p.read_text())["student"] for p in (out / "cache").glob("*.json")]
        assert sorted(cached) == ["ann", "bo"], "cy was not graded: nothing of it is cached"
    filler.unlink()
    again = batch(env, "--roster", str(roster), "--out", str(out), "--jobs", "2")
    assert again.returncode == 0, again.stderr
    assert "3 reports (1 graded, 2 cached)" in again.stdout
    assert json.loads((out / "reports" / "cy-week1.json").read_text())["score"] == 2
    assert not list((out / "work").glob("*")), "each fork's files are deleted once it is graded"


def test_a_worker_that_dies_without_a_word_says_so(tmp_path):
    from cohort import sleepy_job

    from grader.cohort.pool import _read_result

    job = sleepy_job(tmp_path, timeout=1)
    (tmp_path / "sleepy.err").write_text("")
    grade = _read_result(job, tmp_path / "sleepy.grade.json", -9)
    assert grade.status == "harness_error" and grade.machine_failure
    assert grade.message == "the grading worker was killed by signal 9 without a grade; it wrote no output"
    (tmp_path / "sleepy.err").write_text("Traceback ...\nMemoryError\n")
    assert _read_result(job, tmp_path / "sleepy.grade.json", 1).message.endswith("its last output: Traceback ...\n"
                                                                                 "MemoryError")
