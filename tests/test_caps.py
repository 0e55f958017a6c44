"""grader.caps: the grader's own processes stop at their memory, CPU-time and wall-time caps, and a cap
hit names the cap and its value (a student's report, never a crash)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader import caps
from grader.caps import CapExceeded, Caps, Guard

HOG = "import time\nx = bytearray({n})\nfor i in range(0, len(x), 4096): x[i] = 1\ntime.sleep(30)\n"


@pytest.fixture(params=["machine", "watchdog"])
def mechanism(request, monkeypatch):
    """Each test runs with what this machine gives (a cgroup where it can) and with the RSS watchdog."""
    if request.param == "watchdog":
        monkeypatch.setattr(caps, "cgroup_memory", lambda: None)
    return request.param


def _run(code: str, limits: Caps, who: str = "the test process") -> tuple[CapExceeded | None, float, Guard]:
    proc = subprocess.Popen([sys.executable, "-c", code])
    guard = Guard(proc.pid, limits, who, kill=proc.kill)
    t0 = time.monotonic()
    try:
        code = proc.wait(timeout=60)
        return guard.verdict(code), time.monotonic() - t0, guard
    finally:
        proc.kill()
        proc.wait()
        guard.close()


def test_memory_cap_stops_a_process_and_names_the_cap(mechanism):
    hit, seconds, guard = _run(HOG.format(n=600 * 2**20), Caps(memory_bytes=200 * 2**20))
    assert isinstance(hit, CapExceeded) and hit.cap == "memory"
    assert str(hit) == "the test process went over its memory cap of 200 MiB on this submission and was stopped"
    assert seconds < 20
    if mechanism == "machine" and caps.cgroup_memory():
        assert guard.cgroup is not None  # the kernel enforced it
    if mechanism == "watchdog" or guard.cgroup is None:  # the watchdog's last sample is near the cap
        assert 150 * 2**20 < guard.peak() < 600 * 2**20


def test_cpu_cap_is_rlimit_cpu():
    hit, seconds, _ = _run("while True: pass\n", Caps(cpu_seconds=1))
    assert hit is not None and hit.cap == "CPU-time" and "1 s" in str(hit)
    assert seconds < 20


def test_wall_cap_kills_a_sleeper():
    hit, seconds, _ = _run("import time\ntime.sleep(60)\n", Caps(wall_seconds=0.5))
    assert hit is not None and hit.cap == "wall-time" and seconds < 10


def test_a_process_within_its_caps_gets_no_verdict(mechanism):
    hit, _, guard = _run("x = bytearray(20 * 2**20)\n", Caps(memory_bytes=500 * 2**20, cpu_seconds=60,
                                                              wall_seconds=30))
    assert hit is None
    if guard.cgroup is not None:
        assert not guard.cgroup.path.exists()  # removed at close


def test_the_cpu_cap_leaves_children_free_to_set_their_own():
    """Only the soft limit is set: the sandbox's kernel, started by a capped worker, sets a larger one."""
    code = ("import resource, subprocess, sys, time\ntime.sleep(0.5)\n"
            "print(subprocess.run(['prlimit', '--cpu=3600', sys.executable, '-c',"
            " 'import resource; print(resource.getrlimit(resource.RLIMIT_CPU)[0])'],"
            " capture_output=True, text=True).stdout.strip())")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    guard = Guard(proc.pid, Caps(cpu_seconds=30), "worker")
    out, _ = proc.communicate(timeout=60)
    guard.close()
    assert out.strip() == "3600"


def test_every_cap_says_how_this_machine_enforces_it():
    shown = caps.mechanisms(caps.JUDGE_CAPS)
    assert set(shown) == {"memory", "cpu", "wall"}
    assert "cgroup" in shown["memory"] or "RSS watchdog" in shown["memory"]
    assert "RSS watchdog" in caps.mechanisms(caps.WORKER_CAPS, own_cgroup=False)["memory"]


def test_caps_can_be_raised_from_the_environment(monkeypatch):
    monkeypatch.setenv("GRADER_CAP_JUDGE", "6144,,3600")
    got = caps._env_caps("judge", caps.Caps(memory_bytes=1, cpu_seconds=7, wall_seconds=1.0))
    assert got == Caps(memory_bytes=6 * 2**30, cpu_seconds=7, wall_seconds=3600.0)


HUNGRY_CHECK = """import pytest


@pytest.mark.check(points=2, category="correctness")
def test_answer(answers):
    \"\"\"A check driven to a huge reference by what the submission sent (simulated).\"\"\"
    hog = bytearray(800 * 2**20)
    for i in range(0, len(hog), 4096):
        hog[i] = 1
    assert answers.number("answer", "value") == 42
"""


