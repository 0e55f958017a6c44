"""TRUSTED checks for week 3: the judge rebuilds every input from plan.py's seeds and computes every
reference (datasets, float64 forward passes, torch.nn.BatchNorm1d, the held-out dev loss) itself.

Every answer is verified against something the student's code had to compute on the judge's inputs;
what the sandbox can only report about itself (requires_grad, a flag) is a requirement that costs
points when it fails and earns none on its own. Messages give the measured value, the target and the
size of the error, never a reference value of a hidden input.
"""

from __future__ import annotations

import importlib.util
import math
import string
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.judge.answers import AnswerError, to_array

HERE = Path(__file__).resolve().parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


data = _load("week3_data")
ref = _load("week3_reference")
plan = _load("plan")

ITOS = {0: ".", **{i + 1: c for i, c in enumerate(string.ascii_lowercase)}}
SHAPES = ("C", "W1", "b1", "W2", "b2")


@pytest.fixture(scope="session")
def d(data_dir):
    return data.load_data(data_dir)


@pytest.fixture(scope="session")
def stoi(d):
    return data.vocab(d.train_words)


def _close(got: np.ndarray, want: np.ndarray) -> float:
    """Largest absolute difference (inf when the shapes differ)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want))) if got.shape == want.shape else math.inf


def _params(value, what: str, shapes: dict[str, tuple] | None = None) -> dict[str, np.ndarray]:
    if not isinstance(value, dict) or set(value) != set(SHAPES):
        raise AnswerError(f"{what}: expected a dict with exactly the keys {', '.join(SHAPES)}, "
                          f"got {sorted(value) if isinstance(value, dict) else type(value).__name__}")
    out = {k: to_array(value[k], f"{what} {k}").astype(np.float64) for k in SHAPES}
    for k, shape in (shapes or {}).items():
        if out[k].shape != shape:
            raise AnswerError(f"{what}: {k} has shape {out[k].shape}, expected {shape}")
    return out


def mlp_shapes(vocab: int, n_embd: int, block: int, hidden: int) -> dict[str, tuple]:
    return {"C": (vocab, n_embd), "W1": (n_embd * block, hidden), "b1": (hidden,), "W2": (hidden, vocab),
            "b2": (vocab,)}


# ---- dataset and model -----------------------------------------------------------------------

@pytest.mark.check(points=2, category="correctness")
def test_dataset(answers, data_dir, stoi):
    """build_dataset: every (context, next char) pair, for 'emma' & co. at block sizes 3 and 5, and for names.txt."""
    cases = plan.dataset_cases(data, data_dir)
    got = answers.get("dataset")
    if not isinstance(got, list) or len(got) != len(cases):
        raise AnswerError("build_dataset answered the wrong number of cases")
    for (words, block), item in zip(cases, got):
        X_want, Y_want = data.build_dataset(words, stoi, block)
        X = to_array(item.get("X") if isinstance(item, dict) else None, f"dataset X (block {block})")
        Y = to_array(item.get("Y") if isinstance(item, dict) else None, f"dataset Y (block {block})")
        assert X.shape == X_want.shape, f"block_size {block}: X has shape {X.shape}, expected {X_want.shape}"
        assert Y.shape == Y_want.shape, f"block_size {block}: Y has shape {Y.shape}, expected {Y_want.shape}"
        if not (np.array_equal(X, X_want) and np.array_equal(Y, Y_want)):
            bad = int(np.argmax((X != X_want).any(1) | (Y != Y_want)))
            wrong = "the target" if np.array_equal(X[bad], X_want[bad]) else "the context"
            raise AssertionError(
                f"block_size {block}, example {bad}: {wrong} is wrong (got {X[bad].tolist()} -> {int(Y[bad])}); "
                f"each context is the block_size previous characters, '.' = 0 before the name starts "
                "(for 'emma' at block 3: ... -> e, ..e -> m, .em -> m, emm -> a, mma -> .)")


@pytest.mark.check(points=3, category="correctness")
def test_forward_reference(answers, measure):
    """mlp_forward equals a float64 reference at block sizes 4 and 2, widths 7 and 5 (no fixed sizes)."""
    got = answers.get("forward")
    cases = plan.forward_cases(data)
    if not isinstance(got, list) or len(got) != len(cases):
        raise AnswerError("mlp_forward answered the wrong number of cases")
    errs = []
    for (params, X), item in zip(cases, got):
        want = ref.mlp_logits(params, X).numpy()
        errs.append(_close(to_array(item, f"logits for block_size {X.shape[1]}", shape=want.shape), want))
    err = measure(max(errs), target="max |Δlogit| ≤ 1e-6", block4=errs[0], block2=errs[1])
    assert err <= 1e-6, (f"logits differ from the reference by up to {err:.3g} (block 4: {errs[0]:.2g}, block 2: "
                         f"{errs[1]:.2g}): concatenate the block_size embeddings of each row in order "
                         "(emb.view(emb.shape[0], -1)), tanh, then W2, b2")


def forward_ok(answers) -> bool:
    """Whether mlp_forward matched the reference (runs_clean earns nothing for an empty notebook)."""
    try:
        got = answers.get("forward")
        return all(_close(to_array(item, "logits"), ref.mlp_logits(p, X).numpy()) <= 1e-6
                   for (p, X), item in zip(plan.forward_cases(data), got))
    except (AnswerError, TypeError):
        return False


@pytest.mark.check(points=2, category="correctness")
def test_split_loss_reference(answers, measure):
    """split_loss is the mean cross-entropy of the logits (softmax applied once), as a Python float."""
    params, X, Y = plan.split_loss_case(data)
    want = ref.cross_entropy(ref.mlp_logits(params, X), Y)
    raw = answers.get("split_loss")
    if not isinstance(raw, float) or not math.isfinite(raw):
        raise AnswerError(f"split_loss returned {type(raw).__name__ if not isinstance(raw, np.ndarray) else 'a tensor'}"
                          ", expected a finite Python float (.item())")
    err = measure(abs(raw - want), target="|Δ| ≤ 1e-6", got=raw)
    assert err <= 1e-6, (f"split_loss gave {raw:.6f}, {err:.3g} away from the reference; pass the logits (not "
                         "probabilities) to F.cross_entropy, averaged over every example")


# ---- initialisation ---------------------------------------------------------------------------

def _init(answers, name: str) -> dict[str, np.ndarray]:
    got = answers.get("init")
    entry = got.get(name) if isinstance(got, dict) else None
    if not isinstance(entry, dict):
        raise AnswerError(f"init_mlp answered no '{name}' call")
    sizes, _, scaled = plan.INIT_CALLS[name]
    if "error" in entry:
        raise AnswerError(f"init_mlp{tuple(sizes)}, scaled={scaled} raised {entry['error']}")
    return _params(entry.get("params"), f"init_mlp{tuple(sizes)}", mlp_shapes(*sizes))


@pytest.mark.check(points=2, category="correctness")
def test_init_api(answers):
    """init_mlp: the five shapes at four sets of sizes, drawn from the generator (same seed, same draws)."""
    calls = {name: _init(answers, name) for name in plan.INIT_CALLS}
    same = [k for k in SHAPES if not np.array_equal(calls["lecture"][k], calls["again"][k])
            or not np.array_equal(calls["unscaled"][k], calls["unscaled_again"][k])]
    assert not same, (f"two calls with generators of the same seed gave different {', '.join(same)}: draw every "
                      "tensor from `generator`")
    differ = [k for k in ("C", "W1", "b1", "W2") if np.array_equal(calls["lecture"][k], calls["other_seed"][k])]
    assert not differ, f"generators of two seeds gave the same {', '.join(differ)}: draw every tensor from `generator`"
    grads = answers.get("init")["lecture"].get("requires_grad", {})
    missing = [k for k in SHAPES if grads.get(k) is not True]
    assert not missing, f"{', '.join(missing)} do not require grad: call .requires_grad_() on every parameter"


# (tensor, expected std with scaled=True as a function of fan_in); b2 is zero
SCALED_STD = {"C": lambda fan_in: 1.0, "W1": lambda fan_in: (5 / 3) / fan_in**0.5, "b1": lambda fan_in: 0.01,
              "W2": lambda fan_in: 0.01}
STD_TOL_SE = 6.0  # a correct draw's std is within 6 standard errors (1/sqrt(2n)) of its target


def _scale_errors(params: dict[str, np.ndarray], stds: dict[str, float]) -> list[str]:
    """Tensors whose std or mean is off its target by more than STD_TOL_SE standard errors."""
    bad = []
    for k, want in stds.items():
        x = params[k].reshape(-1)
        se = 1 / math.sqrt(2 * x.size)
        std, mean = float(x.std()), float(x.mean())
        if abs(std / want - 1) > STD_TOL_SE * se:
            bad.append(f"{k} std {std:.4g} is {std / want:.3g}x the target")
        if abs(mean) > STD_TOL_SE * want / math.sqrt(x.size):
            bad.append(f"{k} mean {mean:.3g} is not ~0 (randn, not rand)")
    return bad


@pytest.mark.check(points=2, category="correctness")
def test_init_scale(answers, measure):
    """init_mlp's scales at several sizes: W1 (5/3)/sqrt(fan_in), b1 and W2 0.01, b2 0; scaled=False: all randn."""
    bad = []
    for name, (sizes, _, scaled) in plan.INIT_CALLS.items():
        p = _init(answers, name)
        fan_in = sizes[1] * sizes[2]
        stds = {k: (f(fan_in) if scaled else 1.0) for k, f in SCALED_STD.items()}
        if not scaled:
            stds["b2"] = 1.0
        elif np.any(p["b2"] != 0):
            bad.append(f"{name}: b2 is not zero")
        bad += [f"{name} {sizes}: {b}" for b in _scale_errors(p, stds)]
    measure(len(bad), target="0 tensors off their scale", first=bad[0] if bad else "")
    assert not bad, ("initial scales off (table in the notebook): " + "; ".join(bad[:4]) +
                     (f" (and {len(bad) - 4} more)" if len(bad) > 4 else ""))


