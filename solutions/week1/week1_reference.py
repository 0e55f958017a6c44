"""Week 1 references (TRUSTED, judge side): torch float64 evaluation of graph specs, error
measures, and the static scan that keeps torch out of the graded classes.

Imported by test_week1.py only; never copied into the sandbox.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from itertools import pairwise

import torch

from grader.judge.answers import AnswerError, to_number
from grader.judge.verdict import number, ratio_note
from grader.judge.verdict import rel_error as error

DTYPE = torch.float64


def _torch_op(op: list, nodes: list[torch.Tensor]) -> torch.Tensor:
    name, args = op[0], op[1:]
    if name == "sum":
        return sum(nodes[i] for i in args[0])
    a = nodes[args[0]]
    if name in ("add", "sub", "mul", "div"):
        b = nodes[args[1]]
        return {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b}[name]
    unary = {"neg": torch.neg, "exp": torch.exp, "log": torch.log, "tanh": torch.tanh, "relu": torch.relu}
    if name in unary:
        return unary[name](a)
    c = args[1]
    return {"pow": lambda: a ** c, "addc": lambda: a + c, "mulc": lambda: a * c, "radd": lambda: c + a,
            "rmul": lambda: c * a, "rsub": lambda: c - a, "rdiv": lambda: c / a}[name]()


def torch_eval(spec: dict) -> tuple[float, list[float]]:
    """The root's value and every leaf's gradient, by torch autograd in float64."""
    leaves = [torch.tensor(float(x), dtype=DTYPE, requires_grad=True) for x in spec["leaves"]]
    nodes = list(leaves)
    for op in spec["ops"]:
        nodes.append(_torch_op(op, nodes))
    root = nodes[-1]
    root.backward()
    return root.item(), [0.0 if leaf.grad is None else leaf.grad.item() for leaf in leaves]


def numbers(value, name: str) -> list[float]:
    """A list of plain finite numbers, strictly (an odd object or NaN is an AnswerError)."""
    if not isinstance(value, list):
        raise AnswerError(f"{name}: expected a list of numbers, got {type(value).__name__}")
    return [to_number(v, f"{name}[{i}]") for i, v in enumerate(value)]


@dataclass
class CaseResult:
    label: str
    error: float  # max error over value and grads; inf when the case raised or was malformed
    message: str  # what went wrong, for the student


def compare_graphs(specs: list[dict], results: list) -> list[CaseResult]:
    """Judge each graph the student built against torch: value, root grad, leaf grads."""
    if not isinstance(results, list) or len(results) != len(specs):
        raise AnswerError(f"expected {len(specs)} graph results, got {type(results).__name__}")
    out = []
    for spec, res in zip(specs, results):
        label = spec["label"]
        if not isinstance(res, dict) or "error" in res:
            msg = res.get("error", "no result") if isinstance(res, dict) else "malformed result"
            out.append(CaseResult(label, math.inf, f"{label}: {str(msg)[:200]}"))
            continue
        try:
            value = to_number(res.get("value"), f"{label}: value")
            root_grad = to_number(res.get("root_grad"), f"{label}: root grad")
            grads = numbers(res.get("grads"), f"{label}: grads")
        except AnswerError as exc:
            out.append(CaseResult(label, math.inf, str(exc)))
            continue
        want_value, want_grads = torch_eval(spec)
        if len(grads) != len(want_grads):
            out.append(CaseResult(label, math.inf, f"{label}: {len(grads)} leaf grads, expected {len(want_grads)}"))
            continue
        errs = [error(value, want_value), error(root_grad, 1.0)] + [error(g, w) for g, w in zip(grads, want_grads)]
        worst = max(errs)
        parts = [f"value {number(value, errs[0])} (error {errs[0]:.1e})"] if errs[0] > 0 else []
        if errs[1] > 0:
            parts.append(f"root grad {root_grad:g} (must be 1)")
        bad = [(i, g, w) for i, (g, w) in enumerate(zip(grads, want_grads)) if error(g, w) == worst and worst > 0]
        if bad:  # the measured value and the error, never the reference of a hidden input
            i, g, w = bad[0]
            parts.append(f"leaf {i} grad {number(g, worst)} (error {worst:.1e}{ratio_note(g, w)})")
        out.append(CaseResult(label, worst, f"{label}: " + (", ".join(parts) or "exact")))
    return out


def value_errors(specs: list[dict], results: list) -> list[CaseResult]:
    """Forward values only (a case whose backward() failed still shows the value it got)."""
    results = results if isinstance(results, list) else []
    out = []
    for i, spec in enumerate(specs):
        label, res = spec["label"], results[i] if i < len(results) else None
        if not isinstance(res, dict) or "value" not in res:
            msg = res.get("error", "no result") if isinstance(res, dict) else "no result"
            out.append(CaseResult(label, math.inf, f"{label}: {str(msg)[:200]}"))
            continue
        try:
            value = to_number(res["value"], f"{label}: value")
        except AnswerError as exc:
            out.append(CaseResult(label, math.inf, str(exc)))
            continue
        want, _ = torch_eval(spec)
        err = error(value, want)
        out.append(CaseResult(label, err, f"{label}: got {number(value, err)} (error {err:.1e}{ratio_note(value, want)})"))
    return out


# ---- numerical gradient references ---------------------------------------------------------

def _exercise(a, b, c):
    return -a**3 + torch.sin(3 * b) - 1.0 / c + b**2.5 - a**0.5


def _smooth(x, y):
    return torch.exp(0.3 * x) * torch.cos(y) + x * y * y


TORCH_FUNCTIONS = {"exercise": _exercise, "smooth": _smooth}
# The same functions on Python floats, as the sandbox evaluates them (probes.py): the judge's own centered
# difference with a step it chose must agree with the student's to rounding.
MATH_FUNCTIONS = {
    "exercise": lambda a, b, c: -a**3 + math.sin(3 * b) - 1.0 / c + b**2.5 - a**0.5,
    "smooth": lambda x, y: math.exp(0.3 * x) * math.cos(y) + x * y * y,
}


def centered_difference(name: str, args: list[float], h: float) -> list[float]:
    f, out = MATH_FUNCTIONS[name], []
    for i in range(len(args)):
        up, down = list(args), list(args)
        up[i] += h
        down[i] -= h
        out.append((f(*up) - f(*down)) / (2 * h))
    return out


def analytic_grad(name: str, args: list[float]) -> list[float]:
    xs = [torch.tensor(float(a), dtype=DTYPE, requires_grad=True) for a in args]
    TORCH_FUNCTIONS[name](*xs).backward()
    return [x.grad.item() for x in xs]


def softmax_reference(logits: list[float], target: int) -> tuple[list[float], float, list[float]]:
    x = torch.tensor(logits, dtype=DTYPE, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(x[None], torch.tensor([target]))
    loss.backward()
    return torch.softmax(x.detach(), 0).tolist(), loss.item(), x.grad.tolist()


# ---- Neuron / Layer / MLP: the judge's own forward, backward and SGD ---------------------------

def _forward(sizes: list[int], p: torch.Tensor, x: list[float]) -> torch.Tensor:
    """tanh(W x + b) layer by layer; p holds each neuron's weights then its bias, neuron by neuron."""
    h, k = torch.tensor(x, dtype=DTYPE), 0
    for nin, nout in pairwise(sizes):
        block = p[k:k + (nin + 1) * nout].view(nout, nin + 1)
        k += (nin + 1) * nout
        h = torch.tanh(block[:, :nin] @ h + block[:, nin])
    return h


