"""Calibrate the bands that decide points (issue 19 item 3): run each week's measured quantities for
at least two independent correct implementations over at least 20 seeds, and print the spread and the
false-negative rate each band gives (target ≤ 1 %). The figures go next to the bands in week.toml.

    .venv/bin/python tests/benchmarks/calibrate.py week1 [--seeds 20]

A benchmark, outside the default test run. The implementations are our own trusted notebooks (the
solution and the independent `passes_*` fixtures): their code cells run in this process, and the week's
own probes and references measure them exactly as a grade would. One function per week, registered
with @week; each returns the Metric rows it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import itertools
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WEEKS: dict[str, Callable[[int], list[Metric]]] = {}
ONLY: list[str] = []  # --only: the implementations whose name contains one of these (a rerun of one)


def chosen(impls: dict) -> dict:
    return {name: v for name, v in impls.items() if not ONLY or any(o in name for o in ONLY)}


def week(name: str):
    def register(fn):
        WEEKS[name] = fn
        return fn
    return register


@dataclass
class Metric:
    """One measured quantity of one implementation over seeds, against the band that decides its points."""

    name: str
    implementation: str
    values: list[float] = field(default_factory=list)
    pass_at: float = math.nan  # the value at which full marks stop
    higher_is_better: bool = False
    log: bool = False  # errors spanning decades: the spread is taken over log10

    def failing(self) -> int:
        return sum(not self._passes(v) for v in self.values)

    def _passes(self, v: float) -> bool:
        return v >= self.pass_at if self.higher_is_better else v <= self.pass_at

    def normal_fn_rate(self) -> float:
        """P(a fresh seed misses the pass line) under a normal fit of the values (log10 ones if log)."""
        xs = [math.log10(max(v, 1e-300)) for v in self.values] if self.log else list(self.values)
        line = math.log10(self.pass_at) if self.log else self.pass_at
        sd = statistics.pstdev(xs)
        if sd == 0:
            return 0.0 if self._passes(self.values[0]) else 1.0
        z = (line - statistics.fmean(xs)) / sd * (-1 if self.higher_is_better else 1)
        return 0.5 * math.erfc(z / math.sqrt(2))

    def row(self) -> str:
        v = self.values
        fmt = (lambda x: f"{x:.2e}") if self.log else (lambda x: f"{x:.4f}")
        return (f"| {self.name} | {self.implementation} | {len(v)} | {fmt(statistics.fmean(v))} | "
                f"{fmt(statistics.pstdev(v))} | {fmt(min(v))} | {fmt(max(v))} | "
                f"{'≥' if self.higher_is_better else '≤'} {self.pass_at:g} | {self.failing()}/{len(v)} | "
                f"{self.normal_fn_rate():.1e} |")


def load(path: Path, name: str):
    """A suite's module (plan.py, probes.py, references) under a private name."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def notebook_namespace(path: Path, cwd: Path | None = None) -> dict:
    """Every code cell of one of our own notebooks run in this process (GRADER=1: demos stay short)."""
    import nbformat

    os.environ["GRADER"] = "1"
    ns: dict = {"__name__": "__calibration__"}
    here = Path.cwd()
    os.chdir(cwd or path.parent)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            for cell in nbformat.read(path, as_version=4).cells:
                if cell.cell_type == "code" and not cell.source.lstrip().startswith("# OPTIONAL"):
                    exec(compile(cell.source, str(path), "exec"), ns)  # noqa: S102 - our own notebooks
    finally:
        os.chdir(here)
    return ns


def definitions(path: Path) -> dict:
    """Only the imports, functions and classes of one of our own notebooks (no data loading, no
    training cells): what the grader's probes call."""
    import ast

    import nbformat

    ns: dict = {"__name__": "__calibration__"}
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        keep = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))]
        exec(compile(ast.Module(body=keep, type_ignores=[]), str(path), "exec"), ns)  # noqa: S102 - our own notebooks
    return ns


# ---- week 1 ----------------------------------------------------------------------------------

