"""Bring the heads recorded at a deadline into the batch's output folder, from the newest artifact
`grader-heads-<WEEK>` that a fetch-only run (mentor-batch.yml's `record` job) uploaded.

The record is heads.jsonl (which branches each fork had, and when the grader saw them) and forks.git
(the object store holding those commits, pinned). Merged, never replacing: the record's lines are added
to OUT/heads.jsonl where missing, and its pinned commits fetched into OUT/forks.git, so a runner that
kept its own copy loses nothing. The zip is checked before anything is written (names under
heads.jsonl and forks.git/ only, no links, a size cap). Standard library and git only.

    python ci/heads_artifact.py OUT   (env: GITHUB_TOKEN, GITHUB_REPOSITORY, WEEK)
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

MAX_BYTES = 2 * 2**30


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the zip's address is signed: fetch it without our token
        return None


def api(token: str, url: str) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"Authorization": f"Bearer {token}",
                                                "Accept": "application/vnd.github+json",
                                                "X-GitHub-Api-Version": "2022-11-28"})


def newest_artifact(token: str, repo: str, name: str, base: str) -> dict | None:
    with urllib.request.urlopen(api(token, f"{base}/repos/{repo}/actions/artifacts?name={name}&per_page=100"),
                                timeout=30) as resp:
        found = [a for a in json.loads(resp.read()).get("artifacts", []) if not a.get("expired")]
    return max(found, key=lambda a: a.get("created_at", "")) if found else None


def download(token: str, url: str) -> bytes:
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(api(token, url), timeout=60) as resp:
            return resp.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as exc:
        if exc.code not in (301, 302, 303, 307, 308) or not exc.headers.get("Location"):
            raise
        with urllib.request.urlopen(exc.headers["Location"], timeout=300) as resp:
            return resp.read(MAX_BYTES + 1)


def safe_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """The zip's members if all are plain files and folders under heads.jsonl or forks.git/; else ValueError."""
    total = 0
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if path.is_absolute() or ".." in path.parts or "\\" in info.filename:
            raise ValueError(f"unsafe name in the artifact: {info.filename!r}")
        if info.filename != "heads.jsonl" and path.parts[0] != "forks.git":
            raise ValueError(f"unexpected file in the artifact: {info.filename!r}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ValueError(f"a link in the artifact: {info.filename!r}")
        total += info.file_size
    if total > MAX_BYTES:
        raise ValueError("the artifact is too large")
    return archive.infolist()


def merge(raw: bytes, out: Path) -> str:
    """Merge a downloaded record (zip bytes) into `out`; returns what was done, in one line."""
    out.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(raw)) as archive, tempfile.TemporaryDirectory(dir=out) as tmp:
        archive.extractall(tmp, members=safe_members(archive))
        got = Path(tmp)
        added = 0
        if (got / "heads.jsonl").is_file():
            heads = out / "heads.jsonl"
            have = set(heads.read_text(encoding="utf-8").splitlines()) if heads.is_file() else set()
            new = [ln for ln in (got / "heads.jsonl").read_text(encoding="utf-8").splitlines() if ln and ln not in have]
            with open(heads, "a", encoding="utf-8") as fh:
                fh.writelines(ln + "\n" for ln in new)
            added = len(new)
        if (got / "forks.git" / "HEAD").is_file():
            store = out / "forks.git"
            if not (store / "HEAD").is_file():
                shutil.move(str(got / "forks.git"), str(store))
            else:
                subprocess.run(["git", "-C", str(store), "fetch", "--no-tags", "--quiet", str(got / "forks.git"),
                                "+refs/seen/*:refs/seen/*"], check=True, timeout=600)
    return f"added {added} line(s) to {out / 'heads.jsonl'} and the recorded commits to {out / 'forks.git'}"


def main(argv: list[str]) -> int:
    week, repo, token = os.environ.get("WEEK", ""), os.environ.get("GITHUB_REPOSITORY", ""), os.environ.get("GITHUB_TOKEN", "")
    if not re.fullmatch(r"week[1-6]", week) or not re.fullmatch(r"[\w.-]+/[\w.-]+", repo) or not token or len(argv) != 2:
        print("usage: WEEK=weekN GITHUB_REPOSITORY=o/r GITHUB_TOKEN=... python ci/heads_artifact.py OUT", file=sys.stderr)
        return 4
    base = os.environ.get("GITHUB_API_URL", "https://api.github.com")
    try:
        artifact = newest_artifact(token, repo, f"grader-heads-{week}", base)
        if artifact is None:
            print(f"no grader-heads-{week} artifact: the grader uses the record kept on this runner, if any")
            return 0
        print(merge(download(token, artifact["archive_download_url"]), Path(argv[1])))
    except (OSError, ValueError, zipfile.BadZipFile, subprocess.SubprocessError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
