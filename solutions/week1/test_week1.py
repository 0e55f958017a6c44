"""Week 1 hidden checks (TRUSTED): judge the probe answers against torch float64 references.

The specs the sandbox built come from plan.py with the seeds in week.toml; the references are
computed here, never in the sandbox.
"""

from __future__ import annotations

import json
import math
from itertools import pairwise

import plan
import pytest
from week1_reference import (
    analytic_grad,
    centered_difference,
    compare_graphs,
    error,
    module_eval,
    numbers,
    softmax_reference,
    sse,
    torch_eval,
    torch_uses,
    value_errors,
)

from grader.judge.answers import AnswerError, to_number
from grader.judge.verdict import number, precision_hint, ratio_note, require

OK_TYPES = {"builtins.float", "builtins.int", "numpy.float64", "numpy.int64"}


def _listing(items: list[str], limit: int = 4) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _results(answers, probe_id: str, hint: str = "") -> list:
    try:
        value = answers.get(probe_id)
    except AnswerError as exc:  # a hint helps when the student's code failed, not when it never ran
        raise AnswerError(f"{exc} Hint: {hint}" if hint and "in your code" in str(exc) else str(exc)) from None
    if not isinstance(value, list):
        raise AnswerError(f"{probe_id}: expected a list of results, got {type(value).__name__}")
    return value


def _cases(answers, probe_id: str) -> list[dict]:
    """A probe's per-case answers as dicts (a case that raised holds {'error': ...})."""
    return [r if isinstance(r, dict) else {"error": "malformed result"} for r in _results(answers, probe_id)]


def _errors_hint(cases) -> str:
    """A hint that matches how the cases failed: raised, rounding-sized errors, or wrong numbers."""
    if not any(math.isfinite(c.error) for c in cases):
        return "Hint: the calls raised an error; fix it first (see above)."
    worst = max(c.error for c in cases if math.isfinite(c.error))
    return f"Hint: {precision_hint(worst)}." if precision_hint(worst) else ""


def _engine_works(answers) -> bool:
    """At least half of the single-operation graphs give the right value and gradients: the judge's proof
    that an engine computed the answers (checks that read counts or statuses earn points only then)."""
    try:
        cases = compare_graphs(plan.OP_CASES, _results(answers, "ops"))
    except AnswerError:
        return False
    return sum(c.error <= 1e-9 for c in cases) * 2 >= len(cases)


ENGINE_GATE = ("Value does not compute most single operations and their gradients yet (see the gradient checks), "
               "so this check has nothing to stand on")


# ---- correctness ---------------------------------------------------------------------------

@pytest.mark.check(points=3, category="correctness")
def test_forward_values(answers, thresholds, measure):
    """Every Value operation computes the right number (+ * ** / - neg, reflected ops, exp, log, tanh, relu, sum)."""
    cases = value_errors(plan.OP_CASES, _results(answers, "ops"))
    bad = [c for c in cases if not c.error <= thresholds["value_err"]]
    measure(len(bad), pass_at=0, fail_at=len(cases), target=f"0 of {len(cases)} wrong")
    operand = any("unsupported operand" in c.message or "TypeError" in c.message for c in bad)
    hint = ("Hint: wrap plain numbers in Value and define the reflected methods (__radd__ ...)." if operand
            else _errors_hint(bad) or "Hint: check the formula of each operation listed.")
    assert not bad, (f"{len(bad)} of {len(cases)} operations gave a wrong value or raised: "
                     f"{_listing([c.message for c in bad])}. {hint}")


