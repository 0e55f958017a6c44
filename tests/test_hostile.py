"""Every hostile submission in fixtures/hostile ends with the outcome expected.toml gives it:
no forged point, a clear message, the grader's memory bounded, nothing of it alive afterwards,
and honest submissions graded beside hostile ones keep their marks.

Graded through the real pipeline against the private suite fixtures/hostile/suite (short budgets).
"""

from __future__ import annotations

import importlib.util
import secrets
import shutil
import socket
import tempfile
import threading
import time
import tomllib
from pathlib import Path

import pytest

from grader import pipeline
from grader.config import Settings
from grader.records import Grade, Submission
from grader.run.sandbox import Isolation, detect_isolation

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = ROOT / "fixtures" / "hostile"
SUITE = HOSTILE / "suite"
SECRET = "tok-" + secrets.token_hex(8)
MAX_GRADER_GROWTH = 150 * 2**20  # RSS the grader may add while grading one submission
RUN_TAG = "hx" + secrets.token_hex(4)  # in every student name: finds this module's sandboxes in /proc

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]


def _maker():
    spec = importlib.util.spec_from_file_location("make_hostile", HOSTILE / "make_hostile.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


MAKER = _maker()
EXPECTED = tomllib.loads((HOSTILE / "expected.toml").read_text())


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The corpus regenerated (with the 21 MiB notebook), the private suite, a planted decoy of
    another student, a listener on the host's loopback, and a grader secret in our environment."""
    out = tmp_path_factory.mktemp("hostile")
    MAKER.generate(out, with_large=True)
    decoy = Path(tempfile.mkdtemp(prefix="grader-other-week1-"))
    (decoy / "work").mkdir()
    (decoy / "work" / MAKER.DECOY).write_text("another student's work\n")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", MAKER.HOST_PORT))
        listener.listen()
    except OSError:
        listener.close()
        listener = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "week_suite", lambda week, public=False: SUITE)
        mp.setenv("GRADER_SECRET_TOKEN", SECRET)
        yield out
    if listener:
        listener.close()
    shutil.rmtree(decoy, ignore_errors=True)


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def sandbox_survivors(student: str) -> list[int]:
    """Live processes whose environment names this student's run folder."""
    marker = f"grader-{student}-".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def grade_case(folder: Path, name: str, tmp_path: Path) -> tuple[Grade, int]:
    """Grade one corpus folder; return the Grade and the grader's peak RSS growth meanwhile."""
    student = f"{RUN_TAG}-{name}"
    submission = Submission(student=student, week="week1", source=str(folder / name),
                            workdir=str(folder / name), notebook="week1.ipynb")
    base, peak, done = _rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        grade = pipeline.grade_submission(submission, Settings(profile="cpu", out_dir=tmp_path / "grades"))
    finally:
        done.set()
        sampler.join()
    return grade, max(0, peak[0] - base)


def report_text(grade: Grade) -> str:
    return " ".join([grade.message, grade.execution.message, *grade.submission.problems,
                     *(f"{f.ename} {f.evalue}" for f in grade.execution.failures),
                     *(c.message for c in grade.checks)])


def check_expected(grade: Grade, spec: dict, name: str) -> None:
    assert grade.status != "harness_error", grade.message
    if spec.get("full"):
        assert grade.score == grade.max_score > 0, f"{name}: {[(c.id, c.message) for c in grade.checks]}"
    if "max_score" in spec:
        assert grade.score <= spec["max_score"], f"{name}: forged points {grade.score}: " \
            + str([(c.id, c.points, c.message) for c in grade.checks])
    if "status" in spec:
        assert grade.status == spec["status"], f"{name}: {grade.status} {grade.message}"
    if "execution" in spec:
        assert grade.execution.status == spec["execution"], f"{name}: {grade.execution}"
    if "message_contains" in spec:
        assert spec["message_contains"].lower() in report_text(grade).lower(), report_text(grade)[:2000]
    # a clear message: anything short of full marks says why
    if grade.score < grade.max_score:
        assert report_text(grade).strip(), f"{name}: lost points without a message"


def _needs(spec: dict) -> None:
    needed = Isolation(spec.get("needs", "process"))
    level = detect_isolation()
    if level.rank < needed.rank:
        pytest.skip(f"needs '{needed.value}' isolation to run safely; this machine gives '{level.value}'")


PRIVATE = sorted(n for n in EXPECTED if not EXPECTED[n].get("suite"))
REAL_WEEK1 = [n for n in EXPECTED if EXPECTED[n].get("suite") == "week1"]


@pytest.mark.parametrize("name", PRIVATE)
def test_hostile_submission(name, corpus, tmp_path):
    spec = EXPECTED[name]
    _needs(spec)
    if not (corpus / name).exists():
        pytest.skip(f"{name} was not generated")
    grade, growth = grade_case(corpus, name, tmp_path)
    check_expected(grade, spec, name)
    assert grade.execution.isolation == detect_isolation().value
    assert growth < MAX_GRADER_GROWTH, f"{name}: the grader grew by {growth / 2**20:.0f} MiB"
    assert sandbox_survivors(f"{RUN_TAG}-{name}") == [], f"{name}: a process outlived its grade"
    assert not Path("/root/pwned").exists() and not Path("/usr/pwned").exists()


