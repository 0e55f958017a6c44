"""How much the harness costs beyond the student's own code, measured side by side in one run.

    .venv/bin/python tests/benchmarks/bench.py [--week week1] [--repeats 3] [--batch 20] [--out DIR]
                                               [--baseline OTHER/.venv/bin/grader]

Prints ratios first and writes DIR/bench.json. Outside the default test run (the machine is shared
and noisy: only ratios between runs interleaved in this one process mean anything).

1. floor: a bare nbclient run of the week's solution notebook in a lean process (interpreter start,
   kernel start, the cells, shutdown), against 2. `grader grade` of the same notebook; interleaved.
3. a batch of N local forks at --jobs 1 and --jobs 2; 4. the same batch again, all cache hits;
5. fetching N local forks (fetch only); 6. otter-grader / nbgrader on week 1's notebook with three
   checks (peers.py), in the rounds of week 1's floor and grade, when their separate environment is
   there (tests/benchmarks/install_peers.sh, or OTTER_PYTHON / NBGRADER_PYTHON); skipped otherwise, and said so.
7. --baseline: another grader (e.g. a worktree of the previous commit, its own venv) in the same rounds
   as this one: `grade` and the batches, interleaved (before and after a change, under the same load),
   wall seconds and, where `perf` is installed, CPU seconds of each run's whole process tree.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent
FLOOR = """
import sys, nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": sys.argv[2]}}).execute()
"""


CPU: dict[str, list[float]] = {}  # label -> CPU seconds of each timed run's whole process tree
PERF = shutil.which("perf")


def timed(argv: list[str], cpu: str | None = None, **kw) -> float:
    """Wall seconds of one run; with `cpu`, also the CPU seconds of its whole process tree (perf stat's
    task-clock follows every fork, the sandboxed kernels included, whoever reaps them; what other users
    of a shared machine do is not in it), appended to CPU[cpu]."""
    with tempfile.NamedTemporaryFile(suffix=".perf") as counts:
        prefix = [PERF, "stat", "-e", "task-clock", "-x", ",", "-o", counts.name, "--"] if cpu and PERF else []
        t = time.perf_counter()
        proc = subprocess.run(prefix + argv, check=False, capture_output=True, text=True, **kw)
        took = time.perf_counter() - t
        if proc.returncode not in (0, 1):
            raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
        if prefix:
            msec = next(line.split(",")[0] for line in Path(counts.name).read_text().splitlines() if "task-clock" in line)
            CPU.setdefault(cpu, []).append(round(float(msec) / 1000, 3))
    return took


def stage_notebook(week: str, work: Path) -> Path:
    """The solution notebook beside the week's data files (the floor run needs them too)."""
    import tomllib

    folder = work / f"nb-{week}"
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ROOT / "solutions" / week / f"{week}.ipynb", folder / f"{week}.ipynb")
    for name in tomllib.loads((ROOT / "solutions" / week / "week.toml").read_text()).get("data", []):
        shutil.copyfile(ROOT / "fixtures" / "data" / name, folder / name)
    return folder / f"{week}.ipynb"


def floor_vs_grade(week: str, work: Path, repeats: int, extra: dict | None = None) -> dict:
    """Median floor and `grader grade` times; `extra` runners (the peers) join the same rounds."""
    notebook = stage_notebook(week, work)
    env = {**os.environ, "GRADER": "1"}  # the notebook's own cells see what they see under the grader
    times: dict[str, list[float]] = {"floor": [], "grade": [], **{name: [] for name in extra or {}}}
    for i in range(repeats):  # interleaved, so that every tool sees the same machine load
        times["floor"].append(timed([sys.executable, "-c", FLOOR, str(notebook), str(notebook.parent)], env=env))
        times["grade"].append(timed([str(VENV / "grader"), "grade", week, str(notebook), "--out",
                                     str(work / f"g-{week}-{i}"), "--format", "json"], cpu=f"{week} grade"))
        for name, run in (extra or {}).items():
            times[name].append(run(i))
    median = {name: statistics.median(values) for name, values in times.items()}
    row = {"week": week, "floor_s": times["floor"], "grade_s": times["grade"],
           "ratio": round(median["grade"] / median["floor"], 3)}
    for name in extra or {}:
        row[f"{name}_s"] = times[name]
        row[f"{name}_vs_grade"] = round(median[name] / median["grade"], 3)
        row[f"{name}_vs_floor"] = round(median[name] / median["floor"], 3)
    return row


