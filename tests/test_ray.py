"""The Ray executor on a two-node cluster where every grading runs on a node that cannot see the driver's
files (tests/ray_cluster.py): the same grades as the local pool, one grading per (fake) GPU, a node killed
mid-batch, a stale node, harness timeouts, Ctrl-C and resuming, and the addresses a mentor may type."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'grader[ray]')")

from cohort import PLAN, WEEK_TOML, make_fork, sleepy_job, tiny_suite, write_roster
from ray_cluster import TwoNodeCluster

from grader.cli import main
from grader.cohort import ray_pool
from grader.cohort.batch import run_batch
from grader.cohort.ray_connect import RayConnectError, connect, parse_address
from grader.cohort.ray_pool import RayCapacityError, RayPool
from grader.config import Settings
from grader.report.markdown import load_grade

pytestmark = pytest.mark.skipif(shutil.which("unshare") is None or os.geteuid() != 0,
                                reason="the worker node's mount namespace needs unshare, as root")

# The tiny week, with a probe that says which GPU its kernel was given and when it ran, and a check that
# writes that as an artifact (which must travel back to the driver).
DEVICE_PROBES = '''import os, time
def answer(ns):
    t0 = time.time()
    value = float(ns["answer"]())
    time.sleep(float(os.environ.get("TINY_SLEEP", "0")) or SLEEP)
    return {"value": value, "gpu": os.environ.get("CUDA_VISIBLE_DEVICES", ""), "t0": t0, "t1": time.time()}
'''
DEVICE_CHECKS = '''import json
import pytest


@pytest.mark.check(points=2, category="correctness")
def test_answer(answers, artifacts):
    """answer() returns 42."""
    got = answers.get("answer")
    (artifacts / "device.md").write_text(json.dumps({k: got[k] for k in ("gpu", "t0", "t1")}))
    assert answers.number("answer", "value") == 42, "answer() should return 42"
'''
# Timing fields; submitted_at is when each batch's own heads log first saw the commit (two batches, two logs).
TIMING = {"graded_at", "durations", "wall_seconds", "seconds", "submitted_at"}


def device_suite(root: Path, sleep: float, points: int = 2) -> Path:
    week = root / "week1"
    week.mkdir(parents=True)
    (week / "week.toml").write_text(WEEK_TOML)
    (week / "plan.py").write_text(PLAN)
    (week / "probes.py").write_text(DEVICE_PROBES.replace("SLEEP", repr(sleep)))
    (week / "test_answer.py").write_text(DEVICE_CHECKS.replace("points=2", f"points={points}"))
    return root


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The two nodes, and this process connected to them with the address as a mentor types it."""
    hidden = tmp_path_factory.getbasetemp()
    cluster = TwoNodeCluster(hidden=hidden)
    suites = cluster.root / "suites"
    cluster.suites = {"fast": device_suite(suites / "fast", 0.5), "slow": device_suite(suites / "slow", 2.5),
                      "stale": device_suite(suites / "stale", 0.5, points=3)}
    # The worker node sees an older copy of the "stale" suite at the same path: a node not updated.
    device_suite(suites / "stale-node", 0.5)
    cluster.binds.append((suites / "stale-node", suites / "stale"))
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAY_AUTH_MODE", raising=False)  # the typed address must find the token by itself
        mp.delenv("RAY_ADDRESS", raising=False)
        with cluster:
            connect(cluster.address)
            try:
                yield cluster
            finally:
                ray.shutdown()
    assert cluster.ours() == []


def forks(root: Path, answers: dict[str, list]) -> Path:
    for name, values in answers.items():
        make_fork(root / "forks" / name, values)
    return write_roster(root / "roster.csv", [(s, f"forks/{s}") for s in answers])


def comparable(grade) -> dict:
    """A grade as data without its timing fields, its paths relative to its batch's output folder."""
    data = json.loads(grade.model_dump_json())
    out = str(Path(data["submission"]["workdir"]).parents[1])
    data["submission"]["workdir"] = os.path.relpath(data["submission"]["workdir"], out)
    data["artifacts"] = {k: os.path.relpath(v, out) for k, v in data["artifacts"].items()}

    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in TIMING}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(data)


def device_log(grade) -> dict:
    return json.loads(Path(grade.artifacts["device.md"]).read_text())


# ---- addresses, before the cluster: this process is not connected to any Ray yet ----------------------

@pytest.mark.parametrize("address", ["", "head", "head:port", "http://head:6379", "ray://head", "head:70000"])
def test_a_malformed_address_names_the_option(address):
    with pytest.raises(ValueError, match="--address .* is not a Ray address"):
        parse_address(address)


