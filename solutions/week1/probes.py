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
    """The student's numerical_grad(f, args[, h=...]) on the judge's functions; its default step unless
    the point names one."""
    fn = ns["numerical_grad"]
    out = []
    for name, args, *step in points:
        try:
            xs = [float(a) for a in args]
            grad = fn(FUNCTIONS[name], xs, h=float(step[0])) if step else fn(FUNCTIONS[name], xs)
            out.append({"grad": list(grad)})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append(_error(exc))
    return out


def backward_twice(ns, specs):
    """Each graph's leaf gradients after one backward() and after a second one on the same root."""
    Value = ns["Value"]
    out = []
    for spec in specs:
        try:
            leaves, nodes = _build(Value, spec)
            nodes[-1].backward()
            once = [leaf.grad for leaf in leaves]
            nodes[-1].backward()
            out.append({"once": once, "twice": [leaf.grad for leaf in leaves]})
        except Exception as exc:  # noqa: BLE001 - the student's bug in this case only
            out.append(_error(exc))
    return out


def _module(ns, cls, args, values):
    """The student's Neuron/Layer/MLP(*args) with the judge's values set through parameters()."""
    model = ns[cls](*args)
    params = list(model.parameters())
    if len(params) != len(values):
        raise ValueError(f"{cls}{tuple(args)}.parameters() lists {len(params)} parameters, expected {len(values)}")
    for p, v in zip(params, values):
        p.data = float(v)
        p.grad = 0.0
    return model, params


def _outputs(out):
    return [o.data for o in out] if isinstance(out, (list, tuple)) else [out.data]


def _total(out):
    """The sum of a module's outputs as one Value (the student's own + does the adding)."""
    if not isinstance(out, (list, tuple)):
        return out
    total = out[0]
    for o in out[1:]:
        total = total + o
    return total


def modules(ns, cases):
    """Outputs on each input, and every parameter's gradient of the first input's summed outputs."""
    out = []
    for case in cases:
        try:
            model, params = _module(ns, case["cls"], case["args"], case["params"])
            outputs = [_outputs(model([float(x) for x in inputs])) for inputs in case["inputs"]]
            _total(model([float(x) for x in case["inputs"][0]])).backward()
            out.append({"outputs": outputs, "grads": [p.grad for p in params]})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append(_error(exc))
    return out


def parameter_count(ns, cases):
    """How many parameters each module lists, and how many distinct objects they are."""
    Value = ns["Value"]
    out = []
    for cls, args in cases:
        try:
            random.seed(0)
            params = list(ns[cls](*args).parameters())
            out.append({"count": len(params), "unique": len({id(p) for p in params}),
                        "all_values": all(isinstance(p, Value) for p in params)})
        except Exception as exc:  # noqa: BLE001 - the student's error, reported per case
            out.append(_error(exc))
    return out


def init_values(ns, args, seed):
    """The parameters MLP(*args) draws after random.seed(seed); again with the same seed; with another."""
    MLP = ns["MLP"]
    drawn = []
    for s in (seed, seed, seed + 1):
        random.seed(s)
        drawn.append([p.data for p in MLP(*args).parameters()])
    return {"first": drawn[0], "same_seed": drawn[1], "other_seed": drawn[2]}


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


def _sse(model, xs, ys):
    """The toy loss sum((model(x) - y)**2), built with the student's own Value operations."""
    loss = None
    for x, y in zip(xs, ys):
        diff = _total(model(x)) - y
        loss = diff * diff if loss is None else loss + diff * diff
    return loss


def train_steps(ns, args, params, steps, lr, xs, ys):
    """Before each train_step: the weights, and the loss and gradients the student's engine computes for
    them here (the gradients are left in place, stale, as after an earlier step); after it: what it
    returned and the weights. The judge checks each step against the engine's own numbers."""
    model, plist = _module(ns, "MLP", args, params)
    out = []
    for _ in range(steps):
        before = [p.data for p in plist]
        for p in plist:
            p.grad = 0.0
        loss = _sse(model, xs, ys)
        loss.backward()
        grads = [p.grad for p in plist]
        returned = _loss_number(ns["train_step"](model, xs, ys, lr))
        out.append({"before": before, "loss": loss.data, "grads": grads, "returned": returned,
                    "after": [p.data for p in plist]})
    return out


def train(ns, args, params, steps, lr, xs, ys):
    """The student's train_step, `steps` times on the judge's data from the judge's starting weights."""
    model, plist = _module(ns, "MLP", args, params)
    losses = [_loss_number(ns["train_step"](model, xs, ys, lr)) for _ in range(steps)]
    return {"losses": losses, "params": [p.data for p in plist]}


def _loss_number(loss):
    return getattr(loss, "data", loss)  # the handout asks for a float; accept a Value too


def zero_grad(ns, args, params, xs, ys):
    """Gradients after one lr=0 train_step, after a second one, after model.zero_grad(), and after a
    backward() of the same loss built here once zero_grad() ran (zeroed for real, or doubled)."""
    model, plist = _module(ns, "MLP", args, params)
    ns["train_step"](model, xs, ys, 0.0)
    once = [p.grad for p in plist]
    ns["train_step"](model, xs, ys, 0.0)
    twice = [p.grad for p in plist]
    model.zero_grad()
    zeroed = [p.grad for p in plist]
    _sse(model, xs, ys).backward()
    return {"once": once, "twice": twice, "zeroed": zeroed, "after": [p.grad for p in plist]}
