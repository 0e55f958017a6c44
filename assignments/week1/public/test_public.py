"""Week 1 public checks: forward values, the lecture neuron's gradients, the MLP's size."""

from __future__ import annotations

import math

import pytest

from grader.judge.answers import AnswerError, to_number

# What each public case must give: (value, gradients of the inputs). Worked out by hand.
EXPECTED = {
    "a + b": (-1.5, [1.0, 1.0]),
    "a * b": (-6.0, [4.0, -1.5]),
    "a ** 3": (1.7 ** 3, [3 * 1.7 ** 2]),
    "a / b": (-0.75, [-0.25, -3.0 / 16.0]),
    "2 + a": (3.5, [1.0]),
    "a.exp()": (math.exp(0.7), [math.exp(0.7)]),
    "a.tanh()": (math.tanh(0.8), [1 - math.tanh(0.8) ** 2]),
    "b = a + a": (6.0, [2.0]),
}
NEURON = [math.sqrt(0.5), -1.5, 1.0, 0.5, 0.0]  # o, x1.grad, w1.grad, x2.grad, w2.grad


def _close(got, want, tol):
    return abs(got - want) <= tol * max(1.0, abs(want))


def _cases(answers):
    got = answers.get("ops")
    if not isinstance(got, list) or len(got) != len(EXPECTED):
        raise AnswerError("ops: expected one result per case")
    return zip(EXPECTED.items(), got)


@pytest.mark.check(points=2, category="correctness")
def test_forward_values(answers, thresholds):
    """Value operations compute the right numbers."""
    wrong = []
    for (label, (value, _)), res in _cases(answers):
        if not isinstance(res, dict) or "error" in res:
            wrong.append(f"{label}: {res.get('error') if isinstance(res, dict) else 'no result'}")
        elif not _close(to_number(res.get("value"), label), value, thresholds["tolerance"]):
            wrong.append(f"{label}: got {res.get('value')}, expected {value:.6g}")
    assert not wrong, "; ".join(wrong)


@pytest.mark.check(points=2, category="gradient")
def test_simple_gradients(answers, thresholds):
    """backward() gives the right gradients for single operations, including a node used twice."""
    wrong, numbers_off = [], False
    for (label, (_, grads)), res in _cases(answers):
        if not isinstance(res, dict) or "error" in res:
            wrong.append(f"{label}: {res.get('error') if isinstance(res, dict) else 'no result'}")
            continue
        got = res.get("grads")
        if not isinstance(got, list) or len(got) != len(grads) or not all(
                _close(to_number(g, label), w, thresholds["tolerance"]) for g, w in zip(got, grads)):
            wrong.append(f"{label}: grads {got}, expected {[round(w, 6) for w in grads]}")
            numbers_off = True
    # the += hint is about wrong numbers; a TypeError needs fixing first
    assert not wrong, "; ".join(wrong) + (". Hint: accumulate gradients with +=." if numbers_off else
                                          ". Hint: fix the error first.")


@pytest.mark.check(points=2, category="gradient")
def test_lecture_neuron(answers):
    """The lecture's neuron: o = 0.7071, grads x1 -1.5, w1 1.0, x2 0.5, w2 0.0 (tanh and its exp form)."""
    got = answers.get("neuron")
    for form in ("tanh", "expanded"):
        values = got.get(form) if isinstance(got, dict) else None
        if not isinstance(values, list) or len(values) != 5:
            raise AnswerError(f"lecture neuron ({form}): no result")
        nums = [to_number(v, form) for v in values]
        assert all(_close(g, w, 1e-9) for g, w in zip(nums, NEURON)), (
            f"lecture neuron ({form}): [o, x1, w1, x2, w2 grads] = {[round(v, 6) for v in nums]}, "
            f"expected {[round(v, 6) for v in NEURON]}")


@pytest.mark.check(points=1, category="correctness")
def test_parameter_count(answers):
    """MLP(3, [4, 4, 1]) has 41 parameters."""
    count = to_number(answers.get("params"), "parameter count")
    assert count == 41, f"MLP(3, [4, 4, 1]) has {count:g} parameters, expected 41"


@pytest.mark.check(points=1, category="runs_clean")
def test_runs_clean(execution):
    """Every cell ran without an error."""
    failures = execution.get("failures", [])
    assert execution.get("status") == "ok" and not failures, (
        f"the notebook did not run cleanly ({execution.get('status')}): "
        + "; ".join(f"cell {f['index'] + 1}: {f.get('ename') or f['kind']} {f.get('evalue', '')}"[:160]
                    for f in failures[:3]))
