"""Week 4 hidden checks (TRUSTED): manual gradients vs autograd, WaveNet structure, training, samples.

Every reference is computed here, in float64, from the same seeded inputs plan.py sent (the
public suite's cases.py rebuilds them from this suite's seeds, its reference.py differentiates
them); the sandbox only ever ran the student's functions on them.
"""

from __future__ import annotations

import ast
import math

import numpy as np
import plan
import pytest
import torch
import torch.nn.functional as F

from grader.config import public_module
from grader.judge.answers import AnswerError, to_array, to_number
from grader.judge.verdict import require
from grader.report.charts import write_curve

cases = public_module(__file__, "cases")
reference = public_module(__file__, "reference")

MANUAL = ("cross_entropy_backward", "linear_backward", "tanh_backward", "batchnorm_backward",
          "embedding_backward", "manual_backward")
PARAM_NAMES = ("C", "W1", "b1", "W2", "b2", "bngain", "bnbias")


def unit_references() -> dict[str, dict[str, torch.Tensor]]:
    """Autograd gradients for each layer on the inputs plan.py sent."""
    return reference.unit_references(cases.unit_inputs(plan.UNIT_SEED), cases.VOCAB)


def network_reference() -> tuple[float, dict[str, torch.Tensor]]:
    """Loss and autograd gradients of the notebook's fixed forward pass, float64."""
    return reference.network_reference(*cases.net_inputs(plan.NET_SEED))


# ---- comparing ----------------------------------------------------------------------------

def compare(name: str, got, want: torch.Tensor) -> tuple[float, dict]:
    """Max |got - want| (values compared after a reshape if only the shape is off) and details."""
    arr = to_array(got, name)
    if arr.size != want.numel():
        raise AnswerError(f"{name}: {arr.size} numbers, expected {want.numel()} (shape {tuple(want.shape)})")
    diff = float(np.abs(arr.reshape(tuple(want.shape)) - want.numpy()).max()) if arr.size else 0.0
    exact = bool(np.array_equal(arr.reshape(tuple(want.shape)), want.numpy()))
    return diff, {f"{name}_max_diff": diff, f"{name}_exact": exact, f"{name}_close": diff <= 1e-9}


def grade_grads(measure, thresholds, label: str, pairs: dict[str, tuple]) -> None:
    worst, details = 0.0, {}
    for name, (got, want) in pairs.items():
        diff, info = compare(name, got, want)
        worst, details = max(worst, diff), {**details, **info}
    measure(worst, pass_at=thresholds["grad_pass"], fail_at=thresholds["grad_fail"], log=True, **details)
    bad = [k.removesuffix("_max_diff") + f" {v:.1e}" for k, v in details.items()
           if k.endswith("_max_diff") and v > thresholds["grad_pass"]]
    assert worst <= thresholds["grad_pass"], (
        f"{label}: max |manual - autograd| = {worst:.2e} (allowed {thresholds['grad_pass']:g}); off: {', '.join(bad)}")


def unit_answer(answers, key: str):
    value = answers.get("grad_units")
    entry = value.get(key) if isinstance(value, dict) else None
    if not isinstance(entry, dict):
        raise AnswerError(f"no result for {key}")
    if not entry.get("ok"):
        raise AnswerError(f"{key}_backward raised {entry.get('error', 'an error')}")
    return entry["value"]


def _parts(value, n: int, what: str) -> list:
    if not isinstance(value, list) or len(value) != n:
        raise AnswerError(f"{what} must return {n} tensors, got {type(value).__name__}")
    return value


# ---- gradient checks ----------------------------------------------------------------------

@pytest.mark.check(points=2, category="gradient")
def test_grad_cross_entropy(answers, thresholds, measure):
    """cross_entropy_backward matches autograd (float64)."""
    want = unit_references()["cross_entropy"]
    grade_grads(measure, thresholds, "cross_entropy_backward",
                {"dlogits": (unit_answer(answers, "cross_entropy"), want["dlogits"])})


