"""Grade a batch on a Ray cluster (optional extra: `pip install 'grader[ray]'`), one warm actor per node.

Each node that can grade gets one NodeGrader actor (grader.cohort.ray_node) holding the node's fork servers
and judge session for the whole batch, as the local pool holds them on one machine; it grades `slots`
submissions at once: one per GPU on a GPU cluster (Ray sets each kernel's device), else one per `threads`
cores of the node (or --jobs). The actor holds all of its node's GPUs (or CPUs): the cluster is the batch's.

The driver sends each submission as data (its exported files, a tar) and writes every report, artifact,
cache entry and gradebook row itself; no node reads a path of the driver's. Faults, as the local pool
reports them or better:
- a node (or its actor) lost mid-grading: its submissions go to another node, or to the same one when it
  is back (up to ATTEMPTS tries, then a harness error, which the batch grades once more and never caches);
  while no node can grade, the driver waits up to NODE_WAIT seconds for one to join;
- a grading past its harness timeout: the node's own pool stops it (resource_limit, as the local pool); a node
  that does not answer by then plus ACTOR_GRACE has its actor killed (its other submissions go elsewhere);
- a node whose grader or checks differ from the driver's refuses the batch: a harness error naming it;
- Ctrl-C (or any error) kills every actor: what was graded is cached, nothing else is.
Measured with Ray 2.60 (DESIGN, "Scale facts"): check capacity before submitting (an infeasible request waits
forever); a task cancel is not enough (it left the task running): the actor is killed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from grader import __version__
from grader.caps import CapExceeded
from grader.cohort.pool import Done, Job, describe_os_error, error_grade, export_job, pull
from grader.cohort.ray_connect import connect
from grader.cohort.ray_node import NodeGrader, NodeSpec, code_hash, pack_files, safe_name
from grader.config import DATA_DIR, HELDOUT_DIR, Settings, load_week, suite_hash, week_suite
from grader.judge.process import judge_preload
from grader.pipeline import artifacts_folder
from grader.records import Grade

ATTEMPTS = 3  # tries of one submission on nodes that were lost under it
NODE_WAIT = float(os.environ.get("GRADER_RAY_NODE_WAIT", "300"))  # seconds with no node able to grade
ACTOR_GRACE = 120.0  # seconds past a job's harness timeout before its node's actor is killed
ACTOR_START = 300.0  # seconds for a node's actor to start (its resources may be held by another batch)
REFRESH = 1.0  # seconds between looks at the cluster's nodes
# Settings a mentor gives the driver that every node must grade with (grader.caps, grader.config).
FORWARDED = ("GRADER_SOLUTIONS_DIR", "GRADER_THREADS", "GRADER_CAP_", "GRADER_ALLOW_", "GRADER_REQUIRE_")


class RayCapacityError(RuntimeError):
    """The cluster cannot run a grading at all (e.g. GPU gradings on a cluster with no GPU)."""


def node_data(config) -> dict[str, bytes]:
    """What each node needs of fixtures/data: the week's files for the sandbox, and the held-out files
    its judge scores on (which never enter a sandbox)."""
    heldout = sorted(f"{HELDOUT_DIR}/{p.name}" for p in (DATA_DIR / HELDOUT_DIR).glob("*") if p.is_file())
    return {name: (DATA_DIR / name).read_bytes() for name in [*config.data, *heldout]}


@dataclass
class _Flight:
    job: Job
    sent: float


@dataclass
class _Node:
    node_id: str
    actor: object
    started: float
    ready: object = None  # the describe() call until it answers
    info: dict = field(default_factory=dict)
    flights: dict = field(default_factory=dict)  # ObjectRef -> _Flight

    @property
    def slots(self) -> int:
        return int(self.info.get("slots", 0))

    @property
    def name(self) -> str:
        return f"node {self.info.get('ip', '?')} ({self.node_id[:8]})"


class RayPool:
    """Grade jobs on the cluster at `address`: connect(), start(week, settings), run(...) (more than once), close()."""

    def __init__(self, address: str, *, init: dict | None = None, gpu_per_task: bool | None = None,
                 slots_per_node: int | None = None, echo: Callable[[str], None] = lambda s: print(s, file=sys.stderr)):
        if not address:
            raise ValueError("Ray needs an explicit address: 'local', HOST:PORT or ray://HOST:PORT")
        self.address, self.init, self.gpu_per_task = address, dict(init or {}), gpu_per_task
        self.slots_per_node, self.echo = slots_per_node, echo
        self.ray = None
        self.started = False  # ours to shut down at close
        self.nodes: dict[str, _Node] = {}
        self.refused: dict[str, str] = {}  # node id -> why it does not grade this batch
        self.retry_at: dict[str, float] = {}  # node id -> when its actor may be started again
        self.tries: dict[str, int] = {}  # job key -> tries lost with a node
        self._spec: NodeSpec | None = None
        self._data = None
        self._looked = 0.0
        self._alive: dict[str, dict] = {}
        self._starved_since: float | None = None
        self._requeue: list[Job] = []
        self._actor_class = None
        self._threads = 2

    # ---- the cluster ------------------------------------------------------------------------------

    def connect(self) -> RayPool:
        """Connect (RayConnectError, ValueError) and check that some node can grade (RayCapacityError)."""
        import ray

        from grader.cohort.ray_connect import parse_address

        parse_address(self.address)  # ValueError naming --address, connected or not
        self.started = not ray.is_initialized()  # a test or a notebook connected already: its cluster is used
        self.ray = connect(self.address, self.init) if self.started else ray
        if self.gpu_per_task is None:  # auto: one GPU per grading when the cluster has GPUs
            self.gpu_per_task = self.ray.cluster_resources().get("GPU", 0) >= 1
        if not self._candidates():
            raise RayCapacityError(f"no node of the Ray cluster at {self.address} has a {self.resource} (cluster "
                                   f"resources: {self.ray.cluster_resources()}); a grading would wait forever")
        return self

    @property
    def resource(self) -> str:
        return "GPU" if self.gpu_per_task else "CPU"

    @property
    def profile(self) -> str:
        """The profile the cluster grades with when none is given: cuda on GPUs."""
        return "cuda" if self.gpu_per_task else "cpu"

    def _candidates(self) -> dict[str, dict]:
        """Alive nodes with the resource gradings need: node id -> its resources."""
        return {n["NodeID"]: n.get("Resources", {}) for n in self.ray.nodes()
                if n.get("Alive") and n.get("Resources", {}).get(self.resource, 0) >= 1}

    def start(self, week: str, settings: Settings) -> RayPool:
        """Ship the week's data to the object store once and start an actor on every node that can grade."""
        suite = week_suite(week, public=settings.public)
        config = load_week(suite)
        data = node_data(config)
        self._spec = NodeSpec(week=week, settings=json.loads(settings.model_dump_json()), slots=1,
                              grader_version=__version__, code_hash=code_hash(), checks_hash=suite_hash(suite),
                              data={n: hashlib.sha256(b).hexdigest() for n, b in data.items()},
                              judge_preload=judge_preload(config.uses_torch))
        self._data = self.ray.put(data)  # fetched once by each node's actor, not once per grading
        self._threads = settings.threads
        self._look(force=True)
        return self

    def _slots(self, resources: dict) -> int:
        if self.gpu_per_task:
            return int(resources.get("GPU", 0))
        cores = int(resources.get("CPU", 0))
        return self.slots_per_node or max(1, cores // max(1, self._threads))

    def _look(self, force: bool = False) -> None:
        """Start an actor on each node that can grade and has none; drop the actors of nodes that left."""
        now = time.monotonic()
        if not force and now - self._looked < REFRESH:
            return
        self._looked = now
        self._alive = self._candidates()
        for node_id in [n for n in self.nodes if n not in self._alive]:
            self._lose(self.nodes[node_id], "the node left the cluster")
        for node_id, resources in self._alive.items():
            if node_id in self.nodes or node_id in self.refused or self.retry_at.get(node_id, 0) > now:
                continue
            self._start_actor(node_id, resources)

    def _start_actor(self, node_id: str, resources: dict) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        slots = self._slots(resources)
        spec = self._spec.model_copy(update={"slots": slots})
        held = {"num_gpus": int(resources["GPU"]), "num_cpus": 0} if self.gpu_per_task \
            else {"num_cpus": int(resources["CPU"])}
        env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED)}
        if self._actor_class is None:
            self._actor_class = self.ray.remote(NodeGrader)
        actor = self._actor_class.options(
            **held, max_concurrency=slots + 2, max_restarts=0, max_task_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0", **env}},
        ).remote(spec.model_dump_json(), self._data)
        node = _Node(node_id=node_id, actor=actor, started=time.monotonic())
        node.ready = actor.describe.remote()
        self.nodes[node_id] = node

    def _lose(self, node: _Node, why: str, *, count: bool = True) -> list[Job]:
        """Drop a node's actor (killed, in case it still runs); its submissions go back to be graded again."""
        self.nodes.pop(node.node_id, None)
        with contextlib.suppress(Exception):  # gone already: nothing to kill
            self.ray.kill(node.actor, no_restart=True)
        self.retry_at[node.node_id] = time.monotonic() + (0 if not count else 5.0)
        jobs = [flight.job for flight in node.flights.values()]
        if jobs:
            self.echo(f"Ray: {node.name} lost ({why}); grading again elsewhere: "
                      + ", ".join(j.submission.student for j in jobs))
        if count:
            for job in jobs:
                self.tries[job.key] = self.tries.get(job.key, 0) + 1
        self._requeue.extend(jobs)
        return jobs

    def close(self) -> None:
        """Kill every actor (their fork servers and gradings die with them); shut Ray down if we started it."""
        if self.ray is None:
            return
        for node in list(self.nodes.values()):
            with contextlib.suppress(Exception):  # gone already
                self.ray.kill(node.actor, no_restart=True)
        self.nodes.clear()
        if self.started:
            self.ray.shutdown()
        self.ray = None

    # ---- the batch --------------------------------------------------------------------------------

    def run(self, jobs: Iterable[Job | None], on_done: Done, poll: float = 0.2) -> None:
        """Grade every job (None: skip), pulling `jobs` one item per turn so that fetching goes on while the
        first ones are graded. Every job ends in on_done, with a grade or a harness error (else this raises:
        a job that vanished is our bug, and the batch must not end as if it had been graded)."""
        taken: set[str] = set()
        ended: set[str] = set()

        def intake():
            for job in jobs:
                if job is not None:
                    taken.add(job.key)
                yield job

        def done(job: Job, grade: Grade) -> None:
            ended.add(job.key)
            on_done(job, grade)

        self._run(intake(), done, poll)
        if taken - ended:
            raise RuntimeError(f"the Ray executor lost track of {len(taken - ended)} submission(s): "
                               f"{sorted(taken - ended)[:5]}")

    def _run(self, jobs: Iterable[Job | None], on_done: Done, poll: float) -> None:
        source = iter(jobs)
        pending: deque[Job] = deque()
        self._requeue = []
        # _requeue too: a node lost while the last jobs were in flight leaves them only there.
        while source is not None or pending or self._requeue or any(n.flights for n in self.nodes.values()):
            source = pull(source, pending)
            self._look()
            for job in self._requeue:
                if self.tries.get(job.key, 0) >= ATTEMPTS:
                    on_done(job, error_grade(job, f"the Ray nodes grading it were lost {ATTEMPTS} times"))
                else:
                    pending.appendleft(job)
            self._requeue = []
            self._send(pending)
            self._starve(pending, on_done)
            self._collect(on_done, poll if source is None else 0.0)
            self._overdue(on_done)

    def _send(self, pending: deque[Job]) -> None:
        for node in self.nodes.values():
            while pending and node.ready is None and not node.info.get("refusal") and len(node.flights) < node.slots:
                job = pending.popleft()
                files, sent = self._payload(job)
                node.flights[node.actor.grade.remote(sent.model_dump_json(), files)] = _Flight(job, time.monotonic())

    @staticmethod
    def _payload(job: Job) -> tuple[bytes | None, Job]:
        """The submission's files as a tar (exported from the fork store here, then removed) and the job to send."""
        if not job.export_from or not job.submission.commit:
            folder = Path(job.submission.workdir)
            if not folder.is_dir():
                return None, job
            files, skipped = pack_files(folder)
            return files, job.model_copy(update={"submission": job.submission.model_copy(
                update={"problems": [*job.submission.problems, *skipped]})})
        scratch = Path(tempfile.mkdtemp(prefix="grader-ray-export-"))
        try:
            submission = export_job(job, scratch / "files")
            files = pack_files(scratch / "files")[0] if (scratch / "files").is_dir() else None
            if job.keep_export:  # --keep-exports: the driver keeps what it sent, where the local pool keeps it
                shutil.rmtree(job.submission.workdir, ignore_errors=True)
                if files is not None:
                    shutil.copytree(scratch / "files", job.submission.workdir)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return files, job.model_copy(update={"submission": submission, "export_from": None})

    def _collect(self, on_done: Done, timeout: float) -> None:
        for node in [n for n in self.nodes.values() if n.ready is not None]:
            if time.monotonic() - node.started > ACTOR_START:
                self._lose(node, f"its grader did not start within {ACTOR_START:g} s")
        waiting = {n.ready: n for n in self.nodes.values() if n.ready is not None}
        flights = {ref: n for n in self.nodes.values() for ref in n.flights}
        refs = [*waiting, *flights]
        if not refs:
            time.sleep(timeout)
            return
        ready, _ = self.ray.wait(refs, num_returns=1, timeout=timeout)
        for ref in ready:
            if ref in waiting:
                self._ready(waiting[ref], ref)
            elif flights[ref].node_id in self.nodes:
                self._finish(flights[ref], ref, on_done)

    def _ready(self, node: _Node, ref) -> None:
        try:
            node.info = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            self._lose(node, f"its grader did not start: {_last_line(exc)}")
            return
        node.ready = None
        if node.info["refusal"]:
            self.refused[node.node_id] = node.info["refusal"]
            self.echo(f"Ray: {node.info['refusal']}")
            self._lose(node, "refused", count=False)
        else:
            gpus = f" on GPU {', '.join(map(str, node.info['gpus']))}" if node.info["gpus"] else ""
            self.echo(f"Ray: {node.name} grades {node.slots} at once{gpus}")

    def _finish(self, node: _Node, ref, on_done: Done) -> None:
        flight = node.flights.pop(ref)
        job = flight.job
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # the grader raised on the node: ours, not the student's
            on_done(job, error_grade(job, f"harness error on {node.name}: {_last_line(exc)}"))
            return
        except self.ray.exceptions.RayError as exc:  # the actor or its node is gone
            node.flights[ref] = flight
            self._lose(node, _last_line(exc))
            return
        on_done(job, self._land(job, result))

    @staticmethod
    def _land(job: Job, result: dict) -> Grade:
        """The node's grade with the driver's own paths, its artifacts written beside the driver's reports."""
        grade = Grade.model_validate_json(result["grade"])
        folder = artifacts_folder(Path(job.settings["out_dir"]), job.submission)
        artifacts = {}
        try:
            for name, blob in sorted(result.get("artifacts", {}).items()):
                if safe_name(name) and isinstance(blob, bytes):
                    folder.mkdir(parents=True, exist_ok=True)
                    (folder / name).write_bytes(blob)
                    artifacts[name] = str(folder / name)
        except OSError as exc:  # the driver's disk: the batch stops on a full one (grader.cohort.batch)
            return error_grade(job, describe_os_error(exc, folder))
        return grade.model_copy(update={"artifacts": artifacts, "submission": grade.submission.model_copy(
            update={"workdir": job.submission.workdir})})

    def _overdue(self, on_done: Done) -> None:
        """A node silent past a grading's harness timeout (plus ACTOR_GRACE): its actor is killed."""
        now = time.monotonic()
        for node in list(self.nodes.values()):
            late = [(ref, f) for ref, f in node.flights.items() if now - f.sent > f.job.timeout + ACTOR_GRACE]
            if not late:
                continue
            for ref, flight in late:
                node.flights.pop(ref)
                hit = CapExceeded("the grading task", "wall-time", flight.job.timeout)
                on_done(flight.job, error_grade(flight.job, str(hit), status="resource_limit"))
            self._lose(node, "it did not answer past a grading's harness timeout", count=False)

    def _starve(self, pending: deque[Job], on_done: Done) -> None:
        """While no node can grade: wait up to NODE_WAIT for one (at once a harness error when every node refused)."""
        if not pending or self.nodes:
            self._starved_since = None
            return
        now = time.monotonic()
        refused_all = bool(self._alive) and all(n in self.refused for n in self._alive)
        if self._starved_since is None:
            self._starved_since = now
            if not refused_all:
                self.echo(f"Ray: no node can grade now; waiting up to {NODE_WAIT:g} s for one (nodes with a "
                          f"{self.resource}: {len(self._alive)}, refused: {len(self.refused)})")
        if refused_all or now - self._starved_since > NODE_WAIT:
            why = ("; ".join(sorted(set(self.refused.values()))) if refused_all else
                   f"no node of the Ray cluster at {self.address} could grade for {NODE_WAIT:g} s")
            while pending:
                job = pending.popleft()
                on_done(job, error_grade(job, why))


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return (lines[-1] if lines else type(exc).__name__)[:500]
