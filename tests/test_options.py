"""Every option is validated before any work: a bad one is exit 4 and one line naming it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import ROOT

from grader.cli import main
from grader.score import LatePolicy

DEADLINE = ["--deadline", "2026-01-01T12:00:00+00:00"]

BAD = [
    # (arguments after `grader batch week1 --roster R --out O`, what the one line must say)
    (["--late-policy", "0,0.5,2"] + DEADLINE, "'--late-policy': '0,0.5,2': cap is out of range"),
    (["--late-policy", "2,0.1"] + DEADLINE, "'--late-policy': '2,0.1': expected GRACE_HOURS,PENALTY_PER_DAY,CAP"),
    (["--late-policy", "-1,0.1,0.5"] + DEADLINE, "'--late-policy': '-1,0.1,0.5': grace is out of range"),
    (["--late-policy", "2,1.5,0.5"] + DEADLINE, "'--late-policy': '2,1.5,0.5': penalty per day is out of range"),
    (["--late-policy", "nan,0.1,0.5"] + DEADLINE, "'--late-policy': 'nan,0.1,0.5': grace is out of range"),
    (["--late-policy", "2,0.1,0.5"], "--late-policy needs --deadline"),
    (["--deadline", "next friday"], ("'--deadline': 'next friday' is not an ISO 8601 time with a timezone, e.g. "
                                     "2026-11-23T12:00:00+00:00")),
    (["--deadline", "2026-01-01T12:00:00"], "'--deadline': '2026-01-01T12:00:00' has no timezone"),
    (["--jobs", "0"], "'--jobs': 0 is not in the range x>=1"),
    (["--jobs", "-1"], "'--jobs': -1 is not in the range x>=1"),
    (["--jobs", "two"], "'--jobs': 'two' is not a valid integer"),
    (["--at-deadline"], "--at-deadline needs --deadline"),
    (["--trust-commit-dates"], "--trust-commit-dates needs --deadline"),
    (["--fetch-only", "--at-deadline"] + DEADLINE, ("--fetch-only records heads and grades nothing: it cannot take "
                                                    "--at-deadline")),
    (["--fetch-only", "--regrade"], "--fetch-only records heads and grades nothing: it cannot take --regrade"),
    (["--fetch-only", "--late-policy", "2,0.1,0.5"] + DEADLINE, "it cannot take --late-policy"),
    (["--fetch-only", "--trust-commit-dates"] + DEADLINE, "it cannot take --trust-commit-dates"),
    (["--fetch-only", "--deadline", "2999-01-01T00:00:00+00:00"], ("--deadline 2999-01-01T00:00:00+00:00 has not "
                                                                   "passed yet")),
    (["--executor", "ray"], "--executor ray needs --address"),
    (["--address", "local"], "--address is for --executor ray"),
    (["--executor", "slurm"], "'--executor': 'slurm' is not one of 'local', 'ray'"),
    (["--format", "pdf"], "'--format': unknown report format 'pdf'"),
    (["--branch", "-x"], "'--branch': branch '-x' is not a branch name"),
    (["--branch", "a..b"], "'--branch': branch 'a..b' is not a branch name"),
    (["--profile", "tpu"], "'--profile': 'tpu' is not one of 'cpu', 'cuda'"),
    (["--out", "README.md"], "'--out': README.md is a file, not a folder"),
    (["--roster", "nowhere.csv"], "'--roster': File 'nowhere.csv' does not exist"),
    (["--surprise"], "No such option '--surprise'"),
]


@pytest.mark.parametrize("args, says", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_a_bad_batch_option_is_one_line_and_exit_4(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(ROOT)
    roster = tmp_path / "roster.csv"
    roster.write_text("student,repo\nann,https://127.0.0.1:9/ann.git\n")
    base = ["batch", "week1", "--roster", str(roster), "--out", str(tmp_path / "out")]
    if "--roster" in args or "--out" in args:
        base = ["batch", "week1"] + (["--roster", str(roster)] if "--roster" not in args else []) + (
            ["--out", str(tmp_path / "out")] if "--out" not in args else [])
    result = CliRunner().invoke(main, base + args)
    assert result.exit_code == 4, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [lines[0]] and lines[0].startswith("error: ") and says in lines[0], result.stderr
    assert not (tmp_path / "out" / "heads.jsonl").exists() and not (tmp_path / "out" / "reports").exists()


@pytest.mark.parametrize("args, says", [
    (["grade", "week1", "forks/ann-typo"], "no such notebook, folder or repository: forks/ann-typo"),
    (["grade", "week1", "x.ipynb", "--commit", "main"], "'--commit': 'main' is not a commit sha"),
    (["grade", "week1", "x.ipynb", "--student", "../eve"], "'--student': student id '../eve' is not allowed"),
    (["grade", "week1", "x.ipynb", "--format", "docx"], "'--format': unknown report format 'docx'"),
    (["check", "week9", "x.ipynb"], "'week9' is not one of"),
    (["release", "OUT", "--course-repo", "not a repo"], "--course-repo 'not a repo': expected ORG/NAME"),
    (["demo", "--jobs", "0"], "'--jobs': 0 is not in the range x>=1"),
])
def test_a_bad_option_elsewhere_is_one_line_and_exit_4(tmp_path, monkeypatch, args, says):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 4, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and says in lines[0], result.stderr


def test_late_policy_never_takes_a_score_below_zero():
    policy = LatePolicy(grace_hours=0, penalty_per_day=0.5, cap=1.0)
    assert policy.penalty(3) == 1.0
    with pytest.raises(ValueError):
        LatePolicy(penalty_per_day=2)
    with pytest.raises(ValueError):
        LatePolicy(cap=1.5)


def test_fetch_only_says_what_it_recorded(tmp_path, monkeypatch):
    from cohort import make_fork, write_roster

    make_fork(tmp_path / "forks" / "ann", [1])
    roster = write_roster(tmp_path / "roster.csv", [("ann", "forks/ann"), ("bo", "https://127.0.0.1:9/bo.git")])
    result = CliRunner().invoke(main, ["batch", "week1", "--roster", str(roster), "--out", str(tmp_path / "out"),
                                       "--fetch-only", "--deadline", "2026-01-01T12:00:00Z"])
    assert result.exit_code == 3, result.output  # a fork missing from the deadline's record needs attention
    assert result.stdout.strip().splitlines()[-1] == (
        f"recorded the branches of 1 fork(s) in {tmp_path / 'out' / 'heads.jsonl'} as the record of the deadline "
        "2026-01-01T12:00:00+00:00; 1 could not be fetched: bo; 0 roster lines skipped")
    assert "reports" not in result.stdout