@pytest.mark.check(points=2, category="gradient")
def test_grad_linear(answers, thresholds, measure):
    """linear_backward returns (dx, dW, db) matching autograd."""
    want = unit_references()["linear"]
    dx, dW, db = _parts(unit_answer(answers, "linear"), 3, "linear_backward")
    grade_grads(measure, thresholds, "linear_backward",
                {"dx": (dx, want["dx"]), "dW": (dW, want["dW"]), "db": (db, want["db"])})


@pytest.mark.check(points=2, category="gradient")
def test_grad_tanh(answers, thresholds, measure):
    """tanh_backward uses the tanh OUTPUT h: (1 - h**2) * dout."""
    want = unit_references()["tanh"]
    grade_grads(measure, thresholds, "tanh_backward", {"dpre": (unit_answer(answers, "tanh"), want["dpre"])})


@pytest.mark.check(points=3, category="gradient")
def test_grad_batchnorm(answers, thresholds, measure):
    """batchnorm_backward (unbiased variance, Bessel's n/(n-1)) matches autograd."""
    want = unit_references()["batchnorm"]
    dx, dgamma, dbeta = _parts(unit_answer(answers, "batchnorm"), 3, "batchnorm_backward")
    grade_grads(measure, thresholds, "batchnorm_backward",
                {"dx": (dx, want["dx"]), "dgamma": (dgamma, want["dgamma"]), "dbeta": (dbeta, want["dbeta"])})


@pytest.mark.check(points=2, category="gradient")
def test_grad_embedding(answers, thresholds, measure):
    """embedding_backward adds up the gradients of repeated indices."""
    want = unit_references()["embedding"]
    grade_grads(measure, thresholds, "embedding_backward (hint: dC[X] += demb drops repeated rows)",
                {"dC": (unit_answer(answers, "embedding"), want["dC"])})


@pytest.mark.check(points=4, category="gradient")
def test_grad_network(answers, thresholds, measure):
    """manual_backward gives every parameter's gradient of the full 2-layer BatchNorm net."""
    loss, want = network_reference()
    got = answers.get("grad_network")
    student_loss = to_number(got.get("loss"), "forward loss")
    grads = got.get("grads")
    if not isinstance(grads, dict) or set(PARAM_NAMES) - set(grads):
        raise AnswerError(f"manual_backward must return a dict with keys {', '.join(PARAM_NAMES)}")
    measure(abs(student_loss - loss), target="forward unchanged", forward_loss=student_loss, reference_loss=loss)
    assert abs(student_loss - loss) < 1e-9, f"forward() gives loss {student_loss:.6f}, expected {loss:.6f}: keep it as given"
    grade_grads(measure, thresholds, "manual_backward", {k: (grads[k], want[k]) for k in PARAM_NAMES})


@pytest.mark.check(points=2, category="correctness")
def test_grad_shapes(answers, thresholds, measure):
    """Every returned gradient has exactly the shape of what it differentiates."""
    raw, _, _ = cases.net_inputs(plan.NET_SEED)
    grads = answers.get("grad_network").get("grads") or {}
    wrong = []
    for name in PARAM_NAMES:
        shape = tuple(to_array(grads.get(name), f"grad {name}").shape)
        if shape != raw[name].shape:
            wrong.append(f"d{name} {shape} vs {name} {raw[name].shape}")
    want = {"linear": [(32, 30), (30, 64), (64,)], "batchnorm": [(32, 64), (1, 64), (1, 64)]}
    for key, shapes in want.items():
        parts = _parts(unit_answer(answers, key), 3, f"{key}_backward")
        for part, shape in zip(parts, shapes):
            if tuple(to_array(part, key).shape) != shape:
                wrong.append(f"{key}_backward: {tuple(to_array(part, key).shape)} instead of {shape}")
    measure(len(wrong), target="0 wrong shapes")
    assert not wrong, "gradient shapes differ (hint: .sum(0, keepdim=True) for (1, C) parameters): " + "; ".join(wrong)
    # shapes alone prove nothing (zeros of the right shape have them): they count with gradients that work
    _, want_net = network_reference()
    err = max(compare(k, grads[k], want_net[k])[0] for k in PARAM_NAMES)
    assert err <= thresholds["grad_fail"], (
        f"the shapes are right but manual_backward's gradients are off by up to {err:.2e} (this check needs "
        f"≤ {thresholds['grad_fail']:g}): shapes earn points only with gradients that match autograd")


