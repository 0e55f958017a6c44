"""Fetch students' forks into one shared bare object store and export a commit, safely.

Every fork is a remote of ONE bare repository (DESIGN: 20 forks in 0.28 s against 17.5 s as
clones). Safety, because URLs come from students:
- only https, ssh and file URLs (and local paths); no `transport::address` helpers such as ext::,
  also blocked by GIT_ALLOW_PROTOCOL; nothing that starts with '-';
- the URL is written into the store's config, never onto a git command line (no option injection);
- GIT_TERMINAL_PROMPT=0 and a failing askpass: a private or missing fork fails, it never prompts;
- never submodules; git runs in its own process group, killed at our own timeout;
- files are exported from git objects by commit: blob sizes are checked before reading, symbolic
  links and gitlinks are skipped, so a committed link to a secret file is never followed.
Commit dates are forgeable, so "when" comes from HeadsLog, the grader's own record of heads.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import git

from grader import caps
from grader.records import Submission

FETCH_TIMEOUT = 120.0  # seconds per fork
MAX_BLOB_BYTES = 50 * 2**20  # a single file; notebooks have their own smaller cap
MAX_EXPORT_BYTES = 200 * 2**20  # the whole exported tree
MAX_EXPORT_FILES = 5000
# Listing the commit's tree stops here: the export is refused (a 208 KB repository of trees that name the
# same subtree ten times, nine levels deep, lists 10^9 paths; GitPython's traverse grew ~28 MB/s on it).
MAX_TREE_ENTRIES = 100_000
MAX_LISTING_BYTES = 16 * 2**20
SHA = re.compile(r"^[0-9a-f]{7,40}$")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9][A-Za-z0-9.-]*:[A-Za-z0-9._~/-]+$")
URL = re.compile(r"^(https|ssh|file)://([^/?#\s]*)(/[^\s]*)?$")
REMOTE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # a student id, as the roster checks it


class SourceError(ValueError):
    """A fork URL or commit the grader refuses (the message names why)."""


class ExportError(SourceError):
    """The commit's files cannot be exported within the limits (a tree bomb, a git failure); nothing of
    it is left in the destination."""


def check_source(value: str, base: Path | None = None) -> str:
    """Return the source if it is an allowed URL or local path (made absolute); else raise."""
    if not value or any(ord(ch) < 32 or ch == "\x7f" for ch in value) or value != value.strip():
        raise SourceError(f"fork URL {value!r} is empty or contains whitespace/control characters")
    if value.startswith("-"):
        raise SourceError(f"fork URL {value!r} looks like a command-line option")
    if "::" in value:
        raise SourceError(f"fork URL {value!r} uses a git remote helper (transport::address); "
                          "only https, ssh and file URLs are allowed")
    match = URL.match(value)
    if match:
        host = match.group(2).rsplit("@", 1)[-1]
        if host.startswith("-"):
            raise SourceError(f"fork URL {value!r} has a host that looks like an option")
        if match.group(1) != "file" and not host:
            raise SourceError(f"fork URL {value!r} has no host")
        return value
    if "://" in value:
        raise SourceError(f"fork URL {value!r}: only https://, ssh:// and file:// URLs are allowed")
    if SCP_LIKE.match(value):
        return value  # git@github.com:user/repo.git (ssh)
    if ":" in value.split("/", 1)[0]:
        raise SourceError(f"fork URL {value!r} is neither an https/ssh/file URL nor a local path")
    path = Path(value)
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    return str(path.resolve())


def git_env() -> dict[str, str]:
    """The environment every git command runs with: no prompts, no helpers, no surprises."""
    true = shutil.which("true") or "/bin/true"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_SSH_COMMAND"}
    env.update({
        "GIT_ALLOW_PROTOCOL": "https:ssh:file",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": true,
        "SSH_ASKPASS": true,
        "GCM_INTERACTIVE": "never",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_PROTOCOL_FROM_USER": "0",
    })
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=20")
    return env


def run_git(args: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run git in its own process group; at the timeout the whole group (ssh included) dies."""
    # maintenance.auto: no `git maintenance run --auto` process after every fetch (the store is never
    # repacked behind our back; gc.auto is off for the same reason).
    argv = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "-c", "protocol.ext.allow=never",
            "-c", "submodule.recurse=false", "-c", "core.hooksPath=/dev/null", "-c", "maintenance.auto=false",
            *args]
    proc = subprocess.Popen(argv, cwd=cwd, env=git_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return subprocess.CompletedProcess(argv, -9, "", f"timed out after {timeout:g} s")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message from git"


@dataclass
class Fetched:
    """One fork after a fetch: its refs (name -> sha) and what went wrong, if anything."""

    student: str
    refs: dict[str, str] = field(default_factory=dict)
    error: str = ""

    @property
    def head(self) -> str | None:
        return self.refs.get("HEAD") or self.refs.get("heads/main") or self.refs.get("heads/master")


class ForkStore:
    """A bare repository holding every fork as remote `<student>` under refs/remotes/<student>/."""

    def __init__(self, path: Path):
        self.path = Path(path)
        if not (self.path / "HEAD").is_file():
            git.Repo.init(self.path, bare=True)
            with git.Repo(self.path).config_writer() as cfg:
                cfg.set_value("gc", "auto", "0")  # keep commits a later force-push orphans
        self.repo = git.Repo(self.path)

    @staticmethod
    def _remote(student: str) -> str:
        if not REMOTE.match(student) or ".." in student:
            raise SourceError(f"student id {student!r} cannot name a git remote")
        return student

    def fetch(self, student: str, url: str, timeout: float = FETCH_TIMEOUT) -> Fetched:
        """Fetch a fork's branches, default HEAD and pull-request heads; errors become data."""
        student = self._remote(student)
        with self.repo.config_writer() as cfg:  # the URL goes to config, never on a command line
            cfg.set_value(f'remote "{student}"', "url", url)
        prefix = f"refs/remotes/{student}"
        specs = [f"+HEAD:{prefix}/HEAD", f"+refs/heads/*:{prefix}/heads/*",
                 f"+refs/pull/*/head:{prefix}/pull/*"]
        done = run_git(["fetch", "--no-tags", "--no-recurse-submodules", "--prune", "--quiet",
                        "--no-write-fetch-head", student, *specs], cwd=self.path, timeout=timeout)
        fetched = Fetched(student, refs=self.refs(student))
        if done.returncode != 0:
            fetched.error = f"could not fetch {url}: {_last_line(done.stderr)}"
        return fetched

    def refs(self, student: str) -> dict[str, str]:
        prefix = f"refs/remotes/{self._remote(student)}/"
        done = run_git(["for-each-ref", "--format=%(objectname) %(refname)", prefix], cwd=self.path, timeout=60)
        refs = {}
        for line in done.stdout.splitlines():
            sha, name = line.split(" ", 1)
            refs[name[len(prefix):]] = sha
        return refs

    def resolve(self, student: str, commit: str | None = None, pull: int | None = None,
                refs: dict[str, str] | None = None) -> str:
        """The commit to grade: a given sha (reachable from this student's refs), a PR head, or HEAD.
        `refs`: the fork's refs as a fetch just listed them (saves listing them again)."""
        refs = self.refs(student) if refs is None else refs
        if pull is not None:
            if f"pull/{pull}" not in refs:
                raise SourceError(f"pull request #{pull} was not found in the fork")
            return refs[f"pull/{pull}"]
        if commit is None:
            fetched = Fetched(student, refs)
            if not fetched.head:
                raise SourceError("the fork has no commits (no HEAD, main or master branch)")
            return fetched.head
        if not SHA.match(commit):
            raise SourceError(f"commit {commit!r} is not a hexadecimal sha")
        done = run_git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{commit}^{{commit}}"],
                       cwd=self.path, timeout=60)
        sha = done.stdout.strip()
        if done.returncode != 0 or not sha:
            raise SourceError(f"commit {commit} was not found in the fork")
        # Other students' commits share this store: only this fork's history may be graded.
        contains = run_git(["for-each-ref", "--contains", sha, "--format=%(refname)",
                            f"refs/remotes/{student}/"], cwd=self.path, timeout=60)
        if not contains.stdout.strip():
            raise SourceError(f"commit {commit} is not on any branch of this fork")
        return sha

    def pin(self, student: str, sha: str) -> None:
        """Keep a graded or recorded head reachable even if the student force-pushes it away."""
        run_git(["update-ref", f"refs/seen/{self._remote(student)}/{sha}", sha], cwd=self.path, timeout=60)

    def has_commit(self, sha: str) -> bool:
        done = run_git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=self.path, timeout=60)
        return SHA.match(sha) is not None and done.returncode == 0

    def commit_time(self, sha: str) -> datetime:
        return self.repo.commit(sha).committed_datetime.astimezone(UTC)

    def export(self, sha: str, dest: Path) -> list[str]:
        """Write the commit's files to dest from git objects; returns what was skipped and why.

        The tree is listed by `git ls-tree -r -z -l` and the blobs read by `git cat-file --batch`, each a
        child under caps.GIT_CAPS (memory, CPU, wall time), both streamed through bounded readers: a tree
        over MAX_TREE_ENTRIES paths or MAX_LISTING_BYTES of listing is refused with ExportError, and so
        is a git that fails or goes over a cap; dest is then removed."""
        try:
            wanted, skipped = self._list_tree(sha)
            dest.mkdir(parents=True, exist_ok=True)
            self._write_blobs(wanted, dest)
        except ExportError:
            shutil.rmtree(dest, ignore_errors=True)
            raise
        return skipped

    def _git(self, *args: str) -> tuple[subprocess.Popen, caps.Guard]:
        argv = [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "-c", "core.hooksPath=/dev/null", *args]
        proc = subprocess.Popen(argv, cwd=self.path, env=git_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        return proc, caps.Guard(proc.pid, caps.GIT_CAPS, f"git {args[0]}", kill=lambda: _kill_group(proc))

    @staticmethod
    def _end(proc: subprocess.Popen, guard: caps.Guard, what: str) -> None:
        """Stop git if it still runs; ExportError if a cap or an error ended it."""
        if proc.poll() is None:
            _kill_group(proc)
        code = proc.wait()
        hit = guard.verdict(code)
        err = proc.stderr.read(4096).decode("utf-8", "replace") if proc.stderr else ""
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream:
                stream.close()
        guard.close()
        if hit is not None:
            raise ExportError(f"{what}: {hit}")
        if code not in (0, -signal.SIGKILL):
            raise ExportError(f"{what}: git failed ({_last_line(err)})")

    def _list_tree(self, sha: str) -> tuple[list[tuple[str, str, list[str], int]], list[str]]:
        """(blobs to write: oid, path, parts, size) and what is skipped, read from a streamed listing."""
        if not SHA.match(sha):
            raise ExportError(f"commit {sha!r} is not a hexadecimal sha")
        proc, guard = self._git("ls-tree", "-r", "-z", "-l", "--full-tree", sha)
        proc.stdin.close()
        wanted, skipped, total, entries, read = [], [], 0, 0, 0
        buffer = b""
        refused = None
        try:
            while refused is None:
                chunk = _read_some(proc)
                if not chunk:
                    break
                read += len(chunk)
                *records, buffer = (buffer + chunk).split(b"\0")
                for record in records:
                    entries += 1
                    if entries > MAX_TREE_ENTRIES:
                        refused = (f"the commit's tree lists more than {MAX_TREE_ENTRIES:,} paths (the limit); "
                                   "a week's submission holds a notebook and a few files")
                        break
                    total += _take(record, wanted, skipped, total)
                if refused is None and read > MAX_LISTING_BYTES:
                    refused = f"the commit's file list is over {MAX_LISTING_BYTES // 2**20} MiB (the limit)"
        finally:
            self._end_listing(proc, guard, refused)
        return wanted, skipped

    def _end_listing(self, proc: subprocess.Popen, guard: caps.Guard, refused: str | None) -> None:
        try:
            self._end(proc, guard, "listing the commit's files")
        except ExportError:
            if refused is None:
                raise
        if refused is not None:
            raise ExportError(refused)

    def _write_blobs(self, wanted: list[tuple[str, str, list[str], int]], dest: Path) -> None:
        """Each blob from one `git cat-file --batch`, streamed to its file (sizes known from the listing)."""
        if not wanted:
            return
        proc, guard = self._git("cat-file", "--batch")
        ok = False
        try:
            for oid, rel, parts, size in wanted:
                proc.stdin.write(oid.encode() + b"\n")
                proc.stdin.flush()
                header = _read_line(proc, guard).split()
                if len(header) != 3 or header[1] != b"blob" or int(header[2]) != size:
                    raise ExportError(f"reading {rel}: git answered {b' '.join(header)[:80]!r}")
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "wb") as fh:
                    left = size + 1  # the blob, then the newline that ends it
                    while left:
                        chunk = _read_some(proc, min(left, 1 << 20))
                        if not chunk:
                            raise ExportError(f"reading {rel}: git stopped after {size + 1 - left} bytes")
                        fh.write(chunk[: max(0, left - 1)] if len(chunk) >= left else chunk)
                        left -= len(chunk)
            ok = True
        except BrokenPipeError:
            pass  # git ended early: _end says why
        finally:
            if proc.stdin and not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            self._end(proc, guard, "reading the commit's files")
        if not ok:
            raise ExportError("reading the commit's files: git ended early")