@pytest.mark.slow
def test_a_judge_over_its_memory_cap_is_that_students_resource_limit(tmp_path, monkeypatch, mechanism):
    """The judge runs under its caps; going over one ends in a report that names the cap, not a crash."""
    from cohort import notebook, tiny_suite

    from grader.config import Settings
    from grader.pipeline import grade_submission
    from grader.records import Submission

    solutions = tiny_suite(tmp_path / "solutions")
    (solutions / "week1" / "test_answer.py").write_text(HUNGRY_CHECK)
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(solutions))
    monkeypatch.setattr(caps, "JUDGE_CAPS", Caps(memory_bytes=500 * 2**20, cpu_seconds=600, wall_seconds=600))
    work = tmp_path / "work"
    work.mkdir()
    (work / "week1.ipynb").write_text(notebook("def answer():\n    return 42\n"))
    grade = grade_submission(Submission(student="hog", week="week1", source=str(work), workdir=str(work)),
                             Settings(profile="cpu", out_dir=tmp_path / "out"))
    assert grade.status == "resource_limit", grade.message
    assert grade.message == "the judge went over its memory cap of 500 MiB on this submission and was stopped"
    assert grade.score == 0 and grade.execution.status == "ok"  # the notebook itself ran


def test_a_grading_worker_over_its_memory_cap_is_reported_not_a_crash(tmp_path, monkeypatch):
    """The pool watches each worker's own RSS (its kernel and judge are not charged to it)."""
    from cohort import sleepy_job, tiny_suite

    from grader.cohort.pool import LocalPool

    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(tiny_suite(tmp_path / "solutions")))
    monkeypatch.setattr(caps, "WORKER_CAPS", Caps(memory_bytes=30 * 2**20))  # below an interpreter's start
    got = []
    LocalPool(1).run([sleepy_job(tmp_path, timeout=60)], lambda job, grade: got.append(grade))
    assert got[0].status == "resource_limit"
    assert got[0].message == "the grading worker went over its memory cap of 30 MiB on this submission and was stopped"


def test_doctor_lists_every_cap_and_whether_this_machine_enforces_it():
    from grader.run.sandbox import detect_isolation
    from grader.staff.doctor import Diagnosis, cap_rows, render

    rows = cap_rows(detect_isolation())
    assert [what for what, _, _ in rows] == ["judge", "judge server", "worker server", "grading worker",
                                             "git export", "sandboxed kernel", "run's writable space",
                                             "inputs, before parsing"]
    for what, enforced, how in rows[:5]:  # the grader's own processes: every cap says its mechanism
        assert enforced, what
        assert "memory 2 GiB (" in how or "memory 1 GiB (" in how, how
        assert "(RLIMIT_CPU, soft)" in how and "wall" in how or what.endswith("server"), how
    assert "256 KiB" in rows[-1][2] and "depth 64" in rows[-1][2]
    text = render(Diagnosis(caps=rows))
    assert "caps on what a submission can make the grader do" in text
    assert all(f"  {what:<22} yes  " in text for what, ok, _ in rows if ok)


def test_a_judge_forked_from_the_batchs_judge_server_is_capped_too(tmp_path, monkeypatch, mechanism):
    """Each judge of a batch is a fork of one pytest session; its guard is set before it is sent anything."""
    from grader.judge.context import session_context
    from grader.judge.process import JudgeProcess, judge_env
    from grader.run.forkserver import ForkServer

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_hungry.py").write_text(HUNGRY_CHECK.replace('answers.number("answer", "value") == 42', "True"))
    monkeypatch.setattr(caps, "JUDGE_CAPS", Caps(memory_bytes=400 * 2**20, cpu_seconds=600, wall_seconds=600))
    shared = session_context(suite, "cpu", {}, [], tmp_path)
    ctx = shared.model_copy(update={"execution": {"status": "ok"}, "artifacts_dir": str(tmp_path / "a"),
                                    "results_path": str(tmp_path / "results.json"), "wait_for_answers": False})
    env = {**judge_env(), "GRADER_JUDGE_SESSION": shared.model_dump_json()}
    with ForkServer("grader.judge.process:serve_session", preload=("pytest", "grader.judge.answers"), env=env) as srv:
        srv.wait_ready()
        with JudgeProcess(server=srv.address) as judge, pytest.raises(CapExceeded, match="memory cap of 400 MiB"):
            judge.run(ctx)
        assert srv.alive()  # the server itself is untouched: the next judge forks from it as before


def test_a_killed_graders_cgroups_are_swept():
    if not caps.cgroup_memory():
        pytest.skip("this machine gives the grader no cgroup of its own")
    code = ("from grader.caps import MemoryCgroup\nimport time\ng = MemoryCgroup(2**30, 'cap')\n"
            "print(g.path, flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    group = Path(proc.stdout.readline().strip())
    assert group.is_dir()
    caps.sweep_cgroups()
    assert group.is_dir()  # its owner is alive
    proc.kill()
    proc.wait()
    assert caps.sweep_cgroups() >= 1 and not group.exists()