@pytest.mark.check(points=2, category="correctness")
def test_topological_order(answers):
    """topological_order(root) lists every node once, children before parents, root last."""
    spec = plan.TOPO_SPEC
    got = answers.get("topo")
    order = got.get("order") if isinstance(got, dict) else None
    if not isinstance(order, list) or not all(isinstance(e, list) and len(e) == 2 for e in order):
        raise AnswerError("topological_order: the probe did not return an order")
    tags = [int(to_number(t, "tag")) for t, _ in order]
    where = {int(to_number(i, "index")): pos for pos, (_, i) in enumerate(order) if i != -1}
    n_nodes = len(spec["leaves"]) + len(spec["ops"])
    duplicates = len(tags) - len(set(tags))
    assert duplicates == 0, (f"{duplicates} node(s) appear more than once in an order of {len(tags)} entries "
                             f"(a graph of {n_nodes} nodes). Hint: keep a set of visited nodes.")
    missing = [i for i in range(n_nodes) if i not in where]
    assert not missing, f"nodes {missing} of the graph are missing from the order (expected all {n_nodes})"
    n_leaves = len(spec["leaves"])
    for k, op in enumerate(spec["ops"]):
        parent = n_leaves + k
        children = op[1:3] if op[0] in ("add", "mul", "sub", "div") else op[1:2]
        for child in children:
            assert where[child] < where[parent], (
                f"node {child} comes after node {parent}, which is computed from it. "
                "Hint: append a node only after visiting all of its children.")
    assert where[n_nodes - 1] == len(order) - 1, "the root must be the last node of the order"


@pytest.mark.check(points=1, category="correctness")
def test_tanh_saturates(answers):
    """Value(400).tanh() gives 1 with gradient 0 instead of overflowing."""
    cases = _cases(answers, "tanh_large")
    wrong = []
    for x, res in zip(plan.TANH_CASES, cases):
        if "error" in res:
            wrong.append(f"Value({x}).tanh(): {res['error']}")
            continue
        value, grad = to_number(res.get("value"), "value"), numbers(res.get("grads"), "grads")[0]
        want = math.tanh(x)
        err_v, err_g = error(value, want), abs(grad - (1 - want * want))
        if err_v > 1e-12 or err_g > 1e-12:
            wrong.append(f"Value({x}).tanh(): value {number(value, err_v)} (error {err_v:.1e}), "
                         f"grad {number(grad, err_g)} (error {err_g:.1e})")
    assert len(cases) == len(plan.TANH_CASES) and not wrong, (
        f"{_listing(wrong)}. Hint: e**(2x) overflows above x = 355; use math.tanh or a formula in e**(-2|x|).")


@pytest.mark.check(points=2, category="correctness")
def test_numerical_grad(answers, thresholds, measure):
    """numerical_grad(f, args, h) estimates the gradient with a centered difference, with the step it is given."""
    cases = _cases(answers, "numgrad")
    errs, wrong = [], []
    for (name, args), res in zip(plan.NUMGRAD_POINTS, cases):
        want = analytic_grad(name, args)
        if "error" in res:
            wrong.append(f"{name}{tuple(args)}: {res['error']}")
            errs.append(math.inf)
            continue
        got = numbers(res.get("grad"), "grad")
        if len(got) != len(want):
            wrong.append(f"{name}{tuple(args)}: {len(got)} partial derivatives, expected {len(want)}")
            errs.append(math.inf)
            continue
        err = max(error(g, w) for g, w in zip(got, want))
        errs.append(err)
        if err > thresholds["numgrad_err_pass"]:
            wrong.append(f"{name}{tuple(args)}: max error {err:.1e} against the analytic gradient")
    worst = max(errs) if len(errs) == len(plan.NUMGRAD_POINTS) else math.inf
    measure(worst, pass_at=thresholds["numgrad_err_pass"], fail_at=thresholds["numgrad_err_fail"], log=True)
    assert not wrong and worst <= thresholds["numgrad_err_pass"], (
        f"max relative error {worst:.1e} (target ≤ {thresholds['numgrad_err_pass']:g}): {_listing(wrong)}. "
        "Hint: use (f(x+h) - f(x-h)) / (2h) on one argument at a time, h = 1e-5 by default.")
    steps = []
    for (name, args, h), res in zip(plan.NUMGRAD_STEP_POINTS, _cases(answers, "numgrad_step")):
        got = numbers(res.get("grad"), "grad") if "error" not in res else None
        want = centered_difference(name, args, h)
        err = max((error(g, w) for g, w in zip(got, want)), default=math.inf) if got and len(got) == len(want) \
            else math.inf
        if err > 1e-8:
            steps.append(f"h={h:g}: " + (res.get("error") or f"differs from the centered difference with that "
                                                             f"step by {err:.1e}"))
    assert not steps, (f"numerical_grad(f, args, h=...) ignores or misuses its step: {_listing(steps)}. "
                       "Hint: use the h you are given, not a fixed 1e-5.")