@pytest.mark.check(points=2, category="correctness")
def test_initial_loss(answers, d, thresholds, measure):
    """Loss at init with scaled=True is near a uniform guess, -ln(1/27) = 3.30."""
    params = _init(answers, "lecture")
    loss = ref.cross_entropy(ref.mlp_logits(params, d.Xho), d.Yho)
    lo, hi = thresholds["initial_loss_low"], thresholds["initial_loss_high"]
    assert loss >= lo, (f"initial loss {loss:.3f} is below {lo}: an untrained model cannot be better than a "
                        "uniform guess by that much")
    measure(loss, pass_at=hi, fail_at=thresholds["initial_loss_fail"], target=f"in [{lo}, {hi}]")
    assert loss <= hi, (f"initial loss {loss:.3f}, {loss - hi:.3f} above {hi} (uniform: 3.296); "
                        "scale W2 by 0.01 and zero b2 so the first logits are near 0")


@pytest.mark.check(points=1, category="correctness")
def test_tanh_saturation(answers, d, thresholds, measure):
    """Few tanh units saturated at init (|h| > 0.97): W1 scaled by (5/3)/sqrt(fan_in)."""
    params = _init(answers, "lecture")
    h = np.tanh(ref.hidden_preact(params, d.Xho).numpy())
    share = float(np.mean(np.abs(h) > 0.97))
    measure(share, pass_at=thresholds["saturation_pass"], fail_at=thresholds["saturation_fail"])
    assert share <= thresholds["saturation_pass"], (f"{share:.1%} of tanh outputs are saturated at init "
                                                    f"(target ≤ {thresholds['saturation_pass']:.0%}); "
                                                    "scale W1 by (5/3)/sqrt(n_embd*block_size)")


