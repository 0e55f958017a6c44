"""Post or update ONE grader comment on a pull request, and record a check run.

Runs with a write token on files that a grading run uploaded: in a student's fork, the
`workflow_run` job after the unprivileged `pull_request` run (pr-comment.yml), whose files are
untrusted (the pull request may have changed the workflow that wrote them); in the course
repository, grade-pr.yml's own comment job. So: the PR number must be an integer and the PR's
head must be the graded commit (HEAD_SHA comes from the event, not from the files); the check
run's conclusion and the comment's headline are computed here from the grade JSON, validated
field by field (schema version, statuses, points that add up, the graded commit), never from
the Markdown, which is only the body below them (capped, our marker once); nothing from the
files reaches a shell. Standard library only.

    python ci/post_comment.py ARTIFACT_DIR   (env: GITHUB_TOKEN, GITHUB_REPOSITORY, HEAD_SHA)
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = "<!-- grader:pr-comment -->"
MAX_BODY = 60000
SCHEMA_VERSION = 1  # grader/records.py
STATUSES = {"graded", "failed_to_run", "invalid_submission", "harness_error", "not_submitted", "fetch_failed",
            "kernel_killed", "resource_limit"}
MACHINE_FAILURES = {"fetch_failed", "harness_error", "kernel_killed"}
MAX_GRADES = 6
Request = Callable[[str, str, Any], Any]  # (method, path, json body or None) -> decoded JSON


def github_request(token: str, api: str = "https://api.github.com") -> Request:
    def request(method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(api + path, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    return request


def read_artifact(folder: Path) -> tuple[int, str]:
    """The PR number and the comment body from the uploaded folder (validated)."""
    meta = json.loads((folder / "pr.json").read_text())
    number = meta.get("number") if isinstance(meta, dict) else None
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        raise ValueError(f"pr.json holds no valid pull request number: {str(number)[:40]!r}")
    parts = [p.read_text(encoding="utf-8", errors="replace") for p in sorted(folder.glob("*.comment.md"))]
    text = "\n\n---\n\n".join(p.replace(MARKER, "").strip() for p in parts) or "The grader wrote no report."
    return number, MARKER + "\n" + text[:MAX_BODY]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} is not a number")
    return float(value)


def validate_grade(data: Any, head_sha: str) -> dict:
    """A grade JSON as the grader writes it, for this commit: else ValueError naming what is wrong."""
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        raise ValueError("not a grade (schema_version)")
    week, status = data.get("week"), data.get("status")
    if not isinstance(week, str) or not re.fullmatch(r"week[1-6]", week):
        raise ValueError("week is not week1..week6")
    if status not in STATUSES:
        raise ValueError(f"unknown status {str(status)[:40]!r}")
    score, top, raw = (_number(data.get(k), k) for k in ("score", "max_score", "raw_score"))
    checks = data.get("checks")
    if not isinstance(checks, list):
        raise ValueError("checks is not a list")  # noqa: TRY004 - one error type for a refused file
    got = total = 0.0
    for check in checks:
        if not isinstance(check, dict):
            raise ValueError("a check is not an object")  # noqa: TRY004
        points, most = _number(check.get("points"), "points"), _number(check.get("max_points"), "max_points")
        if not 0 <= points <= most:
            raise ValueError("a check's points are outside 0..max_points")
        got, total = got + points, total + most
    if abs(got - raw) > 1e-3 or abs(total - top) > 1e-3 or not 0 <= score <= raw + 1e-9:
        raise ValueError("the points do not add up")
    commits = {(data.get("submission") or {}).get("commit"), (data.get("provenance") or {}).get("commit")}
    if commits != {head_sha}:
        raise ValueError(f"it grades another commit than the pull request's head {head_sha[:12]}")
    return data


def read_grades(folder: Path, head_sha: str) -> list[dict]:
    """Every grade JSON in the folder, validated (a file that is not one is refused, not skipped)."""
    grades = []
    for path in sorted(folder.glob("*.json")):
        if path.name == "pr.json" or path.name.endswith(".gradescope.json"):
            continue
        try:
            grades.append(validate_grade(json.loads(path.read_text(encoding="utf-8")), head_sha))
        except (ValueError, OSError) as exc:
            raise ValueError(f"{path.name}: {exc}; not posting") from None
    if len(grades) > MAX_GRADES:
        raise ValueError(f"{len(grades)} grades for one pull request; not posting")
    return grades


def conclusion(grades: list[dict]) -> str:
    """success when every week graded has full marks; neutral when the machine failed or nothing was graded."""
    if not grades or any(g["status"] in MACHINE_FAILURES for g in grades):
        return "neutral"
    if all(g["status"] == "graded" and g["score"] >= g["max_score"] > 0 for g in grades):
        return "success"
    return "failure"


def headline(grades: list[dict], head_sha: str) -> str:
    """The verified verdict line, from the grade JSON (the Markdown below it is the grader's report)."""
    if not grades:
        return f"**grader:** nothing graded at {head_sha[:12]}."
    parts = []
    for g in grades:
        if g["status"] in MACHINE_FAILURES:
            parts.append(f"{g['week']} not graded ({g['status'].replace('_', ' ')})")
        else:
            parts.append(f"{g['week']} {g['score']:g} / {g['max_score']:g}"
                         + ("" if g["status"] == "graded" else f" ({g['status'].replace('_', ' ')})"))
    return f"**grader:** {'; '.join(parts)} at commit {head_sha[:12]}."


def upsert_comment(request: Request, repo: str, number: int, body: str) -> str:
    """Update the comment carrying our marker, or create it; returns 'updated' or 'created'."""
    for page in range(1, 11):
        comments = request("GET", f"/repos/{repo}/issues/{number}/comments?per_page=100&page={page}", None)
        for comment in comments:
            if MARKER in (comment.get("body") or "") and (comment.get("user") or {}).get("type") == "Bot":
                request("PATCH", f"/repos/{repo}/issues/comments/{comment['id']}", {"body": body})
                return "updated"
        if len(comments) < 100:
            break
    request("POST", f"/repos/{repo}/issues/{number}/comments", {"body": body})
    return "created"


def post(folder: Path, request: Request, repo: str, head_sha: str) -> str:
    number, body = read_artifact(folder)
    grades = read_grades(folder, head_sha)
    pull = request("GET", f"/repos/{repo}/pulls/{number}", None)
    if pull.get("head", {}).get("sha") != head_sha:
        raise ValueError(f"PR #{number}'s head is not the graded commit {head_sha[:12]}; not posting")
    verdict = conclusion(grades)
    title = headline(grades, head_sha)
    body = body.replace(MARKER + "\n", f"{MARKER}\n{title}\n\n", 1)
    action = upsert_comment(request, repo, number, body)
    request("POST", f"/repos/{repo}/check-runs", {
        "name": "grader", "head_sha": head_sha, "status": "completed", "conclusion": verdict,
        "output": {"title": f"grader: {verdict}", "summary": (title + "\n\n" + body)[:60000]}})
    return f"{action} the comment on #{number}; check run: {verdict}"


def main(argv: list[str]) -> int:
    repo, head_sha = os.environ["GITHUB_REPOSITORY"], os.environ["HEAD_SHA"]
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo) or not re.fullmatch(r"[0-9a-f]{40}", head_sha):
        print("error: bad GITHUB_REPOSITORY or HEAD_SHA", file=sys.stderr)
        return 4
    request = github_request(os.environ["GITHUB_TOKEN"], os.environ.get("GITHUB_API_URL", "https://api.github.com"))
    try:
        print(post(Path(argv[1]), request, repo, head_sha))
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