def test_batch_with_hostile_neighbours(corpus, tmp_path):
    """Honest submissions graded between hostile ones keep full marks; hostile ones get theirs."""
    if detect_isolation() is not Isolation.bwrap:
        pytest.skip("the daemon and fork cases need bubblewrap to run safely")
    order = ["honest", "daemon", "os_exit", "honest"]
    for index, name in enumerate(order):
        grade, _ = grade_case(corpus, name, tmp_path / str(index))
        check_expected(grade, EXPECTED[name], name)
        if name == "honest":
            assert grade.score == grade.max_score == 10
        assert sandbox_survivors(f"{RUN_TAG}-{name}") == []


# ==== issue 16: against the real week-1 suite -------------------------------------------------------------

@pytest.fixture(scope="module")
def real_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile-week1")
    MAKER.generate(out)
    return out


@pytest.mark.parametrize("name", REAL_WEEK1)
def test_real_week1_case(name, real_corpus, tmp_path, monkeypatch):
    """Torch reached another way, sympy's calculus, an answer channel patched in the kernel, a classmate's
    notebook beside the graded one: each scores at most a quarter, and the report says why."""
    from grader.config import week_suite

    monkeypatch.setattr(pipeline, "week_suite", week_suite)  # the real suite, even beside `corpus`
    spec = EXPECTED[name]
    folder = real_corpus / name
    notebook = spec.get("notebook", "week1.ipynb")
    submission = Submission(student=f"{RUN_TAG}-{name}", week="week1", source=str(folder), workdir=str(folder),
                            notebook=notebook)
    grade = pipeline.grade_submission(submission, Settings(profile="cpu", out_dir=tmp_path))
    assert grade.max_score == 46
    check_expected(grade, spec, name)
    assert grade.score <= grade.max_score / 4, [(c.id, c.points) for c in grade.checks if c.points]
    assert sandbox_survivors(f"{RUN_TAG}-{name}") == []
    sandbox = grade.provenance.sandbox
    if grade.execution.isolation in ("bwrap", "unshare") and sandbox.uid == "own":
        assert sandbox.forbidden_blocked and "torch" in sandbox.forbidden


def test_weak_level_refused_without_the_flag(tmp_path, monkeypatch):
    """Below bubblewrap `grade` and `batch` refuse (exit 4, one line naming the flag, no report); with
    --allow-weak-isolation it grades, and every report says so first. `check` grades with a warning."""
    from click.testing import CliRunner

    from grader.cli import main
    from grader.run.sandbox import level_works

    if not level_works(Isolation.unshare)[0]:
        pytest.skip(f"the unshare level is unusable here: {level_works(Isolation.unshare)[1]}")
    monkeypatch.setattr(pipeline, "machine_isolation", lambda: Isolation.unshare)
    monkeypatch.delenv("GRADER_ALLOW_WEAK_ISOLATION", raising=False)
    monkeypatch.setattr(pipeline, "week_suite", lambda week, public=False: SUITE)
    notebook = tmp_path / "src" / "week1.ipynb"
    notebook.parent.mkdir()
    notebook.write_bytes(MAKER.nb(MAKER.HONEST))
    out = tmp_path / "out"
    refused = CliRunner().invoke(main, ["grade", "week1", str(notebook), "--out", str(out)])
    assert refused.exit_code == 4, refused.output
    assert refused.output.count("\n") == 1 and "--allow-weak-isolation" in refused.output
    assert not out.exists()
    graded = CliRunner().invoke(main, ["grade", "week1", str(notebook), "--out", str(out), "--allow-weak-isolation",
                                       "--format", "json", "--format", "md", "--format", "html"])
    assert graded.exit_code == 0, graded.output
    grade = Grade.model_validate_json((out / "local-week1.json").read_text())
    assert grade.score == grade.max_score == 10
    assert grade.provenance.sandbox.weak and grade.provenance.sandbox.level == "unshare"
    first_line = (out / "local-week1.md").read_text().splitlines()[0]
    assert "Weak isolation" in first_line and "'unshare'" in first_line
    html = (out / "local-week1.html").read_text()
    assert html.index('id="weak-isolation"') < html.index("<h1>")
    batch = CliRunner().invoke(main, ["batch", "week1", "--roster", str(notebook), "--out", str(tmp_path / "b")])
    assert batch.exit_code == 4 and "--allow-weak-isolation" in batch.output, batch.output
    checked = CliRunner().invoke(main, ["check", "week1", str(notebook), "--out", str(tmp_path / "c")])
    assert checked.exit_code == 0, checked.output  # a student's own machine: graded, with a warning
    assert checked.output.startswith("warning: without bubblewrap") and "'unshare'" in checked.output.splitlines()[0]
