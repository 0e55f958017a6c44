"""The mutation operators: where a solution cell can take a student-like bug, as libcst edits.

find_edits walks a cell's concrete syntax tree once and returns every edit (old node -> new node)
that lies wholly on solution lines; grader.staff.mutants turns each into a mutant. KINDS says, for the
reports, which student bug each kind of edit stands for. A few rules keep edits that are no student's
bug (and only cost a grading) out: nothing inside asserts, prints, strings, decorators or figure styling;
no swapped operator that makes `"." - w`; no dropped first binding of a name (a NameError); no dropped
required argument or swapped (value, tuple) arguments (a TypeError); no function that does not exist.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import libcst as cst
from libcst.metadata import ExpressionContext

KINDS = {
    "arith": "arithmetic operator swapped (+ -, * /, ** *, @ *)",
    "compare": "comparison or boolean swapped, condition negated (< <=, == !=, and or, not)",
    "number": "constant off by one (ints and floats from 1 up: +-1; smaller floats: x10, /10)",
    "dim": "dimension swapped (0/1, -1/-2) or a transpose dropped",
    "keepdim": "keepdim flipped, or added to a reduction that had none",
    "flag": "True/False flipped",
    "accumulate": "`+=` written as `=`, or `=` as `+=` on an accumulator",
    "drop": "statement dropped",
    "term": "term or factor dropped (a + b -> a, a * b -> b)",
    "arg": "argument dropped (the callee's default used instead)",
    "swap": "arguments, indices or operands swapped",
    "param": "parameter ignored: the function uses its default instead",
    "sign": "unary minus or `not` dropped",
    "api": "neighbouring function used (sum/mean, zeros/ones, tril/triu, tanh/relu, index_add_/index_copy_...)",
    "bound": "range or slice bound off by one",
    "call": "pass-through call dropped (.double(), .detach(), .clone(), .to(), ...)",
}

ARITH = {cst.Add: cst.Subtract, cst.Subtract: cst.Add, cst.Multiply: cst.Divide, cst.Divide: cst.Multiply,
         cst.FloorDivide: cst.Divide, cst.Power: cst.Multiply, cst.MatrixMultiply: cst.Multiply}
AUG = {cst.AddAssign: cst.SubtractAssign, cst.SubtractAssign: cst.AddAssign,
       cst.MultiplyAssign: cst.DivideAssign, cst.DivideAssign: cst.MultiplyAssign}
COMPARE = {cst.LessThan: cst.LessThanEqual, cst.LessThanEqual: cst.LessThan, cst.GreaterThan: cst.GreaterThanEqual,
           cst.GreaterThanEqual: cst.GreaterThan, cst.Equal: cst.NotEqual, cst.NotEqual: cst.Equal,
           cst.Is: cst.IsNot, cst.IsNot: cst.Is, cst.In: cst.NotIn, cst.NotIn: cst.In}
SYMBOL = {cst.Add: "+", cst.Subtract: "-", cst.Multiply: "*", cst.Divide: "/", cst.FloorDivide: "//",
          cst.Power: "**", cst.MatrixMultiply: "@", cst.AddAssign: "+=", cst.SubtractAssign: "-=",
          cst.MultiplyAssign: "*=", cst.DivideAssign: "/=", cst.LessThan: "<", cst.LessThanEqual: "<=",
          cst.GreaterThan: ">", cst.GreaterThanEqual: ">=", cst.Equal: "==", cst.NotEqual: "!=", cst.Is: "is",
          cst.IsNot: "is not", cst.In: "in", cst.NotIn: "not in", cst.And: "and", cst.Or: "or"}
NOT_COMMUTATIVE = (cst.Subtract, cst.Divide, cst.FloorDivide, cst.MatrixMultiply)
API = {"sum": "mean", "mean": "sum", "max": "min", "min": "max", "argmax": "argmin", "argmin": "argmax",
       "tril": "triu", "triu": "tril", "cos": "sin", "sin": "cos", "zeros": "ones", "ones": "zeros",
       "zeros_like": "ones_like", "ones_like": "zeros_like", "randn": "rand", "var": "std", "std": "var",
       "softmax": "log_softmax", "log_softmax": "softmax", "tanh": "relu", "relu": "tanh",
       "index_add_": "index_copy_"}
# name -> position of the dim among the positional arguments of the method form (x.sum(0));
# the module form (torch.sum(x, 0), F.softmax(x, 1)) has the tensor first
DIM_POSITION = {"sum": 0, "mean": 0, "var": 0, "std": 0, "softmax": 0, "log_softmax": 0, "max": 0, "min": 0,
                "argmax": 0, "argmin": 0, "cumsum": 0, "prod": 0, "logsumexp": 0, "squeeze": 0, "unsqueeze": 0,
                "index_add_": 0, "index_select": 0, "gather": 0, "split": 1, "chunk": 1, "cat": 1, "stack": 1}
REDUCTIONS = {"sum", "mean", "var", "std", "max", "min", "prod", "logsumexp", "amax", "amin", "norm"}
MODULES = {"torch", "F", "np", "numpy", "functional"}
PASS_THROUGH = {"double", "float", "detach", "clone", "contiguous", "to", "item", "squeeze", "unsqueeze"}
TRANSPOSES = {"transpose", "t", "permute", "swapaxes"}
# arguments that only change how a figure looks, and calls whose arguments never reach a grade
COSMETIC = {"fontsize", "dpi", "figsize", "linewidth", "lw", "alpha", "color", "cmap", "marker", "label", "title",
            "fmt", "rotation", "ha", "va", "loc", "bbox_inches", "end", "sep", "file", "flush"}
NOT_MUTATED_CALLS = {"print", "isinstance", "getattr", "setattr", "hasattr", "super", "type", "repr", "id"}


@dataclass
class Edit:
    """One mutation: the nodes it replaces, by identity, and what it is called."""

    kind: str
    operator: str
    scope: str
    replace: dict[int, tuple[object, object]] = field(default_factory=dict)  # id(node) -> (node, new)
    tops: set[int] = field(default_factory=set)  # the top-level statements of the cell it touches


def find_edits(wrapper, lines: set[int], signatures: dict[str, int]) -> list[Edit]:
    """Every edit of a parsed cell (a libcst MetadataWrapper) on the given 1-based lines, in source order.
    `signatures`: function name -> positional arguments its calls must pass (the rest may be dropped)."""
    from libcst.metadata import ExpressionContextProvider, ParentNodeProvider, PositionProvider

    finder = _Finder(lines, wrapper.resolve(PositionProvider), wrapper.resolve(ParentNodeProvider),
                     wrapper.resolve(ExpressionContextProvider), signatures)
    wrapper.module.visit(finder)
    return finder.edits


def _code(node) -> str:
    return cst.Module([]).code_for_node(node)


def _int_value(node) -> int | None:
    """The value of an integer literal, signed (`-1`), else None."""
    if isinstance(node, cst.Integer):
        return int(node.value, 0)
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus) and isinstance(
            node.expression, cst.Integer):
        return -int(node.expression.value, 0)
    return None


def _number(value: float):
    text = repr(value) if isinstance(value, int) else repr(float(f"{value:.12g}"))
    return cst.Integer(text) if isinstance(value, int) and value >= 0 else (
        cst.Float(text) if value >= 0 else cst.UnaryOperation(cst.Minus(), _number(-value)))


def _func_name(call) -> tuple[str, bool]:
    """A call's function name and whether it is a module function (torch.x, F.x) or a method."""
    func = call.func
    if isinstance(func, cst.Name):
        return func.value, True
    if isinstance(func, cst.Attribute):
        base = func.value
        module = isinstance(base, cst.Name) and base.value in MODULES or (
            isinstance(base, cst.Attribute) and base.attr.value in MODULES)
        return func.attr.value, module
    return "", False


