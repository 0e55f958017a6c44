"""One node of a Ray cluster grading a batch: a long-lived actor that holds the node's warm local pool.

The actor (NodeGrader) starts the node's fork servers and its judge session once, as the local pool does on
one machine (grader.cohort.pool), and grades what the driver sends it, `slots` at a time. Nothing crosses
between the driver and a node but data, so no node needs the driver's files:
- once per node, through Ray's object store: the week's data files (checked against their sha256 here);
- per submission: a tar of its exported files (regular files and folders only; built by the driver from
  the fork store under git's caps) and the Job as JSON, whose paths are the driver's and are replaced here;
- back: the Grade as JSON and its artifacts as bytes, which the driver writes beside its reports.
Only str, bytes and dicts of them travel: what a node returns is built by the grader, never by student code.

The hidden suite is the node's own installed copy (the grader installed from the same commit on every
node): a node whose grader code, version or hidden suite differs from the driver's refuses to grade (a
harness error naming the node, never a grade made with other checks).
"""

from __future__ import annotations

import hashlib
import io
import os
import queue
import shutil
import tarfile
import tempfile
import threading
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

import grader
from grader.cohort.pool import Job, LocalPool, error_grade
from grader.pipeline import artifacts_folder
from grader.records import Grade

MAX_FILES_BYTES = 256 * 2**20  # a submission's tar as unpacked (the export itself stops at 200 MiB)
MAX_FILES = 6000  # entries (the export stops at 5000 files)
MAX_ARTIFACT_BYTES = 64 * 2**20  # what one grading's artifacts may bring back to the driver
_STOP = object()


class NodeSpec(BaseModel):
    """What every node of a batch must agree on with the driver, and how it grades."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    week: str
    settings: dict  # Settings as JSON (profile resolved by the driver)
    slots: int  # gradings at once on this node (one per GPU, or one per `threads` cores)
    grader_version: str
    code_hash: str  # grader/ as installed on the driver
    checks_hash: str  # the week's suite (suite_hash) on the driver
    data: dict[str, str] = Field(default_factory=dict)  # data file name -> sha256
    judge_preload: tuple[str, ...] = ()


def code_hash() -> str:
    """sha256 over the grader package's own source (what decides how a grade is made, beside the suite)."""
    root = Path(grader.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".c") and path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def pack_files(folder: Path) -> tuple[bytes, list[str]]:
    """A gzip'd tar of the folder's regular files and folders (what the pipeline grades); symbolic links and
    anything else are left out and named, as the pipeline would name them."""
    skipped: list[str] = []
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=1) as tar:
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder).as_posix()
            if path.is_symlink():
                skipped.append(f"not copied: {rel} (symbolic link)")
            elif path.is_dir() or path.is_file():
                tar.add(path, arcname=rel, recursive=False)
    return buffer.getvalue(), skipped


def unpack_files(data: bytes, dest: Path) -> None:
    """Unpack a tar from pack_files into dest: regular files and folders inside dest only (tarfile's data
    filter), within MAX_FILES and MAX_FILES_BYTES. ValueError (a harness error: the driver built it) else."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = tar.getmembers()
        if len(members) > MAX_FILES or sum(m.size for m in members) > MAX_FILES_BYTES:
            raise ValueError(f"the submission's files are over {MAX_FILES} entries or {MAX_FILES_BYTES >> 20} MiB")
        if any(not (m.isfile() or m.isdir()) for m in members):
            raise ValueError("the submission's files hold something other than files and folders")
        tar.extractall(dest, filter="data")


def read_artifacts(grade: Grade, folder: Path) -> dict[str, bytes]:
    """The grade's artifact files (plain files directly in `folder`), up to MAX_ARTIFACT_BYTES in all."""
    out: dict[str, bytes] = {}
    total = 0
    for name, path in grade.artifacts.items():
        path = Path(path)
        if path.parent != folder or path.is_symlink() or not path.is_file():
            continue
        total += path.stat().st_size
        if total > MAX_ARTIFACT_BYTES:
            break
        out[name] = path.read_bytes()
    return out


def safe_name(name: str) -> bool:
    """An artifact name the driver may write as a file in the grade's artifacts folder."""
    return bool(name) and PurePosixPath(name).name == name and name not in (".", "..") and "\\" not in name


def write_data(folder: Path, expected: dict[str, str], data: dict[str, bytes]) -> str:
    """Write the files the driver shipped (name -> bytes) into this node's data folder, each checked
    against its sha256; returns what did not arrive intact ("" when all did). A name is a data file or
    one of the judge's held-out files (heldout/NAME): nothing else, nowhere else."""
    from grader.config import HELDOUT_DIR

    folder.mkdir(parents=True)
    for name, want in expected.items():
        blob = data.get(name, b"")
        parts = name.split("/")
        if not (safe_name(parts[-1]) and (len(parts) == 1 or parts[:-1] == [HELDOUT_DIR])) \
                or hashlib.sha256(blob).hexdigest() != want:
            return f"the data file {name!r} did not arrive intact"
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(blob)
    return ""