def make_forks(week: str, work: Path, count: int) -> Path:
    """count local git forks holding the solution notebook (one commit each) and a roster."""
    notebook = (ROOT / "solutions" / week / f"{week}.ipynb").read_bytes()
    lines = ["student,repo"]
    for i in range(count):
        repo = work / "forks" / f"s{i:02d}"
        repo.mkdir(parents=True)
        (repo / f"{week}.ipynb").write_bytes(notebook)
        (repo / "NOTE.md").write_text(f"student {i}\n")
        env = {**os.environ, "GIT_AUTHOR_NAME": "s", "GIT_AUTHOR_EMAIL": "s@x", "GIT_COMMITTER_NAME": "s",
               "GIT_COMMITTER_EMAIL": "s@x"}
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
        subprocess.run(["git", "add", "."], cwd=repo, check=True)
        subprocess.run(["git", "commit", "-qm", "work"], cwd=repo, check=True, env=env)
        lines.append(f"s{i:02d},{repo}")
    roster = work / "roster.csv"
    roster.write_text("\n".join(lines) + "\n")
    return roster


def busy_core_seconds() -> float:
    """CPU time the whole machine has spent busy (every process, ours or not), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def baseline_runner(grader: str, week: str, work: Path):
    """`grade` with another grader on the same notebook; it writes nothing beside itself (no bytecode)."""
    notebook = stage_notebook(week, work)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}

    def run(i: int) -> float:
        return timed([grader, "grade", week, str(notebook), "--out", str(work / f"base-{week}-{i}"),
                      "--format", "json"], cpu=f"{week} baseline grade", env=env, cwd=work)

    return run


def batch(week: str, work: Path, count: int, baseline: str | None = None) -> dict:
    roster = make_forks(week, work, count)
    grader = str(VENV / "grader")
    graders = {"": grader, **({"baseline_": baseline} if baseline else {})}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    out = {}
    for jobs in (1, 2):
        for prefix, program in graders.items():  # interleaved with the baseline: the same load for both
            busy = busy_core_seconds()
            key = f"{prefix}jobs{jobs}"
            out[f"{key}_s"] = timed([program, "batch", week, "--roster", str(roster), "--jobs", str(jobs),
                                     "--out", str(work / f"{prefix}batch{jobs}"), "--format", "json"],
                                    cpu=key, env=env, cwd=work)
            if key in CPU:
                out[f"{key}_cpu_s_per_submission"] = round(CPU[key][-1] / count, 3)
            # The machine's CPU over the run: at --jobs 2 a batch is bound by it, not by its wall time.
            out[f"{key}_busy_core_s"] = round(busy_core_seconds() - busy, 2)
            out[f"{key}_mean_busy_cores"] = round(out[f"{key}_busy_core_s"] / out[f"{key}_s"], 2)
            out[f"{key}_s_per_submission"] = round(out[f"{key}_s"] / count, 3)
            out[f"{key}_core_s_per_submission"] = round(out[f"{key}_busy_core_s"] / count, 3)
    out["scaling"] = round(out["jobs1_s"] / out["jobs2_s"], 3)
    cached = timed([grader, "batch", week, "--roster", str(roster), "--jobs", "2",
                    "--out", str(work / "batch2"), "--format", "json"])
    out["cached_s"] = cached
    out["cached_per_submission_s"] = round(cached / count, 4)
    t = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from grader.cohort.batch import run_batch

    run_batch(week, roster, work / "fetch-only", fetch_only=True, echo=lambda s: None)
    out["fetch_s"] = round(time.perf_counter() - t, 3)
    return out


def peers(work: Path) -> tuple[dict, dict]:
    """Runners for the peers whose environment is there, and a note for each one that is not."""
    sys.path.insert(0, str(Path(__file__).parent))
    import peers as peer_tools

    runners, notes = {}, {}
    for name, build in peer_tools.RUNNERS.items():
        python = peer_tools.default_python(name)
        if python is None:
            notes[name] = (f"skipped: run tests/benchmarks/install_peers.sh, or set {name.upper()}_PYTHON "
                           f"to a Python that has {name}")
            continue
        runners[name] = build(python, work)
        notes[name] = f"{peer_tools.WEEK}, 3 checks; versions {peer_tools.versions(python)}"
    return runners, notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week", action="append", help="weeks to time (default: week1 and week2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=20, help="forks in the batch benchmark (0: skip)")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--baseline", help="another grader executable to time in the same rounds")
    args = parser.parse_args()
    weeks = args.week or ["week1", "week2"]
    work = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    result = {"machine": {"cores": os.cpu_count(), "load": os.getloadavg()}, "floor_vs_grade": []}
    try:
        runners, result["peers"] = peers(work)
        for week in weeks:
            extra = dict(runners) if week == "week1" else {}  # the peers' assignment is week 1's notebook
            if args.baseline:
                extra["baseline"] = baseline_runner(args.baseline, week, work / "baseline")
            row = floor_vs_grade(week, work, args.repeats, extra)
            result["floor_vs_grade"].append(row)
            print(f"{week}: grade / floor = {row['ratio']:.3f}  (median of {args.repeats}, interleaved)")
            for name in extra or {}:
                print(f"{week}: {name} / grade = {row[name + '_vs_grade']:.2f}x, "
                      f"{name} / floor = {row[name + '_vs_floor']:.2f}x")
        for name, note in result["peers"].items():
            print(f"{name}: {note}")
        if args.baseline and PERF:  # CPU figures need perf (linux-perf); wall times are printed either way
            for row in result["floor_vs_grade"]:
                week = row["week"]
                print(f"{week}: grade {statistics.median(row['grade_s']):.2f} s and "
                      f"{statistics.median(CPU[week + ' grade']):.2f} CPU s, baseline "
                      f"{statistics.median(row['baseline_s']):.2f} s and {statistics.median(CPU[week + ' baseline grade']):.2f}"
                      f" CPU s (medians of {args.repeats}, interleaved)")
        if args.batch:
            result["batch"] = batch(weeks[0], work, args.batch, args.baseline)
            b = result["batch"]
            for jobs in (1, 2) if args.baseline and PERF else ():
                print(f"batch --jobs {jobs}: {b[f'jobs{jobs}_s_per_submission']:.3f} s and "
                      f"{b[f'jobs{jobs}_cpu_s_per_submission']:.3f} CPU s per submission; baseline "
                      f"{b[f'baseline_jobs{jobs}_s_per_submission']:.3f} s and "
                      f"{b[f'baseline_jobs{jobs}_cpu_s_per_submission']:.3f} CPU s")
            print(f"batch of {args.batch} ({weeks[0]}): jobs1/jobs2 = {b['scaling']:.2f}x; cached re-run "
                  f"{b['cached_per_submission_s']:.3f} s per submission; fetch of {args.batch} forks {b['fetch_s']:.2f} s")
            print(f"  busy cores: {b['jobs1_mean_busy_cores']:.2f} at --jobs 1 ({b['jobs1_busy_core_s']:.1f} core-s), "
                  f"{b['jobs2_mean_busy_cores']:.2f} at --jobs 2 ({b['jobs2_busy_core_s']:.1f} core-s)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or ROOT / "grades"
    out.mkdir(parents=True, exist_ok=True)
    result["cpu_s"] = CPU
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'bench.json'}")


if __name__ == "__main__":
    main()