@pytest.mark.check(points=1, category="correctness")
def test_gradf_exercise(answers):
    """gradf(a, b, c) is the exact gradient of the exercise function."""
    cases = _cases(answers, "gradf")
    wrong = []
    for args, res in zip(plan.GRADF_POINTS, cases):
        want = analytic_grad("exercise", args)
        got = numbers(res.get("grad"), "grad") if "error" not in res else None
        if got is None or len(got) != 3:
            wrong.append(f"gradf{tuple(args)}: {res.get('error') or 'not 3 numbers'}")
            continue
        errs = [error(g, w) for g, w in zip(got, want)]
        off = [f"df/d{v} {number(g, e)} (error {e:.1e}{ratio_note(g, w)})"
               for v, g, w, e in zip("abc", got, want, errs) if e > 1e-9]
        if off:
            wrong.append(f"gradf{tuple(args)}: " + ", ".join(off))
    assert len(cases) == len(plan.GRADF_POINTS) and not wrong, (
        f"{_listing(wrong)}. Hint: differentiate each term by hand; check it with numerical_grad.")


@pytest.mark.check(points=2, category="correctness")
def test_softmax_nll(answers):
    """softmax(logits) and nll(logits, target) give the right probabilities and loss, for large logits too."""
    cases = _cases(answers, "softmax")
    wrong, errs, overflow = [], [], False
    for (logits, target), res in zip(plan.SOFTMAX_CASES, cases):
        probs, loss, _ = softmax_reference(logits, target)
        if "error" in res:
            wrong.append(f"logits {logits}, target {target}: {res['error']}")
            overflow = overflow or max(abs(x) for x in logits) > 700
            continue
        got_p, got_l = numbers(res.get("probs"), "probs"), to_number(res.get("loss"), "loss")
        err_p = max((error(g, w) for g, w in zip(got_p, probs)), default=math.inf) if len(got_p) == len(probs) \
            else math.inf
        err_l = error(got_l, loss)
        errs += [err_p, err_l]
        if err_p > 1e-9:
            wrong.append(f"softmax({logits}): {len(got_p)} probabilities, max error {err_p:.1e}, "
                         f"sum {number(sum(got_p), abs(sum(got_p) - 1) or None)}")
        if err_l > 1e-9:
            wrong.append(f"nll({logits}, {target}) = {number(got_l, err_l)} (error {err_l:.1e})")
    hint = ("subtract the largest logit before exp (exp(1000) overflows)" if overflow else
            precision_hint(max(errs, default=0.0)) or "probabilities are exp(logit) / sum of exp; nll is -log(p[target])")
    assert len(cases) == len(plan.SOFTMAX_CASES) and not wrong, f"{_listing(wrong)}. Hint: {hint}."


