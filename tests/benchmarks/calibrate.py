"""Calibrate the bands that decide points: train what the grader trains, the way it trains it, for
many seeds and at least two independent correct implementations; print each band's measured spread
and the false-negative rate it gives (target <= 1 %).

    .venv/bin/python tests/benchmarks/calibrate.py week5 [--seeds 20] [--jobs 1] [--out FILE]

A benchmark, outside the default test run. One function per week (each week's owner adds theirs to
WEEKS). In-process and at the grader's own budget: a notebook's code cells run once (GRADER=1, in a
scratch folder holding the week's data files) to get its classes, then the week's own probe
functions train and score them exactly as the grader would, and the week's own judge code measures.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from grader.config import DATA_DIR, load_week, public_module, week_suite


# ------------------------------------------------------------------------------------------ the frame
def notebook_namespace(notebook: Path, week: str, extra_files: Iterable[Path] = ()) -> dict:
    """The globals of a notebook whose code cells ran top to bottom under GRADER=1, in a scratch folder
    with the week's data files (and `extra_files`) beside it, as the sandbox has them."""
    config = load_week(week_suite(week))
    notebook = Path(notebook).resolve()  # the cells run in the scratch folder
    scratch = Path(tempfile.mkdtemp(prefix=f"calibrate-{week}-"))
    for name in config.data:
        shutil.copyfile(DATA_DIR / name, scratch / name)
    for path in extra_files:
        shutil.copyfile(path, scratch / Path(path).name)
    ns: dict = {"__name__": "__main__"}
    old_cwd, old_env = os.getcwd(), os.environ.get("GRADER")
    os.chdir(scratch)
    os.environ["GRADER"] = "1"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in nbformat.read(notebook, as_version=4).cells:
                if cell.cell_type == "code":
                    exec(compile(cell.source, f"{notebook.name}", "exec"), ns)  # noqa: S102 - our own fixtures
    finally:
        os.chdir(old_cwd)
        if old_env is None:
            os.environ.pop("GRADER", None)
        else:
            os.environ["GRADER"] = old_env
        shutil.rmtree(scratch, ignore_errors=True)
    return ns


def normal_tail(mean: float, sd: float, bound: float, upper: bool) -> float:
    """P(X > bound) (upper) or P(X < bound) for a normal with this mean and sd."""
    if sd <= 0:
        return float((mean > bound) if upper else (mean < bound))
    z = (bound - mean) / sd
    return 0.5 * math.erfc(z / math.sqrt(2)) if upper else 0.5 * math.erfc(-z / math.sqrt(2))


def band(name: str, values: list[float], bound: float, *, upper: bool) -> dict:
    """The spread of `values` and how many fall on the losing side of `bound` (above it when `upper`)."""
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    losing = sum(v > bound if upper else v < bound for v in values)
    row = {"band": name, "n": len(values), "mean": mean, "sd": sd, "min": min(values), "max": max(values),
           "bound": bound, "side": "≤" if upper else "≥", "losing": losing, "fn_observed": losing / len(values),
           "fn_normal": normal_tail(mean, sd, bound, upper)}
    print(f"  {name:<44} n={len(values):>3}  mean {mean:8.4f}  sd {sd:7.4f}  min {min(values):8.4f}  "
          f"max {max(values):8.4f}  {row['side']} {bound:8.4f}: {losing} lose ({losing / len(values):.1%}), "
          f"normal tail {row['fn_normal']:.2e}")
    return row


def run_all(jobs: int, fn: Callable, tasks: list[tuple]) -> list:
    """fn(*task) for every task, in `jobs` processes (one thread each: the grader's own setting)."""
    if jobs <= 1:
        return [fn(*t) for t in tasks]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(fn, *zip(*tasks)))


# ------------------------------------------------------------------------------------------- week 5
W5 = {"solution": ROOT / "solutions" / "week5" / "week5.ipynb",
      "independent": ROOT / "fixtures" / "submissions" / "week5" / "passes_gpt_independent.ipynb"}
_W5_CACHE: dict = {}


def _w5_modules():
    if not _W5_CACHE:
        suite = week_suite("week5")
        sys.path.insert(0, str(suite))
        import week5_reference  # the hidden suite's own

        _W5_CACHE.update(plan=public_module(suite / "plan.py", "plan"), probes=public_module(suite / "plan.py", "probes"),
                         ref=week5_reference, thresholds=load_week(suite).profile("cpu").thresholds)
    return _W5_CACHE


def _w5_variant(kind: str):
    """The judge's reference GPT, or one with a known flaw (for the separation table)."""
    ref = _w5_modules()["ref"]
    if kind == "reference":
        return ref.ReferenceGPT

    class Flawed(ref.ReferenceGPT):
        def forward(self, idx, targets=None):
            from torch.nn import functional as F

            T = idx.shape[1]
            h = self.tokens(idx) + (0 if kind == "no_position" else self.positions.weight[:T])
            h = self.layers(h)
            logits = self.logits(h if kind == "no_final_norm" else self.norm(h))
            return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    return Flawed


