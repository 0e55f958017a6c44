"""Week 1 hidden checks (TRUSTED): judge the probe answers against torch float64 references.

The specs the sandbox built come from plan.py with the seeds in week.toml; the references are
computed here, never in the sandbox.
"""

from __future__ import annotations

import json
import math

import plan
import pytest
from week1_reference import (
    analytic_grad,
    compare_graphs,
    error,
    numbers,
    softmax_reference,
    torch_uses,
    value_errors,
)

from grader.judge.answers import AnswerError, to_number

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


# ---- correctness ---------------------------------------------------------------------------

@pytest.mark.check(points=3, category="correctness")
def test_forward_values(answers, thresholds, measure):
    """Every Value operation computes the right number (+ * ** / - neg, reflected ops, exp, log, tanh, relu, sum)."""
    cases = value_errors(plan.OP_CASES, _results(answers, "ops"))
    wrong = [c.message for c in cases if not c.error <= thresholds["value_err"]]
    measure(len(wrong), pass_at=0, fail_at=len(cases), target=f"0 of {len(cases)} wrong")
    assert not wrong, (f"{len(wrong)} of {len(cases)} operations gave a wrong value or raised: {_listing(wrong)}. "
                       "Hint: wrap plain numbers in Value and define the reflected methods (__radd__ ...).")


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
        if error(value, want) > 1e-12 or abs(grad - (1 - want * want)) > 1e-12:
            wrong.append(f"Value({x}).tanh(): value {value:g}, grad {grad:g} (expected {want:g}, {1 - want * want:g})")
    assert len(cases) == len(plan.TANH_CASES) and not wrong, (
        f"{_listing(wrong)}. Hint: e**(2x) overflows above x = 355; use math.tanh or a formula in e**(-2|x|).")


@pytest.mark.check(points=2, category="correctness")
def test_numerical_grad(answers, thresholds, measure):
    """numerical_grad(f, args) estimates the gradient with a centered difference."""
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
            wrong.append(f"{name}{tuple(args)}: got {[round(g, 8) for g in got]}, analytic {[round(w, 8) for w in want]}")
    worst = max(errs) if len(errs) == len(plan.NUMGRAD_POINTS) else math.inf
    measure(worst, pass_at=thresholds["numgrad_err_pass"], fail_at=thresholds["numgrad_err_fail"], log=True)
    assert not wrong and worst <= thresholds["numgrad_err_pass"], (
        f"max relative error {worst:.1e} (target ≤ {thresholds['numgrad_err_pass']:g}): {_listing(wrong)}. "
        "Hint: use (f(x+h) - f(x-h)) / (2h) with h = 1e-5 on one argument at a time.")


@pytest.mark.check(points=1, category="correctness")
def test_gradf_exercise(answers):
    """gradf(a, b, c) is the exact gradient of the exercise function."""
    cases = _cases(answers, "gradf")
    wrong = []
    for args, res in zip(plan.GRADF_POINTS, cases):
        want = analytic_grad("exercise", args)
        got = numbers(res.get("grad"), "grad") if "error" not in res else None
        if got is None or len(got) != 3 or max(error(g, w) for g, w in zip(got, want)) > 1e-9:
            wrong.append(f"gradf{tuple(args)} = {res.get('error') or got}, expected {[round(w, 10) for w in want]}")
    assert len(cases) == len(plan.GRADF_POINTS) and not wrong, _listing(wrong)


@pytest.mark.check(points=2, category="correctness")
def test_softmax_nll(answers):
    """softmax(logits) and nll(logits, target) give the right probabilities and loss."""
    cases = _cases(answers, "softmax")
    wrong = []
    for (logits, target), res in zip(plan.SOFTMAX_CASES, cases):
        probs, loss, _ = softmax_reference(logits, target)
        if "error" in res:
            wrong.append(f"logits {logits}, target {target}: {res['error']}")
            continue
        got_p, got_l = numbers(res.get("probs"), "probs"), to_number(res.get("loss"), "loss")
        if len(got_p) != len(probs) or max(error(g, w) for g, w in zip(got_p, probs)) > 1e-9:
            wrong.append(f"softmax({logits}) = {[round(p, 6) for p in got_p]}, expected {[round(p, 6) for p in probs]}")
        if error(got_l, loss) > 1e-9:
            wrong.append(f"nll({logits}, {target}) = {got_l:.10g}, expected {loss:.10g}")
    assert len(cases) == len(plan.SOFTMAX_CASES) and not wrong, (
        f"{_listing(wrong)}. Hint: probabilities are exp(logit) / sum of exp; nll is -log(p[target]).")