@week("week1")
def week1(seeds: int) -> list[Metric]:
    import random

    suite = ROOT / "solutions" / "week1"
    plan = load(suite / "plan.py", "cal_week1_plan")
    ref = load(suite / "week1_reference.py", "cal_week1_reference")
    probes = load(suite / "probes.py", "cal_week1_probes")
    t = load_thresholds("week1")
    fixtures = ROOT / "fixtures" / "submissions" / "week1"
    impls = {"solution": suite / "week1.ipynb", "independent (micrograd)": fixtures / "passes_micrograd_independent.ipynb",
             "alternative design": fixtures / "passes_all.ipynb"}
    out = []
    for label, path in impls.items():
        ns = notebook_namespace(path)
        grads = Metric("random-graph gradient error", label, pass_at=t["grad_err_pass"], log=True)
        numgrad = Metric("numerical_grad error, default h", label, pass_at=t["numgrad_err_pass"], log=True)
        modules = Metric("module output/grad error", label, pass_at=1e-9, log=True)
        loss = Metric("toy training loss after 100 steps", label, pass_at=t["loss_pass"])
        init_z = Metric("init: largest |z| of weight/bias mean and std", label, pass_at=5.0)
        for seed in range(seeds):
            specs = plan.random_graphs(1000 + seed, int(t["graph_count"]))
            grads.values.append(max(c.error for c in ref.compare_graphs(specs, probes.graphs(ns, specs))))
            rng = random.Random(seed)
            points = [["exercise", [rng.uniform(0.3, 2.0), rng.uniform(0.3, 2.0), rng.uniform(0.5, 3.0)]],
                      ["smooth", [rng.uniform(-2, 2), rng.uniform(-2, 2)]]]
            errs = [max(ref.error(g, w) for g, w in zip(r["grad"], ref.analytic_grad(n, a)))
                    for (n, a), r in zip(points, probes.numerical_grad(ns, points))]
            numgrad.values.append(max(errs))
            case = {"label": "MLP", "cls": "MLP", "args": [3, [4, 4, 1]],
                    "params": plan.module_params("MLP", [3, [4, 4, 1]], 500 + seed),
                    "inputs": [[rng.uniform(-2, 2) for _ in range(3)] for _ in range(3)]}
            res = probes.modules(ns, [case])[0]
            want_out, want_grad = ref.module_eval([3, 4, 4, 1], case["params"], case["inputs"])
            modules.values.append(max([ref.error(g, w) for o, wo in zip(res["outputs"], want_out)
                                       for g, w in zip(o, wo)] + [ref.error(g, w) for g, w in
                                                                  zip(res["grads"], want_grad)]))
            trained = probes.train(ns, args=[3, [4, 4, 1]], params=plan.toy_init(seed), steps=int(t["train_steps"]),
                                   lr=t["train_lr"], xs=plan.TOY_XS, ys=plan.TOY_YS)
            loss.values.append(ref.sse([3, 4, 4, 1], trained["params"], plan.TOY_XS, plan.TOY_YS)[0])
            drawn = probes.init_values(ns, plan.INIT_MODEL, seed)["first"]
            init_z.values.append(max(init_z_scores(plan, drawn)))
        out += [grads, numgrad, modules, loss, init_z]
    return out


def init_z_scores(plan, drawn: list[float]) -> list[float]:
    """|z| of the weights' and the biases' mean and std against uniform(-1, 1), with the standard errors
    test_init_uniform allows 5 of (mean: 0.577/sqrt(n), std: 0.298/sqrt(n))."""
    sizes, bias_at, k = plan.layer_sizes("MLP", plan.INIT_MODEL), set(), 0
    for nin, nout in itertools.pairwise(sizes):
        bias_at |= {k + (nin + 1) * j + nin for j in range(nout)}
        k += (nin + 1) * nout
    out = []
    for values in ([v for i, v in enumerate(drawn) if i not in bias_at], [drawn[i] for i in sorted(bias_at)]):
        n = len(values)
        out += [abs(statistics.fmean(values)) / (0.577 / math.sqrt(n)),
                abs(statistics.pstdev(values) - 0.577) / (0.298 / math.sqrt(n))]
    return out


# ---- week 2 ----------------------------------------------------------------------------------

