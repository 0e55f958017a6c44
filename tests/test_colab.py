"""Colab: every stub starts with a setup cell that is inert outside Colab (solutions/README.md,
"Colab"), and a notebook saved by Colab's "Save a copy in GitHub" is located and graded."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
from conftest import ROOT

from grader.config import Settings
from grader.fetch.notebook import locate_notebook, read_notebook
from grader.pipeline import grade_submission
from grader.records import Submission

STUBS = sorted(ROOT.glob("assignments/week*/week*.ipynb"))
COLAB = ROOT / "fixtures" / "submissions" / "colab"
COLAB_WEEKS = sorted(p.name for p in COLAB.glob("week*") if p.is_dir())
DATA = ROOT / "fixtures" / "data"
# Prepended to a setup cell run on its own: any network access or subprocess (a pip install) is an
# error, and a download attempt prints its URL first. An audit hook cannot be undone by the cell.
OFFLINE = """import sys
def _offline(event, args):
    if event == "urllib.Request":
        print("DOWNLOAD", args[0], file=sys.stderr)
    if event in ("urllib.Request", "socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
                 "subprocess.Popen", "os.system", "os.exec", "os.posix_spawn"):
        raise OSError(f"blocked: the setup cell reached out (not in Colab): {event}")
sys.addaudithook(_offline)
del _offline
"""


def _first_code_cell(path) -> str:
    cells = json.loads(path.read_text())["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    return "".join(code[0]["source"]) if code else ""


def _week_config(week: str) -> dict:
    for path in (ROOT / "solutions" / week / "week.toml", ROOT / "assignments" / week / "public" / "week.toml"):
        if path.is_file():
            return tomllib.loads(path.read_text())
    return {}


def _run_offline(cell: str, cwd) -> subprocess.CompletedProcess:
    """Run a setup cell alone in `cwd`, isolated (-I), not in Colab, with no network and no subprocess."""
    env = {k: v for k, v in os.environ.items() if k != "GRADER"}  # as on a student's laptop
    return subprocess.run([sys.executable, "-I", "-c", OFFLINE + cell], cwd=cwd, env=env, capture_output=True,
                          text=True, check=False, timeout=120)


def _setup_cell_problems(stub) -> list[str]:
    week = stub.stem
    cell = _first_code_cell(stub)
    config = _week_config(week)
    problems = []
    if '"google.colab" in sys.modules' not in cell or "if IN_COLAB" not in cell:
        problems.append("no `IN_COLAB = \"google.colab\" in sys.modules` guard")
    for line in cell.splitlines():
        if "pip install" in line and not line.startswith((" ", "\t")):
            problems.append(f"unguarded install: {line.strip()}")
    for name in config.get("data", []):
        if name not in cell or "os.path.exists" not in cell:
            problems.append(f"no fallback for data file {name}")
    if config.get("uses_torch", True) and "torch.cuda.is_available()" not in cell:
        problems.append("no device detection (torch.cuda.is_available())")
    return problems


def test_every_week_has_a_stub():
    weeks = sorted(p.name for p in (ROOT / "solutions").glob("week*") if (p / "week.toml").is_file())
    assert [s.stem for s in STUBS] == weeks


@pytest.mark.parametrize("stub", STUBS, ids=lambda p: p.stem)
def test_stub_starts_with_a_colab_setup_cell(stub):
    problems = _setup_cell_problems(stub)
    assert not problems, f"{stub.relative_to(ROOT)}: first code cell: " + "; ".join(problems)


@pytest.mark.parametrize("stub", STUBS, ids=lambda p: p.stem)
def test_setup_cell_is_inert_outside_colab(stub, tmp_path):
    """The stub's real first cell, run alone beside the week's data: exit 0, no network, no new file."""
    for name in _week_config(stub.stem).get("data", []):
        shutil.copyfile(DATA / name, tmp_path / name)
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = _run_offline(_first_code_cell(stub), tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("stub", [s for s in STUBS if _week_config(s.stem).get("data")], ids=lambda p: p.stem)
def test_setup_cell_fetches_missing_data_from_the_course_copy(stub, tmp_path):
    """Without the data (a fresh Colab), the one download is the course's copy of a file in fixtures/data."""
    proc = _run_offline(_first_code_cell(stub), tmp_path)
    urls = [line.split(" ", 1)[1] for line in proc.stderr.splitlines() if line.startswith("DOWNLOAD ")]
    assert proc.returncode != 0 and urls, proc.stderr[-2000:]  # blocked here: it tried to download
    first = _week_config(stub.stem)["data"][0]
    assert urls[0].endswith(f"/fixtures/data/{first}") and "COURSE_" in urls[0], urls
    assert (DATA / first).is_file()


@pytest.mark.parametrize("stub", STUBS, ids=lambda p: p.stem)
def test_only_the_setup_cell_downloads(stub):
    """One fallback for the data, the course copy: no other cell fetches anything."""
    cells = json.loads(stub.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    for index, source in enumerate(code[1:], start=2):
        for needle in ("urllib", "urlretrieve", "requests.get", "wget", "curl ", "pip install"):
            assert needle not in source, f"{stub.relative_to(ROOT)}: code cell {index} has {needle!r}"


def test_setup_cell_check_accepts_the_documented_example(tmp_path):
    """The example in solutions/README.md passes the same rules (so the guide and test agree)."""
    guide = (ROOT / "solutions" / "README.md").read_text()
    example = guide.split("## Colab")[1].split("```python\n")[1].split("```")[0]
    nb = {"cells": [{"cell_type": "code", "source": example}]}
    path = tmp_path / "week2.ipynb"
    path.write_text(json.dumps(nb))
    assert _setup_cell_problems(path) == []
    cell = example.split("import torch")[0]  # outside Colab, with the data present, it does nothing
    (tmp_path / "names.txt").write_text("emma\n")
    proc = _run_offline(cell, tmp_path)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("week", COLAB_WEEKS)
def test_colab_copy_is_what_colab_writes(week):
    path = COLAB / week / f"Copy of {week}.ipynb"
    raw = json.loads(path.read_text())
    assert "colab" in raw["metadata"] and "widgets" in raw["metadata"]
    assert all("id" not in cell for cell in raw["cells"])
    nb = read_notebook(path)  # located and parsed despite all that
    assert locate_notebook(path.parent, f"{week}.ipynb") == path
    assert len(nb.cells) == len(raw["cells"])


@pytest.mark.slow
@pytest.mark.parametrize("week", COLAB_WEEKS)
def test_colab_copy_grades_like_the_solution(week, tmp_path):
    work = tmp_path / "fork"
    shutil.copytree(COLAB / week, work)
    submission = Submission(student="colab", week=week, source=str(work), workdir=str(work))
    grade = grade_submission(submission, Settings(profile="cpu", out_dir=tmp_path / "grades"))
    assert grade.status == "graded", grade.message
    assert grade.submission.notebook == f"Copy of {week}.ipynb"
    lost = [(c.id, c.points, c.message) for c in grade.checks if c.points < c.max_points]
    # the solution scores full marks (tests/test_weeks.py); the Colab copy of it must too
    assert grade.score == grade.max_score > 0, lost
    assert grade.execution.failures == []
