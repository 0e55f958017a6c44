"""Week 1 specifics beyond tests/test_weeks.py: the suite's own logic (fast, no kernel) and what a
real week 1 grade records (provenance, measured values, determinism, CLI exit codes)."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, first_attempt, grade_notebook

SUITE = ROOT / "solutions" / "week1"
SOLUTION = SUITE / "week1.ipynb"
STUB = ROOT / "assignments" / "week1" / "week1.ipynb"


def load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


plan = load("week1_plan", SUITE / "plan.py")
reference = load("week1_reference_under_test", SUITE / "week1_reference.py")
probes = load("week1_probes_under_test", SUITE / "probes.py")


@pytest.fixture(scope="module")
def solution_ns():
    """The reference solution, every code cell run in this process (it is ours, not a student's)."""
    nb = nbformat.read(SOLUTION, as_version=4)
    ns: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, "week1-solution", "exec"), ns)  # noqa: S102 - trusted reference
    return ns


# ---- the suite's logic, without a kernel -----------------------------------------------------

def test_random_graphs_are_deterministic_and_cover_every_op():
    seed = plan.seeds()["graphs"]
    first, again = plan.random_graphs(seed, 40), plan.random_graphs(seed, 40)
    assert first == again
    assert plan.random_graphs(seed + 1, 40) != first
    used = {op[0] for g in first for op in g["ops"]}
    assert set(plan.BINARY) | set(plan.UNARY) | set(plan.WITH_CONST) <= used
    # reused nodes: an operand used twice by one op (a*a, x+x) and nodes feeding several ops
    assert any(op[0] in plan.BINARY and op[1] == op[2] for g in first for op in g["ops"])


def test_random_graph_values_stay_in_safe_domains():
    for g in plan.random_graphs(plan.seeds()["graphs"], 40):
        value, grads = reference.torch_eval(g)
        assert math.isfinite(value) and all(math.isfinite(x) for x in grads), g["label"]


def test_reference_numbers_from_the_course_notes():
    _, loss, grads = reference.softmax_reference([0.0, 3.0, -2.0, 1.0], 3)
    assert loss == pytest.approx(2.1755153626167147, abs=1e-12)
    assert grads == pytest.approx([0.041772570515350445, 0.8390245074625319, 0.005653302662216329,
                                   -0.8864503806400986], abs=1e-12)
    assert reference.analytic_grad("exercise", [2.0, 3.0, 4.0]) == pytest.approx(
        [-12.353553390593273, 10.25699027111255, 0.0625], abs=1e-12)


def test_probes_and_references_agree_on_the_solution(solution_ns):
    """The sandbox side (probes.py) on the solution's Value matches the judge side exactly."""
    for specs in (plan.OP_CASES, plan.REUSE_CASES, plan.random_graphs(3, 10), [plan.spec_for_depth(30)]):
        results = probes.graphs(solution_ns, specs)
        errors = [c.error for c in reference.compare_graphs(specs, results)]
        assert max(errors) < 1e-12, [c.message for c in reference.compare_graphs(specs, results)]


def test_new_probes_agree_with_the_judge_on_the_solution(solution_ns):
    """Modules with the judge's weights, a second backward(), train_step, zero_grad, init and h: the
    sandbox side on the solution gives exactly what the judge's references expect."""
    for case, res in zip(plan.MODULE_CASES, probes.modules(solution_ns, plan.MODULE_CASES), strict=True):
        outs, grads = reference.module_eval(plan.layer_sizes(case["cls"], case["args"]), case["params"],
                                            case["inputs"])
        assert [pytest.approx(o, abs=1e-12) for o in outs] == res["outputs"]
        assert res["grads"] == pytest.approx(grads, abs=1e-12)
    for spec, res in zip(plan.TWICE_CASES, probes.backward_twice(solution_ns, plan.TWICE_CASES), strict=True):
        want = reference.torch_eval(spec)[1]
        assert res["once"] == pytest.approx(want, abs=1e-12)
        assert res["twice"] == pytest.approx([2 * w for w in want], abs=1e-12)
    steps = probes.train_steps(solution_ns, **plan.STEP_CASE, xs=plan.TOY_XS, ys=plan.TOY_YS)
    losses, params = reference.sgd([3, 4, 4, 1], plan.STEP_CASE["params"], plan.TOY_XS, plan.TOY_YS,
                                   plan.STEP_CASE["lr"], plan.STEP_CASE["steps"])
    assert [s["returned"] for s in steps] == pytest.approx(losses, rel=1e-12)
    assert steps[-1]["after"] == pytest.approx(params, rel=1e-12)
    zero = probes.zero_grad(solution_ns, **plan.ZERO_GRAD_CASE, xs=plan.TOY_XS, ys=plan.TOY_YS)
    want = reference.sse([3, 4, 4, 1], plan.ZERO_GRAD_CASE["params"], plan.TOY_XS, plan.TOY_YS)[1]
    for key in ("once", "twice", "after"):
        assert zero[key] == pytest.approx(want, abs=1e-12), key
    assert not any(zero["zeroed"])
    drawn = probes.init_values(solution_ns, plan.INIT_MODEL, 7)
    assert drawn["first"] == drawn["same_seed"] != drawn["other_seed"]
    assert len(drawn["first"]) == plan.count_params("MLP", plan.INIT_MODEL) == 3151
    for (name, args, h), res in zip(plan.NUMGRAD_STEP_POINTS, probes.numerical_grad(solution_ns,
                                                                                    plan.NUMGRAD_STEP_POINTS)):
        assert res["grad"] == reference.centered_difference(name, args, h)
        assert max(abs(a - b) for a, b in zip(res["grad"], reference.analytic_grad(name, args))) > 1e-5  # h shows