@week("week2")
def week2(seeds: int) -> list[Metric]:
    import numpy as np
    import torch

    suite, data = ROOT / "solutions" / "week2", ROOT / "fixtures" / "data"
    cases = load(suite / "cases.py", "cases")  # the name the suite's own modules import it by
    ref = load(suite / "week2_reference.py", "cal_week2_reference")
    probes = load(ROOT / "assignments" / "week2" / "public" / "probes.py", "cal_week2_probes")
    from grader.judge.samples import NameReference, name_metrics

    t = load_thresholds("week2")
    words = cases.load_words(data)
    graded, counts = cases.graded_words(words), cases.bigram_counts(words)
    p_mle = (counts / counts.sum(1, keepdims=True)).astype(np.float32)
    xs, ys = cases.train_pairs(words)
    names_ref = NameReference.fit(words)
    impls = {"solution": suite / "week2.ipynb",
             "independent (makemore)": ROOT / "fixtures" / "submissions" / "week2" / "passes_bigram_independent.ipynb"}
    torch.set_num_threads(1)
    out = []
    for label, path in impls.items():
        ns = notebook_namespace(path, cwd=data)
        tv = Metric("sampler: first-letter total variation, n=500", label, pass_at=t["first_letter_tv_max"])
        long_len = Metric("sampler: mean length (upper line)", label, pass_at=t["sampler_len_max"])
        short_len = Metric("sampler: mean length (lower line)", label, pass_at=t["sampler_len_min"],
                           higher_is_better=True)
        train = Metric("training: |loss - the grader's own run|, seed varied", label, pass_at=t["trained_loss_slack"],
                       log=True)
        grad = Metric("net loss and W.grad: worst rel. error vs float64 (reg 0, 0.01, 0.1), W seed varied", label,
                      pass_at=t["net_loss_rel_pass"], log=True)
        wb4 = Metric("own samples: 4-gram NLL", label, pass_at=t["quality_wb4_pass"])
        long_share = Metric("own samples: share longer than 15", label, pass_at=t["quality_long_pass"])
        for seed in range(seeds):
            names = probes.sampler(ns, p_mle, int(t["sampler_n"]), 1000 + seed)
            first = np.bincount([cases.STOI[s[0]] for s in names], minlength=27)[1:] / len(names)
            p = cases.probs(counts, 0.0)
            tv.values.append(0.5 * float(np.abs(first - p[0, 1:]).sum()))
            mean_len = sum(map(len, names)) / len(names)
            long_len.values.append(mean_len)
            short_len.values.append(mean_len)
            args = {"steps": int(t["train_steps"]), "lr": t["train_lr"], "reg": t["train_reg"], "seed": 5000 + seed}
            w = probes.train(ns, xs, ys, **args)["w"].numpy()
            mine = cases.net_loss(w, xs, ys, args["reg"])
            train.values.append(max(abs(mine - cases.net_loss(ref.reference_train(data, **args), xs, ys, args["reg"])),
                                    1e-12))
            net = cases.net_inputs(words)  # the check's bigrams and regs, another float32 W per seed
            w = np.random.default_rng(9000 + seed).standard_normal(net["w"].shape).astype(np.float32)
            grad.values.append(max(net_loss_error(probes.net_loss(ns, w, net["xs"], net["ys"], net["regs"]), w,
                                                  net["xs"], net["ys"], net["regs"])))
            m = name_metrics(probes.own_samples(ns, graded, int(t["quality_n"]), 7000 + seed), names_ref)
            wb4.values.append(m.wb4_nll)
            long_share.values.append(m.long_share)
        out += [tv, long_len, short_len, train, grad, wb4, long_share]
    return out


def net_loss_error(got: list[dict], w, xs, ys, regs) -> list[float]:
    """test_net_loss_and_grad's measure for each reg: the larger of the loss's and W.grad's relative error
    against torch float64."""
    import torch

    errors = []
    for reg, entry in zip(regs, got):
        W = torch.tensor(w, dtype=torch.float64, requires_grad=True)
        logp = torch.log_softmax(W[torch.from_numpy(xs)], dim=1)
        loss = -logp[torch.arange(len(ys)), torch.from_numpy(ys)].mean() + reg * (W**2).mean()
        loss.backward()
        grad = torch.as_tensor(entry["grad"], dtype=torch.float64)
        errors.append(max(abs(float(entry["loss"]) - loss.item()) / abs(loss.item()),
                          float((grad - W.grad).abs().max() / W.grad.abs().max())))
    return errors