def _kill_group(proc: subprocess.Popen) -> None:
    """git and whatever it started (its own session): nothing is left holding its output open."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _read_some(proc: subprocess.Popen, limit: int = 1 << 16) -> bytes:
    """Up to `limit` bytes of git's output as soon as there are any; b"" at its end (or once its guard
    killed it: a git that hangs is ended at its wall-time cap)."""
    return os.read(proc.stdout.fileno(), limit)


def _read_line(proc: subprocess.Popen, guard: caps.Guard) -> bytes:
    line = bytearray()
    while not line.endswith(b"\n"):
        byte = os.read(proc.stdout.fileno(), 1)
        if not byte or len(line) > 4096:
            raise ExportError(f"reading the commit's files: git stopped ({guard.hit or 'no answer'})")
        line += byte
    return bytes(line[:-1])


def _take(record: bytes, wanted: list, skipped: list[str], total: int) -> int:
    """Sort one `<mode> <type> <oid> <size>\\t<path>` record into wanted or skipped; the bytes it adds."""
    meta, _, raw_path = record.partition(b"\t")
    fields = meta.split()
    if len(fields) != 4:
        skipped.append(f"{raw_path[:200]!r} (unreadable tree entry)")
        return 0
    mode, kind, oid, size_field = (f.decode("ascii", "replace") for f in fields)
    rel = os.fsdecode(raw_path)
    parts = rel.split("/")
    if any(p in ("", ".", "..") or p.lower() == ".git" or "\\" in p for p in parts):
        skipped.append(f"{rel!r} (unsafe path)")
    elif kind != "blob":
        skipped.append(f"{rel} (submodule, not fetched)")
    elif mode == "120000":
        skipped.append(f"{rel} (symbolic link)")
    elif not size_field.isdigit():
        skipped.append(f"{rel} (unreadable size)")
    elif int(size_field) > MAX_BLOB_BYTES:  # from the object header: the blob is never read
        skipped.append(f"{rel} (over {MAX_BLOB_BYTES // 2**20} MiB)")
    elif total + int(size_field) > MAX_EXPORT_BYTES or len(wanted) >= MAX_EXPORT_FILES:
        skipped.append(f"{rel} (submission over {MAX_EXPORT_BYTES // 2**20} MiB or {MAX_EXPORT_FILES} files)")
    else:
        wanted.append((oid, rel, parts, int(size_field)))
        return int(size_field)
    return 0


class HeadsLog:
    """The grader's own append-only record of each fork's head: the trusted "when"."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def record(self, fetched: Fetched, at: datetime | None = None) -> None:
        if not fetched.head:
            return
        at = at or datetime.now(UTC)
        line = json.dumps({"student": fetched.student, "sha": fetched.head, "at": at.isoformat()})
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def entries(self, student: str) -> list[tuple[datetime, str]]:
        if not self.path.is_file():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by a kill: the rest of the log still counts
            if item.get("student") == student:
                out.append((datetime.fromisoformat(item["at"]), item["sha"]))
        return sorted(out)

    def head_at(self, student: str, deadline: datetime) -> str | None:
        """The last head recorded at or before the deadline."""
        before = [sha for at, sha in self.entries(student) if at <= deadline]
        return before[-1] if before else None

    def first_seen(self, student: str, sha: str) -> datetime | None:
        """When the grader first saw this commit as the fork's head: the submission time."""
        seen = [at for at, s in self.entries(student) if s == sha]
        return seen[0] if seen else None


def fetch_submission(source: str, week: str, *, commit: str | None, student: str, dest: Path,
                     pull: int | None = None) -> Submission:
    """Fetch one repository (URL or local path) and export a commit into dest/work.

    Problems that are the student's (unreachable fork, unknown commit) are listed in
    Submission.problems; the pipeline then reports the submission as invalid.
    """
    dest = Path(dest)
    workdir = dest / "work"
    problems: list[str] = []
    sha = None
    submitted_at = None
    try:
        url = check_source(source)
        store = ForkStore(dest / "store.git")
        fetched = store.fetch("fork", url)  # one fork in this store: the remote name is ours, not the student's
        if fetched.error:
            problems.append(fetched.error)
        if fetched.refs:
            sha = store.resolve("fork", commit, pull, refs=fetched.refs)
            submitted_at = store.commit_time(sha)
            problems += [f"not exported: {s}" for s in store.export(sha, workdir)]
    except SourceError as exc:
        problems.append(str(exc))
    return Submission(student=student, week=week, source=source, commit=sha, workdir=str(workdir),
                      submitted_at=submitted_at, problems=problems)
