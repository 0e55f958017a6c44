"""Week 1 probe requests, and the expression-graph specs the probes build (TRUSTED side).

A graph spec is plain data: {"label": str, "leaves": [float, ...], "ops": [[name, ...], ...]}.
Nodes are numbered leaves first, then one node per op, in order; an op refers to earlier nodes
by number, so a node can be reused (`a*a`, `x+x`, diamonds). The last node is the root.
The sandbox builds the graph with the student's Value (probes.py); the judge rebuilds the same
specs from the same seed and evaluates them with torch in float64 (test_week1.py).

Ops: add/mul/sub/div i j; neg/exp/log/tanh/relu i; pow i k; addc/mulc i c (node op const);
radd/rmul/rsub/rdiv i c (const op node); sum [i, j, ...] (Python's builtin sum).
"""

from __future__ import annotations

import math
import random
import tomllib
from itertools import pairwise
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOY_XS = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
TOY_YS = [1.0, -1.0, -1.0, 1.0]
NUMGRAD_POINTS = [["exercise", [2.0, 3.0, 4.0]], ["exercise", [0.7, 1.3, -2.5]], ["smooth", [0.4, -1.1]]]
GRADF_POINTS = [[2.0, 3.0, 4.0], [1.5, 0.4, -3.0]]
# numerical_grad at its default step (judged against the analytic gradient) and at steps of the judge's
# choosing (judged against the judge's own centered difference with that step: `h` must be honoured).
NUMGRAD_STEP_POINTS = [["exercise", [1.3, 0.8, -1.7], 1e-2], ["smooth", [0.9, 0.6], 5e-2]]
SOFTMAX_CASES = [[[0.0, 3.0, -2.0, 1.0], 3], [[1.5, -0.5, 2.0, 0.1, -3.0], 0], [[10.0, 12.0], 1],
                 [[1000.0, 1001.5, -3.0, 999.0], 1]]  # exp(1000) overflows: shift by the largest logit
TANH_CASES = [400.0, -400.0, 30.0]


def seeds() -> dict[str, int]:
    """The suite's seeds from week.toml (the plan and the judge must agree on them)."""
    return tomllib.loads((HERE / "week.toml").read_text())["seeds"]


def spec(label: str, leaves: list[float], ops: list[list]) -> dict:
    return {"label": label, "leaves": leaves, "ops": ops}


# One small graph per operation: checks forward values and the local derivative of each op.
OP_CASES = [
    spec("a + b (a=2, b=-3.5)", [2.0, -3.5], [["add", 0, 1]]),
    spec("a * b (a=-1.5, b=4)", [-1.5, 4.0], [["mul", 0, 1]]),
    spec("a ** 3 (a=1.7)", [1.7], [["pow", 0, 3]]),
    spec("a ** -1 (a=2.5)", [2.5], [["pow", 0, -1]]),
    spec("a ** 0.5 (a=3)", [3.0], [["pow", 0, 0.5]]),
    spec("a ** 2.5 (a=1.3)", [1.3], [["pow", 0, 2.5]]),
    spec("a / b (a=3, b=-4)", [3.0, -4.0], [["div", 0, 1]]),
    spec("-a (a=2.5)", [2.5], [["neg", 0]]),
    spec("a - b (a=1, b=4.5)", [1.0, 4.5], [["sub", 0, 1]]),
    spec("a + 2.5 (a=1.5)", [1.5], [["addc", 0, 2.5]]),
    spec("a * 3 (a=-0.5)", [-0.5], [["mulc", 0, 3.0]]),
    spec("2 + a (a=1.5)", [1.5], [["radd", 0, 2.0]]),
    spec("3 * a (a=-0.5)", [-0.5], [["rmul", 0, 3.0]]),
    spec("2 - a (a=5)", [5.0], [["rsub", 0, 2.0]]),
    spec("2 / a (a=4)", [4.0], [["rdiv", 0, 2.0]]),
    spec("a.exp() (a=0.7)", [0.7], [["exp", 0]]),
    spec("a.log() (a=2.5)", [2.5], [["log", 0]]),
    spec("a.tanh() (a=0.8)", [0.8], [["tanh", 0]]),
    spec("a.relu() (a=-1.2)", [-1.2], [["relu", 0]]),
    spec("a.relu() (a=2.3)", [2.3], [["relu", 0]]),
    spec("sum([a, b, c])", [0.5, -1.25, 2.0], [["sum", [0, 1, 2]]]),
]

