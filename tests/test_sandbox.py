"""The sandbox prefix, measured: what code inside can see, write, reach and keep running.

Tests that need bubblewrap or namespaces skip with the reason where the machine lacks them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grader.run.sandbox import (
    Isolation,
    IsolationError,
    Limits,
    SandboxSpec,
    detect_isolation,
    gpu_holders,
    prepare_run_dir,
    probe_level,
    reap,
    require,
    run_pids,
    sandbox_prefix,
)
from grader.staff.doctor import diagnose, render

ROOT = Path(__file__).resolve().parent.parent
BWRAP_OK, BWRAP_WHY = probe_level(Isolation.bwrap)
UNSHARE_OK, UNSHARE_WHY = probe_level(Isolation.unshare)
needs_bwrap = pytest.mark.skipif(not BWRAP_OK, reason=f"bubblewrap unusable here: {BWRAP_WHY}")
needs_unshare = pytest.mark.skipif(not UNSHARE_OK, reason=f"unshare unusable here: {UNSHARE_WHY}")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the uid switch is made only when grading as root")


def make_spec(tmp_path: Path, level: Isolation, **kw) -> SandboxSpec:
    run_dir = tmp_path / "run"
    work = run_dir / "work"
    work.mkdir(parents=True)
    spec = SandboxSpec(run_dir=run_dir, level=level, writable=(work,), **kw)
    prepare_run_dir(spec)
    return spec


def run_inside(spec: SandboxSpec, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    argv = sandbox_prefix(spec) + [sys.executable, "-c", textwrap.dedent(code)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=spec.run_dir / "work")


def test_prefix_clears_env_first_and_never_mounts_root(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "tok-prefix")
    spec = make_spec(tmp_path, Isolation.bwrap)
    argv = sandbox_prefix(spec)
    assert argv[:2] == ["env", "-i"]
    assert "tok-prefix" not in " ".join(argv)
    assert argv[argv.index("bwrap"):].count("--ro-bind") >= 2
    pairs = list(zip(argv, argv[1:], argv[2:]))
    binds = [(src, dst) for flag, src, dst in pairs if flag in ("--bind", "--ro-bind")]
    assert ("/", "/") not in binds
    mounted = {src for src, _ in binds}
    assert str(ROOT) not in mounted and str(ROOT / "solutions") not in mounted
    assert not any(src.endswith(".git") for src in mounted)
    assert ["--bind", str(spec.run_dir), str(spec.run_dir)] == \
        [a for a in argv if a in ("--bind", str(spec.run_dir))][:3]
    assert "--cap-drop" in argv and "--die-with-parent" in argv and "--new-session" in argv
    assert f"--as={Limits().memory_bytes}" in argv
    assert "OPENBLAS_THREAD_TIMEOUT=16" in argv  # numpy's idle BLAS threads sleep, not spin


def test_no_rlimit_as_with_a_gpu(tmp_path):
    spec = make_spec(tmp_path, Isolation.bwrap, gpu=0, limits=Limits(memory_bytes=None))
    argv = sandbox_prefix(spec)
    assert not any(a.startswith("--as=") for a in argv)
    assert "CUDA_VISIBLE_DEVICES=0" in argv


def test_require_refuses_below_the_wanted_level():
    require(Isolation.bwrap, Isolation.bwrap)
    require(Isolation.process, None)
    with pytest.raises(IsolationError, match="grader doctor"):
        require(Isolation.unshare, Isolation.bwrap)


def test_detect_isolation_is_cached_and_matches_the_probes():
    level = detect_isolation()
    assert detect_isolation() is level
    assert level is (Isolation.bwrap if BWRAP_OK else Isolation.unshare if UNSHARE_OK else Isolation.process)


@needs_bwrap
@needs_root
def test_bwrap_inside_view(tmp_path, monkeypatch):
    """uid switched, no capabilities, no secrets, nothing of the repo, only loopback."""
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "tok-inside")
    spec = make_spec(tmp_path, Isolation.bwrap)
    proc = run_inside(spec, f"""
        import json, os, socket
        def pid1_env():
            try:
                return open('/proc/1/environ', 'rb').read().decode('latin-1')
            except OSError:  # pid 1 is bwrap's root-owned init: not ours to read
                return ''
        status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())
        print(json.dumps({{
            "uid": os.getuid(), "euid": os.geteuid(), "groups": os.getgroups(),
            "capeff": status['CapEff'].strip(), "capbnd": status['CapBnd'].strip(),
            "secret": 'tok-inside' in pid1_env() or 'GRADER_SECRET_TOKEN' in os.environ,
            "root": sorted(os.listdir('/')),
            "repo": os.path.exists({str(ROOT / 'solutions')!r}) or os.path.exists({str(ROOT / '.git')!r}),
            "home_root": os.path.exists('/root/.bashrc'),
            "ifaces": [n for _, n in socket.if_nameindex()],
            "pid": os.getpid(),
        }}))
    """)
    assert proc.returncode == 0, proc.stderr
    import json

    seen = json.loads(proc.stdout)
    assert seen["uid"] == seen["euid"] == spec.uid != 0 and seen["groups"] == []
    assert int(seen["capeff"], 16) == 0 and int(seen["capbnd"], 16) == 0
    assert seen["secret"] is False
    assert set(seen["root"]) <= {"bin", "dev", "etc", "lib", "lib64", "proc", "root", "sbin", "tmp", "usr",
                                 *{p.parts[1] for p in [spec.run_dir, Path(sys.prefix), Path(sys.base_prefix)]}}
    assert seen["repo"] is False and seen["home_root"] is False
    assert seen["ifaces"] == ["lo"]
    assert seen["pid"] < 10  # a private pid namespace


@needs_bwrap
@needs_root
def test_bwrap_writes_only_scratch(tmp_path):
    spec = make_spec(tmp_path, Isolation.bwrap, limits=Limits(tmp_bytes=8 * 2**20, file_bytes=4 * 2**20))
    proc = run_inside(spec, f"""
        import os, sys
        def can_write(path):
            try:
                open(path, 'w').write('x'); return True
            except OSError:
                return False
        print(can_write('ok.txt'), can_write({str(spec.run_dir / 'results.json')!r}),
              can_write('/usr/x'), can_write(sys.prefix + '/x'), can_write('/etc/x'))
        try:
            [open(f'/tmp/big{{i}}', 'wb').write(b'x' * 3 * 2**20) for i in range(3)]
            print('tmp-unbounded')
        except OSError as exc:
            print('tmp', exc.errno)
        try:
            open('big', 'wb').write(b'x' * 5 * 2**20); print('fsize-unbounded')
        except OSError as exc:
            print('fsize', exc.errno)
    """)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert lines[0] == "True False False False False"
    assert lines[1] == "tmp 28"  # ENOSPC: the private /tmp is size-capped
    assert lines[2] == "fsize 27"  # EFBIG: RLIMIT_FSIZE
    assert not (spec.run_dir / "results.json").exists()


@needs_bwrap
@needs_root
def test_bwrap_pids_limit_counts_the_sandbox_only(tmp_path):
    spec = make_spec(tmp_path, Isolation.bwrap, limits=Limits(pids=20))
    proc = run_inside(spec, """
        import os, time
        kids = 0
        try:
            for _ in range(100):
                pid = os.fork()
                if pid == 0:
                    time.sleep(30); os._exit(0)
                kids += 1
        except OSError as exc:
            print(kids, exc.errno)
    """)
    kids, errno = proc.stdout.split()
    assert int(kids) < 20 and errno == "11"  # EAGAIN well before 100, though root runs far more


@needs_unshare
def test_unshare_level_cuts_the_network(tmp_path):
    spec = make_spec(tmp_path, Isolation.unshare)
    proc = run_inside(spec, """
        import socket
        try:
            socket.create_connection(('192.0.2.1', 80), timeout=2); print('connected')
        except OSError as exc:
            print('refused', exc.errno)
    """)
    assert proc.stdout.startswith("refused"), proc.stdout + proc.stderr


@pytest.mark.parametrize("level", [Isolation.bwrap, Isolation.unshare, Isolation.process])
def test_reap_kills_a_setsid_daemon(tmp_path, level):
    if not probe_level(level)[0]:
        pytest.skip(f"{level.value} unusable here: {probe_level(level)[1]}")
    spec = make_spec(tmp_path, level)
    code = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        time.sleep(120)\n    os._exit(0)\ntime.sleep(120)\n")
    proc = subprocess.Popen(sandbox_prefix(spec) + [sys.executable, "-c", code], cwd=spec.run_dir / "work")
    deadline = time.monotonic() + 20
    while len(run_pids(spec.run_id)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run_pids(spec.run_id), "the sandboxed process never started"
    assert reap(spec.run_id)
    assert run_pids(spec.run_id) == []
    proc.wait(timeout=10)


def test_gpu_holders_is_empty_without_a_gpu_process():
    assert gpu_holders("no-such-run") == []


def test_doctor_reports_the_level(tmp_path):
    found = diagnose()
    text = render(found)
    assert f"isolation reached: {found.level.value}" in text
    assert found.level is detect_isolation()
    assert found.kernel_start_seconds is not None, found.kernel_start_error
    assert found.full == (found.level is Isolation.bwrap)


@pytest.mark.skipif(shutil.which("nvidia-smi") is None, reason="no NVIDIA GPU on this machine")
@needs_bwrap
def test_gpu_is_visible_inside(tmp_path):
    spec = make_spec(tmp_path, Isolation.bwrap, gpu=0, limits=Limits(memory_bytes=None))
    listed = subprocess.run(sandbox_prefix(spec) + ["nvidia-smi", "-L"], capture_output=True, text=True,
                            timeout=60)
    assert listed.stdout.startswith("GPU"), listed.stderr[-2000:]
    proc = run_inside(spec, "import torch; print(torch.version.cuda is None or torch.cuda.is_available())",
                      timeout=120)
    assert proc.stdout.strip() == "True", proc.stderr[-2000:]
    assert gpu_holders(spec.run_id) == []


@needs_bwrap
@needs_root
def test_gpu_runs_get_a_memory_cgroup_instead_of_rlimit_as(tmp_path):
    from grader.run.sandbox import memory_cgroup, release_cgroup

    spec = make_spec(tmp_path, Isolation.bwrap, gpu=0, limits=Limits(memory_bytes=None, gpu_memory_bytes=256 * 2**20))
    if memory_cgroup(spec) is None:
        release_cgroup(spec)
        pytest.skip("no writable memory cgroup here")
    proc = run_inside(spec, "x = bytearray(1024 * 2**20); x[::4096] = b'x' * len(x[::4096]); print('survived')")
    reap(spec.run_id)
    release_cgroup(spec)
    assert "survived" not in proc.stdout and proc.returncode != 0  # the cgroup's OOM killer ended it


def test_require_isolation_refuses_to_grade_below_bwrap(tmp_path, monkeypatch):
    from grader import pipeline
    from grader.config import Settings
    from grader.records import Submission

    suite = ROOT / "fixtures" / "hostile" / "suite"
    monkeypatch.setattr(pipeline, "week_suite", lambda week, public=False: suite)
    monkeypatch.setattr(pipeline, "machine_isolation", lambda: Isolation.unshare)
    submission = Submission(week="week1", source=str(tmp_path), workdir=str(tmp_path), notebook="week1.ipynb")
    with pytest.raises(IsolationError, match="'bwrap' was required"):
        pipeline.grade_submission(submission, Settings(profile="cpu", require_isolation=True))


# ---- what the boundary must also hold: forbidden packages, no root, refusal below bubblewrap ----------

FORBID = ("torch", "sympy", "mpmath", "functorch")
WEAK_LEVELS = [Isolation.bwrap, Isolation.unshare]


def _usable(level: Isolation) -> None:
    works, why = probe_level(level)
    if not works:
        pytest.skip(f"{level.value} unusable here: {why}")


@pytest.mark.parametrize("level", WEAK_LEVELS)
def test_forbidden_packages_cannot_be_imported_whatever_the_route(tmp_path, level):
    """Every route to torch fails with the week's message: names built at run time, importlib, a path
    hack to the package folder by name, loading its files directly, ctypes on libtorch."""
    if os.geteuid() != 0 and level is Isolation.unshare:
        pytest.skip("the unshare level mounts over packages only as root")
    _usable(level)
    import torch

    torch_dir = Path(torch.__file__).parent
    spec = make_spec(tmp_path, level, forbid=FORBID, forbid_note="week 1 forbids it")
    proc = run_inside(spec, f"""
        import ctypes, importlib, importlib.util, sys
        routes = {{
            "import": lambda: __import__("to" + "rch"),
            "importlib": lambda: importlib.import_module("sympy"),
            "submodule": lambda: importlib.import_module("torch.autograd"),
            "path_hack": lambda: (sys.path.insert(0, {str(torch_dir.parent)!r}), __import__("mpmath")),
            "file": lambda: importlib.util.spec_from_file_location("t", {str(torch_dir / '__init__.py')!r})
                            .loader.exec_module(importlib.util.module_from_spec(
                                importlib.util.spec_from_file_location("t", {str(torch_dir / '__init__.py')!r}))),
            "ctypes": lambda: ctypes.CDLL({str(torch_dir / 'lib' / 'libtorch_cpu.so')!r}),
        }}
        for name, route in routes.items():
            try:
                route()
                print(name, "LOADED")
            except BaseException as exc:
                print(name, type(exc).__name__, str(exc).replace(chr(10), " ")[:120])
        print("numpy", __import__("numpy").__name__)  # what is not forbidden still imports
    """)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(" ", 1) for line in proc.stdout.strip().splitlines())
    assert "LOADED" not in proc.stdout, proc.stdout
    for route in ("import", "importlib", "submodule", "path_hack", "file"):
        assert "cannot be imported while grading: week 1 forbids it" in lines[route], lines
    assert lines["import"].startswith("ModuleNotFoundError 'torch'")
    assert lines["numpy"] == "numpy"


@pytest.mark.parametrize("level", WEAK_LEVELS)
def test_address_layout_is_fixed_at_every_level(tmp_path, level):
    """ASLR is off inside (setarch -R innermost: bwrap's uid switch resets the personality): two runs
    place a fresh object at the same address."""
    _usable(level)
    seen = []
    for index in range(2):
        spec = make_spec(tmp_path / str(index), level)
        proc = run_inside(spec, "print(open('/proc/self/personality').read().strip(), hex(id(object())))")
        assert proc.returncode == 0, proc.stderr
        seen.append(proc.stdout.split())
    assert int(seen[0][0], 16) & 0x0040000  # ADDR_NO_RANDOMIZE
    assert seen[0] == seen[1]


@needs_root
@needs_unshare
def test_unshare_level_as_root_switches_uid_and_covers_the_host(tmp_path, monkeypatch):
    """No kernel runs as root: its own uid, no capabilities, the repository (solutions/, .git), the
    homes and other runs hidden; the environment readable and not writable."""
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "tok-unshare")
    (tmp_path / "decoy").mkdir()
    (tmp_path / "decoy" / "other-student.ipynb").write_text("{}")
    spec = make_spec(tmp_path / "a", Isolation.unshare)
    proc = run_inside(spec, f"""
        import json, os, sys
        status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines())
        def writable(path):
            try:
                open(path, 'w').close(); return True
            except OSError:
                return False
        print(json.dumps({{
            "uid": os.getuid(), "capeff": status['CapEff'].strip(),
            "solutions": os.path.exists({str(ROOT / 'solutions')!r}), "git": os.path.exists({str(ROOT / '.git')!r}),
            "decoy": os.path.exists({str(tmp_path / 'decoy')!r}), "root": sorted(os.listdir('/root')),
            "venv": os.path.exists(sys.executable), "venv_writable": writable(sys.prefix + '/pwned'),
            "secret": 'GRADER_SECRET_TOKEN' in os.environ,
        }}))
    """)
    assert proc.returncode == 0, proc.stderr
    import json

    seen = json.loads(proc.stdout)
    assert seen["uid"] == spec.uid != 0 and int(seen["capeff"], 16) == 0
    assert not seen["solutions"] and not seen["git"] and not seen["decoy"] and not seen["secret"]
    assert set(seen["root"]) <= {".pyenv"}  # only the path to the base Python, bound back
    assert seen["venv"] and not seen["venv_writable"]


@needs_root
def test_reap_kills_every_process_of_the_run_uid(tmp_path):
    """A daemon that exec'd itself a clean environment (no GRADER_RUN_ID) still goes: it keeps the run's uid."""
    spec = make_spec(tmp_path, Isolation.process)
    daemon = subprocess.Popen(["setpriv", f"--reuid={spec.uid}", f"--regid={spec.uid}", "--clear-groups",
                               "env", "-i", "sleep", "120"])
    try:
        deadline = time.monotonic() + 10
        while daemon.pid not in run_pids(spec.run_id, uid=spec.uid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.pid not in run_pids(spec.run_id)  # its environment no longer names the run
        assert daemon.pid in reap(spec.run_id, uid=spec.uid)
        assert daemon.wait(timeout=10) == -9
    finally:
        daemon.kill()


def test_process_level_problems_are_one_clear_line(tmp_path, monkeypatch):
    """As root the process level hides nothing: refused where the run's uid could not read the environment,
    or could read the hidden checks."""
    from grader.run import sandbox

    if os.geteuid() != 0:
        assert sandbox.level_problem(Isolation.process) == ""
        return
    closed = tmp_path / "closed"
    (closed / "env").mkdir(parents=True)
    closed.chmod(0o700)
    monkeypatch.setattr(sandbox, "grading_env_paths", lambda: [closed / "env"])
    problem = sandbox.level_problem(Isolation.process)
    assert "cannot read the grading environment" in problem and "0700" in problem and "\n" not in problem
    import tempfile

    # pytest's own folders are 0700, and so is the private temp folder a grader in this process may have
    # set as tempfile's default (grader.run.tempdirs): /tmp itself is open to every user.
    opened = Path(tempfile.mkdtemp(prefix="grader-open-", dir="/tmp"))
    try:
        (opened / "env").mkdir()
        (opened / "solutions").mkdir()
        for path in (opened, opened / "env", opened / "solutions"):
            path.chmod(0o755)
        monkeypatch.setattr(sandbox, "grading_env_paths", lambda: [opened / "env"])
        monkeypatch.setattr(sandbox, "SOLUTIONS", opened / "solutions")
        assert "could read the hidden checks" in sandbox.level_problem(Isolation.process)
        (opened / "solutions").chmod(0o750)
        assert sandbox.level_problem(Isolation.process) == ""
    finally:
        shutil.rmtree(opened)


def test_check_level_refuses_below_bubblewrap_unless_allowed(monkeypatch):
    from grader.run import sandbox

    monkeypatch.setattr(sandbox, "level_works", lambda level: (level is not Isolation.bwrap, "bwrap: no namespaces"))
    sandbox.check_level(Isolation.bwrap, allow_weak=False)
    with pytest.raises(IsolationError) as refused:
        sandbox.check_level(Isolation.unshare, allow_weak=False)
    message = str(refused.value)
    assert "'unshare'" in message and "--allow-weak-isolation" in message and "\n" not in message
    sandbox.check_level(Isolation.unshare, allow_weak=True)
    with pytest.raises(IsolationError, match="'bwrap' was required"):
        sandbox.check_level(Isolation.unshare, allow_weak=True, required=True)
    monkeypatch.setattr(sandbox, "level_works", lambda level: (False, "no uid can read it"))
    with pytest.raises(IsolationError, match="cannot grade with 'process' isolation: no uid can read it"):
        sandbox.check_level(Isolation.process, allow_weak=True)