# ---- integrity ----------------------------------------------------------------------------

FORBIDDEN_ATTRS = {"backward", "requires_grad", "requires_grad_", "retain_grad", "grad", "autograd",
                   "enable_grad", "set_grad_enabled", "vjp", "jacobian"}
FORBIDDEN_NAMES = {"autograd", "enable_grad", "set_grad_enabled", "vjp", "jacobian"}


def _functions(cells: list[str]) -> dict[str, ast.AST]:
    found = {}
    for src in cells:
        text = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in src.splitlines())
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found[node.name] = node  # the last definition wins, as in the kernel
    return found


def autograd_uses(cells: list[str]) -> list[str]:
    """Autograd used inside the manual-backward functions or the notebook functions they call."""
    functions = _functions(cells)
    todo, seen, hits = [n for n in MANUAL if n in functions], set(), []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for node in ast.walk(functions[name]):
            bad = None
            if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
                bad = f".{node.attr}"
            elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
                bad = node.id
            elif isinstance(node, ast.keyword) and node.arg == "requires_grad":
                bad = "requires_grad="
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [getattr(node, "module", "") or ""] + [a.name for a in node.names]
                if any("autograd" in m or m == "grad" for m in mods):
                    bad = "import of autograd"
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in functions:
                todo.append(node.func.id)
            if bad:
                hits.append(f"{name} (line {getattr(node, 'lineno', '?')}): {bad}")
    return hits


def units_that_work(answers, thresholds) -> list[str]:
    """The backward functions whose gradients are within grad_fail of autograd."""
    refs, working = unit_references(), []
    names = {"cross_entropy": ["dlogits"], "linear": ["dx", "dW", "db"], "tanh": ["dpre"],
             "batchnorm": ["dx", "dgamma", "dbeta"], "embedding": ["dC"]}
    for key, parts in names.items():
        try:
            value = unit_answer(answers, key)
            got = [value] if len(parts) == 1 else _parts(value, len(parts), key)
            err = max(compare(f"{key} {part}", g, refs[key][part])[0] for g, part in zip(got, parts))
        except AnswerError:
            continue
        if err <= thresholds["grad_fail"]:
            working.append(key)
    return working


@pytest.mark.check(points=3, category="integrity")
def test_no_autograd(answers, cells, thresholds, measure):
    """The manual-backward functions compute gradients by hand, without autograd."""
    static = autograd_uses(cells)
    units = answers.get("grad_units")
    network = answers.get("grad_network")
    calls = to_number(network.get("autograd_calls"), "autograd calls")
    for key in ("cross_entropy", "linear", "tanh", "batchnorm", "embedding"):
        entry = units.get(key) if isinstance(units, dict) else None
        if not isinstance(entry, dict) or not entry.get("ok"):
            raise AnswerError(f"{key}_backward did not run, so it cannot be checked")
        calls += to_number(entry.get("autograd_calls"), "autograd calls")
    working = units_that_work(answers, thresholds)
    measure(len(static) + calls, target="0 uses of autograd", static_hits=len(static), runtime_calls=calls,
            working_units=len(working))
    assert not static, "autograd used in manual-backward code: " + "; ".join(static[:6])
    assert calls == 0, f"autograd was called {calls:g} times while your manual-backward functions ran"
    # code that computes nothing uses no autograd either: the check counts backward functions that work
    assert len(working) >= 3, (
        f"only {len(working)} of the 5 backward functions ({', '.join(working) or 'none'}) give gradients within "
        f"{thresholds['grad_fail']:g} of autograd; this check counts autograd-free code once at least 3 work")


# ---- WaveNet ------------------------------------------------------------------------------

def wavenet_shapes(vocab_size: int, n_embd: int, n_hidden: int, block_size: int) -> list[tuple[int, ...]]:
    """The lecture's WaveNet, in parameters() order: Embedding, then per level of FlattenConsecutive(2)
    a Linear without bias and a BatchNorm1d (gain, bias), then the output Linear (weight, bias)."""
    shapes, width = [(vocab_size, n_embd)], n_embd
    while block_size > 1:
        shapes += [(2 * width, n_hidden), (n_hidden,), (n_hidden,)]
        width, block_size = n_hidden, block_size // 2
    return shapes + [(n_hidden, vocab_size), (vocab_size,)]


