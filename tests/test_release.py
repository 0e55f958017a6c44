"""`grader release`: the student template holds what students need and nothing mentor-only."""

from __future__ import annotations

import shutil

import pytest
from click.testing import CliRunner

from conftest import ROOT
from grader.cli import main
from grader.release import ReleaseError, scan_release, solution_blocks, write_release

HIDDEN = sorted(p for p in (ROOT / "solutions").rglob("*") if p.is_file() and p.name != "README.md"
                and "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "template"
    result = CliRunner().invoke(main, ["release", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_template_has_what_students_need(template):
    for rel in ("README.md", "pyproject.toml", "ci/install.sh", "ci/check_pr.sh", "ci/post_comment.py",
                ".github/workflows/checks.yml", ".github/workflows/pr-comment.yml", "grader/cli.py",
                "grader/pipeline.py", "fixtures/data/PROVENANCE.json"):
        assert (template / rel).is_file(), rel
    for stub in ROOT.glob("assignments/week*/week*.ipynb"):
        assert (template / stub.relative_to(ROOT)).read_bytes() == stub.read_bytes()


def test_template_holds_nothing_mentor_only(template):
    files = [p for p in template.rglob("*") if p.is_file()]
    assert not any("solutions" in p.relative_to(template).parts for p in files)
    assert not any(p.name.startswith("test_") for p in files), "no checks of the project or of a week"
    assert not (template / "tests").exists() and not (template / "fixtures" / "submissions").exists()
    hidden = {p.read_bytes() for p in HIDDEN}
    for path in files:
        raw = path.read_bytes()
        assert raw not in hidden, f"{path} is a copy of a hidden file"
        if path.name not in ("assign.py", "release.py"):
            assert b"### BEGIN SOLUTION" not in raw, path
    assert scan_release(template) == []


def test_scan_finds_every_kind_of_leak(tmp_path):
    tree = tmp_path / "t"
    (tree / "assignments").mkdir(parents=True)
    (tree / "notes.py").write_text("x = 1\n### BEGIN SOLUTION\ny = 2\n")
    leaks = scan_release(tree)
    assert any("contains '### BEGIN SOLUTION'" in leak for leak in leaks)
    if not HIDDEN:
        pytest.skip("no week's hidden suite exists yet")
    shutil.copyfile(HIDDEN[0], tree / "assignments" / "innocent.txt")
    (tree / "solutions").mkdir()
    (tree / "solutions" / "x.md").write_text("hello")
    leaks = scan_release(tree)
    assert any("identical to solutions/" in leak for leak in leaks)
    assert any("a solutions/ path" in leak for leak in leaks)
    blocks = solution_blocks()
    if blocks:  # a reference solution block pasted, re-indented, into a released file
        (tree / "pasted.py").write_text("def f():\n    " + blocks[0].replace(" ", "  ") + "\n")
        (tree / "pasted2.py").write_text("# copied\n" + blocks[0] + "\n")
        assert any(leak.startswith("pasted2.py: contains a reference solution block") for leak in scan_release(tree))


def test_release_refuses_to_overwrite_and_refuses_leaks(tmp_path, monkeypatch):
    out = tmp_path / "t"
    out.mkdir()
    with pytest.raises(ReleaseError, match="exists"):
        write_release(out)
    monkeypatch.setattr("grader.release.FILES", [("solutions/README.md", "assignments/solutions/README.md")])
    with pytest.raises(ReleaseError, match="leak"):
        write_release(out, force=True)
    assert not out.exists(), "a leaking template is removed, not left half-written"
