"""Post or update ONE grader comment on a pull request, and record a check run.

Runs in the `workflow_run` workflow, which holds a write token, on files that the
unprivileged `pull_request` run uploaded. Those files are untrusted (a fork may have
changed the workflow that wrote them), so: the PR number must be an integer, the PR's head
must be the commit that run graded, the body is capped and carries our marker only once,
and nothing from them reaches a shell. Standard library only.

    python ci/post_comment.py ARTIFACT_DIR   (env: GITHUB_TOKEN, GITHUB_REPOSITORY, HEAD_SHA)
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = "<!-- grader:pr-comment -->"
MAX_BODY = 60000
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


def verdict(body: str) -> str:
    """success when every graded week has full marks, judged from the report headlines."""
    scores = re.findall(r"^[^\n]*## week\d: ([\d.]+) / ([\d.]+)", body, re.MULTILINE)
    if scores and all(float(a) >= float(b) > 0 for a, b in scores):
        return "success"
    return "failure" if scores else "neutral"


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
    pull = request("GET", f"/repos/{repo}/pulls/{number}", None)
    if pull.get("head", {}).get("sha") != head_sha:
        raise ValueError(f"PR #{number}'s head is not the graded commit {head_sha[:12]}; not posting")
    action = upsert_comment(request, repo, number, body)
    conclusion = verdict(body)
    request("POST", f"/repos/{repo}/check-runs", {
        "name": "grader", "head_sha": head_sha, "status": "completed", "conclusion": conclusion,
        "output": {"title": f"grader: {conclusion}", "summary": body[:60000]}})
    return f"{action} the comment on #{number}; check run: {conclusion}"


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
