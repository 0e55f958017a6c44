"""Batch grading: hostile rosters, cache, kill -9 and resume, late pushes, regrades, the demo cohort.

Most tests grade a tiny private week (one check: answer() == 42) through the real pipeline, so
they take seconds; one end-to-end test grades the demo cohort built from the week-1 fixtures.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from cohort import git, local_demo, make_fork, notebook, scores, tiny_suite, write_roster

from grader.cohort.batch import run_batch
from grader.cohort.gradebook import Gradebook
from grader.config import Settings
from grader.score import LatePolicy

ROOT = Path(__file__).resolve().parent.parent
GRADER = [sys.executable, "-m", "grader.cli"]


@pytest.fixture
def suite(tmp_path, monkeypatch):
    root = tiny_suite(tmp_path / "solutions")
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(root))
    monkeypatch.setenv("CI", "true")
    return root


def rows(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "gradebook.sqlite") as db:
        return db.execute("SELECT student, score, commit_sha FROM gradings ORDER BY id").fetchall()


def batch_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([*GRADER, "batch", "week1", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, check=False)


def test_hostile_roster_grades_good_lines_and_second_run_is_all_cache_hits(suite, tmp_path):
    forks = tmp_path / "forks"
    make_fork(forks / "ann", [1, 42])
    make_fork(forks / "bo", [7])
    roster = write_roster(tmp_path / "roster.csv", [("ann", "forks/ann"), ("bo", "forks/bo"),
                                                    ("cy", "https://127.0.0.1:9/cy/week1.git")],
                          "dan,D,dan,ext::sh -c touch% /tmp/pwned,9,A\n"
                          "../eve,E,eve,forks/ann,9,A\n"
                          "ann,Ann Again,ann2,forks/bo,9,A\n"
                          "fay,F,fay,--upload-pack=touch /tmp/pwned,9,A\n")
    out = tmp_path / "out"
    done = batch_cli("--roster", str(roster), "--out", str(out), "--jobs", "2")
    # cy's fork is unreachable: the machine's failure, graded again once, then listed and exit 3
    assert done.returncode == 3, done.stderr
    for line in (5, 6, 7, 8):
        assert f"roster.csv line {line}:" in done.stderr
    assert "3 reports (4 graded, 0 cached)" in done.stdout and "4 roster lines skipped" in done.stdout
    assert "[4/4]" in done.stderr and "grading again what the machine failed: cy" in done.stderr
    assert done.stderr.strip().splitlines()[-1] == ('error: 1 submission(s) not graded for the machine\'s reasons '
                                                    '(cy): see "Needs attention" in the summary')
    book = Gradebook(out / "gradebook.sqlite")
    latest = {g.student: g for g in book.latest("week1")}
    assert {s: g.score for s, g in latest.items()} == {"ann": 2.0, "bo": 0.0, "cy": 0.0}
    assert latest["ann"].provenance.commit == git(forks / "ann", "rev-parse", "HEAD")
    assert latest["cy"].status == "fetch_failed"
    assert "could not fetch https://127.0.0.1:9/cy/week1.git" in latest["cy"].message
    for student in ("ann", "bo", "cy"):
        for suffix in (".json", ".md", ".html", ".junit.xml", ".gradescope.json"):
            assert (out / "reports" / f"{student}-week1{suffix}").is_file()
    summary = (out / "summary-week1.md").read_text()
    assert "line 8" in summary and "## Needs attention" in summary and "- **cy**: fetch failed" in summary
    canvas = {row[0]: row[-1] for row in csv.reader(io.StringIO((out / "canvas-week1.csv").read_text()))}
    assert canvas["Student ann"] == "2" and canvas["Student bo"] == "0" and canvas["Student cy"] == ""
    assert "score" not in json.loads((out / "reports" / "cy-week1.gradescope.json").read_text())
    assert not Path("/tmp/pwned").exists()

    again = batch_cli("--roster", str(roster), "--out", str(out), "--jobs", "2")
    assert again.returncode == 3 and "3 reports (2 graded, 2 cached)" in again.stdout  # cy is never cached
    assert len(rows(out)) == 6  # cy's two new attempts; the cache hits added no rows
    assert len(list((out / "cache").glob("*.json"))) == 2

    git(forks / "bo", "commit", "-q", "--allow-empty", "-m", "new commit")  # a changed submission
    third = batch_cli("--roster", str(roster), "--out", str(out), "--jobs", "2")
    assert "(3 graded, 1 cached)" in third.stdout
    assert [r[0] for r in rows(out)] .count("bo") == 2  # the regrade is visible beside the first


def test_kill_9_then_rerun_loses_and_duplicates_nothing(suite, tmp_path):
    students = [f"s{i}" for i in range(5)]
    for i, s in enumerate(students):
        make_fork(tmp_path / "forks" / s, [42 if i % 2 else 0])
    roster = write_roster(tmp_path / "roster.csv", [(s, f"forks/{s}") for s in students])
    out = tmp_path / "out"
    proc = subprocess.Popen([*GRADER, "batch", "week1", "--roster", str(roster), "--out", str(out), "--jobs", "1"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list((out / "cache").glob("*.json"))) < 2:
        time.sleep(0.05)
    workers = psutil.Process(proc.pid).children(recursive=True)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cached = len(list((out / "cache").glob("*.json")))
    assert 2 <= cached < len(students), "the batch finished before it could be killed"
    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not alive, f"orphaned grading processes: {alive}"  # they die with the batch

    rerun = batch_cli("--roster", str(roster), "--out", str(out), "--jobs", "2")
    assert rerun.returncode == 0, rerun.stderr
    # The killed batch's scratch folders (run folders, job files) were removed by the next grader.
    assert not list(Path(tempfile.gettempdir()).glob(f"grader-{proc.pid}-*"))
    assert f"5 reports ({len(students) - cached} graded, {cached} cached)" in rerun.stdout
    graded = rows(out)
    assert sorted(r[0] for r in graded) == students  # one grading each: none lost, none twice
    assert {r[0]: r[1] for r in graded} == {s: (2.0 if i % 2 else 0.0) for i, s in enumerate(students)}
    assert len(list((out / "cache").glob("*.json"))) == len(students)
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no half files


def test_late_push_is_caught_by_the_heads_log_not_the_commit_date(suite, tmp_path):
    forks = tmp_path / "forks"
    make_fork(forks / "ann", [42])
    make_fork(forks / "bo", [0])
    roster = write_roster(tmp_path / "roster.csv", [("ann", "forks/ann"), ("bo", "forks/bo")])
    out = tmp_path / "out"
    deadline = datetime.now(UTC)  # it has just passed: the fetch-only run records the heads as handed in
    recorded = run_batch("week1", roster, out, fetch_only=True, deadline=deadline, echo=lambda s: None)
    assert sorted(recorded.recorded) == ["ann", "bo"] and not recorded.attention
    (forks / "bo" / "week1.ipynb").write_text(notebook("def answer():\n    return 42\n"))
    git(forks / "bo", "add", "week1.ipynb")
    subprocess.run(["git", "-C", str(forks / "bo"), "-c", "user.name=S", "-c", "user.email=s@e", "commit", "-q",
                    "-m", "late"], check=True, env={**os.environ, "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
                                                     "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z"})
    late_sha = git(forks / "bo", "rev-parse", "HEAD")
    result = run_batch("week1", roster, out, settings=Settings(profile="cpu"), jobs=2, deadline=deadline,
                       policy=LatePolicy(penalty_per_day=0.25), echo=lambda s: None)
    got = scores(result)
    assert got["ann"] == (2.0, "graded", 0)
    assert got["bo"] == (1.5, "graded", 1)  # full marks, one day late at 25 %, despite the 2020 date
    at_deadline = run_batch("week1", roster, out, settings=Settings(profile="cpu"), jobs=2, deadline=deadline,
                            policy=LatePolicy(penalty_per_day=0.25), at_deadline=True, echo=lambda s: None)
    assert scores(at_deadline) == {"ann": (2.0, "graded", 0), "bo": (0.0, "graded", 0)}  # the late push ignored
    assert at_deadline.cached == 1 and at_deadline.graded == 1
    from grader.report.markdown import load_grade

    bo = load_grade(at_deadline.reports["bo"])
    assert any(f"A later push was not graded: commit {late_sha[:12]}" in n for n in bo.notices)
    assert f"A later push was not graded: commit {late_sha[:12]}" in (out / "reports" / "bo-week1.md").read_text()
    assert "branches recorded by the grader at" in (out / "summary-week1.md").read_text()


def test_a_deadline_without_a_record_of_heads_refuses_unless_commit_dates_are_trusted(suite, tmp_path):
    make_fork(tmp_path / "forks" / "ann", [42])
    roster = write_roster(tmp_path / "roster.csv", [("ann", "forks/ann")])
    out = tmp_path / "out"
    done = batch_cli("--roster", str(roster), "--out", str(out), "--deadline", "2000-01-01T00:00:00+00:00")
    assert done.returncode == 4 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "no heads were recorded at this deadline" in done.stderr and "--fetch-only --deadline" in done.stderr
    assert not (out / "reports").exists()  # refused before any work
    at_deadline = batch_cli("--roster", str(roster), "--out", str(out), "--deadline", "2000-01-01T00:00:00+00:00",
                            "--at-deadline")
    assert at_deadline.returncode == 4 and "no heads were recorded" in at_deadline.stderr  # never 0 for everyone
    result = run_batch("week1", roster, out, deadline=datetime(2000, 1, 1, tzinfo=UTC), trust_commit_dates=True,
                       policy=LatePolicy(penalty_per_day=0.1, cap=0.3), echo=lambda s: None)
    from grader.report.markdown import load_grade

    grade = load_grade(result.reports["ann"])
    assert grade.late_days > 1000 and grade.late_penalty == 0.3 and grade.score == 1.4
    assert grade.notices and "commit dates" in grade.notices[0]
    for path in (out / "reports" / "ann-week1.md", out / "reports" / "ann-week1.html", out / "summary-week1.md",
                 out / "summary-week1.html"):
        assert "which a student can set to anything" in path.read_text(), path


@pytest.mark.slow
def test_demo_cohort_end_to_end(tmp_path_factory):
    demo = local_demo(tmp_path_factory)
    result = demo["result"]
    got = scores(result)
    top = max(s for s, _, _ in got.values())
    assert got["ada"] == (top, "graded", 0) and top > 0
    assert got["fay"] == (0, "not_submitted", 0)  # the untouched stub, saved as "Copy of week1.ipynb"
    assert got["dee"][1] == "fetch_failed"  # unreachable fork: the machine's failure, not the student's
    assert got["cy"][2] == 1 and got["cy"][0] == pytest.approx(top * 0.9)  # late fix, backdated to 2020
    assert 0 < got["ben"][0] < top  # a known bug loses points
    assert got["gus"] == (top, "graded", 0)  # another design, full marks
    assert len(result.roster_problems) == 1 and "line 8" in result.roster_problems[0]
    assert result.harness_errors == 0 and result.machine_failures == ["dee"] and result.retried == ["dee"]
    for name in ("canvas", "summary_md", "summary_json", "summary_html"):
        assert result.exports[name].is_file()
    from grader.cohort.demo import run_demo

    again = run_demo(demo["out"], work_dir=demo["work"], jobs=2, echo=lambda s: None)
    assert again.cached == 5 and again.graded == 2 and scores(again) == got  # dee: never cached, tried twice


def _sandboxed_pids(student: str = "") -> list[int]:
    """Processes carrying a run id (what a sandboxed kernel has in its environment); with `student`, only
    those of that student's runs (their run folder, grader-<student>-<week>-..., is on the command line),
    so that gradings of other tests or batches on the machine do not count."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"GRADER_RUN_ID=" in (proc / "environ").read_bytes() and (
                    not student or f"grader-{student}-".encode() in (proc / "cmdline").read_bytes()):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