@pytest.mark.check(points=2, category="correctness")
def test_parameter_count(answers):
    """MLP.parameters() lists every weight and bias once: 41 for MLP(3, [4, 4, 1])."""
    got = answers.get("params")
    if not isinstance(got, dict):
        raise AnswerError("parameter_count: no result")
    small, unique, moons = (int(to_number(got.get(k), k)) for k in ("small", "small_unique", "moons"))
    assert got.get("all_values") is True, "parameters() must return Value objects"
    assert small == 41, (f"MLP(3, [4, 4, 1]) has {small} parameters, expected 41 "
                         "(3*4+4 + 4*4+4 + 4*1+1). Hint: each neuron has nin weights and one bias.")
    assert unique == small, f"{small - unique} parameter(s) are listed twice"
    assert moons == 337, f"MLP(2, [16, 16, 1]) has {moons} parameters, expected 337"


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
    wrong_numbers = any(math.isfinite(c.error) for c in bad)  # the hint is about numbers, not about a crash
    assert not failed and measured <= thresholds["grad_err_pass"], (
        f"{head}: {_listing([c.message for c in bad], 3)}. "
        + (f"Hint: {hint}" if wrong_numbers else "Hint: the calls raised an error; fix it first (see above)."))


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
    hint = ("Hint: accumulate with `+=` in every _backward (`=` keeps only the last path), and visit each node "
            "once." if any(math.isfinite(c.error) for c in wrong) else
            "Hint: the calls raised an error; fix it first (see above).")
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
        f"{cases[0].message}. Hint: every level reaches the one below along two paths; both contributions "
        "must be added (+=) and each node processed once." if math.isfinite(cases[0].error) else
        f"{cases[0].message}. Hint: the call raised an error; fix it first.")


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
            wrong.append(f"logits {logits}, target {target}: grads {res.get('error') or [round(g, 6) for g in got]}, "
                         f"expected {[round(w, 6) for w in want]}")
    worst = max(errs) if len(errs) == len(plan.SOFTMAX_CASES) else math.inf
    measure(worst, pass_at=thresholds["grad_err_pass"], fail_at=thresholds["grad_err_fail"], log=True)
    assert not wrong, _listing(wrong)


# ---- loss ------------------------------------------------------------------------------------

@pytest.mark.check(points=4, category="loss")
def test_toy_training(answers, thresholds, measure, artifacts):
    """The grader trains your MLP(3, [4, 4, 1]) with your train_step; the toy-set loss ends below 0.05."""
    got = answers.get("train")
    if not isinstance(got, dict):
        raise AnswerError("train: no result")
    steps = int(thresholds["train_steps"])
    losses = numbers(got.get("losses"), "losses")
    preds = numbers(got.get("preds"), "predictions")
    assert len(preds) == len(plan.TOY_YS), f"{len(preds)} predictions for {len(plan.TOY_YS)} examples"
    # The loss is computed here from the predictions, not taken from what train_step reported.
    loss = sum((p - y) ** 2 for p, y in zip(preds, plan.TOY_YS))
    (artifacts / "toy_training_loss.json").write_text(json.dumps({"step": list(range(len(losses))), "loss": losses}))
    measure(loss, pass_at=thresholds["loss_pass"], fail_at=thresholds["loss_fail"],
            steps=steps, lr=thresholds["train_lr"], first_loss=losses[0] if losses else None)
    assert len(losses) == steps, f"train_step returned {len(losses)} losses for {steps} steps"
    assert loss < thresholds["loss_pass"], (
        f"after {steps} steps at lr {thresholds['train_lr']} the loss is {loss:.4f} "
        f"(target < {thresholds['loss_pass']}; it started at {losses[0]:.3f}). Hint: forward, zero_grad, "
        "backward, then p.data -= lr * p.grad for every parameter.")


@pytest.mark.check(points=2, category="loss")
def test_zero_grad(answers, thresholds):
    """train_step zeroes old gradients: two lr=0 steps leave the same gradients as one."""
    got = answers.get("zero_grad")
    if not isinstance(got, dict):
        raise AnswerError("zero_grad: no result")
    once, twice, zeroed = (numbers(got.get(k), k) for k in ("once", "twice", "zeroed"))
    assert once and any(g != 0 for g in once), "after one train_step every gradient is 0: backward() did not run"
    tol = thresholds["zero_grad_tol"]
    worst = max(error(b, a) for a, b in zip(once, twice)) if len(once) == len(twice) else math.inf
    ratio = sum(abs(b) for b in twice) / max(sum(abs(a) for a in once), 1e-300)
    assert worst <= tol, (f"after a second lr=0 train_step the gradients are {ratio:.2f}x those after one "
                          "(expected 1.00x). Hint: call model.zero_grad() before loss.backward().")
    assert all(g == 0 for g in zeroed), "model.zero_grad() left some gradients non-zero"


# ---- runs clean, integrity -------------------------------------------------------------------

@pytest.mark.check(points=2, category="runs_clean")
def test_runs_clean(execution):
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


@pytest.mark.check(points=2, category="integrity")
def test_no_torch_in_value(answers, cells):
    """The cells that define Value, Neuron, Layer, MLP (and friends) do not use torch or another autograd."""
    results = [r for r in _results(answers, "ops") if isinstance(r, dict) and "value" in r]
    assert results, "Value is not implemented yet, so there is no engine to check"
    uses = torch_uses(cells)
    assert not uses, (f"your engine must be plain Python, but the graded cells use an autograd library: "
                      f"{_listing(uses, 3)}. Move any torch comparison to a separate self-check cell.")
    odd = sorted({t for r in results for t in (r.get("types") or []) if isinstance(t, str) and t not in OK_TYPES})
    assert not odd, f"Value.data / Value.grad hold {', '.join(odd)}; expected Python floats"