# ---- training ------------------------------------------------------------------------------------

@pytest.mark.check(points=3, category="correctness")
def test_train_trajectory(answers, measure, data_dir):
    """train_mlp: 5 SGD steps (batch 16, a given lr schedule and generator) match the reference to 1e-6."""
    params, X, Y = plan.trajectory_case(data, data_dir)
    want_losses, want_params = ref.reference_training(params, X, Y, 16, plan.TRAJECTORY_LRS, plan.TRAJECTORY_SEED)
    got = answers.get("train_steps")
    raw = got.get("losses") if isinstance(got, dict) else None
    if not isinstance(raw, list) or len(raw) != len(want_losses):
        raise AnswerError(f"train_mlp returned {len(raw) if isinstance(raw, list) else type(raw).__name__} losses "
                          f"for {len(want_losses)} steps: a list with one loss per step")
    if not all(isinstance(x, float) for x in raw):
        raise AnswerError("train_mlp's losses are not Python floats: append loss.item() (a tensor keeps the graph)")
    losses = np.array(raw)
    step_err = np.abs(losses - np.array(want_losses))
    err_p = max(_close(to_array(got["params"].get(k), f"params {k}"), v) for k, v in want_params.items())
    err = measure(max(float(step_err.max()), err_p), target="≤ 1e-6", losses=str([round(x, 5) for x in raw]))
    first = int(np.argmax(step_err > 1e-6)) if (step_err > 1e-6).any() else None
    where = f"the loss of step {first} is off by {step_err[first]:.2g}" if first is not None else \
        f"the parameters after the last step differ by {err_p:.2g}"
    assert err <= 1e-6, (f"{where} (losses {np.round(losses, 5).tolist()}); hints: batches from "
                         "torch.randint(0, N, (batch_size,), generator=generator), reset grads every step, "
                         "F.cross_entropy on logits, p.data -= lr_schedule(i) * p.grad with i from 0")