def wavenet_weights(got, sizes: tuple[int, int, int, int]) -> list[np.ndarray]:
    """The returned parameters, each checked against the shape the lecture's WaveNet of these sizes
    gives it (BatchNorm's gain and bias may be (C,), (1, C) or (1, 1, C))."""
    params = got.get("params")
    want = wavenet_shapes(*sizes)
    if not isinstance(params, list) or len(params) != len(want):
        raise AnswerError(f"model.parameters() gives {len(params) if isinstance(params, list) else 'no'} tensors "
                          f"for a WaveNet of sizes {sizes}, expected {len(want)} (the embedding, per level a Linear "
                          "without bias and a BatchNorm1d's gain and bias, the output Linear's weight and bias)")
    arrays = []
    for i, (value, shape) in enumerate(zip(params, want)):
        arr = to_array(value, f"parameter {i}")
        ok = arr.shape == shape or (len(shape) == 1 and arr.size == shape[0] and max(arr.shape, default=0) == arr.size)
        if not ok:
            raise AnswerError(f"parameter {i} of a WaveNet of sizes {sizes} has shape {arr.shape}, expected {shape}")
        arrays.append(arr.reshape(shape))
    return arrays


def wavenet_logits(params: list[np.ndarray], X: np.ndarray, stats=None, eps: float = 1e-5) -> np.ndarray:
    """Eval-mode logits of the lecture's WaveNet, float64, from its parameters and each BatchNorm's
    running (mean, var) as returned (None: fresh ones, 0 and 1; "batch": training mode, X's statistics)."""
    C, *layers = (torch.from_numpy(p).double() for p in params)
    x = C[torch.from_numpy(np.asarray(X, dtype=np.int64))]
    levels = (len(layers) - 2) // 3
    for i in range(levels):
        W, gain, bias = layers[3 * i: 3 * i + 3]
        B, T, width = x.shape
        x = x.reshape(B, T // 2, 2 * width)
        if x.shape[1] == 1:
            x = x.squeeze(1)
        x = x @ W
        if stats == "batch":  # training mode: the batch's statistics over every dim but the last
            dims = tuple(range(x.ndim - 1))
            mean, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True, unbiased=True)
        else:
            mean, var = (torch.zeros(()), torch.ones(())) if stats is None else (
                torch.from_numpy(to_array(s, "running statistics")).double() for s in stats[i])
        try:
            x = torch.tanh(gain * (x - mean) / torch.sqrt(var + eps) + bias)
        except RuntimeError as exc:
            raise AnswerError(f"BatchNorm {i + 1}'s running statistics do not fit its input {tuple(x.shape)}: "
                              f"{str(exc)[:120]}") from None
    return (x @ layers[-2] + layers[-1]).numpy()


def recompute_error(logits: np.ndarray, want: np.ndarray) -> float:
    """Max |logits - judge's recomputation|, relative to the logits' scale (at least 1)."""
    if logits.shape != want.shape:
        return math.inf
    return float(np.abs(logits - want).max() / max(1.0, float(np.abs(want).max())))


@pytest.mark.check(points=2, category="correctness")
def test_wavenet_params(answers, thresholds, measure):
    """build_wavenet() has 76,579 parameters, counted by the judge from the returned tensors, which must
    give the model's own logits on the judge's contexts (and do the same at sizes the judge picks)."""
    counts, errors = {}, {}
    for key, sizes in plan.STRUCTURES.items():
        X = plan.structure_input(sizes[3])
        got = answers.get(key)
        params = wavenet_weights(got, sizes)
        logits = to_array(got.get("logits"), f"logits of a WaveNet of sizes {sizes}",
                          shape=(len(X), sizes[0]), finite=False)
        counts[key] = sum(p.size for p in params)
        errors[key] = recompute_error(logits, wavenet_logits(params, X))
    n, worst = counts["wavenet_structure"], max(errors.values())
    measure(n, target="= 76579", recompute_error=worst, small_model_params=counts["wavenet_small"])
    require(n == 76579, f"build_wavenet() has {n:g} parameters, expected 76,579")
    require(worst <= thresholds["recompute_tol"], (
        f"the model's eval-mode logits differ by {worst:.1e} (relative) from the judge's recomputation from its "
        "own parameters: is the layer order Embedding, 3 x [FlattenConsecutive(2), Linear(bias=False), BatchNorm1d, "
        "Tanh], Linear, with build_wavenet using its arguments?"))


