"""Runs INSIDE the sandboxed kernel after the student's cells: answers the judge's requests.

Executed with runpy, given STUDENT_NS (the notebook's globals), PROBE_DIR and PROBE_TIMEOUT.
It holds no expected answers. It calls each requested procedure in the week's probes.py and
writes what came back as plain data: answers.json plus arrays as .npy files, never pickle.
Uses only the standard library, numpy and (when present) torch.
"""

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


def main():
    os.makedirs(ARRAYS, exist_ok=True)
    spec = importlib.util.spec_from_file_location("grader_week_probes", os.path.join(PROBE_DIR, "probes.py"))
    probes = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probes)
    with open(os.path.join(PROBE_DIR, "requests.json")) as fh:
        requests = json.load(fh)
    answers = {"__meta__": {"ok": True, "value": _meta()}}
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
                value = fn(STUDENT_NS, **_load_inputs(req.get("args", {})))
                signal.setitimer(signal.ITIMER_REAL, 0)
                answers[rid] = {"ok": True, "value": _Encoder(rid)(value)}
            except ProbeTimeout:
                answers[rid] = {"ok": False, "error": f"took longer than {budget:.0f} s and was stopped"}
            except BaseException as exc:  # a student's SystemExit/KeyboardInterrupt is their failure
                signal.setitimer(signal.ITIMER_REAL, 0)
                answers[rid] = {"ok": False, "error": _student_error(exc)}
            answers[rid]["seconds"] = round(time.perf_counter() - start, 4)
            answers["__meta__"]["value"] = _meta()
            _write(answers)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


main()