@pytest.mark.check(points=6, category="loss")
def test_dev_loss(answers, d, thresholds, measure, profile):
    """Dev loss, on held-out names, of your init_mlp/mlp_forward model trained by the grader."""
    got = answers.get("train_model")
    params = _params(got.get("params") if isinstance(got, dict) else None, "trained parameters",
                     mlp_shapes(27, 10, 3, 200))
    loss = ref.cross_entropy(ref.mlp_logits(params, d.Xho), d.Yho)
    floor, passing, failing = thresholds["dev_loss_floor"], thresholds["dev_loss_pass"], thresholds["dev_loss_fail"]
    details = {"steps": thresholds["train_steps"], "batch": thresholds["train_batch"], "profile": profile,
               "positions": len(d.Yho)}
    assert loss >= floor, (f"dev loss {loss:.4f} is below {floor}: this model cannot score that on names it "
                           "never saw")
    measure(loss, pass_at=passing, fail_at=failing, **details)
    assert loss <= passing, (
        f"dev loss {loss:.4f} after the grader's {thresholds['train_steps']} steps, {loss - passing:.3f} above the "
        f"full-marks line {passing} (0 points at {failing})")


# ---- layers ------------------------------------------------------------------------------------

def _bn(answers) -> dict:
    got = answers.get("batchnorm")
    if not isinstance(got, dict):
        raise AnswerError("the BatchNorm1d probe answered no dict")
    return got