# Nodes reached along more than one path: gradients must add up (+=) and be counted once.
REUSE_CASES = [
    spec("b = a + a (a=3)", [3.0], [["add", 0, 0]]),
    spec("b = a * a (a=-1.5)", [-1.5], [["mul", 0, 0]]),
    spec("d = a*b; e = a+b; f = d*e (a=-2, b=3)", [-2.0, 3.0], [["mul", 0, 1], ["add", 0, 1], ["mul", 2, 3]]),
    spec("y = a*b; z = y + y.tanh() + a (a=0.6, b=-0.9)", [0.6, -0.9],
         [["mul", 0, 1], ["tanh", 2], ["add", 2, 3], ["add", 4, 0]]),
    spec("x = a.exp(); y = x*x + x (a=0.3)", [0.3], [["exp", 0], ["mul", 1, 1], ["add", 2, 1]]),
]

# A graph whose nodes all lie on the root's paths: the order check knows every edge.
TOPO_SPEC = spec("diamond ladder", [0.5, -1.5, 2.0],
                 [["mul", 0, 1], ["add", 0, 2], ["mul", 3, 4], ["tanh", 5], ["add", 5, 6], ["mul", 7, 2]])


def spec_for_depth(depth: int) -> dict:
    """x_{k+1} = x_k*w + x_k*v: each level reaches the previous one along two paths."""
    return spec(f"{depth}-level chain x = x*w + x*v", [0.5, 0.6, 0.45], _chain_ops(depth))


def _chain_ops(depth: int) -> list[list]:
    ops, x, node = [], 0, 3  # nodes 0..2 are the leaves x0, w, v
    for _ in range(depth):
        ops += [["mul", x, 1], ["mul", x, 2], ["add", node, node + 1]]
        x, node = node + 2, node + 3
    return ops


def _forward(name: str, args: list, values: list[float]) -> float | None:
    """The op's value on plain floats, or None when it leaves the safe domain."""
    try:
        if name in ("add", "sub", "mul", "div"):
            a, b = values[args[0]], values[args[1]]
            if name == "div" and abs(b) < 0.2:
                return None
            return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b if b else 0.0}[name]
        a = values[args[0]]
        if name == "pow":
            k = args[1]
            if (k < 0 and abs(a) < 0.2) or (not float(k).is_integer() and a < 0.1):
                return None
            return a ** k
        if name == "exp":
            return math.exp(a) if a < 3 else None
        if name == "log":
            return math.log(a) if a > 0.1 else None
        if name == "relu":
            return None if abs(a) < 1e-3 else max(a, 0.0)
        if name == "tanh":
            return math.tanh(a)
        if name == "neg":
            return -a
        c = args[1]
        if name == "rdiv" and abs(a) < 0.2:
            return None
        return {"addc": a + c, "mulc": a * c, "radd": c + a, "rmul": c * a, "rsub": c - a,
                "rdiv": c / a if a else 0.0}[name]
    except (OverflowError, ValueError, ZeroDivisionError):
        return None


BINARY = ["add", "add", "mul", "mul", "sub", "div"]
UNARY = ["neg", "exp", "log", "tanh", "tanh", "relu"]
WITH_CONST = ["pow", "pow", "addc", "mulc", "radd", "rmul", "rsub", "rdiv"]


def random_graph(rng: random.Random, label: str) -> dict:
    """A random graph over every op, values kept in safe domains, with reused nodes."""
    leaves = [round(rng.uniform(-2.0, 2.0), 3) for _ in range(rng.randint(2, 4))]
    values, ops = list(leaves), []
    pick = lambda: rng.randrange(len(values)) if rng.random() < 0.4 else rng.randrange(max(0, len(values) - 3), len(values))
    size = rng.randint(8, 14)
    while len(ops) < size:
        kind = rng.random()
        if kind < 0.45:
            i = pick()
            op = [rng.choice(BINARY), i, i if rng.random() < 0.25 else pick()]  # a*a, x+x
        elif kind < 0.75:
            op = [rng.choice(UNARY), pick()]
        else:
            name = rng.choice(WITH_CONST)
            const = rng.choice([2, 3, -1, -2, 0.5, 1.5, 2.5]) if name == "pow" else round(rng.uniform(-2, 2), 2)
            op = [name, pick(), const]
        value = _forward(op[0], op[1:], values)
        if value is None or not math.isfinite(value) or abs(value) > 20:
            continue
        values.append(value)
        ops.append(op)
    # Tie every unused node into the root, so every leaf and branch gets a gradient.
    used = {a for op in ops for a in op[1:2] + (op[2:3] if op[0] in BINARY else [])}
    loose = [n for n in range(len(values)) if n not in used and n != len(values) - 1]
    for n in loose:
        values.append(values[-1] + values[n])
        ops.append(["add", len(values) - 2, n])
    return spec(label, leaves, ops)