@pytest.mark.check(points=2, category="correctness")
def test_flatten_consecutive(answers, measure):
    """FlattenConsecutive joins consecutive positions, as an explicit reshape does."""
    x = torch.from_numpy(cases.flatten_input())
    want2 = x.reshape(2, 4, 6).numpy()
    want8 = x.reshape(2, 24).numpy()
    got2 = to_array(answers.get("flatten_consecutive").get("out"), "FlattenConsecutive(2)")
    got8 = to_array(answers.get("flatten_all").get("out"), "FlattenConsecutive(8)")
    ok2 = got2.shape == want2.shape and np.array_equal(got2, want2)
    ok8 = got8.shape == want8.shape and np.array_equal(got8, want8)
    measure(int(ok2) + int(ok8), target="2 of 2", n2_shape=str(got2.shape), n8_shape=str(got8.shape))
    assert ok2, f"FlattenConsecutive(2) on (2, 8, 3) gave shape {got2.shape}: expected (2, 4, 6) = x.reshape(2, 4, 6)"
    assert ok8, f"FlattenConsecutive(8) on (2, 8, 3) gave shape {got8.shape}: expected (2, 24) (squeeze T = 1)"


@pytest.mark.check(points=3, category="correctness")
def test_batchnorm_3d(answers, measure):
    """BatchNorm1d on (B, T, C) averages over dims (0, 1); running stats have shape (1, 1, C)."""
    x = torch.from_numpy(cases.bn3d_input(plan.BN3D_SEED)).double()
    got = answers.get("batchnorm_3d")
    mean = to_array(got.get("running_mean"), "running_mean")
    var = to_array(got.get("running_var"), "running_var")
    want_mean = 0.1 * x.mean((0, 1), keepdim=True)
    want_var = 0.9 + 0.1 * x.var((0, 1), keepdim=True, unbiased=True)
    measure(float(np.abs(mean.reshape(-1)[: 16] - want_mean.reshape(-1).numpy()).max()) if mean.size >= 16 else math.inf,
            target="(1, 1, C), mean over dims (0, 1)", running_mean_shape=str(mean.shape))
    assert mean.shape == (1, 1, 16), (f"running_mean has shape {mean.shape} for a (32, 4, 16) input, expected "
                                      "(1, 1, 16): reduce over dims (0, 1) for 3-D input")
    assert np.allclose(mean, want_mean.numpy(), atol=1e-4), "running_mean is not 0.9 * 0 + 0.1 * batch mean over (0, 1)"
    assert np.allclose(var, want_var.numpy(), rtol=1e-3), "running_var is not 0.9 * 1 + 0.1 * unbiased batch variance"