@pytest.mark.parametrize("forked", [False, True], ids=["fresh-workers", "fork-server-workers"])
def test_local_pool_stops_a_submission_at_the_harness_timeout(suite, tmp_path, forked):
    from cohort import sleepy_job

    from grader.cohort.pool import LocalPool

    got = []
    student = f"sleepy{os.getpid()}{int(forked)}"
    pool = LocalPool(1, judge_preload=("numpy",) if forked else None)
    t0 = time.monotonic()
    pool.run([sleepy_job(tmp_path, timeout=3, student=student)], lambda job, grade: got.append(grade))
    assert time.monotonic() - t0 < 15
    assert got[0].status == "resource_limit" and "wall-time cap of 3 s" in got[0].message
    deadline = time.monotonic() + 10  # the kernel dies with its worker (bwrap --die-with-parent, the reaper)
    while _sandboxed_pids(student) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sandboxed_pids(student), "a sandboxed process outlived its stopped worker"


def test_a_second_batch_on_the_same_folder_is_refused(suite, tmp_path):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    roster = write_roster(tmp_path / "roster.csv", [("ann", "https://127.0.0.1:9/ann.git")])
    with open(out / "batch.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(ValueError, match="another batch is running"):
            run_batch("week1", roster, out, echo=lambda s: None)


def test_kernels_sharing_cores_wait_passively(monkeypatch, tmp_path):
    """Two-thread kernels in more slots than cores sleep while they wait (OMP_WAIT_POLICY=PASSIVE);
    a kernel with the cores to itself keeps spinning; the sandbox and the judges see the same."""
    from grader.cohort.pool import LocalPool
    from grader.judge.process import judge_env
    from grader.run.sandbox import WAIT_POLICY_VAR, Isolation, SandboxSpec, base_env

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert WAIT_POLICY_VAR not in LocalPool(1)._env
    shared = LocalPool(2)._env
    assert shared[WAIT_POLICY_VAR] == "PASSIVE"
    assert judge_env(shared)["OMP_WAIT_POLICY"] == "PASSIVE"  # the judge server's, set before torch loads
    assert "OMP_WAIT_POLICY" not in judge_env({"PATH": "/usr/bin"})
    monkeypatch.setenv(WAIT_POLICY_VAR, shared[WAIT_POLICY_VAR])  # as in a worker of that pool
    assert base_env(SandboxSpec(run_dir=tmp_path, level=Isolation.process))["OMP_WAIT_POLICY"] == "PASSIVE"


def test_wait_policy_changes_no_result():
    """The same threads split the same work whether they spin or sleep: bit-identical tensors."""
    code = ("import torch; torch.set_num_threads(2); torch.manual_seed(0); x = torch.randn(512, 512);"
            "w = torch.randn(512, 256, requires_grad=True); loss = (x @ w).tanh().logsumexp(1).mean();"
            "loss.backward(); import sys; sys.stdout.buffer.write(loss.detach().numpy().tobytes()"
            " + w.grad.numpy().tobytes() + x.sum(0).numpy().tobytes())")
    outputs = {policy: subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                                      env={**os.environ, "OMP_NUM_THREADS": "2", "OMP_WAIT_POLICY": policy}).stdout
               for policy in ("ACTIVE", "PASSIVE")}
    assert len(outputs["ACTIVE"]) > 512 * 256 * 4 and outputs["ACTIVE"] == outputs["PASSIVE"]


def test_a_tree_bomb_is_one_students_invalid_submission_and_the_batch_goes_on(suite, tmp_path):
    from cohort import make_tree_bomb

    forks = tmp_path / "forks"
    make_tree_bomb(forks / "bomb")
    make_fork(forks / "ann", [42])
    roster = write_roster(tmp_path / "roster.csv", [("bomb", str(forks / "bomb")), ("ann", str(forks / "ann"))])
    t0 = time.monotonic()
    result = run_batch("week1", roster, tmp_path / "out", jobs=2, formats=("json",), echo=lambda s: None)
    assert time.monotonic() - t0 < 120
    got = scores(result)
    assert got["ann"] == (2.0, "graded", 0)
    assert got["bomb"][1] == "invalid_submission"
    report = result.reports["bomb"].read_text()
    assert "lists more than 100,000 paths (the limit)" in report
