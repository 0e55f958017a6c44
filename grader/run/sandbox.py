"""Wrap a command so that student code runs isolated: the argv prefix, the run folder, the sweep.

Every sandboxed process (the notebook's kernel, a probe worker) is started as
`sandbox_prefix(spec) + argv`. Three levels, strongest first; the level reached is
recorded in every grade:

    bwrap    env -i, bubblewrap: new mount/pid/net/ipc/uts namespaces, only /usr, the grading
             environment (read-only) and this run's folder mounted, size-capped tmpfs /tmp,
             all capabilities dropped, a real uid switch (setpriv) to a uid of its own,
             rlimits applied inside
    unshare  env -i, util-linux unshare: new net/pid/ipc/uts/mount namespaces; as root, /tmp, the
             homes and the grader's repository covered (the environment and the run bound back),
             then the uid switch; rlimits
    process  env -i, the uid switch as root (refused where that uid could read the hidden checks
             or not read the environment), rlimits

At every level the packages the week forbids are mounted over (bwrap, unshare) so that importing
them fails with a message naming the week's rule, and the kernel runs without address space
randomisation (setarch -R, innermost: bwrap's uid switch resets the personality).

Every sandboxed process carries GRADER_RUN_ID in its environment, so `reap` can find and
kill whatever a submission left behind, whichever level ran it; as root it also kills every
process of the run's own uid (a daemon that exec'd itself a clean environment).
"""

from __future__ import annotations

import functools
import os
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from grader.config import REPO_ROOT, SOLUTIONS

SANDBOX_UID = 65534  # inside a user namespace (grading as a normal user): nobody
# As root each run gets its own unused host uid: RLIMIT_NPROC counts per uid, so a fork bomb in one
# sandbox cannot starve a neighbour graded at the same time, and no two runs can signal each other.
RUN_UID_BASE, RUN_UID_SPAN = 200_000, 100_000
# OpenBLAS (numpy's BLAS) keeps its idle threads spinning for 2**28 cycles (about 0.1 s) after it loads
# and after every call: CPU taken from the other submission when two are graded on two cores. 2**16
# cycles still keeps back-to-back calls warm; no result changes. For every process the grader starts.
QUIET_BLAS = {"OPENBLAS_THREAD_TIMEOUT": "16"}
# torch's OpenMP threads spin while they wait for work. With the cores to itself that saves wake-ups;
# with more threads than cores (a batch of two-thread kernels on two cores) a spinning thread holds the
# core its partner needs: two thirds of week 2's kernel CPU in a --jobs 2 batch went to libgomp's spin.
# A batch that shares its cores sets this to PASSIVE for its kernels and judges; results do not change
# (the same threads split the same work, they only sleep while they wait).
WAIT_POLICY_VAR = "GRADER_OMP_WAIT_POLICY"


class Isolation(str, Enum):
    bwrap = "bwrap"  # bubblewrap: mount, pid, net, ipc namespaces, caps dropped, uid switched
    unshare = "unshare"  # util-linux unshare: net + pid namespaces, rlimits
    process = "process"  # separate process, scrubbed environment and rlimits only

    @property
    def rank(self) -> int:
        return {"process": 0, "unshare": 1, "bwrap": 2}[self.value]


class IsolationError(RuntimeError):
    """The machine cannot give the isolation the mentor required."""


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 3600
    memory_bytes: int | None = 8 * 2**30  # None when CUDA is used: never RLIMIT_AS with CUDA
    file_bytes: int = 256 * 2**20
    pids: int = 256
    open_files: int = 1024
    tmp_bytes: int = 512 * 2**20  # size of the private /tmp (tmpfs, bwrap level)
    gpu_memory_bytes: int = 32 * 2**30  # host memory cap via a memory cgroup on GPU runs (if writable)


@dataclass(frozen=True)
class SandboxSpec:
    run_dir: Path  # this run's folder: mounted; only the `writable` folders in it can be written
    env: dict[str, str] = field(default_factory=dict)  # added to the scrubbed environment
    limits: Limits = Limits()
    level: Isolation = Isolation.process
    gpu: int | None = None  # CUDA device index given to this submission, if any
    run_id: str = field(default_factory=lambda: secrets.token_hex(8))
    writable: tuple[Path, ...] = ()  # extra folders chowned to the sandbox uid (the scratch copy)
    forbid: tuple[str, ...] = ()  # packages that must not be importable inside (week.toml `forbid`)
    forbid_note: str = ""  # the week's rule, in the message an import of one of them raises

    @property
    def uid(self) -> int:
        """The host uid this run's processes get (bwrap as root), fixed by its run id."""
        if not self.switches_uid:
            return SANDBOX_UID
        return RUN_UID_BASE + zlib.crc32(self.run_id.encode()) % RUN_UID_SPAN

    @property
    def switches_uid(self) -> bool:
        """As root every level switches to the run's own uid: no kernel ever runs as uid 0."""
        return os.geteuid() == 0


