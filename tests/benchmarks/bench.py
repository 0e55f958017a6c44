"""How much the harness costs beyond the student's own code, measured side by side in one run.

    .venv/bin/python tests/benchmarks/bench.py [--week week1] [--repeats 3] [--batch 20] [--out DIR]

Prints ratios first and writes DIR/bench.json. Outside the default test run (the machine is shared
and noisy: only ratios between runs interleaved in this one process mean anything).

1. floor: a bare nbclient run of the week's solution notebook in a lean process (interpreter start,
   kernel start, the cells, shutdown), against 2. `grader grade` of the same notebook; interleaved.
3. a batch of N local forks at --jobs 1 and --jobs 2; 4. the same batch again, all cache hits;
5. fetching N local forks (fetch only); 6. otter-grader / nbgrader when OTTER_PYTHON / NBGRADER_PYTHON
   name interpreters of separate environments that have them (skipped otherwise, and said so).
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


def timed(argv: list[str], **kw) -> float:
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    took = time.perf_counter() - t
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{argv[:4]} exited {proc.returncode}: {(proc.stdout + proc.stderr)[-2000:]}")
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


def floor_vs_grade(week: str, work: Path, repeats: int) -> dict:
    notebook = stage_notebook(week, work)
    env = {**os.environ, "GRADER": "1"}  # the notebook's own cells see what they see under the grader
    floor, grade = [], []
    for i in range(repeats):  # interleaved, so both see the same machine load
        floor.append(timed([sys.executable, "-c", FLOOR, str(notebook), str(notebook.parent)], env=env))
        grade.append(timed([str(VENV / "grader"), "grade", week, str(notebook), "--out", str(work / f"g{i}"),
                            "--format", "json"]))
    f, g = statistics.median(floor), statistics.median(grade)
    return {"week": week, "floor_s": floor, "grade_s": grade, "ratio": round(g / f, 3)}


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


def batch(week: str, work: Path, count: int) -> dict:
    roster = make_forks(week, work, count)
    grader = str(VENV / "grader")
    out = {}
    for jobs in (1, 2):
        out[f"jobs{jobs}_s"] = timed([grader, "batch", week, "--roster", str(roster), "--jobs", str(jobs),
                                      "--out", str(work / f"batch{jobs}"), "--format", "json"])
    out["scaling"] = round(out["jobs1_s"] / out["jobs2_s"], 3)
    cached = timed([grader, "batch", week, "--roster", str(roster), "--jobs", "2",
                    "--out", str(work / "batch2"), "--format", "json"])
    out["cached_s"] = cached
    out["cached_per_submission_s"] = round(cached / count, 4)
    t = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    from grader.batch import run_batch

    run_batch(week, roster, work / "fetch-only", fetch_only=True, echo=lambda s: None)
    out["fetch_s"] = round(time.perf_counter() - t, 3)
    return out


def peers(week: str, work: Path) -> dict:
    found = {}
    for name, var in (("otter", "OTTER_PYTHON"), ("nbgrader", "NBGRADER_PYTHON")):
        found[name] = f"skipped: set {var} to a Python that has {name} installed" if not os.environ.get(var) \
            else "not automated in this suite yet: see BENCHMARKS.md for the manual method"
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--week", action="append", help="weeks to time (default: week1 and week2)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=20, help="forks in the batch benchmark (0: skip)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    weeks = args.week or ["week1", "week2"]
    work = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    result = {"machine": {"cores": os.cpu_count(), "load": os.getloadavg()}, "floor_vs_grade": []}
    try:
        for week in weeks:
            row = floor_vs_grade(week, work, args.repeats)
            result["floor_vs_grade"].append(row)
            print(f"{week}: grade / floor = {row['ratio']:.3f}  (median of {args.repeats}, interleaved)")
        if args.batch:
            result["batch"] = batch(weeks[0], work, args.batch)
            b = result["batch"]
            print(f"batch of {args.batch} ({weeks[0]}): jobs1/jobs2 = {b['scaling']:.2f}x; cached re-run "
                  f"{b['cached_per_submission_s']:.3f} s per submission; fetch of {args.batch} forks {b['fetch_s']:.2f} s")
        result["peers"] = peers(weeks[0], work)
        for name, note in result["peers"].items():
            print(f"{name}: {note}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = args.out or ROOT / "grades"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'bench.json'}")


if __name__ == "__main__":
    main()
