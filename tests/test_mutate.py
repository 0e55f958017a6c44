"""`grader mutate`: the operators on small cells (fast, no kernel), how a mutant's grade is classified,
and a smoke run of week 1 through the real batch machinery (a handful of mutants, two checks)."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from grade_factory import check, make_grade

from grader.config import load_week, suite_hash
from grader.records import Execution
from grader.staff.mutants import (
    cell_mutants,
    check_variant,
    files_digest,
    mutate_notebook,
    notebook_mutants,
    read_solution,
    required_arguments,
    solution_lines,
    variant_grades,
)
from grader.staff.mutate import (
    MutantResult,
    MutationError,
    _require_full_marks,
    classify,
    merge,
    sample_mutants,
    select_mutants,
    suite_checks,
)
from grader.staff.operators import KINDS

ROOT = Path(__file__).resolve().parent.parent
GRADER = [sys.executable, "-m", "grader.cli"]


def solution(body: str, head: str = "") -> str:
    """A cell whose `body` lies between solution markers, after an unmarked `head`."""
    indent = "    " if head.rstrip().endswith(":") else ""
    inner = "".join(indent + line if line.strip() else line for line in dedent(body).splitlines(True))
    return dedent(head) + f"{indent}### BEGIN SOLUTION\n{inner}{indent}### END SOLUTION\n"


def added(source: str, kind: str | None = None) -> list[str]:
    """The lines each mutant of `source` (of one kind) puts in, stripped and joined per mutant."""
    out = []
    for m in cell_mutants(source, 0, required_arguments([source])):
        if kind in (None, m.kind):
            out.append("\n".join(line[1:].strip() for line in m.diff.splitlines()
                                 if line.startswith("+") and not line.startswith("+++")))
    return out


DEF = "def f(a, b, c, x, P, W, k, g, n):\n"
CASES = [  # kind, solution body, a line one of its mutants must write
    ("arith", "return a + b * c\n", "return a - b * c"),
    ("arith", "return a + b * c\n", "return a + b / c"),
    ("arith", "return x @ W\n", "return x * W"),
    ("compare", "return a < b\n", "return a <= b"),
    ("compare", "if a == b:\n    return c\nreturn a\n", "if not (a == b):"),
    ("compare", "return a and b\n", "return a or b"),
    ("number", "return x[0] + 2\n", "return x[-1] + 2"),
    ("number", "return x[0] + 2\n", "return x[0] + 3"),
    ("number", "return a * 0.01\n", "return a * 0.001"),
    ("dim", "return P / P.sum(1, keepdim=True)\n", "return P / P.sum(0, keepdim=True)"),
    ("dim", "return F.softmax(x, dim=-1)\n", "return F.softmax(x, dim=-2)"),
    ("dim", "return torch.cat([a, b], -1)\n", "return torch.cat([a, b], -2)"),
    ("dim", "return x @ W.T\n", "return x @ W"),
    ("dim", "return k.transpose(-2, -1)\n", "return k"),
    ("keepdim", "return P / P.sum(1, keepdim=True)\n", "return P / P.sum(1, keepdim=False)"),
    ("keepdim", "return x.sum(0)\n", "return x.sum(0, keepdim=True)"),
    ("flag", "return torch.multinomial(P, 1, replacement=True)\n", "return torch.multinomial(P, 1, replacement=False)"),
    ("accumulate", "a.grad += b\n", "a.grad = b"),
    ("accumulate", "x.grad = 1.0\nfor c in b:\n    c.grad += x.grad\n", "x.grad += 1.0"),
    ("drop", "x.zero_grad()\nx.backward()\n", ""),
    ("drop", "for c in b:\n    c.step()\n", "pass"),
    ("term", "return a + b\n", "return a"),
    ("term", "return a * b\n", "return b"),
    ("term", "return W.sum() + [b]\n", "return W.sum()"),
    ("arg", "return torch.randn(3, generator=g)\n", "return torch.randn(3)"),
    ("arg", "return sum(x, b)\n", "return sum(x)"),
    ("swap", "return g(a, b)\n", "return g(b, a)"),
    ("swap", "return a - b - c\n", "return c - (a - b)"),
    ("swap", "return P[a, b]\n", "return P[b, a]"),
    ("sign", "return -x\n", "return x"),
    ("api", "return x.sum()\n", "return x.mean()"),
    ("api", "return torch.tril(x)\n", "return torch.triu(x)"),
    ("api", "return W.index_add_(0, a, b)\n", "return W.index_copy_(0, a, b)"),
    ("bound", "return [x for i in range(n)]\n", "return [x for i in range(n - 1)]"),
    ("bound", "return x[:n]\n", "return x[:n + 1]"),
    ("call", "return P.double().log()\n", "return P.log()"),
]


@pytest.mark.parametrize(("kind", "body", "want"), CASES, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(CASES)])
def test_each_operator_writes_the_student_bug(kind, body, want):
    got = added(solution(body, DEF), kind)
    assert want in got, got


def test_every_kind_has_a_case_and_a_meaning():
    assert {kind for kind, _, _ in CASES} | {"param"} == set(KINDS)


def test_a_parameter_with_a_default_is_ignored_up_to_where_the_function_rebinds_it():
    source = solution("hidden = hidden or 4 * n\nreturn x / temperature + hidden\n",
                      "def f(x, n, temperature=1.0, hidden=None):\n")
    got = added(source, "param")
    assert "return x / 1.0 + hidden" in got
    assert "hidden = None or 4 * n" in got  # the later `hidden` is the function's own
    assert not any("n" == line for line in got)  # no default, nothing to fall back on


def test_no_edit_that_is_no_students_bug():
    source = solution(dedent("""\
        assert a > 0, "positive"
        print("step", a + 1)
        y = math.tanh(a)
        s = sum([a, b])
        r = random.uniform(-1, 1)
        label = "a" + b
        out = Value(a, (b, c), "+")
        plt.title("loss", fontsize=7)
        return y, s, r, label, out
        """), DEF)
    every = added(source)
    assert not any("assert" in m or "print" in m or "fontsize" in m for m in every), every
    assert 'plt.title("loss")' not in every  # dropping a figure's font size is no bug either
    assert "y = math.relu(a)" not in every and "s = mean([a, b])" not in every  # no such functions
    assert "r = random.uniform(-1)" not in every  # a required argument
    assert 'out = Value(a, "+", (b, c))' not in every and "out = Value(a, (b, c))" not in every
    assert 'label = "a" - b' not in every
    assert all("y = math.tanh(a)" not in m or m.strip() != "" for m in every)
    dropped = [m for m in cell_mutants(source, 0) if m.kind == "drop"]
    assert not dropped or all("y = " not in m.diff.split("+++")[1].split("\n-")[1] for m in dropped if "\n-" in m.diff)


def test_a_first_binding_is_not_dropped_but_a_rebinding_is():
    source = solution("Q = a + 1\nQ = Q / Q.sum(1, keepdim=True)\nreturn Q\n", DEF)
    removed = [[line[1:].strip() for line in m.diff.splitlines() if line.startswith("-") and not line.startswith("---")]
               for m in cell_mutants(source, 0) if m.kind == "drop"]
    assert ["Q = Q / Q.sum(1, keepdim=True)"] in removed
    assert ["Q = a + 1"] not in removed


def test_only_solution_lines_are_mutated_and_every_mutant_is_valid_python():
    source = "def f(a, b):\n    c = a + b\n    ### BEGIN SOLUTION\n    return c * 2\n    ### END SOLUTION\n"
    mutants = cell_mutants(source, 3)
    assert mutants and all(m.cell == 3 and m.scope == "f" and m.line == 4 for m in mutants)
    for m in mutants:
        ast.parse(m.source)
        assert "c = a + b" in m.source and "### BEGIN SOLUTION" in m.source and "### END SOLUTION" in m.source
    assert solution_lines("### SOLUTION CELL\nx = 1\n") == {2}


def test_ids_survive_unrelated_edits_and_change_with_the_mutated_line():
    base = solution("return a * b + c\n", "def f(a, b, c):\n")
    moved = "import math\n\n\ndef g(x):\n    return x\n\n\n" + base
    first, again = cell_mutants(base, 0), cell_mutants(moved, 0)
    assert [m.id for m in first] == [m.id for m in again]
    assert {m.line for m in again} == {m.line + 7 for m in first}
    edited = cell_mutants(base.replace("a * b + c", "a * b + c + 1"), 0)
    assert not {m.id for m in edited} & {m.id for m in first}
    assert len({m.id for m in first}) == len(first)


def test_week1_mutants_cover_the_kinds_and_touch_only_solution_cells():
    mutants, skipped = notebook_mutants(ROOT / "solutions" / "week1" / "week1.ipynb")
    assert not skipped and len(mutants) > 100
    assert {"arith", "term", "drop", "number", "accumulate", "swap", "compare", "sign", "param", "arg"} <= {
        m.kind for m in mutants}
    assert len({m.id for m in mutants}) == len(mutants)
    import nbformat

    nb = nbformat.read(ROOT / "solutions" / "week1" / "week1.ipynb", as_version=4)
    for m in mutants[::7]:
        assert m.line in solution_lines(nb.cells[m.cell].source), m.title
    picked = select_mutants(mutants, kinds=("accumulate",), scope="Value.__add__")
    assert picked and all(m.kind == "accumulate" and "Value.__add__" in m.scope for m in picked)
    assert sample_mutants(mutants, sample=5, seed=3) == sample_mutants(mutants, sample=5, seed=3)
    assert sample_mutants(mutants, sample=5, seed=3) != sample_mutants(mutants, sample=5, seed=4)
    assert sample_mutants(mutants, limit=4) == mutants[:4]


def test_marking_equivalents_changes_no_grade_hash(tmp_path):
    suite = tmp_path / "week1"
    shutil.copytree(ROOT / "solutions" / "week1", suite)
    before = suite_hash(suite)
    with open(suite / "week.toml", "a") as fh:
        fh.write('\n[[mutation.equivalent]]\nid = "0123456789"\nreason = "the label of a node"\n')
    assert suite_hash(suite) == before
    assert load_week(suite).mutation.equivalent[-1].reason == "the label of a node"
    with open(suite / "week.toml", "a") as fh:
        fh.write("\n[profiles.extra]\ncell_timeout = 1\n")
    assert suite_hash(suite) != before  # a table after the mutation tables still counts


def test_classify_killed_survived_timeout_and_error():
    mutant = cell_mutants(solution("return a + 1\n", "def f(a):\n"), 0)[0]
    base = make_grade(checks=[check("values", 2, 2), check("grads", 3, 3)])
    killed = classify(mutant, make_grade(checks=[check("values", 2, 2), check("grads", 1.5, 3)]), base)
    assert killed.outcome == "killed" and killed.killed_by == ["grads"]
    assert classify(mutant, base, base).outcome == "survived"
    crashed = make_grade(checks=[])  # a notebook that died: no check answered
    assert classify(mutant, crashed, base).killed_by == ["values", "grads"]
    slow = base.model_copy(update={"execution": Execution(status="timeout", message="ran past 240 s")})
    assert classify(mutant, slow, base).outcome == "timeout"
    assert classify(mutant, make_grade(status="harness_error", message="boom"), base).outcome == "error"


def test_a_mutant_is_killed_when_any_variant_kills_it():
    mutant = cell_mutants(solution("return a + 1\n", "def f(a):\n"), 0)[0]
    shipped = MutantResult(mutant=mutant, outcome="survived", seconds=2.0)
    architect = MutantResult(mutant=mutant, outcome="killed", killed_by=["architect_training"], seconds=3.0)
    slow = MutantResult(mutant=mutant, outcome="timeout", seconds=300.0)
    assert merge([shipped, architect]).outcome == "killed"
    assert merge([shipped, architect]).killed_by == ["architect_training"]
    assert merge([shipped, architect]).seconds == 5.0
    assert merge([shipped, slow]).outcome == "timeout"
    assert merge([shipped, shipped]).outcome == "survived"


def test_week6_is_also_mutated_as_an_architect_and_a_specialist():
    """Week 6's solution declares the inspector track: its architect and specialist code would be run by no
    check. Each variant in week.toml names a line found once and declares its track; the specialist's
    corpus is found, and only load_corpus's and the track cell's mutants are graded as a specialist."""
    suite = ROOT / "solutions" / "week6"
    config = load_week(suite)
    solution_nb = read_solution(suite / config.notebook)
    architect, specialist = config.mutation.variants
    for variant in (architect, specialist):
        check_variant(solution_nb, variant, ROOT)
        code = "\n".join(c.source for c in mutate_notebook(solution_nb, None, variant).cells if c.cell_type == "code")
        assert f'TRACK = "{variant.name}"' in code and 'TRACK = "inspector"' not in code
    with pytest.raises(ValueError, match="occurs 0 times"):
        check_variant(solution_nb, architect.model_copy(update={"replace": "no such line"}))
    with pytest.raises(ValueError, match="files not found: no/such.txt"):
        check_variant(solution_nb, specialist.model_copy(update={"files": ["no/such.txt"]}), ROOT)

    mutants, _ = notebook_mutants(suite / config.notebook)
    graded = [m for m in mutants if variant_grades(specialist, m, solution_nb)]
    assert {m.scope for m in graded} == {"load_corpus", "<cell>"}
    assert all("load_corpus" in m.scope or "TRACK" in solution_nb.cells[m.cell].source for m in graded)
    assert any('DATASET = "my_corpus.txt"' in m.diff for m in graded)  # the specialist reads DATASET
    assert all(variant_grades(architect, m, solution_nb) for m in mutants)  # no scopes: every mutant
    corpus = ROOT / specialist.files[0]
    assert files_digest([corpus]) != files_digest([suite / config.notebook]) and files_digest([]) == ""


def test_a_solution_must_keep_every_point_but_may_have_none_under_checks():
    """--checks may name checks that only a variant grades (week 6's RoPE checks, as an architect): the
    solution as shipped then has 0/0, which is no reason to stop; a lost point is."""
    _require_full_marks(make_grade(checks=[]), ["rope_norm_and_identity"])  # 0/0: no error
    with pytest.raises(MutationError, match="must get full marks"):
        _require_full_marks(make_grade(checks=[check("values", 1.0, 2.0)]), [])


def test_suite_checks_and_an_unknown_check_is_a_usage_error():
    assert {"forward_values", "op_gradients"} <= set(suite_checks(ROOT / "solutions" / "week1"))
    done = subprocess.run([*GRADER, "mutate", "week1", "--checks", "no_such_check"], capture_output=True,
                          text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 4 and "unknown check(s) no_such_check" in done.stderr


@pytest.mark.slow
def test_mutate_week1_smoke_kills_survivors_equivalents_and_cache(tmp_path):
    """Five mutants of Value.__add__ against the forward-value check: the three forward ones are killed,
    the backward ones survive (a forward check cannot see a gradient), one is marked equivalent, and a
    second run grades only the solution."""
    solutions = tmp_path / "solutions"
    shutil.copytree(ROOT / "solutions" / "week1", solutions / "week1")
    mutants, _ = notebook_mutants(solutions / "week1" / "week1.ipynb")
    backward = [m for m in select_mutants(mutants, kinds=("accumulate",), scope="Value.__add__._backward")]
    assert len(backward) == 2
    marked = backward[1]
    with open(solutions / "week1" / "week.toml", "a") as fh:
        fh.write(f'\n[[mutation.equivalent]]\nid = "{marked.id}"\nreason = "marked in the test"\n')
    env = {**os.environ, "GRADER_SOLUTIONS_DIR": str(solutions), "CI": "true"}
    out = tmp_path / "out"
    command = [*GRADER, "mutate", "week1", "--checks", "forward_values", "--scope", "Value.__add__",
               "--kind", "arith,term,accumulate", "--jobs", "2", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "week1-mutation.json").read_text())
    by_id = {r["mutant"]["id"]: r for r in report["results"]}
    assert report["baseline_score"] == report["baseline_max"] > 0
    assert by_id[marked.id]["outcome"] == "equivalent" and by_id[marked.id]["note"] == "marked in the test"
    killed = [r for r in report["results"] if r["outcome"] == "killed"]
    survived = [r for r in report["results"] if r["outcome"] == "survived"]
    assert len(killed) >= 2 and all(r["killed_by"] == ["forward_values"] for r in killed)
    assert all("_backward" not in r["mutant"]["scope"] for r in killed)
    assert backward[0].id in {r["mutant"]["id"] for r in survived}
    assert report["counts"]["equivalent"] == 1 and report["graded"] == len(killed) + len(survived)
    assert report["score"] == pytest.approx(len(killed) / (len(killed) + len(survived)))
    assert f"survived {backward[0].id}" in done.stdout and "-            self.grad += out.grad" in done.stdout
    markdown = (out / "week1-mutation.md").read_text()
    assert "## Surviving mutants" in markdown and "| forward_values |" in markdown and marked.id in markdown
    assert "[1/" in done.stderr and "solution: " in done.stderr

    again = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun = json.loads((out / "week1-mutation.json").read_text())
    assert rerun["graded"] == 0 and rerun["cached"] == report["graded"]
    assert [r["outcome"] for r in rerun["results"]] == [r["outcome"] for r in report["results"]]
    assert not list(out.glob("work*"))


@pytest.mark.slow
def test_variants_grade_every_mutant_again_and_their_solution_must_score_full(tmp_path):
    """A variant (a line of the solution changed, as week 6 grades the architect track) grades the solution
    and each mutant once more; a variant whose solution loses points stops the run with exit 1."""
    solutions = tmp_path / "solutions"
    shutil.copytree(ROOT / "solutions" / "week1", solutions / "week1")
    with open(solutions / "week1" / "week.toml", "a") as fh:
        fh.write('\n[[mutation.variants]]\nname = "aliased"\nreplace = "import math"\nby = "import math as math"\n')
    env = {**os.environ, "GRADER_SOLUTIONS_DIR": str(solutions), "CI": "true"}
    out = tmp_path / "out"
    command = [*GRADER, "mutate", "week1", "--checks", "forward_values", "--scope", "Value.__add__",
               "--kind", "arith", "--limit", "1", "--jobs", "2", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((out / "week1-mutation.json").read_text())
    assert report["variants"] == ["aliased"] and [r["outcome"] for r in report["results"]] == ["killed"]
    assert "solution@aliased: " in done.stderr and "[aliased]: killed" in done.stderr
    assert "also graded as: aliased" in (out / "week1-mutation.md").read_text()

    with open(solutions / "week1" / "week.toml", "a") as fh:  # a variant that breaks the forward pass
        fh.write('\n[[mutation.variants]]\nname = "broken"\nreplace = "out = Value(self.data + other.data"\n'
                 'by = "out = Value(self.data - other.data"\n')
    broken = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=False)
    assert broken.returncode == 1, broken.stderr[-3000:]
    assert "reference solution (solution@broken) must get full marks" in broken.stderr

    # A variant with files (found beside its notebook, or its solution fails) and scopes (this mutant, in
    # Value.__add__, is not graded in it)
    toml = (solutions / "week1" / "week.toml").read_text().split("\n[[mutation.variants]]\nname = \"broken\"")[0]
    (solutions / "week1" / "week.toml").write_text(
        toml + '\n[[mutation.variants]]\nname = "withfile"\nreplace = "import math"\n'
        'by = "import math, json; assert json.load(open(\'corpus.json\'))[\'bytes\'] > 0"\n'
        'files = ["fixtures/submissions/week6/corpus.json"]\nscopes = ["Value.__mul__"]\n')
    scoped = subprocess.run([*command, "--regrade"], capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
                            check=False)
    assert scoped.returncode == 0, scoped.stderr[-3000:]
    assert "solution@withfile: " in scoped.stderr  # exit 0: at full marks, so it read its file
    assert "[aliased]: killed" in scoped.stderr and "[withfile]" not in scoped.stderr


@pytest.mark.slow
def test_ctrl_c_keeps_the_grades_so_far_and_writes_a_partial_report(tmp_path):
    import psutil

    out = tmp_path / "out"
    command = [*GRADER, "mutate", "week1", "--checks", "forward_values", "--scope", "Value.__add__",
               "--kind", "arith,term", "--jobs", "1", "--out", str(out)]
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "CI": "true"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # the solution first, then one line per mutant
        lines.append(line)
        if line.startswith("[2/"):
            break
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, "".join(lines) + stderr
    assert "interrupted" in stderr and "run the same command again" in stderr
    report = json.loads((out / "week1-mutation.json").read_text())
    assert report["interrupted"] and report["graded"] >= 1 and report["counts"]["not_graded"] >= 1
    assert "Interrupted" in (out / "week1-mutation.md").read_text()
    assert len(list((out / "cache").glob("*.json"))) == report["graded"]
    psutil.wait_procs([c for c in children if c.is_running()], timeout=10)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