def test_the_grader_weights_are_fixed_and_its_counts_are_right():
    assert plan.module_params("MLP", [3, [4, 4, 1]], 13) == plan.MODULE_CASES[2]["params"]
    assert [plan.count_params(cls, args) for cls, args in plan.COUNT_CASES] == [41, 337, 37, 21, 8]
    assert [len(c["params"]) for c in plan.MODULE_CASES] == [4, 8, 41, 33, 29]


def test_deep_chain_doubles_per_level_without_a_visited_set(solution_ns):
    """The deep-chain spec really punishes a missing visited set: paths double per level."""
    spec = plan.spec_for_depth(12)
    _, nodes = probes._build(solution_ns["Value"], spec)

    def naive(node):  # topological order without a visited set
        out = []
        for child in node._prev:
            out += naive(child)
        return out + [node]

    assert len(naive(nodes[-1])) > 2 ** 12
    assert len(solution_ns["topological_order"](nodes[-1])) == len(nodes)


@pytest.mark.parametrize("cells, flagged", [
    (["import torch\nclass Value:\n    pass"], True),
    (["import torch as T", "class Value:\n    def exp(self):\n        return T.exp(self.data)"], True),
    (["from torch import tensor", "class Value:\n    def __init__(self, d):\n        self.t = tensor(d)"], True),
    (["class Value:\n    def __init__(self, d):\n        self.m = __import__('torch')"], True),
    (["import torch", "Value.__add__ = lambda a, b: torch.add(a, b)"], True),
    (["class MLP:\n    import jax"], True),
    (["class Value:\n    pass", "import torch\nprint(torch.tensor(Value(1).data))"], False),  # a self-check cell
    (["import torch\nDEVICE = 'cpu'", "class Value:\n    def exp(self):\n        return torch.exp(self.data)"],
     True),  # torch imported by the setup cell, used in the engine
    (["%matplotlib inline\nclass Value:\n    pass"], False),
    ([], False),
])
def test_integrity_scan(cells, flagged):
    assert bool(reference.torch_uses(cells)) is flagged


def test_integrity_scan_names_cell_and_line():
    uses = reference.torch_uses(["x = 1", "import math\nimport torch\nclass Value:\n    pass"])
    assert uses == ["code cell 2, line 2: import torch"]


def test_integrity_scan_spares_the_setup_cell_not_a_torch_engine():
    """The setup cell imports torch (for the optional self-check): only cells defining graded names are
    scanned, so the solution passes, and the fixture whose Value runs on torch is still caught."""
    def code(path):
        return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]

    solution = code(SOLUTION)
    assert "import torch" in solution[0] and "torch.cuda.is_available()" in solution[0]
    assert reference.torch_uses(solution) == []
    engine = code(ROOT / "fixtures" / "submissions" / "week1" / "fails_uses_torch.ipynb")
    assert engine[0] == solution[0]
    assert reference.torch_uses(engine)[0] == "code cell 2, line 1: import torch"


# ---- a real grade ---------------------------------------------------------------------------

def _normalised(grade_json: dict) -> dict:
    """A grade without what legitimately differs between two runs (time, scratch paths)."""
    g = json.loads(json.dumps(grade_json))
    for key in ("graded_at", "durations", "artifacts"):
        g.pop(key, None)
    g["execution"].pop("wall_seconds", None)
    g["execution"].pop("output_bytes", None)  # counts stream messages, which the kernel chunks by timing
    for probe in g["execution"].get("probes", []):
        probe.pop("seconds", None)
    for check in g["checks"]:
        check.pop("seconds", None)
    for key in ("workdir", "source", "selection"):  # selection: how the entry point found the notebook
        g["submission"].pop(key, None)
    return g


