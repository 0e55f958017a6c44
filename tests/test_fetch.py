"""Fetching forks into one shared bare store, safely; exporting a commit from git objects."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from cohort import git, make_fork

from grader.fetch import forks as fetch
from grader.fetch.forks import ForkStore, SourceError, check_source
from grader.fetch.graded import fetch_submission
from grader.fetch.heads import HeadsLog


@pytest.mark.parametrize("url", [
    "ext::sh -c touch% /tmp/pwned", "fd::17", "--upload-pack=touch /tmp/pwned", "-u", "http://example.com/r.git",
    "git://example.com/r.git", "ssh://-oProxyCommand=id/r", "https://", "https://ex ample.com/r", "a\nb",
    "ftp://example.com/r", "C:evil",
])
def test_refused_sources(url):
    with pytest.raises(SourceError):
        check_source(url)


@pytest.mark.parametrize("url", ["https://github.com/a/b.git", "ssh://git@github.com/a/b.git",
                                 "git@github.com:a/b.git", "file:///srv/forks/a"])
def test_allowed_sources(url):
    assert check_source(url) == url


def test_forks_share_one_object_store(tmp_path):
    a = make_fork(tmp_path / "a", [1, 2])
    b = make_fork(tmp_path / "b", [3])
    store = ForkStore(tmp_path / "store.git")
    fa, fb = store.fetch("alice", str(a)), store.fetch("bob", str(b))
    assert fa.error == fb.error == ""
    assert fa.head == git(a, "rev-parse", "HEAD") and fb.head == git(b, "rev-parse", "HEAD")
    assert set(store.refs("alice")) == {"HEAD", "heads/main"}
    assert not (tmp_path / "store.git" / "config").read_text().count("fetch =")  # refspecs never stored
    # Another fork's commit is in the store, but it is not alice's to hand in.
    with pytest.raises(SourceError, match="not on any branch of this fork"):
        store.resolve("alice", fb.head)
    first = git(a, "rev-list", "--max-parents=0", "HEAD")
    assert store.resolve("alice", first) == first
    with pytest.raises(SourceError, match="not found"):
        store.resolve("alice", "0" * 40)
    with pytest.raises(SourceError, match="hexadecimal"):
        store.resolve("alice", "--output=/tmp/x")


def test_pull_request_head(tmp_path):
    a = make_fork(tmp_path / "a", [1, 2])
    first = git(a, "rev-list", "--max-parents=0", "HEAD")
    git(a, "update-ref", "refs/pull/7/head", first)
    store = ForkStore(tmp_path / "store.git")
    store.fetch("alice", str(a))
    assert store.resolve("alice", pull=7) == first
    with pytest.raises(SourceError, match="#8"):
        store.resolve("alice", pull=8)


def test_export_skips_links_and_reads_notebook_from_git(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("mentor token")
    a = make_fork(tmp_path / "a", [42])
    os.symlink(secret, a / "notes.ipynb")
    (a / "sub").mkdir()
    (a / "sub" / "helper.py").write_text("X = 1\n")
    git(a, "add", "notes.ipynb", "sub/helper.py")
    git(a, "commit", "-q", "-m", "link")
    sub = fetch_submission(str(a), "week1", commit=None, student="alice", dest=tmp_path / "dest")
    work = tmp_path / "dest" / "work"
    assert sub.commit == git(a, "rev-parse", "HEAD") and sub.workdir == str(work)
    assert (work / "week1.ipynb").read_bytes() == (a / "week1.ipynb").read_bytes()
    assert (work / "sub" / "helper.py").read_text() == "X = 1\n"
    assert not (work / "notes.ipynb").exists() and not (work / "notes.ipynb").is_symlink()
    assert sub.problems == ["not exported: notes.ipynb (symbolic link)"]


def test_blob_size_cap_checked_before_reading(tmp_path, monkeypatch):
    a = make_fork(tmp_path / "a", [42])
    (a / "big.bin").write_bytes(b"x" * 5000)
    git(a, "add", "big.bin")
    git(a, "commit", "-q", "-m", "big")
    monkeypatch.setattr(fetch, "MAX_BLOB_BYTES", 1000)
    sub = fetch_submission(str(a), "week1", commit=None, student="alice", dest=tmp_path / "dest")
    assert not (tmp_path / "dest" / "work" / "big.bin").exists()
    assert any("big.bin (over" in p for p in sub.problems)


def test_unreachable_fork_and_unknown_commit_are_problems_not_errors(tmp_path):
    t0 = time.monotonic()
    sub = fetch_submission("https://127.0.0.1:9/nobody/week1.git", "week1", commit=None, student="nobody",
                           dest=tmp_path / "d1")
    assert time.monotonic() - t0 < 30  # no credential prompt, no hang
    assert sub.commit is None and sub.problems[0].startswith("could not fetch https://127.0.0.1:9/")
    a = make_fork(tmp_path / "a", [42])
    sub = fetch_submission(str(a), "week1", commit="deadbeef", student="alice", dest=tmp_path / "d2")
    assert sub.problems == ["commit deadbeef was not found in the fork"]
    sub = fetch_submission("ext::sh -c id", "week1", commit=None, student="eve", dest=tmp_path / "d3")
    assert "remote helper" in sub.problems[0] and not (tmp_path / "d3").exists()


def test_fetch_timeout_is_enforced_by_the_grader(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_SSH_COMMAND", "sleep 60; true")  # an ssh server that never answers
    store = ForkStore(tmp_path / "store.git")
    t0 = time.monotonic()
    fetched = store.fetch("slow", "ssh://git@example.invalid/slow.git", timeout=1.5)
    assert time.monotonic() - t0 < 10
    assert "timed out after 1.5 s" in fetched.error and fetched.head is None


def test_heads_log_decides_submission_time_not_commit_dates(tmp_path):
    log = HeadsLog(tmp_path / "heads.jsonl")
    deadline = datetime(2026, 3, 1, tzinfo=UTC)
    on_time = fetch.Fetched("alice", {"HEAD": "a" * 40})
    late = fetch.Fetched("alice", {"HEAD": "b" * 40})
    log.record(on_time, at=deadline - timedelta(hours=2))
    log.record(on_time, at=deadline + timedelta(hours=1))
    log.record(late, at=deadline + timedelta(days=1))
    with open(log.path, "a") as fh:
        fh.write('{"student": "alice", "sha": "cut')  # a line cut short by kill -9
    assert log.head_at("alice", deadline) == "a" * 40
    assert log.first_seen("alice", "a" * 40) == deadline - timedelta(hours=2)
    assert log.first_seen("alice", "b" * 40) == deadline + timedelta(days=1)
    assert log.first_seen("bob", "a" * 40) is None


def test_a_mistyped_fork_path_says_what_is_wrong(tmp_path):
    store = ForkStore(tmp_path / "store.git")
    missing = store.fetch("ann", str(tmp_path / "forks" / "ann-typo"))
    assert missing.error == f"could not fetch {tmp_path / 'forks' / 'ann-typo'}: no such folder"
    (tmp_path / "plain").mkdir()
    assert store.fetch("bo", str(tmp_path / "plain")).error.endswith("not a git repository (no .git in it)")
    refused = store.fetch("cy", "https://127.0.0.1:9/cy.git")
    assert not refused.error.endswith("exists.") and "127.0.0.1" in refused.error  # git's reason, not its last line


def test_heads_log_records_every_branch_and_the_deadline_run(tmp_path):
    a = make_fork(tmp_path / "a", [1, 2])
    store = ForkStore(tmp_path / "store.git")
    log = HeadsLog(tmp_path / "heads.jsonl")
    deadline = datetime(2026, 3, 1, tzinfo=UTC)
    assert log.deadline_run(deadline) is None
    run = log.start_run("fetch-only", deadline, at=deadline + timedelta(minutes=5))
    fetched = store.fetch("alice", str(a))
    log.record(fetched, run, at=deadline + timedelta(minutes=5))
    log.record(fetch.Fetched("bob", error="could not fetch x: gone"), run)
    assert log.deadline_run(deadline).id == run
    seen = log.at_deadline("alice", deadline)
    assert seen.refs == fetched.refs and seen.refs["heads/main"] == fetched.head
    assert log.at_deadline("bob", deadline).error == "could not fetch x: gone"
    assert log.at_deadline("carl", deadline) is None
    first = git(a, "rev-list", "--max-parents=0", "HEAD")
    # an older commit behind a recorded tip counts as seen then (the rule may grade one)
    assert log.first_seen("alice", first, store.contains) == deadline + timedelta(minutes=5)
    assert log.first_seen("alice", first) is None


def test_tree_bomb_is_refused_within_its_caps(tmp_path):
    """10^9 paths in a few KB of objects: GitPython's traverse grew ~28 MB/s on it until the batch was
    OOM-killed. The streamed listing stops at MAX_TREE_ENTRIES and nothing is left of the export."""
    import resource

    from cohort import make_tree_bomb

    bomb = make_tree_bomb(tmp_path / "bomb")
    assert sum(f.stat().st_size for f in (bomb / ".git" / "objects").rglob("*") if f.is_file()) < 20_000
    t0, rss0 = time.monotonic(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sub = fetch_submission(str(bomb), "week1", commit=None, student="eve", dest=tmp_path / "dest")
    assert time.monotonic() - t0 < 30
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0 < 100 * 1024  # KiB: under 100 MiB more
    reason = (f"the commit's tree lists more than {fetch.MAX_TREE_ENTRIES:,} paths (the limit); a week's "
              "submission holds a notebook and a few files")
    assert sub.problems == [reason]  # refused while choosing the notebook, before any export
    assert not (tmp_path / "dest" / "work").exists()


def test_export_is_streamed_and_byte_exact(tmp_path, monkeypatch):
    a = make_fork(tmp_path / "a", [42])
    payload = bytes(range(256)) * 5000 + b"\n\n"  # binary, newlines at the end: cat-file's framing holds
    (a / "data").mkdir()
    (a / "data" / "blob.bin").write_bytes(payload)
    (a / "über.txt").write_text("ü\n")
    git(a, "add", "-A")
    git(a, "commit", "-q", "-m", "data")
    store = ForkStore(tmp_path / "store.git")
    head = store.fetch("alice", str(a)).head
    assert store.export(head, tmp_path / "out") == []
    assert (tmp_path / "out" / "data" / "blob.bin").read_bytes() == payload
    assert (tmp_path / "out" / "über.txt").read_text() == "ü\n"
    monkeypatch.setattr(fetch, "MAX_EXPORT_FILES", 1)
    skipped = store.export(head, tmp_path / "out2")
    assert len(skipped) == 2 and all("files)" in s for s in skipped)


def test_git_over_its_cap_is_an_export_error(tmp_path, monkeypatch):
    from grader import caps

    a = make_fork(tmp_path / "a", [42])
    store = ForkStore(tmp_path / "store.git")
    head = store.fetch("alice", str(a)).head
    monkeypatch.setattr(caps, "GIT_CAPS", caps.Caps(wall_seconds=0.5))
    real = fetch.ForkStore._git

    def slow_git(self, *args):  # a git that hangs before it answers (its alias runs a child: killed too)
        return real(self, "-c", "alias.slow=!sleep 30", "slow") if args[0] == "ls-tree" else real(self, *args)

    monkeypatch.setattr(fetch.ForkStore, "_git", slow_git)
    t0 = time.monotonic()
    with pytest.raises(fetch.ExportError, match="wall-time cap of 0.5 s"):
        store.export(head, tmp_path / "out")
    assert time.monotonic() - t0 < 10
    assert not (tmp_path / "out").exists()