def base_env(spec: SandboxSpec) -> dict[str, str]:
    """The whole environment student code sees: nothing of the grader's (tokens, paths)."""
    threads = os.environ.get("GRADER_THREADS", "2")
    tmp = "/tmp" if spec.level is Isolation.bwrap else str(spec.run_dir / "tmp")
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(spec.run_dir / "home"),
        "TMPDIR": tmp,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "GRADER": "1",
        "GRADER_RUN_ID": spec.run_id,
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(spec.run_dir / "home" / ".matplotlib"),
        "OMP_NUM_THREADS": threads,
        "MKL_NUM_THREADS": threads,
        "CUDA_VISIBLE_DEVICES": "" if spec.gpu is None else str(spec.gpu),
        "JUPYTER_PLATFORM_DIRS": "1",
        "IPYTHONDIR": str(spec.run_dir / "home" / ".ipython"),
        **QUIET_BLAS,
    }
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):  # machine quirks, not secrets
        if key in os.environ:
            env[key] = os.environ[key]
    if os.environ.get(WAIT_POLICY_VAR):
        env["OMP_WAIT_POLICY"] = os.environ[WAIT_POLICY_VAR]
    env.update(spec.env)
    return env


def grading_env_paths() -> list[Path]:
    """Folders holding the grading environment: the venv and the base Python it links to."""
    paths = {Path(sys.prefix), Path(sys.base_prefix), Path(os.path.realpath(sys.executable)).parent.parent}
    kept: list[Path] = []
    for path in sorted(paths, key=lambda p: len(p.parts)):
        if not any(path == k or k in path.parents for k in kept) and str(path) != "/usr":
            kept.append(path)
    return kept


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def _bwrap_prefix(spec: SandboxSpec) -> list[str]:
    argv = ["bwrap", "--die-with-parent", "--new-session",
            "--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if spec.switches_uid:
        # As root a user namespace would map only uid 0, so setpriv could not switch: no userns.
        # Keep only the caps setpriv needs to switch; it drops them (and the bounding set) itself.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]
    else:
        argv += ["--unshare-user", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--cap-drop", "ALL"]
    argv += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "lib", "lib64", "sbin"):
        link = Path("/") / name
        if link.is_symlink():
            argv += ["--symlink", os.readlink(link), str(link)]
        elif link.is_dir():
            argv += ["--ro-bind", str(link), str(link)]
    # /tmp first: the run folder may lie under the host's /tmp and is bound on top of it.
    argv += ["--dev", "/dev", "--proc", "/proc", *_tmp_mounts(spec)]
    made: set[Path] = set()
    mounts = [*grading_env_paths(), spec.run_dir]
    for mount in mounts:  # parents are created 0755 (bwrap's default 0700 locks out the sandbox uid)
        for parent in _ancestors(mount):
            if parent not in made and parent not in mounts:
                argv += ["--perms", "0755", "--dir", str(parent)]
                made.add(parent)
    argv += ["--perms", "0755", "--dir", "/etc"]
    for name in ("ld.so.cache", "localtime"):
        if Path("/etc", name).exists():
            argv += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for name in ("passwd", "group"):  # synthetic: the host's accounts are none of its business
        argv += ["--ro-bind", str(spec.run_dir / "etc" / name), f"/etc/{name}"]
    for path in grading_env_paths():
        argv += ["--ro-bind", str(path), str(path)]
    argv += ["--bind", str(spec.run_dir), str(spec.run_dir)]
    for target, blocker in forbidden_mounts(spec):
        argv += ["--ro-bind", str(blocker), str(target)]
    if spec.gpu is not None:
        for dev in sorted(Path("/dev").glob("nvidia*")):
            if dev.is_char_device():
                argv += ["--dev-bind", str(dev), str(dev)]
        if Path("/sys").is_dir():  # the CUDA driver reads PCI topology from /sys
            argv += ["--ro-bind", "/sys", "/sys"]
    argv += ["--"]  # no --chdir: bwrap keeps the launcher's cwd (the notebook's folder)
    return argv + _uid_prefix(spec)


def _uid_prefix(spec: SandboxSpec) -> list[str]:
    """As root: become the run's own unprivileged uid, with no capability left to regain."""
    if not spec.switches_uid:
        return []
    uid = str(spec.uid)
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def _tmp_mounts(spec: SandboxSpec) -> list[str]:
    """/tmp and /dev/shm: the run's own folders where its writable space is a size-capped tmpfs of the
    grader's (grader.run.scratch: one cap over everything the run writes), else a tmpfs each."""
    tmp, shm = spec.run_dir / "tmp", spec.run_dir / "shm"
    if os.path.ismount(tmp) and os.path.ismount(shm):
        return ["--bind", str(tmp), "/tmp", "--bind", str(shm), "/dev/shm"]
    return ["--size", str(spec.limits.tmp_bytes), "--perms", "1777", "--tmpfs", "/tmp",
            "--size", str(spec.limits.tmp_bytes), "--perms", "1777", "--tmpfs", "/dev/shm"]


def _namespace_prefix(spec: SandboxSpec) -> list[str]:
    if spec.level is Isolation.bwrap:
        return _bwrap_prefix(spec)
    if spec.level is Isolation.unshare:
        # A fresh network namespace (loopback only, down) and pid namespace: nothing of the
        # kernel survives its process tree, and no socket reaches the network. The mount namespace
        # (--mount-proc makes one) lets root cover what the kernel must not see before it switches uid.
        argv = ["unshare", "--net", "--pid", "--ipc", "--uts", "--mount", "--fork", "--kill-child", "--mount-proc"]
        if os.geteuid() == 0:
            argv += ["/bin/sh", "-c", _unshare_mounts(spec) + '\nexec "$@"', "grader-mounts"]
        return argv + _uid_prefix(spec)
    return _uid_prefix(spec)


# ---- below bubblewrap: what root can still hide in a mount namespace ----------------------------------

def _covered_paths() -> list[Path]:
    """Folders the unshare level covers with an empty tmpfs: other runs and the host's temp files, the
    homes (tokens, keys) and the grader's repository (hidden checks, .git); the environment and the
    run's folder are bound back on top. Never a folder inside the environment (a grader installed into
    site-packages has its "repository" there)."""
    hidden = [Path("/tmp"), Path("/var/tmp"), Path("/root"), Path("/home"), REPO_ROOT, SOLUTIONS]
    if os.environ.get("GRADER_SOLUTIONS_DIR"):
        hidden.append(Path(os.environ["GRADER_SOLUTIONS_DIR"]))
    env = [Path(os.path.realpath(p)) for p in grading_env_paths()]
    kept: list[Path] = []
    for path in sorted({Path(os.path.realpath(p)) for p in hidden if p.is_dir()}, key=lambda p: len(p.parts)):
        if path == Path("/") or any(e == path or e in path.parents for e in env):
            continue
        if not any(k == path or k in path.parents for k in kept):
            kept.append(path)
    return kept


def _unshare_mounts(spec: SandboxSpec) -> str:
    """A shell script, run as root inside the new mount namespace before the uid switch: stage what must
    stay visible, cover the folders above, bind the staged ones back (the environment read-only), block
    the forbidden packages."""
    q = shlex.quote
    covers = _covered_paths()
    keeps = [(Path(os.path.realpath(p)), p != spec.run_dir) for p in [*grading_env_paths(), spec.run_dir]]
    keeps = [(p, ro) for p, ro in keeps if any(c == p or c in p.parents for c in covers)]
    stage = next(Path(d) for d in ("/mnt", "/media", "/srv", "/dev/shm")
                 if Path(d).is_dir() and not any(Path(d) in p.parents or Path(d) == p for p, _ in keeps))
    lines = ["set -e", f"mount -t tmpfs -o size=64k,mode=0700 grader-stage {q(str(stage))}"]
    for i, (path, _) in enumerate(keeps):
        lines += [f"mkdir {q(str(stage / str(i)))}", f"mount --bind {q(str(path))} {q(str(stage / str(i)))}"]
    for cover in covers:
        lines.append(f"mount -t tmpfs -o size=1m,mode=0755 grader-cover {q(str(cover))}")
    for i, (path, read_only) in enumerate(keeps):
        lines += [f"mkdir -p {q(str(path))}", f"mount --bind {q(str(stage / str(i)))} {q(str(path))}"]
        if read_only:
            lines.append(f"mount -o remount,bind,ro {q(str(path))}")
    lines.append(f"umount -l {q(str(stage))}")
    for target, blocker in forbidden_mounts(spec):
        lines += [f"mount --bind {q(str(blocker))} {q(str(target))}",
                  f"mount -o remount,bind,ro {q(str(target))}"]
    return "\n".join(lines)


def readable_by_others(path: Path) -> bool:
    """Whether a uid that is neither the owner nor in the group can list/read `path` (mode bits only)."""
    path = Path(os.path.realpath(path))
    try:
        for parent in [*reversed(path.parents), path]:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH or (parent == path and not mode & stat.S_IROTH):
                return False
    except OSError:
        return False
    return True


def level_problem(level: Isolation) -> str:
    """Why grading at `level` would not be safe here ("" when it is): the process level as root switches
    to an unprivileged uid but hides nothing, so that uid must be able to read the environment, and must
    not be able to read the hidden checks or write the environment."""
    if level is not Isolation.process or os.geteuid() != 0:
        return ""
    for path in grading_env_paths():
        if not readable_by_others(path):
            blocker = next((p for p in [*reversed(path.parents), path] if not readable_by_others(p)), path)
            return (f"the 'process' level runs the kernel as an unprivileged uid, which cannot read the grading "
                    f"environment at {path} ({blocker} is mode {stat.S_IMODE(blocker.stat().st_mode):04o}): "
                    "install bubblewrap, or put the environment where every user can read it")
        if path.stat().st_mode & stat.S_IWOTH:
            return f"the grading environment at {path} is writable by every user: chmod o-w it"
    for path in {SOLUTIONS, *([Path(os.environ["GRADER_SOLUTIONS_DIR"])] if os.environ.get("GRADER_SOLUTIONS_DIR") else [])}:
        if path.is_dir() and readable_by_others(path):
            return (f"at the 'process' level the kernel's uid could read the hidden checks in {path}: "
                    f"chmod o-rwx {path}, or install bubblewrap")
    return ""


# ---- packages the week forbids -------------------------------------------------------------------

def _site_dirs() -> list[Path]:
    """Every package folder a student's import could reach inside the sandbox: the environment's and the
    system Pythons' site-/dist-packages (a path hack to a folder by name reaches them all)."""
    found: set[Path] = set()
    for root in [*grading_env_paths(), Path("/usr/lib"), Path("/usr/local/lib")]:
        for depth in ("*", "*/*", "*/*/*"):
            for name in ("site-packages", "dist-packages"):
                found.update(p for p in root.glob(f"{depth}/{name}") if p.is_dir())
    return sorted(found)


@functools.lru_cache(maxsize=8)
def forbidden_paths(names: tuple[str, ...]) -> tuple[Path, ...]:
    """Where the forbidden packages are installed: package folders, modules, extension modules."""
    hits: set[Path] = set()
    for site in _site_dirs():
        for name in names:
            for path in [site / name, site / f"{name}.py", *site.glob(f"{name}.*.so")]:
                if path.exists():
                    hits.add(Path(os.path.realpath(path)))
    return tuple(sorted(hits))


def blocker_source(name: str, note: str) -> str:
    """The module that stands in for a forbidden package: importing it fails, naming the package and why."""
    message = f"{name!r} cannot be imported while grading: {note}" if note else \
        f"{name!r} cannot be imported while grading (forbidden this week)"
    return f"raise ModuleNotFoundError({message!r}, name={name!r})\n"


def forbidden_mounts(spec: SandboxSpec) -> list[tuple[Path, Path]]:
    """(installed path, blocker in the run folder) pairs to mount over; the blockers are written here."""
    pairs = []
    for target in forbidden_paths(tuple(sorted(spec.forbid))):
        name = target.name.split(".")[0]
        blocker = spec.run_dir / "forbid" / f"{'pkg' if target.is_dir() else 'mod'}-{name}"
        if not blocker.exists():
            source = blocker_source(name, spec.forbid_note)
            if target.is_dir():
                blocker.mkdir(parents=True)
                (blocker / "__init__.py").write_text(source)
            else:
                blocker.parent.mkdir(parents=True, exist_ok=True)
                blocker.write_text(source)
        pairs.append((target, blocker))
    return pairs


def _layout_prefix() -> list[str]:
    """No address space randomisation for the kernel: an order-dependent bug (a set of Values iterated by
    address) then gets the same grade each time. Innermost: the uid switch before it resets the personality."""
    return ["setarch", os.uname().machine, "-R"] if shutil.which("setarch") else []


def layout_fixed() -> bool:
    return bool(_layout_prefix())


def _limits_prefix(spec: SandboxSpec) -> list[str]:
    """prlimit, placed after the uid switch: RLIMIT_NPROC then counts the sandbox uid only."""
    argv = ["prlimit", f"--cpu={spec.limits.cpu_seconds}", f"--fsize={spec.limits.file_bytes}",
            f"--nofile={spec.limits.open_files}", "--core=0"]
    if spec.switches_uid or os.geteuid() != 0:
        argv.append(f"--nproc={spec.limits.pids}")
    if spec.limits.memory_bytes is not None and spec.gpu is None:
        argv.append(f"--as={spec.limits.memory_bytes}")
    return argv + ["--"]


def _cgroup_location() -> tuple[Path, str] | None:
    """This process's memory cgroup folder and the file holding its limit (v1 or v2)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return Path("/sys/fs/cgroup/memory") / path.lstrip("/"), "memory.limit_in_bytes"
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        if line.startswith("0::") and Path("/sys/fs/cgroup/cgroup.controllers").is_file():
            return Path("/sys/fs/cgroup") / line[3:].lstrip("/"), "memory.max"
    return None


def memory_cgroup(spec: SandboxSpec) -> Path | None:
    """The memory cgroup a GPU run goes into (RLIMIT_AS breaks CUDA), or None where none can be made."""
    where = _cgroup_location() if spec.gpu is not None and os.geteuid() == 0 else None
    if where is None:
        return None
    group = where[0] / f"grader-{spec.run_id}"
    try:
        group.mkdir(exist_ok=True)
        (group / where[1]).write_text(str(spec.limits.gpu_memory_bytes))
    except OSError:
        return None
    return group


def release_cgroup(spec: SandboxSpec) -> None:
    """Remove the run's memory cgroup once its processes are gone (after reap)."""
    where = _cgroup_location() if spec.gpu is not None else None
    if where is not None:
        try:
            (where[0] / f"grader-{spec.run_id}").rmdir()
        except OSError:
            pass


def sandbox_prefix(spec: SandboxSpec) -> list[str]:
    """argv to put before the command: clear the environment, enter namespaces, set limits."""
    env = base_env(spec)
    argv = ["env", "-i", *(f"{k}={v}" for k, v in sorted(env.items()))]
    group = memory_cgroup(spec)
    if group is not None:  # join the cgroup before the namespaces: /sys is not mounted inside
        argv += ["/bin/sh", "-c", f'echo $$ > "{group}/cgroup.procs" && exec "$@"', "sh"]
    return argv + _namespace_prefix(spec) + _limits_prefix(spec) + _layout_prefix()


def prepare_run_dir(spec: SandboxSpec) -> None:
    """Create the run folder's layout; only kernel/, home/, tmp/ and `writable` are the sandbox's."""
    run_dir = spec.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(run_dir, 0o755)  # the sandbox uid may enter, not create files here (a forged results.json)
    for sub in ("kernel", "home", "tmp"):
        (run_dir / sub).mkdir(exist_ok=True)
    etc = run_dir / "etc"
    etc.mkdir(exist_ok=True)
    uid = spec.uid
    (etc / "passwd").write_text(f"root:x:0:0::/root:/bin/false\nstudent:x:{uid}:{uid}::{run_dir}/home:/bin/false\n")
    (etc / "group").write_text(f"root:x:0:\nstudent:x:{uid}:\n")
    for path in (run_dir / "kernel", run_dir / "home", run_dir / "tmp", *spec.writable):
        give_to_sandbox(path, spec)


def give_to_sandbox(path: Path, spec: SandboxSpec) -> None:
    """Make a folder (recursively) writable by the sandbox uid, e.g. a probe's answers folder."""
    if not spec.switches_uid:
        return
    os.chown(path, spec.uid, spec.uid, follow_symlinks=False)
    for root, dirs, files in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.chown(name, spec.uid, spec.uid, follow_symlinks=False)
    if spec.level is Isolation.process:
        _private_folders(path)


def _private_folders(path: Path) -> None:
    """The run's own folders are its uid's alone: at the process level a neighbour graded at the same time
    (another uid) sees the other runs' folders and must not enter them. (bwrap mounts only this run and
    unshare covers /tmp; there bwrap's own chdir, as root without capabilities, needs them open.)"""
    for root, dirs, _ in os.walk(path):
        for name in [root, *(os.path.join(root, n) for n in dirs)]:
            if not os.path.islink(name):
                os.chmod(name, 0o700)


def _real_uid(entry: Path) -> int | None:
    """The real uid of a live process (None for a zombie: it runs nothing and goes when it is reaped)."""
    fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith("Z"):
        return None
    return int(fields["Uid"].split()[0]) if "Uid" in fields else None


def run_pids(run_id: str, uid: int | None = None) -> list[int]:
    """Host pids of every live process that carries this run's GRADER_RUN_ID, or runs as `uid` (the run's
    own uid, given as root: a process can replace its environment by exec, never its uid)."""
    marker = f"GRADER_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (uid is not None and _real_uid(entry) == uid) or \
                    marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:  # gone, or not ours to read
            continue
    return found


def run_uid(spec: SandboxSpec) -> int | None:
    """The uid that only this run's processes have (as root), else None."""
    return spec.uid if spec.switches_uid else None


def reap(run_id: str, wait: float = 10.0, uid: int | None = None) -> list[int]:
    """SIGKILL every process of this run until none is left (a fork bomb refills between scans;
    a killed process lingers until the kernel tears it down); return the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + wait
    while True:
        pids = run_pids(run_id, uid)
        if not pids or time.monotonic() > deadline:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)


def gpu_holders(run_id: str) -> list[int]:
    """Pids of this run that still hold GPU memory (nvidia-smi), or [] without a GPU."""
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    ours = set(run_pids(run_id))
    return [int(p) for p in out.split() if p.strip().isdigit() and int(p) in ours]


def probe_level(level: Isolation) -> tuple[bool, str]:
    """Run a tiny Python under `level`; say whether it worked and what it saw (or why not)."""
    tool = {Isolation.bwrap: "bwrap", Isolation.unshare: "unshare"}.get(level)
    if tool and not shutil.which(tool):
        return False, f"{tool} is not installed"
    if not shutil.which("prlimit"):
        return False, "prlimit (util-linux) is not installed"
    if os.geteuid() == 0 and not shutil.which("setpriv"):
        return False, "setpriv (util-linux) is not installed: no kernel may run as root"
    problem = level_problem(level)
    if problem:
        return False, problem
    with tempfile.TemporaryDirectory(prefix="grader-probe-") as tmp:
        spec = SandboxSpec(run_dir=Path(tmp) / "run", level=level)
        prepare_run_dir(spec)
        code = "import os,socket;print(os.getuid(), len(socket.if_nameindex()))"
        argv = sandbox_prefix(spec) + [sys.executable, "-I", "-c", code]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
    if proc.returncode != 0:
        return False, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1][:300]
    uid, _ = proc.stdout.split()
    if spec.switches_uid and int(uid) != spec.uid:
        return False, f"uid switch failed (uid {uid} inside)"
    return True, f"uid {uid} inside"


@functools.lru_cache(maxsize=4)
def level_works(level: Isolation) -> tuple[bool, str]:
    """probe_level, once per level and process."""
    return probe_level(level)


@functools.lru_cache(maxsize=1)
def detect_isolation() -> Isolation:
    """The strongest level this machine gives (probed by running Python under it; cached)."""
    for level in (Isolation.bwrap, Isolation.unshare):
        if level_works(level)[0]:
            return level
    return Isolation.process


def check_level(level: Isolation, *, allow_weak: bool, required: bool = False) -> None:
    """Refuse to run student code where it would not be safe: below bubblewrap unless the caller allows
    it (--allow-weak-isolation, or `check` on a student's own machine), and never where the level itself
    cannot hold (the process level as root with the hidden checks readable). One line, for exit 4."""
    if level is Isolation.bwrap:
        return
    if required:
        require(level, Isolation.bwrap)
    if not allow_weak:
        raise IsolationError(
            f"refusing to grade with '{level.value}' isolation: bubblewrap is unusable here "
            f"({level_works(Isolation.bwrap)[1]}); install it (apt-get install bubblewrap) or pass "
            "--allow-weak-isolation to grade anyway (every report then says so)")
    works, why = level_works(level)
    if not works:
        raise IsolationError(f"cannot grade with '{level.value}' isolation: {why}")


def require(level: Isolation, wanted: Isolation | None) -> None:
    if wanted is not None and level.rank < wanted.rank:
        raise IsolationError(
            f"this machine gives '{level.value}' isolation but '{wanted.value}' was required; "
            "run `grader doctor` to see what is missing"
        )