@pytest.mark.check(points=6, category="loss")
def test_wavenet_dev_loss(answers, thresholds, data_dir, artifacts, measure):
    """The grader trains your WaveNet (its seed, loop and budget) and scores dev loss on held-out names."""
    Xdev, Ydev = plan.heldout_windows(data_dir, cases.BLOCK)
    got = answers.get("train_wavenet")
    logits = to_array(got.get("dev_logits"), "dev logits", shape=(len(Ydev), cases.VOCAB))
    # the loss is the trained WaveNet's: the judge recomputes the logits from its parameters and running
    # statistics (logits from anything else, a lookup or an n-gram, would not be)
    stats = got.get("bn_stats")
    if not isinstance(stats, list) or len(stats) != 3:
        raise AnswerError("the trained WaveNet must have 3 BatchNorm1d layers with running statistics")
    params = wavenet_weights(got, plan.STRUCTURES["wavenet_structure"])
    # eval mode, or (evaluate_logits left training on: eval_single_example takes its points) the dev batch's
    # statistics: either way the logits are the trained WaveNet's, and that is what this check scores
    err, want = min(((recompute_error(logits, w), w) for w in
                     (wavenet_logits(params, Xdev, stats), wavenet_logits(params, Xdev, "batch"))), key=lambda t: t[0])
    loss = F.cross_entropy(torch.from_numpy(want), torch.from_numpy(Ydev)).item()
    write_curve(artifacts / "week4_train_curve.json", got.get("curve") or [],
                title="WaveNet train loss (grader's run)", target=thresholds["dev_loss_pass"])
    measure(loss, pass_at=thresholds["dev_loss_pass"], fail_at=thresholds["dev_loss_fail"],
            steps=thresholds["train_steps"], batch_size=thresholds["batch_size"], floor=thresholds["dev_loss_floor"],
            recompute_error=err)
    require(err <= thresholds["recompute_tol"], (
        f"evaluate_logits' dev logits differ by {err:.1e} (relative) from those the judge recomputes from the trained "
        "model's parameters (with its running statistics, or the batch's): they must be the trained WaveNet's"))
    assert loss >= thresholds["dev_loss_floor"], (
        f"dev loss {loss:.4f} is below {thresholds['dev_loss_floor']}: impossible for a 76k-parameter model; "
        "does the model see the next character?")
    assert loss <= thresholds["dev_loss_pass"], (
        f"dev loss {loss:.4f} on {len(Ydev)} held-out positions after the grader's {thresholds['train_steps']} steps, "
        f"{loss - thresholds['dev_loss_pass']:.3f} above the full-marks line {thresholds['dev_loss_pass']} "
        f"(0 points at {thresholds['dev_loss_fail']})")


@pytest.mark.check(points=2, category="correctness")
def test_eval_single_example(answers, data_dir, thresholds, measure):
    """evaluate_logits works in eval mode: one example and a batch give the logits the judge recomputes
    from the trained model's parameters and running statistics."""
    got = answers.get("eval_single")
    X = plan.heldout_windows(data_dir, cases.BLOCK)[0][:16]
    one = to_array(got.get("single"), "single-example logits", shape=(1, cases.VOCAB), finite=False)
    batch = to_array(got.get("batch"), "batch logits", shape=(16, cases.VOCAB), finite=False)
    stats = got.get("bn_stats")
    if not isinstance(stats, list) or len(stats) != 3 or any(not isinstance(s, list) or len(s) != 2 for s in stats):
        raise AnswerError("the trained WaveNet must have 3 BatchNorm1d layers, each with running_mean and running_var")
    want = wavenet_logits(wavenet_weights(got, plan.STRUCTURES["wavenet_structure"]), X, stats)
    finite = bool(np.isfinite(one).all())
    diff = float(np.abs(one[0] - batch[0]).max()) if finite and np.isfinite(batch).all() else math.inf
    err = max(recompute_error(one, want[:1]), recompute_error(batch, want))
    measure(err, target=f"≤ {thresholds['recompute_tol']:g} from the judge's eval-mode recomputation",
            finite=finite, single_vs_batch=diff)
    require(finite, "a single example gives NaN/inf logits: is BatchNorm still in training mode (batch statistics)?")
    require(diff <= thresholds["eval_tol"],
            f"logits of one example change by {diff:.2e} when other examples are in the batch: set eval mode")
    require(err <= thresholds["recompute_tol"], (
        f"evaluate_logits differs by {err:.1e} (relative) from the eval-mode logits the judge recomputes from the "
        "model's parameters and running statistics: use the running statistics, not the batch's"))


@pytest.mark.check(points=1, category="runs_clean")
def test_runs_clean(execution, answers, thresholds, measure):
    """Every cell of the notebook runs without an error (and its code works: most backward functions
    match autograd)."""
    failures = execution.get("failures", [])
    measure(len(failures), target="0 failing cells")
    assert execution.get("cells_run", 0) > 0, "no cell ran"
    assert not failures, "cells failed: " + "; ".join(
        f"cell {f['index']}: {f.get('ename', f.get('kind'))} {f.get('evalue', '')[:120]}" for f in failures[:3])
    # cells that catch their own errors run clean too: the point counts once the notebook's code works
    working = units_that_work(answers, thresholds)
    require(len(working) >= 3, f"the notebook runs, but only {len(working)} of the 5 backward functions give "
            "gradients that match autograd: this check counts a clean run once at least 3 work")