def module_eval(sizes: list[int], params: list[float], inputs: list[list[float]]):
    """Outputs on each input, and d(sum of the first input's outputs)/d params."""
    p = torch.tensor(params, dtype=DTYPE, requires_grad=True)
    outs = [_forward(sizes, p, x) for x in inputs]
    outs[0].sum().backward()
    return [o.tolist() for o in outs], p.grad.tolist()


def sse(sizes: list[int], params: list[float], xs: list[list[float]], ys: list[float]):
    """The toy loss sum((model(x) - y)**2) and its gradient with respect to every parameter."""
    p = torch.tensor(params, dtype=DTYPE, requires_grad=True)
    loss = sum((_forward(sizes, p, x)[0] - y) ** 2 for x, y in zip(xs, ys))
    loss.backward()
    return loss.item(), p.grad.tolist()


def sgd(sizes: list[int], params: list[float], xs, ys, lr: float, steps: int):
    """The losses train_step must return (each before its update) and the weights after `steps` steps."""
    p, losses = list(params), []
    for _ in range(steps):
        loss, grad = sse(sizes, p, xs, ys)
        losses.append(loss)
        p = [v - lr * g for v, g in zip(p, grad)]
    return losses, p


# ---- integrity: no autograd library inside the graded code ---------------------------------

GRADED = {"Value", "Module", "Neuron", "Layer", "MLP", "topological_order", "train_step", "softmax", "nll"}
FORBIDDEN = {"torch", "jax", "autograd", "tensorflow", "functorch", "mlx"}
MAGIC = re.compile(r"^\s*[%!]")


def _parse(source: str) -> ast.Module | None:
    lines = ["" if MAGIC.match(line) else line for line in source.splitlines()]  # IPython magics
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _defines_graded(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in GRADED:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
            node, (ast.AnnAssign, ast.AugAssign)) else []
        for target in targets:
            root = target
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in GRADED:
                return True  # Value = ..., Value.__add__ = ...
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" \
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in GRADED:
            return True
    return False


def _aliases(trees: list[ast.AST]) -> set[str]:
    """Names bound to an autograd library anywhere in the notebook (`import torch as T`)."""
    names = set(FORBIDDEN)
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] in FORBIDDEN}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN:
                names |= {a.asname or a.name for a in node.names}
    return names


def _where(index: int, source: str, lineno: int) -> str:
    lines = source.splitlines()
    line = lines[lineno - 1].strip()[:80] if 0 < lineno <= len(lines) else ""
    return f"code cell {index + 1}, line {lineno}: {line}"


def torch_uses(cells: list[str]) -> list[str]:
    """Where cells that define graded names use an autograd library: 'cell N, line L: ...'."""
    parsed = [(i, src, _parse(src)) for i, src in enumerate(cells)]
    names = _aliases([t for _, _, t in parsed if t is not None])
    found = []
    for index, source, tree in parsed:
        if tree is None:
            if re.search(rf"\b(class|def)\s+({'|'.join(GRADED)})\b", source) and \
                    re.search(rf"\b({'|'.join(FORBIDDEN)})\b", source):
                found.append(f"code cell {index + 1}: does not parse and mentions an autograd library")
            continue
        if not _defines_graded(tree):
            continue
        for node in ast.walk(tree):
            hit = None
            if (isinstance(node, ast.Import) and any(a.name.split(".")[0] in FORBIDDEN for a in node.names)) or (
                    isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN) or isinstance(node, ast.Name) and node.id in names:
                hit = node
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in FORBIDDEN:
                hit = node  # __import__("torch"), importlib.import_module("torch"), sys.modules["torch"]
            if hit is not None:
                found.append(_where(index, source, hit.lineno))
    return list(dict.fromkeys(found))
