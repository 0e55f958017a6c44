"""TRUSTED checks for week 3: the judge rebuilds every input from plan.py's seeds and computes
every reference (datasets, float64 forward passes, torch.nn.BatchNorm1d, the dev targets) itself."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from grader.judge.answers import to_array

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


@pytest.fixture(scope="session")
def splits(data_dir):
    return data.make_splits(data_dir)


@pytest.fixture(scope="session")
def stoi(data_dir):
    return data.vocab(data.load_words(data_dir))


def _close(got: np.ndarray, want: np.ndarray) -> float:
    """Largest absolute difference (inf when the shapes differ)."""
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.max(np.abs(got - want))) if got.shape == want.shape else math.inf


# ---- dataset and model -----------------------------------------------------------------------

@pytest.mark.check(points=2, category="correctness")
def test_dataset(answers, splits, stoi):
    """build_dataset: every (context, next char) pair, for 'emma' and the whole dev split."""
    cases = [(plan.DATASET_WORDS, 3), (plan.DATASET_WORDS, 5), (splits.words[1], 3)]
    got = answers.get("dataset")
    assert isinstance(got, list) and len(got) == len(cases), "build_dataset answered the wrong number of cases"
    for (words, block), item in zip(cases, got):
        X_want, Y_want = data.build_dataset(words, stoi, block)
        X = to_array(item.get("X") if isinstance(item, dict) else None, f"dataset X (block {block})")
        Y = to_array(item.get("Y") if isinstance(item, dict) else None, f"dataset Y (block {block})")
        assert X.shape == X_want.shape, f"block_size {block}: X has shape {X.shape}, expected {X_want.shape}"
        assert Y.shape == Y_want.shape, f"block_size {block}: Y has shape {Y.shape}, expected {Y_want.shape}"
        if not (np.array_equal(X, X_want) and np.array_equal(Y, Y_want)):
            bad = int(np.argmax((X != X_want).any(1) | (Y != Y_want)))
            raise AssertionError(f"block_size {block}, row {bad}: got context {X[bad].tolist()} -> {int(Y[bad])}, "
                                 f"expected {X_want[bad].tolist()} -> {int(Y_want[bad])} "
                                 "(for 'emma': ... -> e, ..e -> m, .em -> m, emm -> a, mma -> .)")


@pytest.mark.check(points=3, category="correctness")
def test_forward_reference(answers, measure):
    """mlp_forward equals a float64 reference at block_size 4, n_embd 7 (no fixed sizes)."""
    params, X = plan.forward_case(data)
    want = ref.mlp_logits(params, X).numpy()
    got = answers.array("forward", shape=want.shape)
    err = measure(_close(got, want), target="max |Δlogit| ≤ 1e-6")
    assert err <= 1e-6, (f"logits differ from the reference by up to {err:.3g}: concatenate the block_size "
                         "embeddings of each row in order (emb.view(emb.shape[0], -1)), tanh, then W2, b2")


@pytest.mark.check(points=2, category="correctness")
def test_split_loss_reference(answers, measure):
    """split_loss is the mean cross-entropy of the logits (softmax applied once)."""
    params, X, Y = plan.split_loss_case(data)
    want = ref.cross_entropy(ref.mlp_logits(params, X), Y)
    got = answers.number("split_loss")
    measure(abs(got - want), target="|Δ| ≤ 1e-6", got=got, expected=round(want, 6))
    assert abs(got - want) <= 1e-6, (f"split_loss gave {got:.6f}, expected {want:.6f}; pass the logits (not "
                                      "probabilities) to F.cross_entropy")


@pytest.mark.check(points=1, category="correctness")
def test_init_api(answers):
    """init_mlp: keys C, W1, b1, W2, b2 with their shapes, requiring grad, reproducible."""
    got = answers.get("init")
    shapes = {"C": (27, 10), "W1": (30, 200), "b1": (200,), "W2": (200, 27), "b2": (27,)}
    params = got.get("params") if isinstance(got, dict) else None
    assert isinstance(params, dict) and set(params) == set(shapes), \
        f"init_mlp should return exactly the keys {sorted(shapes)}"
    for key, shape in shapes.items():
        assert np.asarray(params[key]).shape == shape, f"{key} has shape {np.asarray(params[key]).shape}, expected {shape}"
    assert all(v is True for v in got["requires_grad"].values()), "every parameter should require grad"
    assert got["same_seed_equal"] is True, "two calls with generators of the same seed gave different parameters"


def _init_params(answers) -> dict:
    got = answers.get("init")
    return {k: to_array(v, f"init_mlp {k}").astype(np.float64) for k, v in got["params"].items()}


@pytest.mark.check(points=2, category="correctness")
def test_initial_loss(answers, splits, thresholds, measure):
    """Loss at init with scaled=True is near a uniform guess, -ln(1/27) = 3.30."""
    params = _init_params(answers)
    loss = ref.cross_entropy(ref.mlp_logits(params, splits.Xdev[:4000]), splits.Ydev[:4000])
    lo, hi = thresholds["initial_loss_low"], thresholds["initial_loss_high"]
    if loss < lo:  # no partial credit below the band: a band's credit would survive the failed assert
        measure(loss, target=f"in [{lo}, {hi}]")
    else:
        measure(loss, pass_at=hi, fail_at=thresholds["initial_loss_fail"], target=f"in [{lo}, {hi}]")
    assert lo <= loss <= hi, (f"initial dev loss {loss:.3f}, expected in [{lo}, {hi}] (uniform: 3.296); "
                              "scale W2 by 0.01 and zero b2 so the first logits are near 0")


@pytest.mark.check(points=1, category="correctness")
def test_tanh_saturation(answers, splits, thresholds, measure):
    """Few tanh units saturated at init (|h| > 0.97): W1 scaled by (5/3)/sqrt(fan_in)."""
    params = _init_params(answers)
    h = np.tanh(ref.hidden_preact(params, splits.Xdev[:4000]).numpy())
    share = float(np.mean(np.abs(h) > 0.97))
    measure(share, pass_at=thresholds["saturation_pass"], fail_at=thresholds["saturation_fail"])
    assert share <= thresholds["saturation_pass"], (f"{share:.1%} of tanh outputs are saturated at init; "
                                                    "scale W1 by (5/3)/sqrt(n_embd*block_size)")


@pytest.mark.check(points=3, category="correctness")
def test_train_trajectory(answers, measure, data_dir):
    """train_mlp: 5 SGD steps from given parameters match the reference to 1e-6."""
    params, X, Y = plan.trajectory_case(data, data_dir)
    want_losses, want_params = ref.reference_training(params, X, Y, 16, plan.TRAJECTORY_LRS, plan.TRAJECTORY_SEED)
    got = answers.get("train_steps")
    losses = to_array(got["losses"], "train_mlp losses")
    assert losses.shape == (5,), f"train_mlp returned {losses.shape[0] if losses.ndim else 0} losses for 5 steps"
    err = _close(losses, want_losses)
    err_p = max(_close(to_array(got["params"].get(k), f"params {k}"), v) for k, v in want_params.items())
    measure(max(err, err_p), target="≤ 1e-6", losses=str([round(x, 5) for x in losses]),
            expected=str([round(x, 5) for x in want_losses]))
    assert err <= 1e-6 and err_p <= 1e-6, (
        f"losses {np.round(losses, 5).tolist()} vs expected {np.round(want_losses, 5).tolist()} "
        f"(params differ by {err_p:.2g}); hints: batches from torch.randint(0, N, (batch_size,), generator=...), "
        "reset grads every step, F.cross_entropy on logits, lr_schedule(i) from i = 0")


# ---- layers ------------------------------------------------------------------------------------

def _bn(answers) -> dict:
    return answers.get("batchnorm")


def _matches_a_convention(got: np.ndarray, key: str) -> tuple[float, str]:
    case = plan.batchnorm_case()
    refs = ref.batchnorm_train_refs(case["x"], case["gamma"], case["beta"])
    errs = {name: _close(got, r[key]) for name, r in refs.items()}
    best = min(errs, key=errs.get)
    return errs[best], best


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_train_mode(answers, measure):
    """BatchNorm1d training mode: per-feature batch statistics over dim 0, gamma, beta."""
    bn = _bn(answers)
    assert bn["starts_training"] is True, "a new BatchNorm1d should start with training = True"
    out = answers.array("batchnorm", "train_out", shape=(32, 6))
    err, convention = _matches_a_convention(out, "out")
    measure(err, target="≤ 1e-8 (lecture or torch variance)", convention=convention)
    assert err <= 1e-8, (f"training-mode output differs from the reference by {err:.3g}: use the batch mean and "
                         "variance of each feature, x.mean(0, keepdim=True), x.var(0, keepdim=True)")


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_running_stats(answers, measure):
    """Running stats after one training call: 0.9 * running + 0.1 * batch statistic."""
    bn = _bn(answers)
    init = bn["init"]
    assert np.allclose(np.asarray(init["running_mean"]), 0) and np.allclose(np.asarray(init["running_var"]), 1), \
        "running_mean should start at zeros and running_var at ones"
    after = bn["after_one_call"]
    err_m, _ = _matches_a_convention(np.asarray(after["running_mean"]), "running_mean")
    err_v, _ = _matches_a_convention(np.asarray(after["running_var"]), "running_var")
    biased = np.asarray(plan.batchnorm_case()["x"]).var(0)
    err_v = min(err_v, _close(np.asarray(after["running_var"]), 0.9 + 0.1 * biased))
    measure(max(err_m, err_v), target="≤ 1e-8")
    assert err_m <= 1e-8, f"running_mean off by {err_m:.3g} after one call (momentum 0.1, batch mean over dim 0)"
    assert err_v <= 1e-8, f"running_var off by {err_v:.3g} after one call (momentum 0.1, batch variance over dim 0)"


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_eval_mode(answers, measure):
    """Eval mode uses the running statistics; a single example gives a finite output."""
    case = plan.batchnorm_case()
    want = ref.batchnorm_eval_ref(case["x_eval"], case["gamma"], case["beta"], case["running_mean"],
                                  case["running_var"])
    single = answers.array("batchnorm", "eval_single", shape=(1, 6))  # NaN here fails: batch stats of 1 row
    out = answers.array("batchnorm", "eval_out", shape=want.shape)
    err = max(_close(out, want), _close(single, want[:1]))
    measure(err, target="≤ 1e-8")
    assert err <= 1e-8, (f"eval-mode output differs from (x - running_mean) / sqrt(running_var + eps) * gamma + beta "
                         f"by {err:.3g}: when training is False, use the running statistics")
    after = _bn(answers)["after_eval"]
    assert _close(np.asarray(after["running_mean"]), case["running_mean"]) <= 1e-12 and \
        _close(np.asarray(after["running_var"]), case["running_var"]) <= 1e-12, \
        "eval mode changed the running statistics"


@pytest.mark.check(points=2, category="correctness")
def test_batchnorm_buffers(answers):
    """BatchNorm1d.parameters() is [gamma, beta]; running buffers never require grad."""
    bn = _bn(answers)
    assert bn["params_are_gamma_beta"] is True, \
        f"parameters() returned {bn['n_params']} tensors; it should be exactly [self.gamma, self.beta]"
    assert bn["buffers_require_grad"] is False, ("running_mean/running_var require grad after a training call: "
                                                 "update them inside `with torch.no_grad():`")


@pytest.mark.check(points=1, category="correctness")
def test_linear_tanh(answers):
    """Linear (randn/sqrt(fan_in), zero bias, x @ W + b) and Tanh (no parameters)."""
    got = answers.get("linear_tanh")
    case = plan.linear_case()
    W = answers.array("linear_tanh", "weight", shape=(case["fan_in"], case["fan_out"]))
    b = answers.array("linear_tanh", "bias", shape=(case["fan_out"],))
    std = float(W.std())
    assert abs(std * math.sqrt(case["fan_in"]) - 1) < 0.1, f"weight std {std:.4f}, expected ≈ 1/sqrt(fan_in)"
    assert np.all(b == 0), "bias should start at zeros"
    assert got["params_ok"] is True and got["nobias_params"] == 1, \
        "parameters() should be [weight, bias], or [weight] with bias=False"
    x = case["x"].astype(np.float32).astype(np.float64)
    out = answers.array("linear_tanh", "out", shape=(16, case["fan_out"]))
    assert _close(out, x @ W + b) <= 1e-3, "Linear(x) should be x @ weight + bias"
    tanh = answers.array("linear_tanh", "tanh_out", shape=x.shape)
    assert _close(tanh, np.tanh(x)) <= 1e-5 and got["tanh_params"] == 0, "Tanh should be torch.tanh, no parameters"


# ---- training, samples -------------------------------------------------------------------------

@pytest.mark.check(points=6, category="loss")
def test_dev_loss(answers, splits, thresholds, measure, profile):
    """Dev loss of your init_mlp/mlp_forward model, trained by the grader."""
    order = data.dev_order(len(splits.Xdev), plan.DEV_ORDER_SEED)
    logits = answers.array("train_model", "dev_logits", shape=(len(order), 27))
    loss = ref.cross_entropy(logits, splits.Ydev[order])
    floor = thresholds["dev_loss_floor"]
    details = {"steps": thresholds["train_steps"], "batch": thresholds["train_batch"], "profile": profile}
    if loss < floor:  # no partial credit: a band's credit would survive the failed assert
        measure(loss, target=f"in [{floor}, {thresholds['dev_loss_pass']}]", **details)
    else:
        measure(loss, pass_at=thresholds["dev_loss_pass"], fail_at=thresholds["dev_loss_fail"], **details)
    assert loss >= floor, (f"dev loss {loss:.4f} is below {floor}: this model cannot score that without "
                           "seeing the dev targets")
    assert loss <= thresholds["dev_loss_pass"], (
        f"dev loss {loss:.4f} after the grader's {thresholds['train_steps']} steps, expected ≤ "
        f"{thresholds['dev_loss_pass']} (reference ≈ 2.17 on the cpu profile)")


@pytest.fixture(scope="session")
def name_metrics(answers, splits, artifacts):
    from grader.judge.samples import NameReference, name_metrics

    samples = answers.strings("train_model", "samples")
    (artifacts / "week3_samples.txt").write_text("\n".join(samples) + "\n")
    reference = NameReference.fit(splits.words[0], splits.words[1] + splits.words[2])
    return name_metrics(samples, reference)


@pytest.mark.check(points=3, category="samples")
def test_sample_quality(answers, name_metrics, thresholds, measure):
    """Samples score well under a Witten-Bell 4-gram of the training names."""
    n = answers.strings("train_model", "samples")
    assert len(n) == thresholds["n_samples"], f"sample_mlp returned {len(n)} names, asked for {thresholds['n_samples']}"
    m = name_metrics
    measure(m.wb4_nll, pass_at=thresholds["wb4_pass"], fail_at=thresholds["wb4_fail"],
            mean_len=round(m.mean_len, 3), bigram_nll=round(m.bigram_nll, 3))
    assert m.wb4_nll <= thresholds["wb4_pass"], (f"samples have a 4-gram NLL of {m.wb4_nll:.3f} nats/char, "
                                                 f"expected ≤ {thresholds['wb4_pass']} (a trained MLP: ≈ 2.3-2.5)")


@pytest.mark.check(points=2, category="samples")
def test_sample_sanity(name_metrics, thresholds, measure):
    """Samples: non-empty a-z, rarely > 15 letters, mostly distinct, not memorised."""
    m = name_metrics
    measure(m.long_share, target=f"long ≤ {thresholds['long_share_max']}", unique=round(m.unique, 3),
            exact_real=round(m.exact_real, 3), valid=round(m.valid, 3), novel=round(m.novel, 3))
    assert m.valid >= 0.98, f"{1 - m.valid:.1%} of samples are empty or not a-z only (strip the final '.')"
    assert m.long_share <= thresholds["long_share_max"], f"{m.long_share:.1%} of names are longer than 15 letters"
    assert m.unique >= thresholds["unique_min"], f"only {m.unique:.1%} of samples are distinct"
    assert m.exact_real <= thresholds["exact_real_max"], f"{m.exact_real:.1%} of samples are real names (memorised?)"


@pytest.mark.check(points=1, category="runs_clean")
def test_runs_clean(execution):
    """Every cell of the notebook runs without an error."""
    failures = execution.get("failures") or []
    assert execution.get("cells_run", 0) > 0, "no cell ran"
    assert not failures, "cells that failed: " + "; ".join(
        f"cell {f.get('index')}: {f.get('ename')} {f.get('evalue', '')[:120]}" for f in failures[:3])