@pytest.mark.check(points=2, category="correctness")
def test_parameter_count(answers):
    """parameters() lists every weight and bias once: 41 for MLP(3, [4, 4, 1]), and for other sizes."""
    require(_engine_works(answers), ENGINE_GATE)
    wrong = []
    for (cls, args), res in zip(plan.COUNT_CASES, _cases(answers, "params")):
        label, want = f"{cls}{tuple(args)}", plan.count_params(cls, args)
        if "error" in res:
            wrong.append(f"{label}: {res['error']}")
            continue
        count, unique = (int(to_number(res.get(k), k)) for k in ("count", "unique"))
        if res.get("all_values") is not True:
            wrong.append(f"{label}: parameters() must return Value objects")
        elif count != want:
            wrong.append(f"{label} has {count} parameters, expected {want}")
        elif unique != count:
            wrong.append(f"{label}: {count - unique} parameter(s) are listed twice")
    assert len(_cases(answers, "params")) == len(plan.COUNT_CASES) and not wrong, (
        f"{_listing(wrong)}. Hint: each neuron has nin weights and one bias; a layer lists its neurons' "
        "parameters, an MLP its layers'.")


@pytest.mark.check(points=3, category="correctness")
def test_mlp_forward_backward(answers, measure):
    """Neuron, Layer and MLP with the grader's weights compute tanh(w·x + b) layer by layer, and backward() reaches every weight."""
    cases = _cases(answers, "modules")
    wrong, shape_off, worst = [], False, 0.0
    for case, res in zip(plan.MODULE_CASES, cases):
        sizes = plan.layer_sizes(case["cls"], case["args"])
        if "error" in res:
            wrong.append(f"{case['label']}: {res['error']}")
            continue
        want_out, want_grad = module_eval(sizes, case["params"], case["inputs"])
        outs = res.get("outputs")
        if not isinstance(outs, list) or len(outs) != len(want_out) or any(
                not isinstance(o, list) or len(o) != len(w) for o, w in zip(outs, want_out)):
            wrong.append(f"{case['label']}: expected {sizes[-1]} output(s) per input")
            shape_off = True
            continue
        err_out = max(error(g, w) for o, wo in zip(outs, want_out) for g, w in zip(numbers(o, "outputs"), wo))
        grads = numbers(res.get("grads"), "grads")
        err_grad = max(error(g, w) for g, w in zip(grads, want_grad)) if len(grads) == len(want_grad) else math.inf
        worst = max(worst, err_out, err_grad)
        if err_out > 1e-9:
            wrong.append(f"{case['label']}: outputs off by up to {err_out:.1e}")
        elif err_grad > 1e-9:
            wrong.append(f"{case['label']}: the outputs are right, the weights' gradients off by up to {err_grad:.1e}")
    measure(len(wrong), pass_at=0, fail_at=len(plan.MODULE_CASES), target=f"0 of {len(plan.MODULE_CASES)} wrong")
    assert len(cases) == len(plan.MODULE_CASES) and not wrong, (
        f"{len(wrong)} of {len(plan.MODULE_CASES)} modules are off: {_listing(wrong)}. Hint: "
        + ("a layer of one neuron returns that Value, otherwise a list." if shape_off else
           precision_hint(worst) + "." if precision_hint(worst) else
           "the grader sets the weights through parameters() in the lecture's order (layer by layer, neuron by "
           "neuron, each neuron's weights then its bias) and expects out = tanh(w·x + b) with the bias included."))