# ---- week 3 ----------------------------------------------------------------------------------

@week("week3")
def week3(seeds: int) -> list[Metric]:
    """The grader's training run (its loop, budget and data: probes._train) on each implementation's
    init_mlp/mlp_forward, one training seed each, scored by the judge on the held-out names."""
    import numpy as np
    import torch

    suite = ROOT / "solutions" / "week3"
    data = load(suite / "week3_data.py", "cal_week3_data")
    ref = load(suite / "week3_reference.py", "cal_week3_reference")
    probes = load(suite / "probes.py", "cal_week3_probes")
    t = load_thresholds("week3")
    d = data.load_data(ROOT / "fixtures" / "data")
    fixtures = ROOT / "fixtures" / "submissions" / "week3"
    impls = {"solution": suite / "week3.ipynb", "independent (lectures)": fixtures / "passes_lecture_independent.ipynb"}
    torch.set_num_threads(1)
    out = []
    for impl, path in impls.items():
        ns = definitions(path)
        loss = Metric("dev loss (held-out names)", impl, pass_at=t["dev_loss_pass"])
        for seed in range(seeds):
            params = probes._train(ns, d.Xtr, d.Ytr, int(t["train_steps"]), int(t["train_batch"]), float(t["train_lr"]),
                                   int(t["train_decay_at"]), 1000 + seed, torch.device("cpu"))
            p = {k: v.numpy().astype(np.float64) for k, v in params.items()}
            loss.values.append(float(ref.cross_entropy(ref.mlp_logits(p, d.Xho), d.Yho)))
            print(f"{impl} seed {1000 + seed}: {loss.values[-1]:.4f}", file=sys.stderr)
        out.append(loss)
    return out


# ---- week 4 ----------------------------------------------------------------------------------

@week("week4")
def week4(seeds: int) -> list[Metric]:
    """The grader's WaveNet run (probes._train: its loop and budget) on each implementation's layers,
    one training seed each, scored on the judge's held-out windows (plan.heldout_windows)."""
    import torch
    import torch.nn.functional as F

    suite = ROOT / "solutions" / "week4"
    public = ROOT / "assignments" / "week4" / "public"
    sys.path.insert(0, str(suite))
    plan = load(suite / "plan.py", "cal_week4_plan")
    cases = load(public / "cases.py", "cal_week4_cases")
    probes = load(public / "probes.py", "cal_week4_probes")
    t = load_thresholds("week4")
    data_dir = ROOT / "fixtures" / "data"
    Xtr, Ytr = cases.dataset(cases.names(data_dir))
    X, Y = plan.heldout_windows(data_dir, cases.BLOCK)
    torch.set_num_threads(1)
    out = []
    fixtures = ROOT / "fixtures" / "submissions" / "week4"
    for impl, path in chosen({"solution": suite / "week4.ipynb",
                              "independent (lecture)": fixtures / "passes_lecture_independent.ipynb"}).items():
        ns = definitions(path)
        loss = Metric("WaveNet dev loss (held-out windows)", impl, pass_at=t["dev_loss_pass"])
        for seed in range(seeds):
            model, _ = probes._train(ns, torch.from_numpy(Xtr), torch.from_numpy(Ytr), int(t["train_steps"]),
                                     int(t["batch_size"]), 1000 + seed, 0.1, 0.01, int(t["train_steps"] * 0.75),
                                     cases.BLOCK)
            logits = ns["evaluate_logits"](model, torch.from_numpy(X))
            loss.values.append(F.cross_entropy(logits.double(), torch.from_numpy(Y)).item())
            print(f"{impl} seed {1000 + seed}: {loss.values[-1]:.4f}", file=sys.stderr)
        out.append(loss)
    return out


# ---- week 5 ----------------------------------------------------------------------------------

