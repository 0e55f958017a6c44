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
from grade_pool import GradePool, Request

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


WEEKS = sorted(p.name for p in (ROOT / "solutions").glob("week*") if (p / "week.toml").is_file())


def fixture_request(week: str, stem: str, spec: dict) -> Request:
    """A known fixture of fixtures/submissions/WEEK/expected.toml, graded with the checks it selects."""
    slow = stem.startswith(("hangs_", "timeout_"))  # they wait out a deadline: started first
    return Request(("fixture", week, stem), week, ROOT / "fixtures" / "submissions" / week / f"{stem}.ipynb", stem,
                   tuple(spec.get("select", ())), weight=3.0 if slow else 1.0)


def stub_request(week: str, pool: GradePool) -> Request:
    """The week's stub with a first cell of the student's own (first_attempt)."""
    stub = first_attempt(ROOT / "assignments" / week / f"{week}.ipynb", pool.out_dir / f"stub-{week}")
    return Request(("stub", week), week, stub, "stub")


def solution_request(week: str) -> Request:
    return Request(("solution", week), week, ROOT / "solutions" / week / f"{week}.ipynb", "solution", weight=4.0)


def marked_requests(marker) -> list[Request]:
    """@pytest.mark.pooled(week, path under the repository, select=(...), weight=1, copies=1): the grades
    the test reads through its `pooled_grade` fixture (a list when copies > 1: one commit graded again)."""
    week, path = marker.args
    select, weight = tuple(marker.kwargs.get("select", ())), marker.kwargs.get("weight", 1.0)
    return [Request(("marked", week, path, str(copy), *select), week, ROOT / path, Path(path).stem, select, weight)
            for copy in range(marker.kwargs.get("copies", 1))]


def _declare(pool: GradePool, items) -> None:
    """Declare every grade the session's selected tests will ask for: the first one asked for then
    grades them all together (tests/grade_pool.py)."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.originalname == "test_known_fixture":
            pool.declare(fixture_request(params["week"], params["stem"], params["spec"]))
        elif item.originalname == "test_stub_scores_zero":
            pool.declare(stub_request(params["week"], pool))
        if (marker := item.get_closest_marker("pooled")) is not None:
            for request in marked_requests(marker):
                pool.declare(request)
        if "solution_grade" in getattr(item, "fixturenames", ()):
            for week in [params["week"]] if "week" in params else WEEKS:
                pool.declare(solution_request(week))


@pytest.fixture(scope="session")
def grade_pool(request, tmp_path_factory) -> GradePool:
    pool = GradePool(tmp_path_factory.mktemp("pool"))
    _declare(pool, request.session.items)
    return pool


@pytest.fixture
def pooled_grade(request, grade_pool) -> Grade | list[Grade]:
    """The grade of the notebook or folder the test's `pooled` marker names (graded in the pool)."""
    marker = request.node.get_closest_marker("pooled")
    grades = [grade_pool.get(r) for r in marked_requests(marker)]
    return grades if marker.kwargs.get("copies", 1) > 1 else grades[0]


@pytest.fixture(scope="session")
def solution_grade(grade_pool):
    """Each week's reference solution graded once per test session (its reports reuse the grade)."""
    return lambda week: grade_pool.get(solution_request(week))
