"""Week 1 probes (SANDBOX side): call the student's code and return plain data.

No expected answers live here. Each probe builds what the judge asked for with the student's
Value / MLP / functions and reports what came back, one entry per case, so that one broken
operation costs only its own case. A case that raises is reported as {"error": "..."}.
"""

import math
import random

MAX_ORDER = 10_000  # a topological order longer than this is cut (it already has duplicates)


def _error(exc):
    return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}


def _type_name(x):
    return f"{type(x).__module__}.{type(x).__qualname__}"


def _apply(op, nodes):
    name, args = op[0], op[1:]
    if name == "sum":
        return sum(nodes[i] for i in args[0])
    a = nodes[args[0]]
    if name in ("add", "sub", "mul", "div"):
        b = nodes[args[1]]
        return {"add": lambda: a + b, "sub": lambda: a - b, "mul": lambda: a * b, "div": lambda: a / b}[name]()
    if name in ("neg", "exp", "log", "tanh", "relu"):
        return -a if name == "neg" else getattr(a, name)()
    c = args[1]
    table = {
        "pow": lambda: a ** c, "addc": lambda: a + c, "mulc": lambda: a * c, "radd": lambda: c + a,
        "rmul": lambda: c * a, "rsub": lambda: c - a, "rdiv": lambda: c / a,
    }
    return table[name]()


def _build(Value, spec):
    leaves = [Value(float(x)) for x in spec["leaves"]]
    nodes = list(leaves)
    for op in spec["ops"]:
        nodes.append(_apply(op, nodes))
    return leaves, nodes


def graphs(ns, specs):
    """Build each graph, call backward() on its root; report the root's value and leaf grads."""
    Value = ns["Value"]
    out = []
    for spec in specs:
        entry = {}
        try:
            leaves, nodes = _build(Value, spec)
            root = nodes[-1]
            entry["value"] = root.data  # kept even when backward() fails
            root.backward()
            entry.update(root_grad=root.grad, grads=[leaf.grad for leaf in leaves],
                         types=[_type_name(root.data), _type_name(leaves[0].grad)])
        except Exception as exc:  # noqa: BLE001 - the student's bug in this case only
            entry.update(_error(exc))
        out.append(entry)
    return out


def topo_order(ns, spec):
    """topological_order(root) as [identity tag, spec node index or -1] per element."""
    topological_order = ns["topological_order"]
    _, nodes = _build(ns["Value"], spec)
    index = {id(node): i for i, node in enumerate(nodes)}
    tags = {}
    order = []
    for node in topological_order(nodes[-1]):
        if len(order) >= MAX_ORDER:
            break
        tag = tags.setdefault(id(node), len(tags))
        order.append([tag, index.get(id(node), -1)])
    return {"order": order}


FUNCTIONS = {
    "exercise": lambda a, b, c: -a**3 + math.sin(3 * b) - 1.0 / c + b**2.5 - a**0.5,
    "smooth": lambda x, y: math.exp(0.3 * x) * math.cos(y) + x * y * y,
}


def numerical_grad(ns, points):
    """The student's numerical_grad(f, args) with its default step, on the judge's functions."""
    fn = ns["numerical_grad"]
    out = []
    for name, args in points:
        try:
            out.append({"grad": list(fn(FUNCTIONS[name], [float(a) for a in args]))})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append(_error(exc))
    return out


def gradf(ns, points):
    fn = ns["gradf"]
    out = []
    for args in points:
        try:
            out.append({"grad": list(fn(*[float(a) for a in args]))})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append(_error(exc))
    return out


def softmax_nll(ns, cases):
    """softmax probabilities, the nll value, and d nll / d logits after backward()."""
    Value, softmax, nll = ns["Value"], ns["softmax"], ns["nll"]
    out = []
    for logits, target in cases:
        try:
            probs = [p.data for p in softmax([Value(float(x)) for x in logits])]
            vals = [Value(float(x)) for x in logits]
            loss = nll(vals, int(target))
            loss.backward()
            out.append({"probs": probs, "loss": loss.data, "grads": [v.grad for v in vals]})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append(_error(exc))
    return out


def parameter_count(ns):
    Value, MLP = ns["Value"], ns["MLP"]
    random.seed(0)
    small = MLP(3, [4, 4, 1]).parameters()
    moons = MLP(2, [16, 16, 1]).parameters()
    return {
        "small": len(small),
        "small_unique": len({id(p) for p in small}),
        "moons": len(moons),
        "all_values": all(isinstance(p, Value) for p in list(small) + list(moons)),
    }


def _scalar(out):
    if isinstance(out, (list, tuple)):
        out = out[0]
    return out.data


def _loss_number(loss):
    return getattr(loss, "data", loss)  # the handout asks for a float; accept a Value too


def train(ns, seed, steps, lr, xs, ys):
    """Train a fresh MLP(3, [4, 4, 1]) with the student's train_step, the judge's data and budget."""
    MLP, train_step = ns["MLP"], ns["train_step"]
    random.seed(seed)
    model = MLP(3, [4, 4, 1])
    losses = [_loss_number(train_step(model, xs, ys, lr)) for _ in range(steps)]
    return {"losses": losses, "preds": [_scalar(model(x)) for x in xs]}


def zero_grad(ns, seed, xs, ys):
    """Gradients after one lr=0 step, after a second one, and after model.zero_grad()."""
    MLP, train_step = ns["MLP"], ns["train_step"]
    random.seed(seed)
    model = MLP(3, [4, 4, 1])
    params = model.parameters()
    train_step(model, xs, ys, 0.0)
    once = [p.grad for p in params]
    train_step(model, xs, ys, 0.0)
    twice = [p.grad for p in params]
    model.zero_grad()
    return {"once": once, "twice": twice, "zeroed": [p.grad for p in params]}