def random_graphs(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    return [random_graph(rng, f"random graph #{i}") for i in range(count)]


# Single-operation graphs: every node below the root is a leaf, so a second backward() adds exactly the
# same gradients again, whatever an engine does with the gradients of inner nodes.
TWICE_CASES = [
    spec("a * b (a=1.5, b=-2)", [1.5, -2.0], [["mul", 0, 1]]),
    spec("a + b (a=0.5, b=2)", [0.5, 2.0], [["add", 0, 1]]),
    spec("a * a (a=-1.25)", [-1.25], [["mul", 0, 0]]),
    spec("a ** 3 (a=0.9)", [0.9], [["pow", 0, 3]]),
    spec("a.tanh() (a=0.4)", [0.4], [["tanh", 0]]),
    spec("a.exp() (a=-0.3)", [-0.3], [["exp", 0]]),
]


def module_params(cls: str, args: list, seed: int, scale: float = 1.0) -> list[float]:
    """Values for every parameter of Neuron/Layer/MLP(*args), in the handout's order (layer by layer,
    neuron by neuron, each neuron's weights then its bias)."""
    rng = random.Random(seed)
    return [round(rng.uniform(-scale, scale), 6) for _ in range(count_params(cls, args))]


def count_params(cls: str, args: list) -> int:
    if cls == "Neuron":
        return args[0] + 1
    if cls == "Layer":
        return (args[0] + 1) * args[1]
    sizes = [args[0], *args[1]]
    return sum((a + 1) * b for a, b in pairwise(sizes))


def layer_sizes(cls: str, args: list) -> list[int]:
    """[nin, nout1, nout2, ...] of the module."""
    return {"Neuron": lambda: [args[0], 1], "Layer": lambda: [args[0], args[1]],
            "MLP": lambda: [args[0], *args[1]]}[cls]()


def _inputs(seed: int, nin: int, count: int) -> list[list[float]]:
    rng = random.Random(seed)
    return [[round(rng.uniform(-2.0, 2.0), 4) for _ in range(nin)] for _ in range(count)]


def _module_case(label: str, cls: str, args: list, seed: int) -> dict:
    nin = args[0]
    return {"label": label, "cls": cls, "args": args, "params": module_params(cls, args, seed),
            "inputs": _inputs(seed + 1, nin, 3)}


# Neuron, Layer and MLP with the judge's weights (set through parameters()) on the judge's inputs: the
# outputs and the parameters' gradients are compared with the judge's own forward and backward.
MODULE_CASES = [
    _module_case("Neuron(3)", "Neuron", [3], 11),
    _module_case("Layer(3, 2)", "Layer", [3, 2], 12),
    _module_case("MLP(3, [4, 4, 1])", "MLP", [3, [4, 4, 1]], 13),
    _module_case("MLP(2, [5, 3])", "MLP", [2, [5, 3]], 14),
    _module_case("MLP(4, [3, 2, 2])", "MLP", [4, [3, 2, 2]], 15),
]
COUNT_CASES = [["MLP", [3, [4, 4, 1]]], ["MLP", [2, [16, 16, 1]]], ["MLP", [4, [5, 2]]], ["Layer", [6, 3]],
               ["Neuron", [7]]]
INIT_MODEL = [10, [50, 50, 1]]  # 3,151 parameters drawn with random.uniform(-1, 1)
STEP_CASE = {"args": [3, [4, 4, 1]], "params": module_params("MLP", [3, [4, 4, 1]], 21), "lr": 0.1, "steps": 3}
ZERO_GRAD_CASE = {"args": [3, [4, 4, 1]], "params": module_params("MLP", [3, [4, 4, 1]], 22)}


def toy_init(seed: int) -> list[float]:
    """The toy training's starting weights, drawn by the judge like the handout's init (uniform(-1, 1))."""
    return module_params("MLP", [3, [4, 4, 1]], seed)


def plan(profile: str, thresholds: dict, data_dir: Path) -> list[dict]:
    """The week's probe requests; `checks` names the checks that read each answer."""
    s = seeds()
    steps, lr = int(thresholds["train_steps"]), float(thresholds["train_lr"])
    return [
        {"id": "ops", "probe": "graphs", "args": {"specs": OP_CASES}, "timeout": 20,
         "checks": ["forward_values", "op_gradients", "no_torch_in_value", "parameter_count", "runs_clean"]},
        {"id": "reuse", "probe": "graphs", "args": {"specs": REUSE_CASES}, "timeout": 20,
         "checks": ["reused_nodes", "runs_clean"]},
        {"id": "random_graphs", "probe": "graphs",
         "args": {"specs": random_graphs(s["graphs"], int(thresholds["graph_count"]))}, "timeout": 30,
         "checks": ["graph_gradients", "runs_clean"]},
        {"id": "deep_chain", "probe": "graphs",
         "args": {"specs": [spec_for_depth(int(thresholds["deep_chain_depth"]))]},
         "timeout": float(thresholds["deep_chain_timeout"]), "checks": ["deep_chain", "runs_clean"]},
        {"id": "topo", "probe": "topo_order", "args": {"spec": TOPO_SPEC}, "timeout": 20,
         "checks": ["topological_order", "runs_clean"]},
        {"id": "tanh_large", "probe": "graphs",
         "args": {"specs": [spec(f"Value({x}).tanh()", [x], [["tanh", 0]]) for x in TANH_CASES]},
         "timeout": 20, "checks": ["tanh_saturates", "runs_clean"]},
        {"id": "numgrad", "probe": "numerical_grad", "args": {"points": NUMGRAD_POINTS}, "timeout": 20,
         "checks": ["numerical_grad", "runs_clean"]},
        {"id": "numgrad_step", "probe": "numerical_grad", "args": {"points": NUMGRAD_STEP_POINTS}, "timeout": 20,
         "checks": ["numerical_grad", "runs_clean"]},
        {"id": "twice", "probe": "backward_twice", "args": {"specs": TWICE_CASES}, "timeout": 20,
         "checks": ["backward_accumulates", "runs_clean"]},
        {"id": "modules", "probe": "modules", "args": {"cases": MODULE_CASES}, "timeout": 20,
         "checks": ["mlp_forward_backward", "runs_clean"]},
        {"id": "init", "probe": "init_values", "args": {"args": INIT_MODEL, "seed": s["train"]}, "timeout": 20,
         "checks": ["init_uniform", "runs_clean"]},
        {"id": "gradf", "probe": "gradf", "args": {"points": GRADF_POINTS}, "timeout": 20,
         "checks": ["gradf_exercise", "runs_clean"]},
        {"id": "softmax", "probe": "softmax_nll", "args": {"cases": SOFTMAX_CASES}, "timeout": 20,
         "checks": ["softmax_nll", "softmax_nll_gradients", "runs_clean"]},
        {"id": "params", "probe": "parameter_count", "args": {"cases": COUNT_CASES}, "timeout": 20,
         "checks": ["parameter_count", "runs_clean"]},
        {"id": "step", "probe": "train_steps", "args": {**STEP_CASE, "xs": TOY_XS, "ys": TOY_YS}, "timeout": 20,
         "checks": ["train_step_exact", "runs_clean"]},
        {"id": "train", "probe": "train",
         "args": {"args": [3, [4, 4, 1]], "params": toy_init(s["train"]), "steps": steps, "lr": lr,
                  "xs": TOY_XS, "ys": TOY_YS},
         "timeout": 60, "checks": ["toy_training", "runs_clean"]},
        {"id": "zero_grad", "probe": "zero_grad", "args": {**ZERO_GRAD_CASE, "xs": TOY_XS, "ys": TOY_YS},
         "timeout": 20, "checks": ["zero_grad", "runs_clean"]},
    ]