@pytest.mark.check(points=3, category="samples")
def test_sample_quality(answers, thresholds, data_dir, artifacts, measure):
    """Samples from the trained WaveNet look like names (Witten-Bell 4-gram NLL, validity, novelty)."""
    from grader.judge.samples import NameReference, name_metrics

    names = answers.strings("samples", "names", max_items=2 * thresholds["n_samples"])
    got = answers.get("samples")
    (artifacts / "week4_samples.txt").write_text("\n".join(names[:200]))
    assert len(names) == thresholds["n_samples"], f"sample_names returned {len(names)} names, asked for {thresholds['n_samples']}"
    train, dev, test = cases.split(cases.names(data_dir))
    m = name_metrics(names, NameReference.fit(train, dev + test))
    # names that read well prove nothing until the judge sees that the model sampled them
    z, entropy = sample_consistency(names, got) if m.valid > 0 else (math.inf, math.inf)
    measure(m.wb4_nll, pass_at=thresholds["wb4_pass"], fail_at=thresholds["wb4_fail"], **m.as_dict(),
            model_entropy=entropy, sample_z=z)
    problems = []
    if m.valid < thresholds["min_valid"]:
        problems.append(f"only {m.valid:.0%} valid names (a-z, non-empty)")
    if m.unique < thresholds["min_unique"]:
        problems.append(f"only {m.unique:.0%} distinct")
    if m.long_share > thresholds["max_long_share"]:
        problems.append(f"{m.long_share:.0%} longer than 15 characters")
    if m.exact_real > thresholds["max_exact_real"] or m.novel < thresholds["min_novel"]:
        problems.append(f"{m.exact_real:.0%} are real names, {m.novel:.0%} novel: memorised?")
    assert not problems, "; ".join(problems)
    require(entropy <= thresholds["sample_entropy_max"], (
        f"the model that sampled these names is {entropy:.2f} nats/char unsure of every next character (limit "
        f"{thresholds['sample_entropy_max']}, uniform 3.30): samples count only from a trained model"))
    require(z <= thresholds["sample_z_max"], (
        f"the names are {z:.1f} standard deviations less likely under the model than its own samples would be "
        f"(limit {thresholds['sample_z_max']}): sample_names must draw every character from the model's softmax"))
    assert m.wb4_nll <= thresholds["wb4_pass"], f"samples score {m.wb4_nll:.3f} nats/char under the 4-gram reference"


def sample_consistency(names: list[str], got) -> tuple[float, float]:
    """(z, mean entropy) of the valid names under the model whose parameters and running statistics the
    samples probe returned, recomputed by the judge in eval mode. z is the sum over every character drawn
    (and the end of each name up to 15 characters) of NLL minus the distribution's entropy, over its
    standard deviation: about N(0, 1) for names the model sampled, large for names drawn elsewhere."""
    stats = got.get("bn_stats")
    if not isinstance(stats, list) or len(stats) != 3:
        raise AnswerError("the sampling model must have 3 BatchNorm1d layers with running statistics")
    params = wavenet_weights(got, plan.STRUCTURES["wavenet_structure"])
    contexts, targets = [], []
    for name in names:
        if not name or not all("a" <= ch <= "z" for ch in name):
            continue
        context = [0] * cases.BLOCK
        for ix in [ord(ch) - 96 for ch in name] + ([0] if len(name) <= 15 else []):
            contexts.append(context)
            targets.append(ix)
            context = context[1:] + [ix]
    if not targets:
        raise AnswerError("no valid name to check against the model")
    logp = F.log_softmax(torch.from_numpy(wavenet_logits(params, np.array(contexts), stats)), dim=1)
    nll = -logp[torch.arange(len(targets)), torch.tensor(targets)]
    p = logp.exp()
    entropy = -(p * logp).sum(1)
    var = (p * logp ** 2).sum(1) - entropy ** 2
    z = float((nll - entropy).sum() / var.sum().clamp_min(1e-12).sqrt())
    return z, float(entropy.mean())