def _wrap_like(operand, node):
    """`operand` standing where `node` stood: it keeps node's parentheses (a + b) * c -> (a) * c."""
    if getattr(node, "lpar", None) and hasattr(operand, "lpar") and not operand.lpar:
        return operand.with_changes(lpar=node.lpar, rpar=node.rpar)
    return operand


def _moves(call) -> bool:
    """`.to(dev)`, `.to(DEVICE)`, `.cuda()`: a move between devices, which changes nothing on the CPU."""
    return _func_name(call)[0] == "to" and any(
        part in _code(a.value).lower() for a in call.args for part in ("dev", "cuda", "cpu"))


def _exists(func, name: str) -> bool:
    """Whether `name` stands where `func` names a function: a builtin for a bare name, a math
    function after `math.`; a method or torch's function otherwise (it has the pairs of API)."""
    if isinstance(func, cst.Name):
        return hasattr(builtins, name)
    if isinstance(func, cst.Attribute):
        return not (isinstance(func.value, cst.Name) and func.value.value == "math") or hasattr(math, name)
    return False


def _is_string(node) -> bool:
    return isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString))


def _is_literal_collection(node) -> bool:
    return isinstance(node, (cst.SimpleString, cst.FormattedString, cst.ConcatenatedString, cst.List,
                             cst.ListComp, cst.Tuple))


