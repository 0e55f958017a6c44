"""Shared helpers: grade a notebook through the real pipeline (sandboxed kernel + judge)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

# The harness's own tests grade below bubblewrap where the machine has none (a CI runner that is not
# root): those grades say so. The tests of the refusal itself unset this.
os.environ.setdefault("GRADER_ALLOW_WEAK_ISOLATION", "1")

import pytest

from grader.config import Settings
from grader.pipeline import grade_submission
from grader.records import Grade, Submission

ROOT = Path(__file__).resolve().parent.parent


def first_attempt(stub: Path, folder: Path) -> Path:
    """The stub with one cell of the student's own, its exercises still unfinished: graded like any work
    (the untouched stub is `not_submitted` and never runs), so the checks must give it zero themselves."""
    nb = json.loads(stub.read_text(encoding="utf-8"))
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "first-attempt", "metadata": {},
                        "outputs": [], "source": ["# a first attempt: the exercises are still to do"]})
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / stub.name
    path.write_text(json.dumps(nb, indent=1) + "\n", encoding="utf-8")
    return path


def grade_notebook(week: str, notebook: Path, out_dir: Path, *, select: tuple[str, ...] = (),
                   public: bool = False, student: str | None = None, profile: str = "cpu") -> Grade:
    """Copy the notebook alone into a fresh folder and grade it on the given profile."""
    work = out_dir / f"src-{notebook.stem}"
    work.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(notebook, work / notebook.name)
    submission = Submission(student=student or notebook.stem.replace(" ", "_"), week=week,
                            source=str(notebook), workdir=str(work), notebook=notebook.name)
    settings = Settings(profile=profile, out_dir=out_dir / "grades", select=select, public=public)
    return grade_submission(submission, settings)


@pytest.fixture
def grade(tmp_path):
    def run(week: str, notebook: Path, **kw) -> Grade:
        return grade_notebook(week, notebook, tmp_path, **kw)

    return run


@pytest.fixture(scope="session")
def solution_grade(tmp_path_factory):
    """Each week's reference solution graded once per test session (its reports reuse the grade)."""
    cache: dict[str, Grade] = {}

    def get(week: str) -> Grade:
        if week not in cache:
            out = tmp_path_factory.mktemp(f"solution-{week}")
            cache[week] = grade_notebook(week, ROOT / "solutions" / week / f"{week}.ipynb", out, student="solution")
        return cache[week]

    return get