def test_a_typed_address_gives_a_connection_or_one_line(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(RayConnectError, match=r"no Ray cluster answers at 127\.0\.0\.1:\d+ \("):
        connect(f"127.0.0.1:{_closed_port()}")
    assert time.monotonic() - t0 < 10  # Ray alone waited 3.5 minutes on a port where nothing listens
    if importlib.util.find_spec("grpc") is None:
        with pytest.raises(RayConnectError, match="Ray Client needs the 'ray\\[client\\]' extra"):
            connect("ray://127.0.0.1:10001")
    roster = write_roster(tmp_path / "roster.csv", [("ann", "forks/ann")])
    for address, code, said in ((f"127.0.0.1:{_closed_port()}", 3, "error: no Ray cluster answers at"),
                                ("head:port", 4, "--address 'head:port' is not a Ray address")):
        run = CliRunner().invoke(main, ["batch", "week1", "--roster", str(roster), "--out", str(tmp_path / "out"),
                                        "--executor", "ray", "--address", address])
        assert run.exit_code == code and said in run.output and "Traceback" not in run.output, run.output


def _closed_port() -> int:
    from ray_cluster import free_port

    return free_port()


def test_typed_address_reaches_a_head_with_no_cpus(cluster):
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    head = next(n for n in nodes if "node:__internal_head__" in n["Resources"])
    assert head["Resources"].get("CPU", 0) == 0
    assert ray.get_runtime_context().gcs_address == cluster.address  # HOST:PORT as `ray start --head` printed it
    assert os.environ["RAY_AUTH_MODE"] == "token"  # switched on for the typed address: the head wants the token


def test_grades_on_a_node_blind_to_the_driver_equal_the_local_pool(cluster, tmp_path, monkeypatch):
    """Also Ctrl-C: the Ray batch is interrupted after its first grade, and resumed from the cache."""
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(cluster.suites["fast"]))
    roster = forks(tmp_path, {"ann": [42], "bo": [1], "cy": [42, 3], "eve": [42]})
    roster.write_text(roster.read_text() + "dee,Student dee,dee,https://127.0.0.1:9/dee.git,1009,A\n")
    seen = ray.get(ray.remote(num_cpus=1)(lambda p: os.path.exists(p)).remote(str(tmp_path)))
    assert seen is False  # the head has no CPU: a task runs on the worker node, which cannot see tmp_path

    lines: list[str] = []

    def interrupt(line: str) -> None:
        lines.append(line)
        if "(graded)" in line:  # the first grade (dee's fetch failure is "(not graded)")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch("week1", roster, tmp_path / "ray", settings=Settings(profile="cpu"), executor="ray",
                  address=cluster.address, echo=interrupt)
    cached = [json.loads(p.read_text()) for p in (tmp_path / "ray" / "cache").glob("*.json")]
    assert len(cached) == 1 and cached[0]["status"] == "graded"  # that grade, and nothing else
    assert not _live_node_graders()  # every actor was killed with the batch

    on_ray = run_batch("week1", roster, tmp_path / "ray", settings=Settings(profile="cpu"), executor="ray",
                       address=cluster.address, echo=lines.append)
    local = run_batch("week1", roster, tmp_path / "local", settings=Settings(profile="cpu"), jobs=2, echo=lambda s: None)
    assert (on_ray.cached, on_ray.graded, local.graded) == (1, 5, 6)  # dee (fetch_failed) twice in each
    assert on_ray.retried == local.retried == ["dee"]
    assert any("grades 2 at once on GPU 0, 1" in line for line in lines)
    for student in ("ann", "bo", "cy", "eve", "dee"):
        got, want = comparable(load_grade(on_ray.reports[student])), comparable(load_grade(local.reports[student]))
        for key in sorted(set(got) | set(want)):  # field by field, so that a difference names its field
            assert got.get(key) == want.get(key), (student, key)
    assert {s: load_grade(p).score for s, p in on_ray.reports.items()} == {"ann": 2, "bo": 0, "cy": 0, "eve": 2,
                                                                            "dee": 0}
    # One grading per GPU: each kernel saw exactly one of the node's two GPUs, and no GPU held two at once.
    runs = [device_log(load_grade(on_ray.reports[s])) for s in ("ann", "bo", "cy", "eve")]
    assert {r["gpu"] for r in runs} == {"0", "1"}
    for gpu in ("0", "1"):
        spans = sorted((r["t0"], r["t1"]) for r in runs if r["gpu"] == gpu)
        assert all(end <= start for (_, end), (start, _) in itertools.pairwise(spans))


def test_a_stale_node_refuses_to_grade(cluster, tmp_path, monkeypatch):
    """The node's checks differ from the driver's: a harness error naming it, at once, nothing cached."""
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(cluster.suites["stale"]))
    roster = forks(tmp_path, {"ann": [42], "bo": [42]})
    t0 = time.monotonic()
    result = run_batch("week1", roster, tmp_path / "out", settings=Settings(profile="cpu"), executor="ray",
                       address=cluster.address, echo=lambda s: None)
    assert time.monotonic() - t0 < 60
    assert result.machine_failures == ["ann", "bo"] and result.graded == 4  # both, and their second try
    grade = load_grade(result.reports["ann"])
    assert grade.status == "harness_error" and "its checks for week1 differ from the driver's" in grade.message
    assert not list((tmp_path / "out" / "cache").glob("*.json"))