def _week5_variant(ref, kind: str):
    """The judge's reference GPT, or one with a known flaw (they must land outside the pass margin)."""
    if kind == "reference":
        return ref.ReferenceGPT

    class Flawed(ref.ReferenceGPT):
        def forward(self, idx, targets=None):
            from torch.nn import functional as F

            h = self.tokens(idx) + (0 if kind == "no_position" else self.positions.weight[:idx.shape[1]])
            h = self.layers(h)
            logits = self.logits(h if kind == "no_final_norm" else self.norm(h))
            return logits, None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())

    return Flawed


@week("week5")
def week5(seeds: int) -> list[Metric]:
    """The grader's GPT training (probes.train_and_score: its loop and budget) on each implementation and
    on the judge's own ReferenceGPT with the same seed; the val loss on the held-out plays (last position
    of each window, grader.judge.heldout), the margin over the reference, and the sample metrics."""
    import shutil
    import tempfile

    import numpy as np
    import torch

    from grader.config import DATA_DIR, load_week, public_module, week_suite
    from grader.judge.heldout import mean_nll
    from grader.judge.samples import TextReference, median_text_metrics

    suite = week_suite("week5")
    plan, probes = public_module(suite / "plan.py", "plan"), public_module(suite / "plan.py", "probes")
    ref = load(suite / "week5_reference.py", "cal_week5_reference")
    t = load_thresholds("week5")
    text, chars, ids = plan.corpus(str(DATA_DIR))
    train_ids, _ = plan.split(ids)
    x, y = ref.heldout_windows(str(DATA_DIR), chars, plan.SMALL["block_size"])
    reference_text = TextReference.fit(text[: int(0.9 * len(text))])
    scratch = Path(tempfile.mkdtemp(prefix="calibrate-week5-"))  # the notebooks' cells read the week's data
    for name in load_week(suite).data:
        shutil.copyfile(DATA_DIR / name, scratch / name)
    fixtures = ROOT / "fixtures" / "submissions" / "week5"
    impls = {"solution": notebook_namespace(suite / "week5.ipynb", cwd=scratch),
             "independent (GPT lecture)": notebook_namespace(fixtures / "passes_gpt_independent.ipynb", cwd=scratch)}
    shutil.rmtree(scratch, ignore_errors=True)
    torch.set_num_threads(1)

    def run(ns: dict, seed: int) -> tuple[float, list[str]]:
        got = probes.train_and_score(ns, "train", len(chars), plan.SMALL, x,
                                     np.full((t["n_samples"], 1), chars.index("\n")), t["sample_len"], plan.SEED,
                                     train=train_ids, steps=t["train_steps"], batch_size=t["train_batch"],
                                     lr=t["train_lr"], seed=seed)
        samples = ["".join(chars[i] for i in row[1:]) for row in got["samples"].numpy()]
        return mean_nll(got["val_logits"].numpy(), y), samples

    reference = {seed: run({"GPTLanguageModel": _week5_variant(ref, "reference")}, 1000 + seed)[0]
                 for seed in range(seeds)}
    out = []
    quality = {name: Metric(name, "both correct", pass_at=t[key], higher_is_better=higher)
               for name, key, higher in (("wordvalid", "wordvalid_pass", True), ("nll5", "nll5_pass", False),
                                         ("mem40", "mem40_max", False), ("distinct2", "distinct2_min", True),
                                         ("speakerfmt", "speakerfmt_min", True))}
    for impl, ns in impls.items():
        margin = Metric("val loss - reference (same seed)", impl, pass_at=t["val_margin_pass"])
        for seed in range(seeds):
            loss, samples = run(ns, 1000 + seed)
            margin.values.append(loss - reference[seed])
            metrics = median_text_metrics(samples, reference_text)
            for name, metric in quality.items():
                metric.values.append(float(getattr(metrics, name)))
            print(f"{impl} seed {1000 + seed}: val {loss:.4f} (reference {reference[seed]:.4f})", file=sys.stderr)
        out.append(margin)
    for kind in ("no_position", "no_final_norm"):  # known flaws: every seed must land past the pass margin
        flawed = Metric(f"val loss - reference, {kind} (must fail)", kind, pass_at=t["val_margin_pass"],
                        higher_is_better=True)
        for seed in range(min(seeds, 5)):
            loss, _ = run({"GPTLanguageModel": _week5_variant(ref, kind)}, 1000 + seed)
            flawed.values.append(loss - reference[seed])
        out.append(flawed)
    return out + list(quality.values())


