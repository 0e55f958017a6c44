"""`grader release`: the student template holds what students need and nothing mentor-only."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner
from conftest import ROOT

from grader.cli import main
from grader.staff.release import NOT_SECRET, ReleaseError, scan_release, solution_blocks, write_release

SOLUTIONS = ROOT / "solutions"
# Everything in solutions/ but NOT_SECRET (prose) is mentor-only: shared suite code lives once, in
# the public suites, and the hidden suites import it.

HIDDEN = sorted(p for p in SOLUTIONS.rglob("*") if p.is_file() and p.name not in NOT_SECRET
                and "__pycache__" not in p.parts)
BLOCK = "total = sum(x * w for x, w in zip(inputs, weights)) + self.bias_term_for_the_neuron"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "template"
    # all weeks at once: later stubs may hand out earlier weeks' code, as at the end of a course
    result = CliRunner().invoke(main, ["release", str(out), "--allow-handouts"])
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
    assert not (template / "tests").exists() and not (template / "fixtures" / "submissions").exists()
    hidden = {p.read_bytes() for p in HIDDEN}
    for path in files:
        raw = path.read_bytes()
        assert raw not in hidden, f"{path} is a copy of a hidden file"
        if path.name not in ("assign.py", "release.py"):
            assert b"### BEGIN SOLUTION" not in raw, path
    assert scan_release(template, SOLUTIONS, allow_handouts=True) == []
    # the judge's held-out evaluation data stays home (fixtures/data/heldout)
    assert (ROOT / "fixtures" / "data" / "heldout" / "names.txt").is_file()
    assert not (template / "fixtures" / "data" / "heldout").exists()


def test_each_week_released_alone_is_clean(tmp_path):
    """Opening week N (earlier weeks closed): no solution of week N or of a later week anywhere."""
    for week in sorted(p.name for p in (ROOT / "assignments").glob("week*") if p.is_dir()):
        write_release(tmp_path / week, weeks=[week], allow_handouts=True)
        assert (tmp_path / week / "assignments" / week).is_dir()


def _fake_course(tmp_path):
    """solutions/week1 with one solution block; a template whose week2 stub hands it out."""
    nb = {"cells": [{"cell_type": "code", "source": f"def f():\n    ### BEGIN SOLUTION\n    {BLOCK}\n"
                                                      "    ### END SOLUTION\n"}]}
    (tmp_path / "solutions" / "week1").mkdir(parents=True)
    (tmp_path / "solutions" / "week1" / "week1.ipynb").write_text(json.dumps(nb))
    (tmp_path / "solutions" / "week1" / "test_week1.py").write_text("def test_x():\n    assert 1\n")
    tree = tmp_path / "t"
    (tree / "assignments" / "week2").mkdir(parents=True)
    (tree / "assignments" / "week2" / "given.py").write_text(f"# provided\n{BLOCK}\n")
    return tmp_path / "solutions", tree


def test_scan_finds_every_kind_of_leak(tmp_path):
    solutions, tree = _fake_course(tmp_path)
    assert solution_blocks(solutions) == {"week1": [BLOCK]}
    (tree / "assignments" / "week1").mkdir()
    (tree / "assignments" / "week1" / "notes.py").write_text("x = 1\n### BEGIN SOLUTION\n")
    (tree / "assignments" / "week1" / "pasted.py").write_text("    " + BLOCK.replace(" + ", "  +\n    ") + "\n")
    shutil.copyfile(solutions / "week1" / "test_week1.py", tree / "assignments" / "week1" / "innocent.txt")
    (tree / "solutions").mkdir()
    (tree / "solutions" / "x.md").write_text("hello")
    (solutions / "week1" / "probes.py").write_text("def hidden_probe(ns, seed):\n    return ns['f'](seed)\n")
    (tree / "assignments" / "week1" / "public").mkdir()  # a hidden suite's own probes are mentor-only too
    shutil.copyfile(solutions / "week1" / "probes.py", tree / "assignments" / "week1" / "public" / "probes.py")
    leaks = "\n".join(scan_release(tree, solutions, allow_handouts=True))
    assert "notes.py: contains '### BEGIN SOLUTION'" in leaks
    assert "pasted.py: contains week1's solution" in leaks  # re-wrapped whitespace does not hide it
    assert "innocent.txt: identical to solutions/week1/test_week1.py" in leaks
    assert "solutions/x.md: a solutions/ path" in leaks
    assert "public/probes.py: identical to solutions/week1/probes.py" in leaks


def test_scan_refuses_heldout_data(tmp_path):
    solutions, tree = _fake_course(tmp_path)
    heldout = tmp_path / "fixtures" / "data" / "heldout"
    heldout.mkdir(parents=True)
    (heldout / "names.txt").write_text("zelda\nquorra\n")
    (tree / "fixtures" / "data" / "heldout").mkdir(parents=True)
    (tree / "fixtures" / "data" / "heldout" / "x.txt").write_text("anything")
    shutil.copyfile(heldout / "names.txt", tree / "fixtures" / "data" / "more_names.txt")
    leaks = "\n".join(scan_release(tree, solutions, allow_handouts=True, heldout=heldout))
    assert "fixtures/data/heldout/x.txt: held-out evaluation data" in leaks
    assert "fixtures/data/more_names.txt: identical to fixtures/data/heldout/names.txt" in leaks


def test_a_later_week_handing_out_an_earlier_solution_needs_permission(tmp_path):
    solutions, tree = _fake_course(tmp_path)
    assert scan_release(tree, solutions) == [f"assignments/week2/given.py: contains week1's solution ({BLOCK[:40]}...)"]
    assert scan_release(tree, solutions, allow_handouts=True) == []


def test_release_refuses_to_overwrite_and_refuses_leaks(tmp_path, monkeypatch):
    out = tmp_path / "t"
    out.mkdir()
    with pytest.raises(ReleaseError, match="exists"):
        write_release(out)
    with pytest.raises(ReleaseError, match="no assignments for week9"):
        write_release(out, force=True, weeks=["week9"])
    monkeypatch.setattr("grader.staff.release.FILES", [("solutions/README.md", "assignments/solutions/README.md")])
    with pytest.raises(ReleaseError, match="leak"):
        write_release(out, force=True, allow_handouts=True)
    assert not out.exists(), "a leaking template is removed, not left half-written"


def test_releasing_every_week_at_once_says_which_option_to_add(tmp_path):
    result = CliRunner().invoke(main, ["release", str(tmp_path / "t")])
    assert result.exit_code == 4
    assert "--week week1" in result.stderr and "--allow-handouts" in result.stderr
    assert not (tmp_path / "t").exists()


def test_course_repo_fills_the_colab_data_url(tmp_path):
    stub = ROOT / "assignments" / "week2" / "week2.ipynb"
    assert "COURSE_ORG/COURSE_REPO" in stub.read_text()
    result = CliRunner().invoke(main, ["release", str(tmp_path / "t"), "--week", "week2", "--course-repo",
                                       "my-school/llm-course"])
    assert result.exit_code == 0, result.output
    released = (tmp_path / "t" / "assignments" / "week2" / "week2.ipynb").read_text()
    assert "COURSE_ORG" not in released and "raw.githubusercontent.com/my-school/llm-course/main" in released
    from grader.fetch.notebook import code_cells

    assert code_cells(released.encode()) == code_cells(stub.read_bytes())  # still the untouched stub
    plain = CliRunner().invoke(main, ["release", str(tmp_path / "p"), "--week", "week2"])
    assert plain.exit_code == 0 and "pass --course-repo ORG/NAME" in plain.stderr


def test_the_student_environment_installs_without_the_dev_extra():
    install = (ROOT / "ci" / "install.sh").read_text()
    assert "'.[dev]'" not in install and '-e ".${EXTRAS:+[$EXTRAS]}"' in install
    assert 'EXTRAS="${GRADER_EXTRAS:-}"' in install  # nothing extra unless asked
    assert "GRADER_EXTRAS=dev bash ci/install.sh" in (ROOT / "ci" / "test.sh").read_text()
    assert 'if [ "$EXTRAS" = dev ] && ! command -v chromium' in install