def test_harness_timeout_and_a_silent_node(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(tiny_suite(cluster.root / "tiny")))
    settings = Settings(profile="cpu", out_dir=tmp_path / "reports")
    pool = RayPool(cluster.address).connect().start("week1", settings)
    try:
        got = []
        t0 = time.monotonic()
        pool.run([sleepy_job(tmp_path, timeout=4)], lambda job, grade: got.append(grade))
        assert time.monotonic() - t0 < 20  # the notebook's own 20 s cell budget never came into play
        assert got[0].status == "resource_limit"  # as the local pool reports it: the node's own pool stopped it
        assert "the grading worker went over its wall-time cap of 4 s" in got[0].message
        # A node that stops answering: the driver kills its actor at the harness timeout (plus its grace).
        monkeypatch.setattr(ray_pool, "ACTOR_GRACE", -2.0)
        got.clear()
        (tmp_path / "sleepy").rename(tmp_path / "sleepy0")
        pool.run([sleepy_job(tmp_path, timeout=4)], lambda job, grade: got.append(grade))
        assert got[0].status == "resource_limit" and "the grading task went over its wall-time cap of 4 s" in got[0].message
        monkeypatch.setattr(ray_pool, "ACTOR_GRACE", 120.0)
        roster_job = _job_for(tmp_path, settings)
        got.clear()
        pool.run([roster_job], lambda job, grade: got.append(grade))  # a fresh actor on the same node grades it
        assert got[0].status == "graded" and got[0].score == 2
    finally:
        pool.close()


def _job_for(tmp_path: Path, settings: Settings):
    from grader.cohort.pool import Job
    from grader.records import Submission

    work = make_fork(tmp_path / "ann", [42])
    sub = Submission(student="ann", week="week1", source=str(work), workdir=str(work))
    return Job(key="ann", submission=sub, settings=settings.model_dump(mode="json"), timeout=60)


def _live_node_graders() -> list:
    from ray._private.state import state

    deadline = time.monotonic() + 10
    while True:
        alive = [a for a in state.actor_table(None).values()
                 if a.get("ActorClassName", "").endswith("NodeGrader") and a.get("State") not in ("DEAD", 4)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def test_a_node_killed_mid_batch_is_graded_again_when_it_returns(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SOLUTIONS_DIR", str(cluster.suites["slow"]))
    roster = forks(tmp_path, {s: [42] for s in ("ann", "bo")})  # one grading per GPU: both in flight at the kill
    lines: list[str] = []

    def kill_then_restart() -> None:
        deadline = time.monotonic() + 120
        while not any("grades 2 at once" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # both gradings were sent at once: they are in flight (a kernel start, a 2.5 s probe)
        cluster.kill_worker()
        cluster.start_worker()

    killer = threading.Thread(target=kill_then_restart)
    killer.start()
    try:
        result = run_batch("week1", roster, tmp_path / "out", settings=Settings(profile="cpu"), executor="ray",
                           address=cluster.address, echo=lines.append)
    finally:
        killer.join()
    lost = [line.rsplit("grading again elsewhere: ", 1)[1] for line in lines if "grading again elsewhere" in line]
    assert [set(names.split(", ")) for names in lost] == [{"ann", "bo"}], lines  # both were in flight
    assert result.machine_failures == [] and result.retried == []
    assert {s: load_grade(p).score for s, p in result.reports.items()} == {"ann": 2, "bo": 2}
    cached = [json.loads(p.read_text()) for p in (tmp_path / "out" / "cache").glob("*.json")]
    assert len(cached) == 2 and all(c["status"] == "graded" and c["score"] == 2 for c in cached)


def test_infeasible_request_fails_fast(cluster, monkeypatch):
    monkeypatch.setattr(ray, "nodes", lambda: [{"NodeID": "x", "Alive": True, "Resources": {"CPU": 2.0}}])
    t0 = time.monotonic()
    with pytest.raises(RayCapacityError, match="no node .* has a GPU"):
        RayPool(cluster.address, gpu_per_task=True).connect()
    assert time.monotonic() - t0 < 5


def test_a_node_gets_the_weeks_data_and_the_judges_held_out_files_only(tmp_path):
    """Week 3's judge scores held-out names no sandbox holds: a node gets them beside the week's data
    files, each checked by sha256, and a name outside the data folder or a damaged file is refused."""
    import hashlib

    from grader.cohort.ray_node import write_data
    from grader.config import load_week, week_suite

    data = ray_pool.node_data(load_week(week_suite("week3")))
    assert {"names.txt", "heldout/names.txt"} <= set(data)
    sums = {name: hashlib.sha256(blob).hexdigest() for name, blob in data.items()}
    assert write_data(tmp_path / "node", sums, data) == ""
    assert (tmp_path / "node" / "heldout" / "names.txt").read_bytes() == data["heldout/names.txt"]
    for name in ("../escape.txt", "heldout/../../escape.txt", "other/names.txt", "/etc/passwd"):
        assert "did not arrive intact" in write_data(tmp_path / name.replace("/", "_"), {name: sums["names.txt"]},
                                                     {name: data["names.txt"]})
    assert "'names.txt' did not arrive intact" in write_data(tmp_path / "bad", {"names.txt": sums["names.txt"]},
                                                             {"names.txt": b"tampered"})
    assert not list(tmp_path.glob("**/escape.txt"))