# ---- week 6 ----------------------------------------------------------------------------------

@week("week6")
def week6(seeds: int) -> list[Metric]:
    """The architect's check: the grader's interleaved vanilla vs RoPE+SwiGLU run (probes.compare: its
    loop, steps and AdamW) on each implementation's classes, one seed each, scored on the held-out plays'
    windows (last position of each, capstone.heldout_windows) exactly as test_architect_training does."""
    import numpy as np
    import torch

    from grader.config import DATA_DIR

    suite = ROOT / "solutions" / "week6"
    sys.path.insert(0, str(suite))
    capstone = load(suite / "capstone.py", "cal_week6_capstone")
    probes = load(suite / "probes.py", "cal_week6_probes")
    t = load_thresholds("week6")
    chars, train, _ = capstone.shakespeare_data(DATA_DIR)
    block = capstone.CONFIG["block_size"]
    val_x, val_y = capstone.heldout_windows(DATA_DIR, chars, block, int(t["val_windows"]))
    torch.set_num_threads(1)
    out = []
    # architect_passes is the solution with another TRACK: the same classes, so the same numbers; the
    # second implementation is the one written from the stub (make_fixtures.py, ARCHITECT)
    for impl, path in chosen({"solution": suite / "week6.ipynb",
                              "independent": ROOT / "fixtures" / "submissions" / "week6" /
                              "passes_architect_independent.ipynb"}).items():
        ns = definitions(path)
        margin = Metric("modified - vanilla val loss (equal steps)", impl, pass_at=t["architect_margin_pass"])
        modified = Metric("modified val loss", impl, pass_at=t["architect_val_max"])
        for seed in range(seeds):
            got = probes.compare(ns, len(chars), capstone.CONFIG, 1000 + seed, int(t["architect_steps"]),
                                 train.astype(np.int64), val_x.astype(np.int64))
            loss = {k: capstone.cross_entropy(np.asarray(got[k]["logits"])[:, -1], val_y)
                    for k in ("vanilla", "modified")}
            margin.values.append(loss["modified"] - loss["vanilla"])
            modified.values.append(loss["modified"])
            print(f"{impl} seed {1000 + seed}: vanilla {loss['vanilla']:.4f} modified {loss['modified']:.4f}",
                  file=sys.stderr)
        out += [margin, modified]
    return out


@week("week6-specialist")
def week6_specialist(seeds: int) -> list[Metric]:
    """The specialist's checks: the grader's training and sampling (probes.specialist: its loop, steps and
    seeds) of a notebook's GPT on a corpus, one seed each, measured as test_beats_bigram and
    test_sample_style do. Two implementations (the solution, and the inspector-independent fixture's GPT,
    written from the GPT lecture) on the reference corpus (pydoc text, specialist_passes) and a second
    corpus of another kind (the same modules' Python source); `--only` picks pairs by their label."""
    import numpy as np
    import torch

    suite = ROOT / "solutions" / "week6"
    sys.path.insert(0, str(suite))
    capstone = load(suite / "capstone.py", "cal_week6s_capstone")
    probes = load(suite / "probes.py", "cal_week6s_probes")
    t = load_thresholds("week6")
    fixtures = ROOT / "fixtures" / "submissions" / "week6"
    impls = {"solution": fixtures / "specialist_passes" / "week6.ipynb",
             "independent (GPT lecture)": fixtures / "passes_inspector_independent.ipynb"}
    corpora = {"pydoc corpus": lambda: (fixtures / "specialist_passes" / "my_corpus.txt").read_text(encoding="utf-8"),
               "stdlib source corpus": stdlib_source_corpus}
    pairs = chosen({f"{impl} / {corpus}": (impl, corpus) for impl in impls for corpus in corpora})
    torch.set_num_threads(1)
    out = []
    for label, (impl, corpus) in pairs.items():
        out += specialist_runs(label, definitions(impls[impl]), corpora[corpus](), seeds, capstone, probes, t, np)
    return out