@pytest.mark.check(points=1, category="correctness")
def test_init_uniform(answers):
    """Neuron draws every weight and bias with random.uniform(-1, 1): same seed, same draws."""
    got = answers.get("init")
    if not isinstance(got, dict):
        raise AnswerError("init: no result")
    first, same, other = (numbers(got.get(k), k) for k in ("first", "same_seed", "other_seed"))
    n = plan.count_params("MLP", plan.INIT_MODEL)
    require(len(first) == n, f"MLP{tuple(plan.INIT_MODEL)} has {len(first)} parameters, expected {n}")
    require(same == first, "random.seed(s) twice gave different weights: draw them with random.uniform")
    require(other != first, "another seed gave the same weights: draw them with random.uniform, not constants")
    sizes = plan.layer_sizes("MLP", plan.INIT_MODEL)
    bias_at, k = set(), 0
    for nin, nout in pairwise(sizes):
        bias_at |= {k + (nin + 1) * j + nin for j in range(nout)}
        k += (nin + 1) * nout
    problems = []
    for what, values in (("weights", [v for i, v in enumerate(first) if i not in bias_at]),
                         ("biases", [first[i] for i in sorted(bias_at)])):
        m = len(values)
        mean = sum(values) / m
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / m)
        # uniform(-1, 1): mean 0, std 1/sqrt(3) = 0.577; the bounds are 5 standard errors wide
        if min(values) < -1 or max(values) > 1 or abs(mean) > 5 * 0.577 / math.sqrt(m) \
                or abs(std - 0.577) > 5 * 0.298 / math.sqrt(m):
            problems.append(f"{what}: range {min(values):.3f}..{max(values):.3f}, mean {mean:.3f}, std {std:.3f}")
    assert not problems, (f"the initial parameters do not look like uniform(-1, 1) draws (mean 0, std 0.577): "
                          f"{'; '.join(problems)}. Hint: Value(random.uniform(-1, 1)) for every weight and bias.")
# ---- gradients -------------------------------------------------------------------------------

def _graph_check(answers, thresholds, measure, probe_id, specs, hint):
    cases = compare_graphs(specs, _results(answers, probe_id, hint))
    failed = [c for c in cases if not math.isfinite(c.error)]
    answered = [c.error for c in cases if math.isfinite(c.error)]
    measured = max(answered) if answered else math.inf  # the Measured column: the graphs that gave numbers
    measure(len(failed), pass_at=0, fail_at=len(cases), failed_cases=len(failed))
    measure(measured, pass_at=thresholds["grad_err_pass"], fail_at=thresholds["grad_err_fail"], log=True,
            cases=len(cases))
    bad = sorted((c for c in cases if c.error > thresholds["grad_err_pass"]), key=lambda c: -c.error)
    target = f"target ≤ {thresholds['grad_err_pass']:g}"
    head = (f"{len(failed)} of {len(cases)} graphs gave no result"
            + (f"; the other {len(answered)} have max error {measured:.1e} ({target})" if answered else "")
            if failed else f"{len(bad)} of {len(cases)} graphs are off (max error {measured:.1e}, {target})")
    # the hint is about numbers, not about a crash; rounding-sized errors get the precision hint
    assert not failed and measured <= thresholds["grad_err_pass"], (
        f"{head}: {_listing([c.message for c in bad], 3)}. " + (_errors_hint(bad) or f"Hint: {hint}"))


@pytest.mark.check(points=4, category="gradient")
def test_op_gradients(answers, thresholds, measure):
    """Each operation's gradient matches torch autograd (float64)."""
    _graph_check(answers, thresholds, measure, "ops", plan.OP_CASES,
                 "check each local derivative, e.g. d(x**k)/dx = k * x**(k-1) (mind the brackets).")


@pytest.mark.check(points=3, category="gradient")
def test_reused_nodes(answers, thresholds, measure):
    """A node used twice (a+a, a*a, diamonds) collects the gradient of every path."""
    cases = compare_graphs(plan.REUSE_CASES, _results(answers, "reuse"))
    wrong = [c for c in cases if not c.error <= thresholds["reuse_err"]]
    measure(len(wrong), pass_at=0, fail_at=len(cases), target=f"0 of {len(cases)} wrong")
    hint = _errors_hint(wrong) or ("Hint: accumulate with `+=` in every _backward (`=` keeps only the last path), "
                                   "and visit each node once.")
    assert not wrong, (f"{len(wrong)} of {len(cases)} graphs with reused nodes are wrong: "
                       f"{_listing([c.message for c in wrong], 3)}. {hint}")


@pytest.mark.check(points=5, category="gradient")
def test_graph_gradients(answers, thresholds, measure):
    """Random expression graphs with shared nodes: value and every leaf gradient match torch."""
    specs = plan.random_graphs(plan.seeds()["graphs"], int(thresholds["graph_count"]))
    _graph_check(answers, thresholds, measure, "random_graphs", specs,
                 "compare one failing graph with torch by hand; reused nodes need `+=`.")