def _w5_one(impl: str, seed: int) -> dict:
    """Train one implementation with the grader's loop and seed; its held-out loss and sample metrics."""
    import numpy as np

    from grader.judge.heldout import mean_nll
    from grader.judge.samples import TextReference, median_text_metrics

    m = _w5_modules()
    plan, probes, ref, th = m["plan"], m["probes"], m["ref"], m["thresholds"]
    text, chars, ids = plan.corpus(str(DATA_DIR))
    train, _ = plan.split(ids)
    x, y = ref.heldout_windows(str(DATA_DIR), chars, plan.SMALL["block_size"])
    if impl in W5 and impl not in _W5_CACHE:  # one run of the notebook per process
        _W5_CACHE[impl] = notebook_namespace(W5[impl], "week5")
    ns = _W5_CACHE[impl] if impl in W5 else {"GPTLanguageModel": _w5_variant(impl)}
    t0 = time.perf_counter()
    got = probes.train_and_score(ns, "train", len(chars), plan.SMALL, x,
                                 np.full((th["n_samples"], 1), chars.index("\n")), th["sample_len"], plan.SEED,
                                 train=train, steps=th["train_steps"], batch_size=th["train_batch"],
                                 lr=th["train_lr"], seed=seed)
    out = {"impl": impl, "seed": seed, "loss": mean_nll(got["val_logits"].numpy(), y),
           "seconds": time.perf_counter() - t0}
    if impl in W5 or impl == "reference":
        decoded = ["".join(chars[i] for i in row[1:]) for row in got["samples"].numpy()]
        metrics = median_text_metrics(decoded, TextReference.fit(text[: int(0.9 * len(text))]))
        out.update(nll5=metrics.nll5, wordvalid=metrics.wordvalid, mem40=metrics.mem40,
                   distinct2=metrics.distinct2, speakerfmt=metrics.speakerfmt)
    print(f"    {impl:<12} seed {seed:>5}: val {out['loss']:.4f} ({out['seconds']:.0f} s)", flush=True)
    return out


def week5(seeds: list[int], jobs: int) -> dict:
    th = _w5_modules()["thresholds"]
    grading_seed = _w5_modules()["plan"].SEED
    impls = ["reference", *W5]
    tasks = [(impl, s) for s in seeds for impl in impls] + [(impl, s) for s in seeds[:5]
                                                           for impl in ("no_position", "no_final_norm")]
    if grading_seed not in seeds:
        tasks.append(("reference", grading_seed))
    print(f"week 5: {len(tasks)} trainings of {th['train_steps']} steps (seeds {seeds[0]}..{seeds[-1]})")
    results = run_all(jobs, _w5_one, tasks)
    by = {(r["impl"], r["seed"]): r for r in results}
    ref_grading = by[("reference", grading_seed)]["loss"]
    rows = []
    print(f"\nval loss on the held-out plays (last position of each window); the judge's GPT at the grading "
          f"seed {grading_seed}: {ref_grading:.4f}")
    for impl in impls:
        rows.append(band(f"{impl}: val loss", [by[(impl, s)]["loss"] for s in seeds], math.inf, upper=True))
    print(f"\nmargins over the judge's GPT (pass ≤ +{th['val_margin_pass']}, floor ≥ -{th['val_floor_margin']})")
    for impl in W5:
        paired = [by[(impl, s)]["loss"] - by[("reference", s)]["loss"] for s in seeds]
        unpaired = [by[(impl, s)]["loss"] - ref_grading for s in seeds]
        rows.append(band(f"{impl} - reference, same seed", paired, th["val_margin_pass"], upper=True))
        rows.append(band(f"{impl} - reference at the grading seed", unpaired, th["val_margin_pass"], upper=True))
        rows.append(band(f"{impl} - reference: floor", paired, -th["val_floor_margin"], upper=False))
    print("\nflawed models (they must lose points; the forward check catches both directly too)")
    for impl in ("no_position", "no_final_norm"):
        flawed = [s for s in seeds[:5]]
        rows.append(band(f"{impl} - reference, same seed",
                         [by[(impl, s)]["loss"] - by[("reference", s)]["loss"] for s in flawed],
                         th["val_margin_pass"], upper=False))
    print("\nsample metrics (3 samples x 1,000 characters, medians), both implementations together")
    correct = [by[(impl, s)] for impl in W5 for s in seeds]
    rows.append(band("wordvalid", [r["wordvalid"] for r in correct], th["wordvalid_pass"], upper=False))
    rows.append(band("nll5", [r["nll5"] for r in correct], th["nll5_pass"], upper=True))
    rows.append(band("mem40", [r["mem40"] for r in correct], th["mem40_max"], upper=True))
    rows.append(band("distinct2", [r["distinct2"] for r in correct], th["distinct2_min"], upper=False))
    rows.append(band("speakerfmt", [r["speakerfmt"] for r in correct], th["speakerfmt_min"], upper=False))
    return {"week": "week5", "seeds": seeds, "results": results, "bands": rows}


WEEKS: dict[str, Callable[[list[int], int], dict]] = {"week5": week5}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("week", choices=sorted(WEEKS))
    parser.add_argument("--seeds", type=int, default=20, help="seeds per implementation (at least 20 for a band)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, help="write every measurement as JSON")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    record = WEEKS[args.week](list(range(args.first_seed, args.first_seed + args.seeds)), args.jobs)
    record["wall_seconds"] = time.perf_counter() - t0
    print(f"\n{args.week}: {record['wall_seconds']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(record, indent=1, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