class _Finder(cst.CSTVisitor):
    """Collects the edits of a cell, walking it once; nodes outside the solution lines are skipped."""

    def __init__(self, lines: set[int], positions, parents, contexts, signatures: dict[str, int]):
        super().__init__()
        self.lines, self.positions, self.parents, self.contexts = lines, positions, parents, contexts
        self.signatures = signatures
        self.scopes: list[str] = []
        self.edits: list[Edit] = []
        self.bound: list[set[str]] = [set()]  # names bound so far in each enclosing function
        self.accumulated = set()  # attribute names and names ever `+=`-ed in this cell

    # ---- walking ----------------------------------------------------------------------------
    def start(self, module) -> None:
        self.tops = {id(stmt): i for i, stmt in enumerate(module.body)}
        for sub in _walk(module):
            if isinstance(sub, cst.AugAssign):
                self.accumulated.add(_target_key(sub.target))

    def inside(self, node) -> bool:
        where = self.positions[node]
        return all(n in self.lines for n in range(where.start.line, where.end.line + 1))

    def add(self, kind: str, operator: str, *pairs) -> None:
        edit = Edit(kind, operator, ".".join(self.scopes) or "<cell>")
        for old, new in pairs:
            edit.replace[id(old)] = (old, new)
            edit.tops.add(self.top_of(old))
        self.edits.append(edit)

    def top_of(self, node) -> int:
        """The index of the cell's top-level statement that holds `node`."""
        while not isinstance(self.parents.get(node), cst.Module):
            node = self.parents[node]
        return self.tops[id(node)]

    def on_visit(self, node) -> bool:
        if isinstance(node, cst.Module):
            self.start(node)
            return True
        if isinstance(node, (cst.Assert, cst.Decorator, cst.Annotation, cst.Import, cst.ImportFrom,
                             cst.SimpleString, cst.FormattedString, cst.ConcatenatedString)):
            return False
        if isinstance(node, cst.Call) and _func_name(node)[0] in NOT_MUTATED_CALLS:
            return False
        if isinstance(node, cst.Arg) and node.keyword is not None and node.keyword.value in COSMETIC:
            return False
        if isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            self.scopes.append(node.name.value)
            if isinstance(node, cst.FunctionDef):
                self.bound.append({p.name.value for p in _params(node)})
                self.ignore_parameters(node)
        self.track_bindings(node)
        handler = getattr(self, f"on_{type(node).__name__}", None)
        if handler is not None and self.inside(node):
            handler(node)
        if isinstance(node, cst.BaseStatement) and self.inside(node):
            self.drop(node)
        if isinstance(node, cst.UnaryOperation) and _int_value(node) is not None or isinstance(
                node, (cst.Integer, cst.Float)):
            if self.inside(node):
                self.constant(node)
            return False
        return True

    def on_leave(self, original) -> None:
        if isinstance(original, (cst.FunctionDef, cst.ClassDef)):
            self.scopes.pop()
            if isinstance(original, cst.FunctionDef):
                self.bound.pop()

    def track_bindings(self, node) -> None:
        if isinstance(node, cst.Name) and self.contexts.get(node) == ExpressionContext.STORE:
            self.bound[-1].add(node.value)

    # ---- operators, by node type ------------------------------------------------------------
    def on_BinaryOperation(self, node) -> None:
        op = type(node.operator)
        text = SYMBOL.get(op, "?")
        if op in ARITH and not (_is_literal_collection(node.left) or _is_literal_collection(node.right)):
            new = ARITH[op]()
            self.add("arith", f"{text} -> {SYMBOL[type(new)]}", (node, node.with_changes(operator=_spaced(node.operator, new))))
        if op in (cst.Add, cst.Multiply):
            self.add("term", f"a {text} b -> a", (node, _wrap_like(node.left, node)))
            self.add("term", f"a {text} b -> b", (node, _wrap_like(node.right, node)))
        elif op in (cst.Subtract, cst.Divide, cst.Power, cst.FloorDivide):
            self.add("term", f"a {text} b -> a", (node, _wrap_like(node.left, node)))
        if op in NOT_COMMUTATIVE:  # a - b - c is (a - b) - c: the left operand moves right in parentheses
            self.add("swap", f"a {text} b -> b {text} a",
                     (node, node.with_changes(left=node.right, right=_parenthesised(node.left))))

    def on_AugAssign(self, node) -> None:
        op = type(node.operator)
        if op in AUG:
            new = AUG[op]()
            self.add("arith", f"{SYMBOL[op]} -> {SYMBOL[type(new)]}", (node, node.with_changes(operator=_spaced(node.operator, new))))
        if op in (cst.AddAssign, cst.SubtractAssign):
            self.add("accumulate", f"{SYMBOL[op]} -> =", (node, cst.Assign(
                targets=[cst.AssignTarget(node.target)], value=node.value, semicolon=node.semicolon)))

    def on_Assign(self, node) -> None:
        if len(node.targets) != 1 or isinstance(node.targets[0].target, (cst.Tuple, cst.List)):
            return
        target = node.targets[0].target
        bound = not isinstance(target, cst.Name) or target.value in self.bound[-1]
        if _target_key(target) in self.accumulated and bound:  # an accumulator, already there to add to
            self.add("accumulate", "= -> +=", (node, cst.AugAssign(target=target, operator=cst.AddAssign(),
                                                                   value=node.value, semicolon=node.semicolon)))

    def on_Comparison(self, node) -> None:
        for target in node.comparisons:
            op = type(target.operator)
            if op in COMPARE:
                new = COMPARE[op]()
                self.add("compare", f"{SYMBOL[op]} -> {SYMBOL[type(new)]}",
                         (target, target.with_changes(operator=_spaced(target.operator, new))))

    def on_BooleanOperation(self, node) -> None:
        new = cst.Or() if isinstance(node.operator, cst.And) else cst.And()
        self.add("compare", f"{SYMBOL[type(node.operator)]} -> {SYMBOL[type(new)]}",
                 (node, node.with_changes(operator=_spaced(node.operator, new))))

    def on_If(self, node) -> None:
        self.negate(node.test)

    def on_While(self, node) -> None:
        if not (isinstance(node.test, cst.Name) and node.test.value == "True"):
            self.negate(node.test)

    def on_IfExp(self, node) -> None:
        self.negate(node.test)

    def negate(self, test) -> None:
        if isinstance(test, cst.UnaryOperation) and isinstance(test.operator, cst.Not):
            return  # dropping the `not` is the sign operator's
        inner = test if not isinstance(test, (cst.BooleanOperation, cst.Comparison, cst.IfExp)) or test.lpar \
            else test.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        self.add("compare", "condition negated", (test, cst.UnaryOperation(cst.Not(), inner)))

    def on_UnaryOperation(self, node) -> None:
        if isinstance(node.operator, (cst.Minus, cst.Not)):
            name = "-" if isinstance(node.operator, cst.Minus) else "not"
            self.add("sign", f"{name} dropped", (node, _wrap_like(node.expression, node)))

    def on_Name(self, node) -> None:
        if node.value in ("True", "False"):
            parent = self.parents.get(node)
            keyword = parent.keyword.value if isinstance(parent, cst.Arg) and parent.keyword else ""
            flipped = cst.Name("False" if node.value == "True" else "True")
            self.add("keepdim" if keyword == "keepdim" else "flag", f"{node.value} -> {flipped.value}",
                     (node, flipped))

    def on_Attribute(self, node) -> None:
        if node.attr.value in ("T", "mT"):
            self.add("dim", f".{node.attr.value} dropped", (node, _wrap_like(node.value, node)))

    def on_Subscript(self, node) -> None:
        elements = node.slice
        for i in range(len(elements) - 1):
            a, b = elements[i], elements[i + 1]
            if _code(a.slice) != _code(b.slice):
                self.add("swap", f"indices {i} and {i + 1} swapped", (a, a.with_changes(slice=b.slice)),
                         (b, b.with_changes(slice=a.slice)))
        for element in elements:  # the end of a window (or the start of a tail, data[n:]) off by one
            if isinstance(element.slice, cst.Slice):
                bound = element.slice.upper if element.slice.upper is not None else element.slice.lower
                if bound is not None and not _is_number(bound):
                    self.off_by_one(bound, "slice bound")

    def on_Call(self, node) -> None:
        name, module = _func_name(node)
        positional = [a for a in node.args if a.keyword is None and not a.star]
        keywords = [a for a in node.args if a.keyword is not None]
        self.dims(node, name, module, positional, keywords)
        if name in API and _exists(node.func, API[name]):
            func = node.func.with_changes(attr=cst.Name(API[name])) if isinstance(node.func, cst.Attribute) \
                else node.func.with_changes(value=API[name])
            self.add("api", f"{name} -> {API[name]}", (node.func, func))
        if name in PASS_THROUGH and isinstance(node.func, cst.Attribute) and not module and not _moves(node):
            self.add("call", f".{name}() dropped", (node, _wrap_like(node.func.value, node)))
        if name in TRANSPOSES and isinstance(node.func, cst.Attribute) and not module:
            self.add("dim", f".{name}() dropped", (node, _wrap_like(node.func.value, node)))
        if name == "range" and positional:
            stop = positional[1] if len(positional) > 1 else positional[0]
            if not _is_number(stop.value):
                self.off_by_one(stop.value, "range stop")
        for i in range(len(positional) - 1):
            a, b = positional[i], positional[i + 1]
            if _code(a.value) != _code(b.value) and not _is_literal_collection(a.value) \
                    and not _is_literal_collection(b.value):  # Value((self,), x) is a TypeError, not a bug
                self.add("swap", f"arguments {i + 1} and {i + 2} swapped", (a, a.with_changes(value=b.value)),
                         (b, b.with_changes(value=a.value)))
        optional = len(positional) - self.signatures.get(name, len(positional)) if isinstance(node.func, cst.Name) else 0
        if optional > 0 and not keywords and not _is_string(positional[-1].value):  # a label is no bug
            self.add("arg", f"argument {len(positional)} dropped", *self.without(node, positional[-1]))
        for arg in keywords:
            # a device changes nothing on the CPU, where mutants are graded; a font size changes no grade
            if arg.keyword.value != "device" and arg.keyword.value not in COSMETIC:
                self.add("arg", f"{arg.keyword.value}= dropped", *self.without(node, arg))

    def without(self, call, arg) -> list[tuple]:
        """The pairs that remove `arg` from `call` (and the comma it leaves at the end)."""
        args = [a for a in call.args if a is not arg]
        if args and args[-1].comma is not cst.MaybeSentinel.DEFAULT and call.args[-1] is arg:
            args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        return [(call, call.with_changes(args=args))]

    def dims(self, node, name, module, positional, keywords) -> None:
        dim = next((a for a in keywords if a.keyword.value in ("dim", "axis")), None)
        if dim is None and name in DIM_POSITION:
            where = DIM_POSITION[name] + (1 if module and name not in ("cat", "stack") else 0)
            dim = positional[where] if where < len(positional) else None
        value = _int_value(dim.value) if dim is not None else None
        if value is not None:
            swapped = 1 if value == 0 else value - 1 if value > 0 else -2 if value == -1 else value + 1
            self.add("dim", f"dim {value} -> {swapped}", (dim, dim.with_changes(value=_number(swapped))))
        keepdim = next((a for a in keywords if a.keyword.value == "keepdim"), None)
        if keepdim is None and name in REDUCTIONS and value is not None and not module:
            args = [*node.args[:-1], node.args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" "))),
                    cst.Arg(keyword=cst.Name("keepdim"), value=cst.Name("True"),
                            equal=cst.AssignEqual(cst.SimpleWhitespace(""), cst.SimpleWhitespace("")))]
            self.add("keepdim", "keepdim=True added", (node, node.with_changes(args=args)))

    def off_by_one(self, expr, what: str) -> None:
        for op, sign in ((cst.Subtract(), "- 1"), (cst.Add(), "+ 1")):
            self.add("bound", f"{what} {sign}", (expr, cst.BinaryOperation(
                left=expr, operator=_spaced(cst.Add(), op), right=cst.Integer("1"))))

    def constant(self, node) -> None:
        value = _int_value(node) if not isinstance(node, cst.Float) else float(node.value)
        if value is None and isinstance(node, cst.UnaryOperation):
            return
        if isinstance(value, int) or abs(value) >= 1 or value == 0:
            news = [value + 1, value - 1]
        else:
            news = [value * 10, value / 10]
        for new in news:
            self.add("number", f"{_code(node)} -> {_code(_number(new))}", (node, _number(new)))

    def drop(self, stmt) -> None:
        parent = self.parents.get(stmt)
        body = getattr(parent, "body", None)
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)) or not isinstance(body, (tuple, list)):
            return
        if isinstance(stmt, cst.SimpleStatementLine):
            small = stmt.body[0]
            if isinstance(small, (cst.Pass, cst.Import, cst.ImportFrom, cst.Assert, cst.Global, cst.Nonlocal)):
                return
            if isinstance(small, cst.Expr) and (isinstance(small.value, (cst.SimpleString, cst.ConcatenatedString)) or (
                    isinstance(small.value, cst.Call) and _func_name(small.value)[0] in NOT_MUTATED_CALLS)):
                return
            if isinstance(small, cst.Assign) and not all(self.rebinds(t.target) for t in small.targets):
                return  # dropping a first binding only makes a NameError, not a student's bug
        index = next(i for i, s in enumerate(body) if s is stmt)
        if index + 1 == len(body) and (len(body) == 1 or stmt.leading_lines):
            # an empty block is a syntax error, and the comments above (a solution marker) stay
            self.add("drop", "statement dropped", (stmt, cst.SimpleStatementLine(
                [cst.Pass()], leading_lines=stmt.leading_lines)))
            return
        pairs = [(stmt, cst.RemoveFromParent())]
        if index + 1 < len(body) and stmt.leading_lines:  # the comments above it stay, above the next one
            after = body[index + 1]
            pairs.append((after, after.with_changes(leading_lines=[*stmt.leading_lines, *after.leading_lines])))
        self.add("drop", "statement dropped", *pairs)

    def rebinds(self, target) -> bool:
        if isinstance(target, cst.Name):
            return target.value in self.bound[-1]
        return not isinstance(target, (cst.Tuple, cst.List))

    def ignore_parameters(self, func) -> None:
        """One edit per parameter with a default: every use of it in the body reads the default."""
        for param in _params(func):
            if param.default is None:
                continue
            uses = list(self.uses(func.body, param.name.value))
            uses = [u for u in uses if self.inside(u)]
            if uses:
                edit = Edit("param", f"{param.name.value} ignored (uses {_code(param.default)})",
                             ".".join(self.scopes) or "<cell>")
                for use in uses:
                    edit.replace[id(use)] = (use, _parenthesised(param.default))
                    edit.tops.add(self.top_of(use))
                self.edits.append(edit)

    def uses(self, body, name: str) -> Iterator:
        """Loads of `name` up to (and within) the first statement that binds it again."""
        stores = [n for n in _walk(body) if isinstance(n, cst.Name) and n.value == name
                  and self.contexts.get(n) == ExpressionContext.STORE]
        limit = min((self.positions[self._statement_of(s)].end.line for s in stores), default=None)
        for node in _walk(body, skip_keywords=True):
            if isinstance(node, cst.Name) and node.value == name and self.contexts.get(node) == \
                    ExpressionContext.LOAD and (limit is None or self.positions[node].start.line <= limit):
                yield node

    def _statement_of(self, node):
        while node is not None and not isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            node = self.parents.get(node)
        return node


