"""Every report format from real gradings through the CLI, as the PR workflow runs it."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET

import pytest
from click.testing import CliRunner
from conftest import ROOT

from grader.cli import main
from grader.report.github import MARKER

pytestmark = pytest.mark.slow
STUB = ROOT / "assignments" / "week1" / "week1.ipynb"
COLAB = ROOT / "fixtures" / "submissions" / "colab" / "week1"


def _github_env(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(tmp_path / "repo"))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))


@pytest.mark.skipif(not STUB.is_file(), reason="week1 does not exist yet")
def test_stub_in_a_pull_request_gets_annotations_on_its_cells(tmp_path, monkeypatch):
    """A first attempt that leaves the exercises unfinished: the failing cells are annotated."""
    repo = tmp_path / "repo" / "assignments" / "week1"
    repo.mkdir(parents=True)
    nb = json.loads(STUB.read_text())  # the stub with one cell of the student's own: not the untouched stub
    nb["cells"].append({"cell_type": "code", "execution_count": None, "id": "mine", "metadata": {}, "outputs": [],
                        "source": ["print('my first try')"]})
    (repo / "week1.ipynb").write_text(json.dumps(nb, indent=1) + "\n")
    _github_env(tmp_path, monkeypatch)
    result = CliRunner().invoke(main, ["grade", "week1", str(repo / "week1.ipynb"), "--out", str(tmp_path / "out"),
                                       "--profile", "cpu", "--format", "github", "--format", "junit",
                                       "--format", "json"])
    assert result.exit_code == 1, result.output  # points lost, reports written
    errors = [line for line in result.output.splitlines() if line.startswith("::error")]
    assert 0 < len(errors) <= 10
    lines = (repo / "week1.ipynb").read_text().splitlines()
    pointed = [int(m[1]) for m in (re.search(r"file=assignments/week1/week1\.ipynb,line=(\d+)", e) for e in errors) if m]
    assert pointed, errors
    # each points at the line of the failing cell that raised (the call into the unfinished code)
    excerpts = "\n".join(f["source_excerpt"] for f in
                         json.loads((tmp_path / "out" / "local-week1.json").read_text())["execution"]["failures"])
    for n in pointed:
        code = json.loads(lines[n - 1].strip().rstrip(","))
        assert code.strip() and code.strip() in excerpts, (n, code)
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## week1: 0 /")
    comment = (tmp_path / "out" / "local-week1.comment.md").read_text()
    assert comment.startswith(MARKER)
    junit = ET.parse(tmp_path / "out" / "local-week1.junit.xml").getroot()
    assert int(junit.find("testsuite").get("failures")) + int(junit.find("testsuite").get("errors")) > 0


@pytest.mark.skipif(not COLAB.is_dir(), reason="no Colab fixture yet")
def test_full_marks_reports_in_every_format(tmp_path):
    result = CliRunner().invoke(main, ["grade", "week1", str(COLAB), "--student", "ada", "--out", str(tmp_path),
                                       "--profile", "cpu", "--format", "html", "--format", "gradescope",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    grade = json.loads((tmp_path / "ada-week1.json").read_text())
    gradescope = json.loads((tmp_path / "ada-week1.gradescope.json").read_text())
    assert gradescope["score"] == grade["score"] == grade["max_score"]
    assert len(gradescope["tests"]) == len(grade["checks"])
    page = (tmp_path / "ada-week1.html").read_text()
    assert f"{grade['score']:g} / {grade['max_score']:g}" in page
    curves = [n for n in grade["artifacts"] if n.endswith(".json")]
    assert page.count("data:image/png;base64,") >= len(curves)
    assert "cannot read artifact" not in page and "not a loss curve" not in page


@pytest.mark.skipif(not (ROOT / "assignments" / "week1" / "public" / "week.toml").is_file() or not COLAB.is_dir(),
                    reason="week1 has no public suite yet")
def test_grader_check_prints_verdict_first_and_next_step(tmp_path):
    result = CliRunner().invoke(main, ["check", "week1", str(COLAB / "Copy of week1.ipynb"), "--out", str(tmp_path),
                                       "--profile", "cpu", "--format", "md", "--format", "html"])
    assert result.exit_code == 0, result.output
    report = result.output[result.output.index("## week1"):]
    assert report.startswith("## week1: ") and "(100%)" in report.splitlines()[0]
    assert result.output.rstrip().endswith("your mentor grades with further hidden checks.")
    assert (tmp_path / "week1-copy-of-week1.html").is_file()  # named after the notebook: nothing overwritten
