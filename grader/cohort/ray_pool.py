"""Run grading jobs as Ray tasks (optional extra: `pip install 'grader[ray]'`).

Each submission is one task holding one GPU (or one CPU slot). Inside the task the same worker
process as the local pool grades it (grader.cohort.pool), so both paths give the same grades.
Measured with Ray 2.60 (DESIGN, "Scale facts"): always pass an explicit address, switch usage
stats off, check capacity before submitting (an infeasible request waits forever), and cancel
with force=True (a plain cancel left the task running); the harness keeps its own timeout.

A task reads the exported submission from the path the batch wrote it to, so the Ray workers
must see the batch's --out folder (a local cluster, or a shared filesystem on a real one).
"""

from __future__ import annotations

import os
import time

from grader.caps import CapExceeded
from grader.cohort.pool import Done, Job, LocalPool, error_grade
from grader.records import Grade


class RayCapacityError(RuntimeError):
    """The cluster cannot run a grading task at all (e.g. GPU tasks on a cluster with no GPU)."""


def _grade_in_task(job_json: str) -> str:
    """Runs on a Ray worker: grade through a worker process, on the GPU Ray gave this task."""
    import ray

    job = Job.model_validate_json(job_json)
    gpus = [int(g) for g in ray.get_gpu_ids()]
    result: list[Grade] = []
    LocalPool(1, gpus[:1]).run([job], lambda _job, grade: result.append(grade))
    return result[0].model_dump_json()


class RayPool:
    """Submit one task per job, at most as many as the cluster can run at once."""

    def __init__(self, address: str, *, init: dict | None = None, gpu_per_task: bool | None = None):
        if not address:
            raise ValueError("Ray needs an explicit address: 'local' or ray://host:port")
        self.address = address
        self.init = dict(init or {})
        self.gpu_per_task = gpu_per_task

    def _connect(self):
        os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
        import ray

        self.started = not ray.is_initialized()  # ours to shut down when the batch ends
        if self.started:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}}, **self.init)
        return ray

    def capacity(self, ray) -> int:
        """How many grading tasks fit at once; raises when none can ever be scheduled."""
        if self.gpu_per_task is None:  # auto: one GPU per task when the cluster has GPUs
            self.gpu_per_task = ray.cluster_resources().get("GPU", 0) >= 1
        resource = "GPU" if self.gpu_per_task else "CPU"
        per_node = [n.get("Resources", {}).get(resource, 0) for n in ray.nodes() if n.get("Alive")]
        if not any(r >= 1 for r in per_node):
            raise RayCapacityError(f"no node of the Ray cluster at {self.address} has a {resource} "
                                   f"(cluster resources: {ray.cluster_resources()}); a task would wait forever")
        return int(sum(int(r) for r in per_node))

    def run(self, jobs: list[Job], on_done: Done, poll: float = 0.5) -> None:
        ray = self._connect()
        try:
            self._run(ray, jobs, on_done, poll)
        finally:
            if self.started:
                ray.shutdown()

    def _run(self, ray, jobs: list[Job], on_done: Done, poll: float) -> None:
        slots = self.capacity(ray)
        options = {"num_gpus": 1, "num_cpus": 0} if self.gpu_per_task else {"num_cpus": 1}
        # The grader's own settings travel with each task (the cluster may have been started earlier).
        env = {k: v for k, v in os.environ.items() if k in ("GRADER_SOLUTIONS_DIR", "GRADER_THREADS")}
        task = ray.remote(max_retries=0, **options)(_grade_in_task).options(
            runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0", **env}})
        pending = list(jobs)
        running: dict = {}  # ObjectRef -> (job, started)
        while pending or running:
            while pending and len(running) < slots:
                job = pending.pop(0)
                running[task.remote(job.model_dump_json())] = (job, time.monotonic())
            ready, _ = ray.wait(list(running), num_returns=1, timeout=poll)
            for ref in ready:
                job, _ = running.pop(ref)
                try:
                    on_done(job, Grade.model_validate_json(ray.get(ref)))
                except ray.exceptions.RayError as exc:
                    on_done(job, error_grade(job, f"Ray task failed: {str(exc)[-1500:]}"))
            now = time.monotonic()
            for ref, (job, started) in list(running.items()):
                if now - started > job.timeout:
                    ray.cancel(ref, force=True)
                    running.pop(ref)
                    hit = CapExceeded("the grading task", "wall-time", job.timeout)
                    on_done(job, error_grade(job, str(hit), status="resource_limit"))