def _state(value, what: str, dim: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(value, dict):
        raise AnswerError(f"{what}: no running statistics")
    mean = to_array(value.get("running_mean"), f"{what} running_mean")
    var = to_array(value.get("running_var"), f"{what} running_var")
    for name, arr in (("running_mean", mean), ("running_var", var)):
        if arr.shape not in ((dim,), (1, dim)):  # (1, dim): the lecture's update keeps the batch dimension
            raise AnswerError(f"{what}: {name} has shape {arr.shape}, expected ({dim},) like torch.zeros(dim) "
                              "(one statistic per feature)")
    return mean.reshape(-1), var.reshape(-1)


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_train_mode(answers, measure):
    """BatchNorm1d training mode: per-feature batch statistics over dim 0, gamma, beta, the given eps, any dim."""
    case = plan.batchnorm_case()
    bn = _bn(answers)
    fresh = to_array(bn.get("fresh_out"), "a new layer's output", shape=case["xs"][0].shape)
    fresh_err = min(_close(fresh, r) for r in ref.batchnorm_train_out(case["xs"][0], np.ones(6), np.zeros(6)).values())
    errs = []
    outs = bn.get("train_out")
    if not isinstance(outs, list) or len(outs) != len(case["xs"]):
        raise AnswerError("the training-mode outputs are missing")
    for x, out in zip(case["xs"], outs):
        refs = ref.batchnorm_train_out(x, case["gamma"], case["beta"], case["eps"])
        errs.append(min(_close(to_array(out, "training-mode output", shape=x.shape), r) for r in refs.values()))
    one = to_array(bn.get("one_out"), "BatchNorm1d(1) output", shape=case["x_one"].shape, finite=False)
    err_one = min(_close(one, r) for r in ref.batchnorm_train_out(case["x_one"], np.ones(1), np.zeros(1)).values())
    err_one = err_one if math.isfinite(err_one) else math.inf  # NaN: statistics over the one feature
    measure(max(errs + [fresh_err, err_one]), target="≤ 1e-8 (lecture or torch variance)", new_layer=fresh_err,
                  one_feature=err_one)
    assert fresh_err <= 1e-8, (f"a new BatchNorm1d(6) is off by {fresh_err:.3g} on a batch: it should start in training "
                               "mode with gamma ones and beta zeros, normalising with the batch statistics")
    assert max(errs) <= 1e-8, (f"training-mode output (eps={case['eps']}, given gamma/beta) is off by {max(errs):.3g}: "
                               "normalise each feature with its batch mean and variance over dim 0, "
                               "(x - mean) / sqrt(var + eps)")
    assert err_one <= 1e-8, (f"BatchNorm1d(1) on an (8, 1) batch is off by {err_one:.3g}: the statistics are per "
                             "feature, over the batch (dim 0)")


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_running_stats(answers, measure):
    """Running stats over three training calls: (1 - momentum) * running + momentum * batch stat, momentum 0.3."""
    case = plan.batchnorm_case()
    bn = _bn(answers)
    init_mean, init_var = _state(bn.get("fresh_state"), "a new layer", 6)
    assert np.array_equal(init_mean, np.zeros(6)) and np.array_equal(init_var, np.ones(6)), \
        "running_mean should start at zeros and running_var at ones"
    after = bn.get("after_call")
    if not isinstance(after, list) or len(after) != len(case["xs"]):
        raise AnswerError("the running statistics after each call are missing")
    want = ref.running_stats(case["xs"], case["momentum"])
    err_m = err_v = 0.0
    for k, state in enumerate(after):
        mean, var = _state(state, f"after call {k + 1}", 6)
        err_m = max(err_m, _close(mean, want["mean"][k]))
        err_v = max(err_v, min(_close(var, want["var_unbiased"][k]), _close(var, want["var_biased"][k])))
    one_mean, one_var = _state(bn.get("one_state"), "BatchNorm1d(1)", 1)
    x_one = case["x_one"]
    err_one = max(_close(one_mean, 0.1 * x_one.mean(0)),
                  min(_close(one_var, 0.9 + 0.1 * x_one.var(0, ddof=1)), _close(one_var, 0.9 + 0.1 * x_one.var(0))))
    measure(max(err_m, err_v, err_one), target="≤ 1e-8", running_mean=err_m, running_var=err_v)
    assert err_m <= 1e-8, (f"running_mean off by {err_m:.3g} over three calls with momentum={case['momentum']}: "
                           "(1 - momentum) * running_mean + momentum * batch mean over dim 0")
    assert err_v <= 1e-8, (f"running_var off by {err_v:.3g} over three calls with momentum={case['momentum']}: "
                           "(1 - momentum) * running_var + momentum * batch variance over dim 0")
    assert err_one <= 1e-8, f"BatchNorm1d(1)'s running statistics are off by {err_one:.3g} after one call"


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_eval_mode(answers, measure):
    """Eval mode uses the running statistics (and eps); a single example gives a finite output; nothing changes."""
    case = plan.batchnorm_case()
    want = ref.batchnorm_eval_ref(case["x_eval"], case["gamma"], case["beta"], case["running_mean"],
                                  case["running_var"], case["eps"])
    single = answers.array("batchnorm", "eval_single", shape=(1, 6))  # NaN here fails: batch stats of 1 row
    out = answers.array("batchnorm", "eval_out", shape=want.shape)
    err = measure(max(_close(out, want), _close(single, want[:1])), target="≤ 1e-8")
    assert err <= 1e-8, (f"eval-mode output is off by {err:.3g} from (x - running_mean) / sqrt(running_var + eps) "
                         "* gamma + beta: when training is False, use the running statistics")
    mean, var = _state(_bn(answers).get("after_eval"), "after eval mode", 6)
    assert _close(mean, case["running_mean"]) <= 1e-12 and _close(var, case["running_var"]) <= 1e-12, \
        "eval mode changed the running statistics"


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_buffers(answers, measure):
    """BatchNorm1d.parameters() is [gamma, beta]; the running buffers never require grad."""
    case = plan.batchnorm_case()
    bn = _bn(answers)
    params = bn.get("parameters")
    if not isinstance(params, list):
        raise AnswerError("parameters() returned no list")
    assert len(params) == 2, f"parameters() returned {len(params)} tensors; it should be exactly [self.gamma, self.beta]"
    err = max(_close(to_array(params[0], "parameters()[0]"), case["gamma"]),
              _close(to_array(params[1], "parameters()[1]"), case["beta"]))
    assert err == 0, "parameters() is not [self.gamma, self.beta] (in that order): it returned other tensors"
    measure(err, target="parameters() returns the layer's gamma and beta")
    assert bn.get("buffers_require_grad") is False, (
        "running_mean/running_var require grad after a training call: update them inside `with torch.no_grad():`")


@pytest.mark.check(points=2, category="correctness")
def test_linear_tanh(answers, measure):
    """Linear: randn/sqrt(fan_in) from its generator, zero bias, x @ W + b, bias=False; Tanh: tanh, no parameters."""
    got = answers.get("linear_tanh")
    case = plan.linear_case()
    fan_in, fan_out = case["fan_in"], case["fan_out"]
    weights = got.get("weights") if isinstance(got, dict) else None
    if not isinstance(weights, list) or len(weights) != 3:
        raise AnswerError("the Linear probe made no weights")
    W = [to_array(w, "Linear weight", shape=(fan_in, fan_out)) for w in weights]
    assert np.array_equal(W[0], W[1]), "two Linear layers from generators of the same seed differ: use `generator`"
    assert not np.array_equal(W[0], W[2]), "Linear layers from generators of two seeds are equal: use `generator`"
    bad = _scale_errors({"weight": W[0]}, {"weight": 1 / math.sqrt(fan_in)})
    assert not bad, f"Linear({fan_in}, {fan_out}): {bad[0]}, expected randn / sqrt(fan_in)"
    b = answers.array("linear_tanh", "bias", shape=(fan_out,))
    assert np.all(b == 0), "bias should start at zeros"
    assert got.get("nobias_is_none") is True, "Linear(..., bias=False) should have bias None"
    x, Wj, bj = case["x"], case["weight"], case["bias"]
    out = answers.array("linear_tanh", "out", shape=(16, fan_out))
    nob = answers.array("linear_tanh", "nobias_out", shape=(16, fan_out))
    err = max(_close(out, x @ Wj + bj), _close(nob, x @ Wj))
    tanh = answers.array("linear_tanh", "tanh_out", shape=x.shape)
    err_t = _close(tanh, np.tanh(x))
    measure(max(err, err_t), target="≤ 1e-9")
    assert err <= 1e-9, f"Linear(x) is off x @ weight (+ bias) by {err:.3g} for given weight and bias"
    params, nob_params = got.get("parameters"), got.get("nobias_parameters")
    ok = isinstance(params, list) and len(params) == 2 and _close(to_array(params[0]), Wj) == 0 \
        and _close(to_array(params[1]), bj) == 0
    assert ok, "parameters() should be [weight, bias] (the layer's own tensors, in that order)"
    assert isinstance(nob_params, list) and len(nob_params) == 1, "with bias=False, parameters() should be [weight]"
    assert err_t <= 1e-9, f"Tanh(x) is off torch.tanh(x) by {err_t:.3g}"
    assert got.get("tanh_parameters") == 0, "Tanh has no parameters: parameters() should return []"


# ---- sampling -------------------------------------------------------------------------------------

@pytest.mark.check(points=2, category="correctness")
def test_sampler(answers, thresholds, measure):
    """sample_mlp on given parameters (block_size 4): each name follows the model; first letters as likely
    as the model says; the generator decides the draws (same seed, same names; another seed, others)."""
    s = plan.SAMPLER
    params = data.path_params(s["seed"], s["n_embd"], s["block_size"], s["n_hidden"])
    paths = data.path_names(params, s["block_size"], ITOS)
    got = answers.get("sampler")
    if not isinstance(got, list) or len(got) != 3 or not all(
            isinstance(names, list) and all(isinstance(n, str) for n in names) for names in got):
        raise AnswerError("sample_mlp should return a list of strings for each call")
    names, again, other = got
    assert len(names) == s["n"], f"sample_mlp returned {len(names)} names, asked for {s['n']}"
    wrong = [n for n in names if not n or paths.get(n[0]) != n]
    measure(len(wrong) / len(names), target="every name follows the model", wrong=len(wrong))
    assert not wrong, (
        f"{len(wrong)} of {len(names)} names could not come from this model (e.g. {wrong[0][:30]!r}): with these "
        "parameters every character after the first is certain. Start from a context of block_size '.'s, "
        "sample from softmax(logits) over the last dim, shift the context left and append the new index, "
        "stop at '.' (index 0)")
    chi2 = ref.first_letter_chi2([n[0] for n in names])
    assert chi2 <= thresholds["sampler_chi2_max"], (
        f"first letters are far from the model's (uniform) distribution: chi-square {chi2:.1f} over 26 letters, "
        f"target ≤ {thresholds['sampler_chi2_max']}; sample with torch.multinomial(probs, 1, generator=generator)")
    assert again == names, "two calls with generators of the same seed gave different names: draw with `generator`"
    assert other != names, "generators of two different seeds gave the same names: draw with `generator`"


@pytest.fixture(scope="session")
def name_metrics(answers, d, artifacts):
    from grader.judge.samples import NameReference, name_metrics

    samples = answers.strings("samples", "names")
    (artifacts / "week3_samples.txt").write_text("\n".join(samples) + "\n")
    reference = NameReference.fit(d.train_words, d.heldout_words)
    return name_metrics(samples, reference)


@pytest.mark.check(points=3, category="samples")
def test_sample_quality(answers, name_metrics, thresholds, measure):
    """Samples of the trained model score well under a Witten-Bell 4-gram of the training names."""
    n = answers.strings("samples", "names")
    assert len(n) == thresholds["n_samples"], f"sample_mlp returned {len(n)} names, asked for {thresholds['n_samples']}"
    m = name_metrics
    measure(m.wb4_nll, pass_at=thresholds["wb4_pass"], fail_at=thresholds["wb4_fail"],
            mean_len=round(m.mean_len, 3), bigram_nll=round(m.bigram_nll, 3))
    assert m.wb4_nll <= thresholds["wb4_pass"], (
        f"samples have a 4-gram NLL of {m.wb4_nll:.3f} nats/char, {m.wb4_nll - thresholds['wb4_pass']:.3f} above the "
        f"target {thresholds['wb4_pass']} (a trained MLP: ≈ 2.3-2.5)")


@pytest.mark.check(points=2, category="samples")
def test_sample_sanity(name_metrics, thresholds, measure):
    """Samples: non-empty a-z, rarely > 15 letters, mostly distinct, not memorised."""
    m = name_metrics
    measure(m.long_share, target=f"long ≤ {thresholds['long_share_max']}", unique=round(m.unique, 3),
            exact_real=round(m.exact_real, 3), valid=round(m.valid, 3), novel=round(m.novel, 3))
    assert m.valid >= 0.98, f"{1 - m.valid:.1%} of samples are empty or not a-z only (target ≤ 2%; strip the final '.')"
    assert m.long_share <= thresholds["long_share_max"], \
        f"{m.long_share:.1%} of names are longer than 15 letters (target ≤ {thresholds['long_share_max']:.0%})"
    assert m.unique >= thresholds["unique_min"], \
        f"only {m.unique:.1%} of samples are distinct (target ≥ {thresholds['unique_min']:.0%})"
    assert m.exact_real <= thresholds["exact_real_max"], \
        f"{m.exact_real:.1%} of samples are real names (target ≤ {thresholds['exact_real_max']:.0%}; memorised?)"


@pytest.mark.check(points=1, category="runs_clean")
def test_runs_clean(execution, answers):
    """Every cell of the notebook runs without an error (and the notebook's model is there: mlp_forward works)."""
    failures = execution.get("failures") or []
    assert execution.get("cells_run", 0) > 0, "no cell ran"
    assert not failures, "cells that failed: " + "; ".join(
        f"cell {f.get('index')}: {f.get('ename')} {f.get('evalue', '')[:120]}" for f in failures[:3])
    assert forward_ok(answers), "the notebook ran, but mlp_forward does not compute the model yet"