@pytest.mark.check(points=2, category="gradient")
def test_deep_chain(answers, thresholds, measure):
    """A 30-level graph where every level is reached twice finishes fast and is exact."""
    depth, limit = int(thresholds["deep_chain_depth"]), thresholds["deep_chain_timeout"]
    spec = plan.spec_for_depth(depth)
    slow = (f"backward() on a {depth}-level graph must finish within {limit:g} s: without a visited set "
            f"each level doubles the work (2**{depth} visits).")
    cases = compare_graphs([spec], _results(answers, "deep_chain", slow))
    measure(cases[0].error, pass_at=thresholds["grad_err_pass"], fail_at=thresholds["grad_err_fail"], log=True)
    assert cases[0].error <= thresholds["grad_err_pass"], (
        f"{cases[0].message}. " + (_errors_hint(cases) or "Hint: every level reaches the one below along two "
                                   "paths; both contributions must be added (+=) and each node processed once."))


@pytest.mark.check(points=2, category="gradient")
def test_softmax_nll_gradients(answers, thresholds, measure):
    """nll(logits, target).backward() gives d loss / d logits = softmax - one_hot(target)."""
    cases = _cases(answers, "softmax")
    errs, wrong = [], []
    for (logits, target), res in zip(plan.SOFTMAX_CASES, cases):
        _, _, want = softmax_reference(logits, target)
        got = numbers(res.get("grads"), "grads") if "error" not in res else None
        err = max(error(g, w) for g, w in zip(got, want)) if got and len(got) == len(want) else math.inf
        errs.append(err)
        if err > thresholds["grad_err_pass"]:
            wrong.append(f"logits {logits}, target {target}: " + (res.get("error") or f"max error {err:.1e}"))
    worst = max(errs) if len(errs) == len(plan.SOFTMAX_CASES) else math.inf
    measure(worst, pass_at=thresholds["grad_err_pass"], fail_at=thresholds["grad_err_fail"], log=True)
    assert not wrong, (f"d loss / d logits: {_listing(wrong)}. Hint: "
                       + (precision_hint(worst) or "it must equal softmax(logits) - one_hot(target)") + ".")


@pytest.mark.check(points=1, category="gradient")
def test_backward_accumulates(answers, measure):
    """Calling backward() a second time adds the same gradients again (it neither resets nor grows them)."""
    cases = _cases(answers, "twice")
    wrong, ratios = [], set()
    for spec, res in zip(plan.TWICE_CASES, cases):
        if "error" in res:
            wrong.append(f"{spec['label']}: {res['error']}")
            continue
        once, twice = numbers(res.get("once"), "once"), numbers(res.get("twice"), "twice")
        want = torch_eval(spec)[1]
        if len(once) != len(want) or len(twice) != len(want):
            wrong.append(f"{spec['label']}: {len(once)} leaf gradients, expected {len(want)}")
            continue
        first = max(error(o, w) for o, w in zip(once, want))
        # Judged against the engine's own first gradients when they are right up to rounding (a float32 engine
        # loses its points in the gradient checks, not again here), else against the reference.
        base = once if first <= 1e-6 else want
        if max(error(t, 2 * b) for t, b in zip(twice, base)) > 1e-9:
            k = max(range(len(want)), key=lambda i: abs(want[i]))
            ratio = twice[k] / once[k] if once[k] else math.inf
            ratios.add(round(ratio, 2))
            wrong.append(f"{spec['label']}: after the second backward() the gradient is {ratio:.2f}x that after the "
                         "first (expected 2.00x)" if first <= 1e-6 else
                         f"{spec['label']}: the first backward() is already off (see the gradient checks)")
    measure(len(wrong), pass_at=0, fail_at=len(plan.TWICE_CASES), target=f"0 of {len(plan.TWICE_CASES)} wrong")
    hint = ("backward() must not reset the gradients it adds to" if ratios & {1.0} else
            "set the root's gradient to 1.0 (=), do not add 1 to it" if ratios & {3.0} else
            "each backward() adds the gradient of this root once more" if ratios else
            "fix the gradients of a single backward() first")
    assert len(cases) == len(plan.TWICE_CASES) and not wrong, f"{_listing(wrong)}. Hint: {hint}."


