"""Runs INSIDE the sandboxed kernel after the student's cells: answers the judge's requests.

Executed with runpy, given STUDENT_NS (the notebook's globals), PROBE_DIR, PROBE_TIMEOUT and HEAP_LIB
(the fixed-address allocator, or None). It holds no expected answers. It calls each requested
procedure in the week's probes.py and writes what came back as plain data: answers.json plus arrays
as .npy files, never pickle. Uses only the standard library, numpy and (when present) torch.

Before the first probe it makes the run reproducible: the kernel's other threads are let finish what
the notebook's output left them, the probes' own prints go nowhere, and every small object the probes
create comes from HEAP_LIB's fixed region (so a set of Values iterates in the same order each run).
"""

import ctypes
import gc
import importlib.util
import json
import math
import os
import signal
import sys
import time
import traceback

PROBE_DIR = globals().get("PROBE_DIR")
STUDENT_NS = globals().get("STUDENT_NS")
PROBE_TIMEOUT = float(globals().get("PROBE_TIMEOUT") or 300)
HEAP_LIB = globals().get("HEAP_LIB")
HEAP_REGION = 0x200000000000  # far below the kernel's mappings and far above its heap, on x86_64 and arm64
ANSWERS = os.path.join(PROBE_DIR, "answers")
ARRAYS = os.path.join(ANSWERS, "arrays")


class ProbeTimeout(BaseException):
    """BaseException so that a student's `except Exception` cannot swallow it."""


def _on_alarm(signum, frame):
    raise ProbeTimeout()


def _load_inputs(value):
    import numpy as np

    if isinstance(value, dict):
        if set(value) == {"$array"}:
            return np.load(os.path.join(PROBE_DIR, "inputs", value["$array"]), allow_pickle=False)
        return {k: _load_inputs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_load_inputs(v) for v in value]
    return value