@pytest.fixture(scope="module")
def cli_solution_grade(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli")
    proc = subprocess.run(
        [sys.executable, "-m", "grader.cli", "grade", "week1", str(SOLUTION), "--student", "solution",
         "--out", str(out), "--format", "json", "--profile", "cpu"],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=600)
    return proc, json.loads((out / "solution-week1.json").read_text())


@pytest.mark.slow
def test_cli_grades_the_solution_with_exit_code_0(cli_solution_grade):
    proc, grade = cli_solution_grade
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert grade["score"] == grade["max_score"] > 0
    assert "solution week1:" in proc.stdout


@pytest.mark.slow
def test_grade_records_provenance_and_measurements(cli_solution_grade):
    _, grade = cli_solution_grade
    p = grade["provenance"]
    import hashlib

    from grader import __version__
    from grader.config import suite_hash

    assert p["grader_version"] == __version__
    assert p["checks_hash"] == suite_hash(SUITE)
    assert p["notebook_sha256"] == hashlib.sha256(SOLUTION.read_bytes()).hexdigest()
    assert p["profile"] == "cpu" and p["device"] == "cpu"
    assert p["torch_version"] and p["torch_version"].split("+")[0][0].isdigit()
    assert p["seeds"] == plan.seeds()
    checks = {c["id"]: c for c in grade["checks"]}
    train = checks["toy_training"]
    assert train["measured"] < 0.05 and "0.05" in train["target"] and train["details"]["steps"] == 100
    assert checks["graph_gradients"]["measured"] <= 1e-9 and "1e-09" in checks["graph_gradients"]["target"]
    assert checks["numerical_grad"]["measured"] <= 1e-7
    assert {c["category"] for c in grade["checks"]} == {"correctness", "gradient", "loss", "runs_clean", "integrity"}


@pytest.mark.slow
def test_grading_twice_gives_the_same_grade(cli_solution_grade, solution_grade):
    """`grader grade` alone and a batch's worker beside other gradings (the pool) give one grade."""
    _, first = cli_solution_grade
    second = json.loads(solution_grade("week1").model_dump_json())
    assert _normalised(second) == _normalised(first)


@pytest.mark.slow
def test_cli_exit_code_1_for_the_stub(tmp_path):
    attempt = first_attempt(STUB, tmp_path / "attempt")  # the untouched stub would be `not_submitted`
    proc = subprocess.run(
        [sys.executable, "-m", "grader.cli", "grade", "week1", str(attempt), "--student", "stub",
         "--out", str(tmp_path), "--format", "json", "--profile", "cpu"],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    grade = json.loads((tmp_path / "stub-week1.json").read_text())
    assert grade["score"] == 0 and grade["status"] == "graded"
    assert any("NotImplementedError" in c["message"] for c in grade["checks"])
    # the "+=" hint is about wrong numbers: a stub that raises gets "fix the error first" instead
    assert not any("+=" in c["message"] for c in grade["checks"] if "NotImplementedError" in c["message"])
    measured = {c["id"]: c for c in grade["checks"] if c["measured"] is not None}
    for check in measured.values():  # the message never contradicts the Measured column
        if "max error inf" in check["message"]:
            assert math.isinf(check["measured"]), check


@pytest.mark.slow
@pytest.mark.parametrize("notebook, full", [(SOLUTION, True), (STUB, False)])
def test_public_suite_discriminates(notebook, full, tmp_path):
    """`grader check week1`: the solution passes the public checks, the stub earns nothing."""
    notebook = notebook if full else first_attempt(notebook, tmp_path / "attempt")
    grade = grade_notebook("week1", notebook, tmp_path, public=True)
    assert grade.status == "graded"
    assert grade.max_score > 0
    assert grade.score == (grade.max_score if full else 0), [(c.id, c.points, c.message) for c in grade.checks]


@pytest.mark.slow
@pytest.mark.pooled("week1", "fixtures/submissions/week1/fails_grad_overwrite.ipynb", copies=5,
                    select=("zero_grad", "toy_training"))
def test_an_order_dependent_bug_gets_one_grade(pooled_grade):
    """`=` instead of `+=` in backward: which gradient survives depends on the order in which a set of
    Values is visited, i.e. on their addresses (the stub's `self._prev = set(_children)`). Before, five
    grades of one commit gave up to four different scores; now the kernel runs without ASLR and the probes
    on a fixed-address heap, and every grade is the same, to the last digit of the measured loss."""
    from grader.run.execute import DETERMINISTIC_HEAP

    if not DETERMINISTIC_HEAP.is_file():
        pytest.skip(f"{DETERMINISTIC_HEAP} is not built (ci/install.sh builds it)")
    grades = pooled_grade  # five grades of one commit, two at a time beside other gradings
    seen = {(g.score, tuple((c.id, c.points, c.measured) for c in g.checks)) for g in grades}
    assert len(seen) == 1, seen
    sandbox = grades[0].provenance.sandbox
    assert sandbox.layout_fixed and sandbox.deterministic_heap and sandbox.hash_seed == "0"