# ---- loss ------------------------------------------------------------------------------------

TOY_SIZES = [3, 4, 4, 1]


@pytest.mark.check(points=2, category="correctness")
def test_train_step_exact(answers):
    """train_step is one exact SGD step on the summed squared error: zero_grad, backward, p.data -= lr * p.grad."""
    require(_engine_works(answers), ENGINE_GATE)
    case, steps = plan.STEP_CASE, _cases(answers, "step")
    require(len(steps) == case["steps"], f"{case['steps']} train_step calls answered {len(steps)} times")
    problems = []
    for k, res in enumerate(steps, 1):
        if "error" in res:
            problems.append(f"step {k}: {res['error']}")
            break
        before, grads, after = (numbers(res.get(key), key) for key in ("before", "grads", "after"))
        loss, returned = to_number(res.get("loss"), "loss"), to_number(res.get("returned"), "returned")
        require(len(before) == len(grads) == len(after), "the weights and gradients did not all come back")
        if error(returned, loss) > 1e-9:  # the loss of the weights before this step, by your engine
            problems.append(f"step {k}: train_step returned {number(returned, error(returned, loss))}, the summed "
                            f"squared error before the update is {number(loss, error(returned, loss))}"
                            f"{ratio_note(returned, loss)}")
        want = [b - case["lr"] * g for b, g in zip(before, grads)]
        err = max(error(a, w) for a, w in zip(after, want))
        if err > 1e-9:
            moved = [a - b for a, b in zip(after, before)]
            step = [w - b for w, b in zip(want, before)]
            scale = sum(m * t for m, t in zip(moved, step)) / max(sum(t * t for t in step), 1e-300)
            problems.append(f"step {k}: the weights moved {scale:.2f}x as far as lr * grad along the gradient "
                            f"(off by up to {err:.1e})" + (": nothing moved (update p.data, not a copy)"
                                                           if abs(scale) < 1e-3 else
                                                           ": the update has the wrong sign" if scale < 0 else
                                                           ": stale gradients added up (zero them before backward)"
                                                           if abs(scale - 2) < 1e-6 else ""))
        if problems:
            break
    assert not problems, (f"{_listing(problems)}. Hint: one step is forward, model.zero_grad(), loss.backward(), "
                          f"then p.data -= lr * p.grad for every parameter (lr {case['lr']}); return the loss "
                          "before the update.")


@pytest.mark.check(points=4, category="loss")
def test_toy_training(answers, thresholds, measure, artifacts):
    """The grader trains MLP(3, [4, 4, 1]) from its own starting weights with your train_step; the toy-set loss ends below 0.05."""
    got = answers.get("train")
    if not isinstance(got, dict):
        raise AnswerError("train: no result")
    steps = int(thresholds["train_steps"])
    losses = numbers(got.get("losses"), "losses")
    params = numbers(got.get("params"), "trained weights")
    require(len(params) == plan.count_params("MLP", [3, [4, 4, 1]]), "the trained weights did not come back")
    # The loss is computed here from the trained weights, not taken from what train_step reported.
    loss, _ = sse(TOY_SIZES, params, plan.TOY_XS, plan.TOY_YS)
    (artifacts / "toy_training_loss.json").write_text(json.dumps({"step": list(range(len(losses))), "loss": losses}))
    measure(loss, pass_at=thresholds["loss_pass"], fail_at=thresholds["loss_fail"],
            steps=steps, lr=thresholds["train_lr"], first_loss=losses[0] if losses else None)
    require(len(losses) == steps, f"train_step returned {len(losses)} losses for {steps} steps")
    assert loss < thresholds["loss_pass"], (
        f"after {steps} steps at lr {thresholds['train_lr']} the loss is {loss:.4f} "
        f"(target < {thresholds['loss_pass']}; it started at {losses[0]:.3f}). Hint: forward, zero_grad, "
        "backward, then p.data -= lr * p.grad for every parameter.")


