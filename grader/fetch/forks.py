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
Commit dates are forgeable, so "when" comes from grader.fetch.heads, the grader's own record.
"""

from __future__ import annotations

import errno
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

FETCH_TIMEOUT = 120.0  # seconds per fork
MAX_BLOB_BYTES = 50 * 2**20  # a single file; notebooks have their own smaller cap
MAX_EXPORT_BYTES = 200 * 2**20  # the whole exported tree
MAX_EXPORT_FILES = 5000
MAX_NOTEBOOKS = 200  # notebooks in one commit considered for the week's (grader.fetch.graded)
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # git's id of the tree with no files
# Listing the commit's tree stops here: the export is refused (a 208 KB repository of trees that name the
# same subtree ten times, nine levels deep, lists 10^9 paths; GitPython's traverse grew ~28 MB/s on it).
MAX_TREE_ENTRIES = 100_000
MAX_LISTING_BYTES = 16 * 2**20
TOO_MANY_PATHS = (f"the commit's tree lists more than {MAX_TREE_ENTRIES:,} paths (the limit); a week's "
                  "submission holds a notebook and a few files")
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


def _git_argv(args: list[str]) -> list[str]:
    # maintenance.auto: no `git maintenance run --auto` process after every fetch (the store is never
    # repacked behind our back; gc.auto is off for the same reason).
    return [git.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", "-c", "protocol.ext.allow=never",
            "-c", "submodule.recurse=false", "-c", "core.hooksPath=/dev/null", "-c", "maintenance.auto=false",
            *args]


def _git_lines(args: list[str], *, cwd: Path, timeout: float, limit: int, sep: str = "\n",
               max_bytes: int = MAX_LISTING_BYTES) -> list[str]:
    """git's output as records, read as it comes: git is killed at `limit` records, `max_bytes` of output
    or the timeout, so a fork whose tree expands to millions of paths costs the grader neither memory
    nor time."""
    import selectors
    import time

    proc = subprocess.Popen(_git_argv(args), cwd=cwd, env=git_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    records: list[str] = []
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        read = 0
        while len(records) < limit and read < max_bytes and time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                continue
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            read += len(chunk)
            *done, buf = (buf + chunk).split(sep.encode())
            records += [r.decode("utf-8", "surrogateescape") for r in done]
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    return records[:limit]


def run_git(args: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run git in its own process group; at the timeout the whole group (ssh included) dies."""
    argv = _git_argv(args)
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
    """git's reason in one line: its `fatal:`/`error:` line (the last line of a message is often only
    the end of a sentence, e.g. "and the repository exists.")."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    reasons = [ln for ln in lines if ln.startswith(("fatal:", "error:"))]
    line = (reasons or lines or ["no message from git"])[0]
    return line.removeprefix("fatal: ").removeprefix("error: ")[:300]


def _missing_local(url: str) -> str | None:
    """Why a local path cannot be a fork, before git is asked (git's own words name no path)."""
    if "://" in url or SCP_LIKE.match(url) or not url.startswith("/"):
        return None
    path = Path(url)
    if not path.exists():
        return "no such folder"
    if not path.is_dir():
        return "not a folder"
    if not ((path / ".git").exists() or (path / "HEAD").is_file()):
        return "not a git repository (no .git in it)"
    return None


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
            try:
                git.Repo.init(self.path, bare=True)
            except git.GitCommandError as exc:  # the grader's own disk: an OSError, said in one line
                raise OSError(errno.ENOSPC if "No space" in str(exc.stderr) else errno.EIO,
                              _last_line(str(exc.stderr)), str(self.path)) from None
            with git.Repo(self.path).config_writer() as cfg:
                cfg.set_value("gc", "auto", "0")  # keep commits a later force-push orphans
        self.repo = git.Repo(self.path)
        self._notebooks: dict[tuple[str, int], list[tuple[str, str]]] = {}

    @staticmethod
    def _remote(student: str) -> str:
        if not REMOTE.match(student) or ".." in student:
            raise SourceError(f"student id {student!r} cannot name a git remote")
        return student

    def fetch(self, student: str, url: str, timeout: float = FETCH_TIMEOUT) -> Fetched:
        """Fetch a fork's branches, default HEAD and pull-request heads; errors become data."""
        student = self._remote(student)
        if reason := _missing_local(url):
            return Fetched(student, refs=self.refs(student), error=f"could not fetch {url}: {reason}")
        with self.repo.config_writer() as cfg:  # the URL goes to config, never on a command line
            cfg.set_value(f'remote "{student}"', "url", url)
        prefix = f"refs/remotes/{student}"
        specs = [f"+HEAD:{prefix}/HEAD", f"+refs/heads/*:{prefix}/heads/*",
                 f"+refs/pull/*/head:{prefix}/pull/*"]
        done = run_git(["fetch", "--no-tags", "--no-recurse-submodules", "--prune", "--quiet",
                        "--no-write-fetch-head", student, *specs], cwd=self.path, timeout=timeout)
        if "No space left on device" in done.stderr:  # our disk, not the student's fork
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
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

    def contains(self, tip: str, sha: str) -> bool:
        """Whether commit `sha` is `tip` or behind it (on the branch whose tip it is)."""
        if not (SHA.match(tip) and SHA.match(sha)):
            return False
        return run_git(["merge-base", "--is-ancestor", sha, tip], cwd=self.path, timeout=60).returncode == 0

    def notebooks(self, sha: str, limit: int = MAX_NOTEBOOKS) -> list[tuple[str, str]]:
        """(path, blob sha) of every regular .ipynb file in the commit, read from git objects;
        more than `limit` of them is the submission's problem (SourceError)."""
        if not SHA.match(sha):
            raise SourceError(f"commit {sha!r} is not a hexadecimal sha")
        if (sha, limit) in self._notebooks:  # a commit's files never change: the rule asks twice
            return self._notebooks[sha, limit]
        # Every path is listed and counted, not only the notebooks: a tree bomb (10^9 paths in a few KB)
        # is refused at MAX_TREE_ENTRIES here, as the export refuses it, instead of walked to a timeout.
        lines = _git_lines(["ls-tree", "-r", "-z", "--full-tree", sha], cwd=self.path, timeout=60,
                           limit=MAX_TREE_ENTRIES + 1, sep="\0")
        if len(lines) > MAX_TREE_ENTRIES:
            raise ExportError(TOO_MANY_PATHS)
        found = []
        for line in lines:  # "<mode> <type> <oid>\t<path>"
            meta, _, path = line.partition("\t")
            fields = meta.split()
            if len(fields) == 3 and fields[0] in ("100644", "100755") and path.lower().endswith(".ipynb"):
                found.append((path, fields[2]))
        if len(found) > limit:
            raise SourceError(f"the commit holds more than {limit} notebooks")
        self._notebooks[sha, limit] = found
        return found

    def blob(self, blob: str, max_bytes: int) -> bytes | None:
        """A blob's bytes, or None when it is larger than max_bytes (its size is read first)."""
        size = run_git(["cat-file", "-s", blob], cwd=self.path, timeout=60)
        if size.returncode != 0 or not size.stdout.strip().isdigit() or int(size.stdout) > max_bytes:
            return None
        done = subprocess.run(_git_argv(["cat-file", "blob", blob]), cwd=self.path, env=git_env(),
                              capture_output=True, timeout=60, check=False)
        return done.stdout if done.returncode == 0 else None

    def last_change(self, tip: str, paths: list[str], before: datetime | None = None) -> tuple[str, datetime] | None:
        """The newest commit at or behind `tip` that changed one of `paths` (committed at or before
        `before`, when given: commit dates, trusted only where the mentor said so), with its date."""
        if not SHA.match(tip) or not paths:
            return None
        args = ["log", "-1", "--format=%H %ct"] + ([f"--before={int(before.timestamp())}"] if before else [])
        done = run_git([*args, tip, "--", *(f":(literal){p}" for p in paths)], cwd=self.path, timeout=120)
        parts = done.stdout.split()
        if done.returncode != 0 or len(parts) != 2 or not SHA.match(parts[0]):
            return None
        return parts[0], datetime.fromtimestamp(int(parts[1]), UTC)

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
                        refused = TOO_MANY_PATHS
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