def stdlib_source_corpus() -> str:
    """A corpus unlike the reference one: the Python source of the modules whose pydoc text that corpus
    is (make_fixtures.MODULES), ASCII, 300 KB; it depends on the Python version, printed with the figures."""
    fixtures = load(ROOT / "fixtures" / "submissions" / "week6" / "make_fixtures.py", "cal_week6_make_fixtures")
    files = [getattr(importlib.import_module(name), "__file__", None) for name in fixtures.MODULES]
    text = "\n\n".join(Path(f).read_text(encoding="utf-8") for f in files if f)  # C modules have no source
    text = text.encode("ascii", "ignore").decode()[:fixtures.CORPUS_BYTES]
    print(f"stdlib source corpus: Python {sys.version.split()[0]}, {len(text):,} characters", file=sys.stderr)
    return text[: text.rfind("\n") + 1]


def specialist_runs(label: str, ns: dict, text: str, seeds: int, capstone, probes, t: dict, np) -> list[Metric]:
    from grader.judge.samples import TextReference, median_text_metrics

    chars = capstone.vocab(text)
    train, val = capstone.split(capstone.encode(text, chars))
    val_x, val_y = capstone.val_windows(val, capstone.CONFIG["block_size"], int(t["val_windows"]))
    bigram = capstone.bigram_nll(train, val_x, val_y, len(chars))
    cut = int(0.9 * len(text))
    ref = TextReference.fit(text[:cut])
    corpus_nll5 = ref.lm.mean_nll([text[cut:cut + 20_000]])
    margin = Metric("bigram - val loss", label, pass_at=t["specialist_margin_pass"], higher_is_better=True)
    excess = Metric("sample nll5 - corpus nll5", label, pass_at=t["nll5_excess_pass"])
    valid = Metric("sample wordvalid", label, pass_at=t["wordvalid_pass"], higher_is_better=True)
    copied = Metric("sample mem40", label, pass_at=t["mem40_max"])
    for seed in range(seeds):
        got = probes.specialist(ns, len(chars), capstone.CONFIG, 1000 + seed, int(t["specialist_steps"]),
                                train.astype(np.int64), val_x.astype(np.int64), int(t["n_samples"]),
                                int(t["sample_len"]))
        loss = capstone.cross_entropy(np.asarray(got["logits"]), val_y)
        m = median_text_metrics(["".join(chars[j] for j in s) for s in got["samples"]], ref)
        margin.values.append(bigram - loss)
        excess.values.append(m.nll5 - corpus_nll5)
        valid.values.append(m.wordvalid)
        copied.values.append(m.mem40)
        print(f"{label} seed {1000 + seed}: val {loss:.4f} (bigram {bigram:.4f}) wordvalid {m.wordvalid:.3f} "
              f"nll5 excess {m.nll5 - corpus_nll5:.3f} mem40 {m.mem40:.3f}", file=sys.stderr)
    return [margin, excess, valid, copied]


def load_thresholds(name: str, profile: str = "cpu") -> dict:
    import tomllib

    return tomllib.loads((ROOT / "solutions" / name / "week.toml").read_text())["profiles"][profile]["thresholds"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("week", choices=sorted(WEEKS))
    parser.add_argument("--seeds", type=int, default=20, help="seeds per implementation (at least 20)")
    parser.add_argument("--only", action="append", default=[], help="only the implementations named so (weeks 4, 6)")
    args = parser.parse_args(argv)
    ONLY.extend(args.only)
    if args.seeds < 20:
        parser.error("--seeds: at least 20 (issue 19: bands are set from at least 20 seeds)")
    start = time.monotonic()
    metrics = WEEKS[args.week](args.seeds)
    print(f"# {args.week}: {args.seeds} seeds per implementation ({time.monotonic() - start:.0f} s)\n")
    print("| metric | implementation | n | mean | sd | min | max | pass | failing | FN (normal fit) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for m in metrics:
        print(m.row())
    return 0


if __name__ == "__main__":
    sys.exit(main())
