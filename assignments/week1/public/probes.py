"""Week 1 public probes (run in your kernel after your cells): call your code, return numbers."""

import random

OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "pow3": lambda a: a ** 3,
    "div": lambda a, b: a / b,
    "radd": lambda a: 2 + a,
    "exp": lambda a: a.exp(),
    "tanh": lambda a: a.tanh(),
    "twice": lambda a: a + a,
}


def ops(ns, cases):
    """Each case's value and its inputs' gradients after backward(); an error message if it raised."""
    Value = ns["Value"]
    out = []
    for _label, op, inputs in cases:
        try:
            xs = [Value(float(x)) for x in inputs]
            y = OPS[op](*xs)
            y.backward()
            out.append({"value": y.data, "grads": [x.grad for x in xs]})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append({"error": f"{type(exc).__name__}: {str(exc)[:200]}"})
    return out


def lecture_neuron(ns):
    """o = tanh(x1*w1 + x2*w2 + b), with tanh itself and written out with exp."""
    Value = ns["Value"]
    out = {}
    for expand in (False, True):
        x1, x2, w1, w2 = Value(2.0), Value(0.0), Value(-3.0), Value(1.0)
        b = Value(6.8813735870195432)
        n = x1 * w1 + x2 * w2 + b
        if expand:
            e = (2 * n).exp()
            o = (e - 1) / (e + 1)
        else:
            o = n.tanh()
        o.backward()
        out["expanded" if expand else "tanh"] = [o.data, x1.grad, w1.grad, x2.grad, w2.grad]
    return out


def parameter_count(ns):
    random.seed(0)
    return len(ns["MLP"](3, [4, 4, 1]).parameters())
