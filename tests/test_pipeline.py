"""grader/pipeline.py without a kernel: what of a submission enters the sandbox, and the refusal below
bubblewrap. (Whole grades are in test_weeks.py, test_hostile.py and the week tests.)"""

from __future__ import annotations

import pytest

from grader import pipeline
from grader.config import Settings
from grader.run.sandbox import Isolation, IsolationError


def test_only_the_notebook_and_the_declared_files_are_copied(tmp_path):
    """A classmate's notebook beside the graded one, the fork's other files, a link: none of them enter
    the sandbox; the week's declared files beside the notebook do."""
    src, dst = tmp_path / "fork", tmp_path / "scratch"
    (src / "week6" / "notes").mkdir(parents=True)
    (src / "week6" / "week6.ipynb").write_text("{}")
    (src / "week6" / "classmate.ipynb").write_text("{}")
    (src / "week6" / "my_corpus.txt").write_text("to be or not to be")
    (src / "week6" / "notes" / "deep.txt").write_text("not beside the notebook")
    (src / "week6" / "linked.txt").symlink_to("/etc/passwd")
    (src / "solution_dump.py").write_text("print('answers')")
    skipped = pipeline._copy_submission(src, "week6/week6.ipynb", dst, ["*.txt"])
    copied = sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file())
    assert copied == ["week6/my_corpus.txt", "week6/week6.ipynb"]
    assert skipped == ["week6/linked.txt (symbolic link)"]
    assert pipeline._copy_submission(src, "week6/week6.ipynb", tmp_path / "none", []) == []
    assert [p.name for p in (tmp_path / "none" / "week6").iterdir()] == ["week6.ipynb"]


def test_grading_refuses_below_bubblewrap_unless_allowed(monkeypatch):
    def check_level(level, *, allow_weak, required=False):
        if not allow_weak:
            raise IsolationError("refused")

    monkeypatch.setattr(pipeline, "machine_isolation", lambda: Isolation.unshare)
    monkeypatch.setattr(pipeline, "check_level", check_level)
    with pytest.raises(IsolationError):
        pipeline.check_isolation(Settings(allow_weak_isolation=False))
    assert pipeline.check_isolation(Settings(allow_weak_isolation=True)) is Isolation.unshare
    assert pipeline.check_isolation(Settings(allow_weak_isolation=False, public=True)) is Isolation.unshare  # check


def test_the_grade_records_what_the_sandbox_enforced(monkeypatch):
    from grader.config import SOLUTIONS, load_week

    week = load_week(SOLUTIONS / "week1")
    full = pipeline.enforcement(Isolation.bwrap, week, "fixed")
    assert not full.weak and full.network_cut and full.private_mounts and full.deterministic_heap
    assert full.forbidden_blocked and "torch" in full.forbidden
    weak = pipeline.enforcement(Isolation.process, week, "not fixed: missing")
    assert weak.weak and not weak.network_cut and not weak.forbidden_blocked and not weak.deterministic_heap
