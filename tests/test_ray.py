"""The Ray executor on a local cluster with fake GPUs: same grades as the local pool, fail fast."""

from __future__ import annotations

import os
import time

import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'grader[ray]')")

from cohort import local_demo, make_fork, scores, sleepy_job, tiny_suite, write_roster

from grader.cohort.batch import run_batch
from grader.cohort.ray_pool import RayCapacityError, RayPool
from grader.config import Settings

FAKE_GPUS = {"num_gpus": 2, "num_cpus": 2}  # ray schedules "GPU" tasks two at a time on a CPU box


@pytest.fixture(scope="module")
def cluster():
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(address="local", include_dashboard=False, log_to_driver=False, **FAKE_GPUS)
    yield
    ray.shutdown()


def test_infeasible_request_fails_fast(cluster, monkeypatch):
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 2.0}}])
    t0 = time.monotonic()
    with pytest.raises(RayCapacityError, match="no node .* has a GPU"):
        RayPool("local", gpu_per_task=True).run([], lambda job, grade: None)
    assert time.monotonic() - t0 < 5


def test_explicit_address_required():
    with pytest.raises(ValueError, match="explicit address"):
        RayPool("")


def test_ray_grades_a_tiny_cohort_on_fake_gpus(cluster, tmp_path, monkeypatch):
    """The tiny private week (answer() == 42); the demo test below compares with the local pool."""
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(tiny_suite(tmp_path / "solutions")))
    for name, answers in {"ann": [42], "bo": [1], "cy": [42, 3]}.items():
        make_fork(tmp_path / "forks" / name, answers)
    roster = write_roster(tmp_path / "roster.csv", [(s, f"forks/{s}") for s in ("ann", "bo", "cy")]
                          + [("dee", "https://127.0.0.1:9/dee.git")])
    on_ray = run_batch("week1", roster, tmp_path / "ray", settings=Settings(profile="cpu"), executor="ray",
                       address="local", echo=lambda s: None)
    assert scores(on_ray) == {"ann": (2.0, "graded", 0), "bo": (0.0, "graded", 0), "cy": (0.0, "graded", 0),
                              "dee": (0.0, "fetch_failed", 0)}
    assert on_ray.retried == ["dee"] and on_ray.machine_failures == ["dee"]
    assert ray.is_initialized()  # the batch used the cluster it found and left it running


@pytest.mark.slow
def test_ray_grades_the_demo_cohort_like_the_local_pool(cluster, tmp_path_factory, tmp_path):
    from grader.cohort.demo import run_demo

    demo = local_demo(tmp_path_factory)
    on_ray = run_demo(tmp_path / "out", work_dir=tmp_path / "forks", executor="ray", echo=lambda s: None)
    assert on_ray.graded == 7 and on_ray.harness_errors == 0  # six, and the dead fork's second try
    assert scores(on_ray) == scores(demo["result"])


def test_harness_timeout_cancels_the_task(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(tiny_suite(tmp_path / "solutions")))
    got = []
    t0 = time.monotonic()
    RayPool("local").run([sleepy_job(tmp_path, timeout=4)], lambda job, grade: got.append(grade))
    assert time.monotonic() - t0 < 15  # the notebook's own 20 s cell budget never came into play
    assert got[0].status == "resource_limit" and "wall-time cap of 4 s" in got[0].message