def _spaced(old, new):
    """The new operator with the old one's whitespace."""
    keep = {k: getattr(old, k) for k in ("whitespace_before", "whitespace_after", "whitespace_between")
            if hasattr(old, k) and hasattr(new, k)}
    return new.with_changes(**keep)


def _parenthesised(node):
    """`node` in parentheses when it is an operation without them (it moves into another context)."""
    if isinstance(node, (cst.BinaryOperation, cst.BooleanOperation, cst.Comparison, cst.IfExp, cst.UnaryOperation)) \
            and not node.lpar:
        return node.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
    return node


def _params(func) -> list:
    p = func.params
    return [*p.posonly_params, *p.params, *p.kwonly_params]


def _is_number(node) -> bool:
    return isinstance(node, (cst.Integer, cst.Float)) or _int_value(node) is not None


def _target_key(target) -> str:
    """`self.grad` -> ".grad", `total` -> "total", `a[i]` -> "a[]": what an accumulator is called."""
    if isinstance(target, cst.Attribute):
        return "." + target.attr.value
    if isinstance(target, cst.Name):
        return target.value
    if isinstance(target, cst.Subscript):
        return _target_key(target.value) + "[]"
    return ""


def _walk(node, skip_keywords: bool = False) -> Iterator:
    """Every node under `node` (or under each node of a sequence), depth first; with skip_keywords,
    not the names of keyword arguments, attributes and nested definitions' parameters."""
    stack = list(node) if isinstance(node, (list, tuple)) else [node]
    while stack:
        current = stack.pop()
        yield current
        children = list(current.children)
        if skip_keywords:
            if isinstance(current, cst.Arg) and current.keyword is not None or isinstance(current, cst.Attribute):
                children = [current.value]
            elif isinstance(current, (cst.FunctionDef, cst.Lambda)):
                continue  # a nested function with its own parameters: leave it alone
        stack.extend(reversed(children))