class _Encoder:
    def __init__(self, prefix):
        self.prefix = prefix
        self.count = 0

    def __call__(self, value):
        import numpy as np

        if value is None or isinstance(value, (bool, str)):
            return value
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else repr(value)  # "nan"/"inf" fail strictly
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(value, torch.Tensor):  # Parameters and subclasses too
            try:
                value = value.detach().cpu().numpy()
            except Exception:
                return None
        if isinstance(value, np.generic):
            return self(value.item())
        if isinstance(value, np.ndarray):
            if value.dtype == object:
                return None
            name = f"{self.prefix}-{self.count}.npy"
            self.count += 1
            np.save(os.path.join(ARRAYS, name), np.ascontiguousarray(value), allow_pickle=False)
            return {"$array": name}
        if isinstance(value, dict):
            return {str(k): self(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self(v) for v in value]
        return repr(value)[:200]  # an odd object becomes a string: it fails strict typing


def _write(answers):
    tmp = os.path.join(ANSWERS, ".answers.json.tmp")
    with open(tmp, "w") as fh:
        json.dump(answers, fh)
    os.replace(tmp, os.path.join(ANSWERS, "answers.json"))


def _student_error(exc):
    """Keep the student-facing part of the traceback: frames outside this runtime."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "probe_runtime" not in f.filename]
    where = ""
    if frames:
        last = frames[-1]
        where = f" (in {last.name}, line {last.lineno}: {(last.line or '').strip()[:120]})"
    return f"{type(exc).__name__}: {str(exc)[:500]}{where}"


def _meta():
    meta = {"python": sys.version.split()[0], "device": "cpu"}
    torch = sys.modules.get("torch")
    if torch is not None:
        meta["torch"] = torch.__version__
        try:
            if torch.cuda.is_available():
                meta["device"] = "cuda:" + torch.cuda.get_device_name(0)
        except Exception:
            pass
    return meta


class _Allocator(ctypes.Structure):  # PyMemAllocatorEx
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p), ("calloc", ctypes.c_void_p),
                ("realloc", ctypes.c_void_p), ("free", ctypes.c_void_p)]


_KEPT = []  # what the heap switch must keep alive until the kernel ends


def _drain_free_lists(keep):
    """Python reuses freed floats, tuples, lists and dicts from free lists, at addresses from before the
    switch: take them all out (and keep them), so that every new one comes from the fixed region."""
    keep.append([i + 0.5 for i in range(256)])
    keep.append([[] for _ in range(256)])
    keep.append([{} for _ in range(256)])
    keep.append([{i: i} for i in range(256)])
    keep.append([tuple([None] * n) for n in range(1, 20) for _ in range(2048)])
    keep.append(slice(None))


def _deterministic_heap():
    """Switch the object and memory allocators to HEAP_LIB; return a word for the grade's provenance."""
    if not HEAP_LIB:
        return "not fixed: the grader's allocator (grader-detalloc.so) is not built here"
    try:
        lib = ctypes.CDLL(HEAP_LIB)
        get, put = ctypes.pythonapi.PyMem_GetAllocator, ctypes.pythonapi.PyMem_SetAllocator
    except (OSError, AttributeError) as exc:
        return f"not fixed: {exc}"
    get.argtypes = put.argtypes = [ctypes.c_int, ctypes.c_void_p]
    get.restype = put.restype = None
    install = lib.grader_detalloc_install
    install.argtypes = [ctypes.c_size_t] + [ctypes.c_void_p] * 4
    slots = [_Allocator() for _ in range(4)]
    keep = [lib, slots, get, put]
    _KEPT.append(keep)
    gc.collect()  # the notebook's garbage goes now, not at a time that depends on its history
    _drain_free_lists(keep)
    gc.freeze()  # what exists now is never collected again: collections see only the probes' objects
    get(1, ctypes.byref(slots[0]))  # PYMEM_DOMAIN_MEM
    get(2, ctypes.byref(slots[1]))  # PYMEM_DOMAIN_OBJ
    if install(HEAP_REGION, *(ctypes.byref(slot) for slot in slots)) != 0:
        return "not fixed: the fixed region is taken"
    put(1, ctypes.byref(slots[2]))
    put(2, ctypes.byref(slots[3]))
    # Fill the free lists with blocks of the fixed region: an object from before that is freed while the
    # probes run then goes back to its own allocator instead of being handed out again.
    _drain_free_lists([])
    lib.grader_detalloc_pause(1)  # the runtime's own work allocates as before; only the probes do not
    _HEAP.append(lib.grader_detalloc_pause)
    return "fixed"


_HEAP = []  # the pause switch, once the fixed heap is in place


def _probe_heap(on):
    """Probes allocate from the fixed region; between them, collect their garbage at a fixed point."""
    if _HEAP:
        _HEAP[0](0 if on else 1)
        if not on:
            gc.collect()


class _Quiet:
    """stdout/stderr while the probes run: a student's print must not wake the kernel's output thread."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass


def _settle():
    """Let the kernel's output thread send what the notebook printed; its work would otherwise interleave
    with the probes' first allocations. Then silence the probes' own output."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, RuntimeError):  # closed or replaced by the notebook: nothing to wait for
            continue
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = _Quiet()
    return saved


def _run_alone():
    """Run the probes in a fork of the kernel: single-threaded, so that nothing the kernel's own threads
    do (output, control messages) can change what the probes allocate. Not where torch is loaded (a
    forked CUDA context cannot be used, and its thread pools would have to be rebuilt), nor where the
    notebook's processes leave none to fork."""
    try:
        pid = os.fork()
    except OSError:  # no process left to fork (the notebook's own fork bomb holds them): run them here
        _run()
        return
    if pid == 0:
        status = 1
        try:
            _run()
            status = 0
        finally:
            os._exit(status)  # never the kernel's exit path: its sockets belong to the parent
    try:
        _, status = os.waitpid(pid, 0)
    except BaseException:  # interrupted (the cell's timeout): the fork goes with it
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise
    if os.WIFSIGNALED(status):
        _record_missing(f"the process running the grader's calls died (signal {os.WTERMSIG(status)}: a crash "
                        "or out of memory) during this call or before it")
    else:
        _record_missing("the process running the grader's calls exited (os._exit in your code?) during this "
                        "call or before it")


def _record_missing(reason):
    """The fork ended early: every request it did not answer says why (the kernel itself lives on)."""
    with open(os.path.join(PROBE_DIR, "requests.json")) as fh:
        requests = json.load(fh)
    try:
        with open(os.path.join(ANSWERS, "answers.json")) as fh:
            answers = json.load(fh)
    except (OSError, ValueError):
        answers = {}
    for req in requests:
        answers.setdefault(req["id"], {"ok": False, "error": reason})
    _write(answers)


def main():
    saved = _settle()
    try:
        if "torch" in sys.modules:
            _run()
        else:
            _run_alone()
    finally:
        sys.stdout, sys.stderr = saved


def _run():
    os.makedirs(ARRAYS, exist_ok=True)
    spec = importlib.util.spec_from_file_location("grader_week_probes", os.path.join(PROBE_DIR, "probes.py"))
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    with open(os.path.join(PROBE_DIR, "requests.json")) as fh:
        requests = json.load(fh)
    meta = _meta()
    meta["heap"] = _deterministic_heap()
    answers = {"__meta__": {"ok": True, "value": meta}}
    _write(answers)
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for req in requests:
            rid, name = req["id"], req["probe"]
            budget = float(req.get("timeout") or PROBE_TIMEOUT)
            start = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, budget)
            try:
                fn = getattr(probes, name)
                args = _load_inputs(req.get("args", {}))
                _probe_heap(True)
                try:
                    value = fn(STUDENT_NS, **args)
                finally:
                    _probe_heap(False)
                signal.setitimer(signal.ITIMER_REAL, 0)
                answers[rid] = {"ok": True, "value": _Encoder(rid)(value)}
            except ProbeTimeout:
                answers[rid] = {"ok": False, "error": f"took longer than {budget:.0f} s and was stopped"}
            except BaseException as exc:  # a student's SystemExit/KeyboardInterrupt is their failure
                signal.setitimer(signal.ITIMER_REAL, 0)
                answers[rid] = {"ok": False, "error": _student_error(exc)}
            answers[rid]["seconds"] = round(time.perf_counter() - start, 4)
            answers["__meta__"]["value"] = {**_meta(), "heap": meta["heap"]}
            _write(answers)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


main()
