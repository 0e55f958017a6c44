"""Helpers for the cohort tests: a tiny private week and local git forks (no network)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

WEEK_TOML = """week = "week1"
title = "Tiny private week"
notebook = "week1.ipynb"
uses_torch = false

[profiles.cpu]
cell_timeout = 20
total_timeout = 60
probe_timeout = 20
[profiles.cpu.thresholds]
"""
PLAN = '''def plan(profile, thresholds, data_dir, **_):
    return [{"id": "answer", "probe": "answer", "args": {}}]
'''
PROBES = '''def answer(ns):
    return {"value": float(ns["answer"]())}
'''
CHECKS = '''import pytest


@pytest.mark.check(points=2, category="correctness")
def test_answer(answers):
    """answer() returns 42."""
    assert answers.number("answer", "value") == 42, "answer() should return 42"
'''


def tiny_suite(root: Path) -> Path:
    """A solutions folder with one week whose single check asks answer() == 42."""
    week = root / "week1"
    week.mkdir(parents=True)
    (week / "week.toml").write_text(WEEK_TOML)
    (week / "plan.py").write_text(PLAN)
    (week / "probes.py").write_text(PROBES)
    (week / "test_answer.py").write_text(CHECKS)
    return root


def notebook(answer_source: str) -> str:
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": answer_source}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Student", "-c", "user.email=s@example.com",
                           *args], check=True, capture_output=True, text=True).stdout.strip()


def make_fork(path: Path, answers: list[int | str]) -> Path:
    """A local repository with one commit per answer: week1.ipynb defining answer()."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    for i, value in enumerate(answers):
        (path / "week1.ipynb").write_text(notebook(f"def answer():\n    return {value}\n"))
        git(path, "add", "week1.ipynb")
        git(path, "commit", "-q", "-m", f"attempt {i}")
    return path


def write_roster(path: Path, rows: list[tuple[str, str]], extra: str = "") -> Path:
    lines = ["student,name,github,repo,lms_id,section"]
    lines += [f"{sid},Student {sid},{sid.replace('_', '-')},{repo},{1000 + i},A" for i, (sid, repo) in enumerate(rows)]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


_DEMO: dict = {}


def local_demo(tmp_path_factory) -> dict:
    """The demo cohort graded once per session by the local pool (shared by the batch and Ray tests)."""
    if not _DEMO:
        from grader.cohort.demo import run_demo

        root = tmp_path_factory.mktemp("demo")
        result = run_demo(root / "out", work_dir=root / "forks", jobs=2, echo=lambda s: None)
        _DEMO.update(result=result, out=root / "out", work=root / "forks")
    return _DEMO


def scores(result) -> dict[str, tuple[float, str, int]]:
    """student -> (score, status, late days), read back from the JSON reports."""
    from grader.report.markdown import load_grade

    out = {}
    for student, path in result.reports.items():
        grade = load_grade(path)
        out[student] = (grade.score, grade.status, grade.late_days)
    return out


def sleepy_job(tmp_path: Path, timeout: float, student: str = "sleepy"):
    """A job whose notebook sleeps far past the harness timeout given."""
    from grader.cohort.pool import Job
    from grader.config import Settings
    from grader.records import Submission

    work = tmp_path / "sleepy"
    work.mkdir()
    (work / "week1.ipynb").write_text(notebook("import time\ntime.sleep(120)\n"))
    sub = Submission(student=student, week="week1", source=str(work), workdir=str(work))
    settings = Settings(profile="cpu", out_dir=tmp_path / "reports")
    return Job(key=student, submission=sub, settings=settings.model_dump(mode="json"), timeout=timeout)


def make_tree_bomb(path: Path, depth: int = 8, fanout: int = 10) -> Path:
    """A small repository whose one commit lists fanout**(depth + 1) files: each tree names the one below it
    `fanout` times (a few KB of objects; git expands it only when asked to walk it). Beside the bomb, a
    notebook that would answer 42."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")

    def run(args: list[str], data: str) -> str:
        return subprocess.run(["git", "-C", str(path), *args], input=data, check=True, capture_output=True,
                              text=True).stdout.strip()

    blob = run(["hash-object", "-w", "--stdin"], "x\n")
    tree = run(["mktree"], "".join(f"100644 blob {blob}\tf{i}\n" for i in range(fanout)))
    for _ in range(depth):
        tree = run(["mktree"], "".join(f"040000 tree {tree}\td{i}\n" for i in range(fanout)))
    nb = run(["hash-object", "-w", "--stdin"], notebook("def answer():\n    return 42\n"))
    top = run(["mktree"], f"040000 tree {tree}\tbomb\n100644 blob {nb}\tweek1.ipynb\n")
    commit = git(path, "commit-tree", top, "-m", "bomb")
    git(path, "update-ref", "refs/heads/main", commit)
    return path
