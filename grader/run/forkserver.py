"""Fork server: one trusted interpreter imports the heavy modules once, then forks a fresh process per task.

A batch pays the start-up of the judge (pytest, numpy, torch: about 1.2 s of CPU) and of a grading
worker (pydantic, nbclient, zmq: about 0.5 s) once, not once per submission; on a small machine that
start-up was a third of the CPU a submission cost. Only the grader's own code runs here: the judge
and the pipeline, never student code (that runs in the sandboxed kernel the pipeline starts).

    server = ForkServer("grader.judge.process:serve_forked", preload=("pytest", "numpy", "torch"), env=...)
    # preload may also name "module:function", a warm-up run once (e.g. detecting the sandbox level)
    child = spawn(server.address, ["arg"], log=Path("judge.log"), cwd=Path("/empty/folder"))
    child.stdin.write("line\\n"); child.stdin.flush(); child.wait(timeout=60)

An entry marked `forks_itself` runs in the server instead and calls the `fork_children` it is given
where its children should start: it returns in each child (with the child's args) and never in the
server. A batch's judge server runs a pytest session that way, up to the point where every submission's
judge would do the same thing (grader.judge.process.serve_session).

The server runs `python -I -m grader.run.forkserver` in an empty folder: isolated mode, like a judge started
on its own. It listens on a unix socket in a private (0700) folder; a request must carry the server's
token and come from the server's own uid. Each child gets its own session (so killpg(pid) ends what it
started), dies with the server (which dies with whoever started it), has the connection as its stdin
and writes stdout and stderr to the log file the request named. The server answers on the connection
with the child's pid and, once it has reaped the child, its exit status.
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import json
import os
import secrets
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

READY = "forkserver ready"
START_TIMEOUT = 120.0
SO_PEERCRED_FORMAT = "3i"  # struct ucred: pid, uid, gid


class ForkServerError(RuntimeError):
    """The fork server could not start or answer: a harness problem (callers fall back to a fresh process)."""


def die_with_parent() -> None:
    """PR_SET_PDEATHSIG: SIGKILL this process when its parent dies (Linux; a no-op elsewhere)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class ForkServer:
    """Owns a fork-server process; `address` is what `spawn` needs (a socket path and a token).

    It starts in the background: call wait_ready() before handing out the address.
    """

    def __init__(self, entry: str, preload: tuple[str, ...] = (), env: dict[str, str] | None = None):
        self._dir = Path(tempfile.mkdtemp(prefix="grader-fork-"))  # mkdtemp: 0700, ours alone
        token = secrets.token_hex(16)
        sock = self._dir / "server.sock"
        self.address = f"{sock}#{token}"
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-m", "grader.run.forkserver", str(sock), token, str(os.getpid()), entry, *preload],
            cwd=self._dir, env=env if env is not None else dict(os.environ), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=open(self._dir / "server.log", "wb"), text=True,  # noqa: SIM115
        )
        self._entry = entry
        self._ready = False
        self._started = time.monotonic()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> bool:
        """True once the server has imported its modules and listens; False while it is still starting
        after `timeout` seconds; ForkServerError when it failed (start-up runs in the background)."""
        if self._ready:
            return True
        ready, _, _ = select.select([self._proc.stdout], [], [], timeout)
        if not ready and time.monotonic() - self._started < START_TIMEOUT:
            return False
        line = self._proc.stdout.readline().strip() if ready else ""
        if line != READY:
            log = (self._dir / "server.log").read_text(errors="replace")[-2000:]
            self.close()
            raise ForkServerError(f"the fork server for {self._entry} did not start: {line or 'no answer'} {log}")
        self._ready = True
        return True

    @property
    def pid(self) -> int:
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        """Stop the server; its children die with it (PR_SET_PDEATHSIG)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout:
            self._proc.stdout.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> ForkServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ForkedChild:
    """A child of a fork server, used like a subprocess.Popen: stdin, poll, wait, kill, pid, returncode."""

    def __init__(self, conn: socket.socket):
        self._conn = conn
        self._buf = b""
        self.returncode: int | None = None
        line = self._line(timeout=START_TIMEOUT)
        if not line or not line.startswith(b"pid "):
            conn.close()
            raise ForkServerError(f"the fork server refused the request: {line!r}")
        self.pid = int(line[4:])
        self.stdin = conn.makefile("w", encoding="utf-8")

    def _line(self, timeout: float | None) -> bytes | None:
        """The next line from the server; None on timeout; b'' when it closed the connection."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._conn], [], [], left)
            if not ready:
                return None
            chunk = self._conn.recv(4096)
            if not chunk:
                return b""
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def poll(self) -> int | None:
        return self.wait(timeout=0)

    def fileno(self) -> int:
        """The connection's descriptor: readable once the server tells of the child's end (for select)."""
        return self._conn.fileno()

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit status (negative: killed by that signal); None while it runs past `timeout`."""
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                if timeout is None:
                    raise ForkServerError("lost the fork server while waiting")
                return None
            # b'': the server died; its children die with it (PR_SET_PDEATHSIG)
            self.returncode = int(line[5:]) if line.startswith(b"exit ") else -signal.SIGKILL
            self.close_input()
            self._conn.close()
        return self.returncode

    def close_input(self) -> None:
        """End of the child's stdin (like closing a Popen's stdin)."""
        try:
            self.stdin.close()
            self._conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def kill(self) -> None:
        """SIGKILL the child's whole session (it is its own process-group leader); nothing once it is known
        to have ended (its pid may belong to another process by then)."""
        if self.returncode is not None:
            return
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
                return
            except (ProcessLookupError, PermissionError):
                continue


def spawn(address: str, args: list[str], *, log: Path, cwd: Path | None = None,
          env: dict[str, str] | None = None, wait: float = 0.0) -> ForkedChild:
    """Ask the fork server at `address` for a child running its entry with `args`; `wait`: seconds to
    keep trying while the server is still starting (its socket appears once its imports are done)."""
    path, token = address.rsplit("#", 1)
    deadline = time.monotonic() + wait
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(path)
            break
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            conn.close()
            if time.monotonic() >= deadline:
                raise ForkServerError(f"cannot reach the fork server: {exc}") from None
            time.sleep(0.02)
        except OSError as exc:
            conn.close()
            raise ForkServerError(f"cannot reach the fork server: {exc}") from None
    try:
        request = {"token": token, "args": list(args), "log": str(log), "cwd": str(cwd) if cwd else None,
                   "env": env or {}}
        conn.sendall(json.dumps(request).encode() + b"\n")
        return ForkedChild(conn)
    except OSError as exc:
        conn.close()
        raise ForkServerError(f"cannot reach the fork server: {exc}") from None


# ---- the server side -------------------------------------------------------------------------------


def _read_request(conn: socket.socket, token: str) -> dict | None:
    uid = struct.unpack(SO_PEERCRED_FORMAT, conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                             struct.calcsize(SO_PEERCRED_FORMAT)))[1]
    if uid != os.getuid():
        return None
    conn.settimeout(10)
    data = b""
    try:
        while b"\n" not in data and len(data) < 1 << 20:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    try:
        request = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None
    if not isinstance(request, dict) or not secrets.compare_digest(str(request.get("token")), token):
        return None
    conn.settimeout(None)  # blocking again before the fork: the child's stdin shares this file's flags
    return request


def _become_child(request: dict, conn: socket.socket, server_pid: int, inherited: list[int]) -> None:
    """In the forked child: a fresh process of our own, the connection as stdin, the log as output."""
    os.setsid()
    die_with_parent()
    if os.getppid() != server_pid:  # the server died before we could ask to die with it
        os._exit(2)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    for fd in inherited:  # the listener and other children's connections are not ours
        try:
            os.close(fd)
        except OSError:
            pass
    os.dup2(conn.fileno(), 0)
    conn.close()
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
    if request.get("cwd"):
        os.chdir(request["cwd"])
    os.environ.update({str(k): str(v) for k, v in (request.get("env") or {}).items()})


class _Listener:
    """The serving side, inside the server process: a socket, then a fork per accepted request."""

    def __init__(self, path: str, token: str):
        self.path, self.token = path, token
        # READY goes to the pipe our owner reads; whatever else the server prints goes to its log.
        self.ready_fd = os.dup(1)
        os.dup2(2, 1)

    def fork_children(self) -> list[str]:
        """Serve requests until killed. Returns only in a child, set up as a fresh process, with its args."""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)  # only now: a client that comes earlier retries, or starts without us
        self.sock.listen(64)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler (not SIG_IGN) so that waitpid still reports
        gc.freeze()  # what the entry built before serving is shared with every child, never collected
        os.write(self.ready_fd, f"{READY}\n".encode())
        os.close(self.ready_fd)
        children: dict[int, socket.socket] = {}
        server_pid = os.getpid()
        while True:
            try:
                ready, _, _ = select.select([self.sock, wake_r], [], [])
            except InterruptedError:
                continue
            if wake_r in ready:
                os.read(wake_r, 4096)
            while children:  # reap, and tell each waiting client how its child ended
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                conn = children.pop(pid, None)
                if conn is not None:
                    try:
                        conn.sendall(f"exit {os.waitstatus_to_exitcode(status)}\n".encode())
                    except OSError:
                        pass
                    conn.close()
            if self.sock in ready:
                conn, _ = self.sock.accept()
                request = _read_request(conn, self.token)
                if request is None:
                    conn.close()
                    continue
                inherited = [self.sock.fileno(), wake_r, wake_w, *(c.fileno() for c in children.values())]
                sys.stdout.flush()  # nothing buffered here may be written again by a child
                sys.stderr.flush()
                pid = os.fork()
                if pid == 0:
                    _become_child(request, conn, server_pid, inherited)
                    return list(request["args"])
                try:
                    conn.sendall(f"pid {pid}\n".encode())
                except OSError:
                    pass
                children[pid] = conn


def _serve(path: str, token: str, parent: str, entry_name: str, preload: list[str]) -> int:
    die_with_parent()
    if os.getppid() != int(parent):  # whoever started us died before we could ask to die with it
        return 2
    # No collections while importing (torch alone triggers a tenth of a second of them), and none of
    # what was imported is ever scanned again: frozen, a child's collections skip it and leave its
    # pages shared with us instead of copying them on write.
    gc.disable()
    for name in preload:  # what every child would import anyway (never student code); "module:function"
        module_name, _, func = name.partition(":")  # also calls a warm-up whose result the children inherit
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if func:
            getattr(module, func)()
    module, _, func = entry_name.partition(":")
    entry = getattr(importlib.import_module(module), func)
    gc.freeze()
    gc.enable()
    listener = _Listener(path, token)
    server_pid = os.getpid()
    code = 70
    try:
        if getattr(entry, "forks_itself", False):  # it calls fork_children where its children should start
            result = entry(listener.fork_children)
        else:
            result = entry(*listener.fork_children())
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - a harness bug in the entry: its traceback goes to the log
        traceback.print_exc()
    if os.getpid() == server_pid:  # an entry that forks itself ended before it served anyone
        print(f"forkserver: {entry_name} returned {code} before serving", file=sys.stderr)
        return code or 70
    try:  # a child: skip the interpreter's teardown (torch's alone took 0.2-0.3 s)
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