class NodeGrader:
    """The actor: a LocalPool fed from the driver's calls (a threaded actor, one call per grading).

    The pool runs in a thread of its own for the actor's whole life: its fork servers die with the thread
    that started them (PR_SET_PDEATHSIG), and a Ray worker thread may end before the actor does."""

    def __init__(self, spec_json: str, data: dict[str, bytes]):
        import ray

        self.spec = NodeSpec.model_validate_json(spec_json)
        self.root = Path(tempfile.mkdtemp(prefix="grader-ray-node-"))
        self.node_id = ray.get_runtime_context().get_node_id()
        self.ip = ray.util.get_node_ip_address()
        self.gpus = [int(g) for g in ray.get_gpu_ids()]
        self.refusal = self._refusal(data)
        self.broken = ""  # the pool's thread died of a harness bug: every grading here is a harness error
        self._queue: queue.Queue = queue.Queue()
        self._waiting: dict[str, tuple[threading.Event, list[Grade]]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        if not self.refusal:
            self._thread = threading.Thread(target=self._serve, name="grader-node-pool", daemon=True)
            self._thread.start()

    def _refusal(self, data: dict[str, bytes]) -> str:
        """Why this node must not grade this batch ("" when it may); writes the week's data files."""
        from grader.config import suite_hash, week_suite

        spec, here = self.spec, f"node {self.ip} ({self.node_id[:8]})"
        fix = "install the grader from the driver's commit on every node (README: 'Grading on a Ray cluster')"
        if spec.grader_version != grader.__version__:
            return f"{here} runs grader {grader.__version__}, the driver {spec.grader_version}: {fix}"
        if spec.code_hash != code_hash():
            return f"{here}: its grader code differs from the driver's: {fix}"
        try:
            checks = suite_hash(week_suite(spec.week, public=spec.settings.get("public", False)))
        except (OSError, ValueError) as exc:
            return f"{here} has no checks for {spec.week} ({exc}): {fix}"
        if checks != spec.checks_hash:
            return (f"{here}: its checks for {spec.week} differ from the driver's (suite hash {checks[:12]} here, "
                    f"{spec.checks_hash[:12]} on the driver): {fix}")
        problem = write_data(self.root / "data", spec.data, data)
        return f"{here}: {problem}" if problem else ""

    def _serve(self) -> None:
        try:
            self._run_pool()
        except BaseException:  # noqa: BLE001 - a harness bug: every call waiting here gets a harness error
            import traceback

            with self._lock:
                self.broken = f"the grading pool of node {self.ip} failed: {traceback.format_exc()[-1500:]}"
                waiting, self._waiting = self._waiting, {}
            for event, holder in waiting.values():
                holder.append(None)
                event.set()

    def _run_pool(self) -> None:
        from grader.config import Settings, load_week, week_suite
        from grader.judge.context import session_context

        data_dir = self.root / "data"
        os.environ["GRADER_DATA_DIR"] = str(data_dir)  # the fork servers' grader.config reads it at import
        settings = Settings.model_validate(self.spec.settings)
        suite = week_suite(self.spec.week, public=settings.public)
        config = load_week(suite)
        session = session_context(suite, settings.profile, config.profile(settings.profile).thresholds,
                                  settings.select, data_dir)
        pool = LocalPool(self.spec.slots, self.gpus, judge_preload=self.spec.judge_preload, judge_session=session)
        pool.start()
        pool.run(self._feed(), self._done)

    def _feed(self):
        """The pool's job source: the calls' jobs as they come, None while none does, to the end of the actor."""
        while True:
            try:
                item = self._queue.get(timeout=0.02)
            except queue.Empty:
                yield None
                continue
            if item is _STOP:
                return
            yield item

    def _done(self, job: Job, grade: Grade) -> None:
        with self._lock:
            event, holder = self._waiting.pop(job.key)
        holder.append(grade)
        event.set()

    def describe(self) -> dict:
        """Who this node is and whether it grades: the driver's first call, answered once the actor is up."""
        return {"node": self.node_id, "ip": self.ip, "slots": self.spec.slots, "gpus": self.gpus,
                "refusal": self.refusal}

    def grade(self, job_json: str, files: bytes | None) -> dict:
        """Grade one submission from its files (None: nothing was exported, the grade says why) and return
        {"grade": JSON, "artifacts": {name: bytes}}. The job's paths are the driver's: here they are this
        node's own scratch folders, and the driver puts its own back."""
        job = Job.model_validate_json(job_json)
        if self.refusal or self.broken:
            return {"grade": error_grade(job, self.refusal or self.broken).model_dump_json(), "artifacts": {}}
        work = Path(tempfile.mkdtemp(prefix="job-", dir=self.root))
        try:
            files_dir, out = work / "files", work / "reports"
            if files is not None:
                unpack_files(files, files_dir)
            ticket = work.name
            local = job.model_copy(update={
                "key": ticket, "export_from": None, "keep_export": False,
                "submission": job.submission.model_copy(update={"workdir": str(files_dir)}),
                "settings": {**job.settings, "out_dir": str(out)}})
            event, holder = threading.Event(), []
            with self._lock:
                if self.broken:
                    return {"grade": error_grade(job, self.broken).model_dump_json(), "artifacts": {}}
                self._waiting[ticket] = (event, holder)
            self._queue.put(local)
            event.wait()
            grade = holder[0] or error_grade(job, self.broken)
            folder = artifacts_folder(out, job.submission)
            return {"grade": grade.model_dump_json(), "artifacts": read_artifacts(grade, folder)}
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def close(self) -> None:
        """Stop the pool (its fork servers and any grading left) and remove this node's scratch."""
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)