@pytest.mark.check(points=2, category="loss")
def test_zero_grad(answers, thresholds):
    """train_step zeroes old gradients (two lr=0 steps leave the gradients of one), and so does model.zero_grad()."""
    require(_engine_works(answers), ENGINE_GATE)
    got = answers.get("zero_grad")
    if not isinstance(got, dict):
        raise AnswerError("zero_grad: no result")
    once, twice, zeroed, after = (numbers(got.get(k), k) for k in ("once", "twice", "zeroed", "after"))
    case = plan.ZERO_GRAD_CASE
    _, want = sse(TOY_SIZES, case["params"], plan.TOY_XS, plan.TOY_YS)
    require(len(once) == len(want), f"{len(once)} gradients for {len(want)} parameters")
    assert any(g != 0 for g in once), "after one train_step every gradient is 0: backward() did not run"
    tol = thresholds["zero_grad_tol"]
    worst = max(error(b, a) for a, b in zip(once, twice)) if len(once) == len(twice) else math.inf
    ratio = sum(abs(b) for b in twice) / max(sum(abs(a) for a in once), 1e-300)
    assert worst <= tol, (f"after a second lr=0 train_step the gradients are {ratio:.2f}x those after one "
                          "(expected 1.00x). Hint: call model.zero_grad() before loss.backward().")
    assert all(g == 0 for g in zeroed), "model.zero_grad() left some gradients non-zero"
    again = max(error(b, a) for a, b in zip(once, after)) if len(after) == len(once) else math.inf
    assert again <= tol, ("after model.zero_grad() and one more backward() the gradients differ from a fresh "
                          f"backward's by {again:.1e}: zero_grad() must set every parameter's grad to 0.")


# ---- runs clean, integrity -------------------------------------------------------------------

@pytest.mark.check(points=2, category="runs_clean")
def test_runs_clean(execution, answers):
    """Every cell ran without an error and every graded call answered."""
    failures = execution.get("failures", [])
    cells = [f"cell {f['index'] + 1}: {f.get('ename') or f['kind']} {f.get('evalue', '')}"[:160] for f in failures]
    assert execution.get("status") == "ok" and not failures, (
        f"the notebook did not run cleanly ({execution.get('status')}): {_listing(cells, 3)}"
        + (f" {execution.get('message')}" if execution.get("message") else ""))
    probes = execution.get("probes", [])
    broken = [f"{p['id']}: {p.get('error', '')}"[:200] for p in probes if not p.get("ok")]
    assert probes, "the graded functions were never called (the kernel stopped before the grader's calls)"
    assert not broken, f"{len(broken)} graded call(s) failed: {_listing(broken, 3)}"
    require(_engine_works(answers), ENGINE_GATE)


@pytest.mark.check(points=2, category="integrity")
def test_no_torch_in_value(answers, cells):
    """The cells that define Value, Neuron, Layer, MLP (and friends) do not use torch or another autograd."""
    require(_engine_works(answers), ENGINE_GATE)
    results = [r for r in _results(answers, "ops") if isinstance(r, dict) and "value" in r]
    uses = torch_uses(cells)
    assert not uses, (f"your engine must be plain Python, but the graded cells use an autograd library: "
                      f"{_listing(uses, 3)}. Move any torch comparison to a separate self-check cell.")
    odd = sorted({t for r in results for t in (r.get("types") or []) if isinstance(t, str) and t not in OK_TYPES})
    assert not odd, f"Value.data / Value.grad hold {', '.join(odd)}; expected Python floats"
