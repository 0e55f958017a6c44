"""One copy of each week's suite code: the public suite holds what both suites share, the hidden
suite imports it (grader.config: base_suite, probes_file, public_module, suite_hash).

The copy check compares 6-line windows of normalised code lines (whitespace folded; blank,
comment and import lines skipped) between assignments/week*/public/ and solutions/, so that CI
needs no clone detector; a planted copy proves it bites.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

from grader import config
from grader.config import base_suite, probes_file, public_module, suite_hash

WINDOW = 6
SUFFIXES = {".py", ".toml"}


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line with whitespace folded) for the lines that carry code."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        folded = " ".join(line.split())
        if folded and not folded.startswith(("#", "import ", "from ")):
            out.append((number, folded))
    return out


def windows(files: list[Path]) -> dict[tuple[str, ...], str]:
    """Every run of WINDOW code lines -> where it first stands (file:line)."""
    found: dict[tuple[str, ...], str] = {}
    for path in files:
        lines = code_lines(path)
        for i in range(len(lines) - WINDOW + 1):
            found.setdefault(tuple(text for _, text in lines[i:i + WINDOW]), f"{path}:{lines[i][0]}")
    return found


def suite_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in SUFFIXES and "__pycache__" not in p.parts)


def copies(public: list[Path], hidden: list[Path]) -> list[str]:
    """Each hidden place that repeats WINDOW code lines of a public file, beside the public place."""
    shared = windows(public)
    return [f"{where} repeats {shared[key]}" for key, where in windows(hidden).items() if key in shared]


def test_no_suite_code_is_repeated_between_public_and_hidden_suites():
    public = [p for week in sorted((ROOT / "assignments").glob("week*/public")) for p in suite_files(week)]
    hidden = suite_files(ROOT / "solutions")
    assert public and hidden
    assert copies(public, hidden) == [], "import shared code from the public suite (grader.config.public_module)"


def test_a_planted_copy_is_caught(tmp_path):
    body = [f"    total = total + weights[{i}] * inputs[{i}]  # step {i}" for i in range(WINDOW)]
    public = tmp_path / "public.py"
    public.write_text("import math\n\ndef score(inputs, weights):\n    total = 0\n" + "\n".join(body) + "\n")
    # the same lines re-indented, with spaces changed and a comment, a blank line and an import between
    copied = [" ".join(line.split()) for line in body]
    copied[2:2] = ["# copied from the public suite", "", "import numpy as np"]
    hidden = tmp_path / "hidden.py"
    hidden.write_text("def other():\n    pass\n\n\nclass Check:\n" + "\n".join("  " + line for line in copied) + "\n")
    found = copies([public], [hidden])
    assert len(found) == 1 and found[0].startswith(f"{hidden}:6 repeats {public}:5")
    hidden.write_text("\n".join(copied[:WINDOW - 1 + 3]) + "\n")  # five code lines are not a copy
    assert copies([public], [hidden]) == []


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course with week9: a public suite (plan.py, cases.py, probes.py) and a hidden suite (plan.py)."""
    public = tmp_path / "assignments" / "week9" / "public"
    hidden = tmp_path / "solutions" / "week9"
    public.mkdir(parents=True)
    hidden.mkdir(parents=True)
    (public / "cases.py").write_text("def inputs(seed):\n    return [seed, seed + 1]\n")
    (public / "plan.py").write_text(  # a shared module importing another one as it loads
        "from grader.config import public_module\n\nWHO = 'public'\ncases = public_module(__file__, 'cases')\n\n"
        "def plan(profile, thresholds, data_dir):\n"
        "    return [{'id': 'x', 'probe': 'x', 'args': {'v': cases.inputs(1)}}]\n")
    (public / "probes.py").write_text("def x(ns, v):\n    return v\n")
    (hidden / "plan.py").write_text(
        "from grader.config import public_module\n\nWHO = 'hidden'\nSEED = 7\n\n"
        "def plan(profile, thresholds, data_dir):\n"
        "    return [{'id': 'x', 'probe': 'x', 'args': {'v': public_module(__file__, 'cases').inputs(SEED)}}]\n")
    monkeypatch.setattr(config, "ASSIGNMENTS", tmp_path / "assignments")
    yield public, hidden
    for name in [k for k in sys.modules if k == "week9_public" or k.startswith("week9_public.")]:
        del sys.modules[name]


def test_a_hidden_suite_builds_on_its_weeks_public_suite(course):
    public, hidden = course
    assert base_suite(hidden) == public and base_suite(public) == public
    assert probes_file(hidden) == public / "probes.py"  # no probes of its own: the public copy
    (hidden / "probes.py").write_text("def x(ns, v):\n    return -1\n")
    assert probes_file(hidden) == hidden / "probes.py"


def test_public_module_is_the_public_file_under_its_own_name(course, monkeypatch):
    public, hidden = course
    (hidden.parent / "plan.py").write_text("WHO = 'a decoy on sys.path'\n")
    monkeypatch.syspath_prepend(str(hidden.parent))
    monkeypatch.syspath_prepend(str(hidden))
    shared = public_module(hidden / "plan.py", "plan")
    assert shared.WHO == "public" and shared.__name__ == "week9_public.plan"
    assert Path(shared.__file__) == public / "plan.py"
    assert public_module(public / "test_x.py", "plan") is shared  # one module for both suites
    assert public_module(hidden / "plan.py", "cases").inputs(7) == [7, 8]
    with pytest.raises(FileNotFoundError, match="no_such.py"):
        public_module(hidden / "plan.py", "no_such")


def test_another_checkouts_public_suite_is_imported_afresh(course, tmp_path):
    """A released template (or another clone) imports its own copy, not the one loaded first."""
    _, hidden = course
    assert public_module(hidden / "plan.py", "plan").WHO == "public"
    other = tmp_path / "template" / "assignments" / "week9" / "public"
    other.mkdir(parents=True)
    (other / "plan.py").write_text("WHO = 'template'\n")
    assert public_module(other / "test_public.py", "plan").WHO == "template"
    assert public_module(hidden / "plan.py", "plan").WHO == "public"


def test_hidden_hash_covers_the_public_files_it_builds_on(course):
    public, hidden = course
    before, public_before = suite_hash(hidden), suite_hash(public)
    (public / "cases.py").write_text("def inputs(seed):\n    return [seed, seed + 2]\n")
    assert suite_hash(hidden) != before
    assert suite_hash(public) != public_before
    changed, public_now = suite_hash(hidden), suite_hash(public)
    (hidden / "plan.py").write_text((hidden / "plan.py").read_text().replace("SEED = 7", "SEED = 8"))
    assert suite_hash(hidden) != changed
    assert suite_hash(public) == public_now  # a public suite hashes only itself


def test_a_hidden_week_toml_inherits_the_weeks_sandbox_rules(course):
    """The sandbox's rules hold for the week whoever grades it: written once, in the public week.toml."""
    from grader.config import load_week

    public, hidden = course
    head = 'week = "week9"\ntitle = "t"\nnotebook = "week9.ipynb"\nuses_torch = false\n'
    profiles = "[profiles.cpu]\ncell_timeout = 1\ntotal_timeout = 2\n"
    (public / "week.toml").write_text(head + 'forbid = ["torch"]\nforbid_reason = "no"\n' + profiles)
    (hidden / "week.toml").write_text(head + 'inherit = ["forbid", "forbid_reason"]\n' + profiles)
    week = load_week(hidden)
    assert week.forbid == ["torch"] and week.forbid_reason == "no"
    (hidden / "week.toml").write_text(head + 'inherit = ["student_files"]\n' + profiles)
    with pytest.raises(ValueError, match="student_files"):
        load_week(hidden)
    (hidden / "week.toml").write_text(head + 'forbid = []\ninherit = ["forbid"]\n' + profiles)
    with pytest.raises(ValueError, match="both sets and inherits"):
        load_week(hidden)


def test_week1s_hidden_suite_forbids_what_the_public_one_does():
    from grader.config import load_week

    hidden, public = load_week(config.week_suite("week1")), load_week(config.week_suite("week1", public=True))
    assert "torch" in hidden.forbid and hidden.forbid == public.forbid


def test_every_weeks_suites_follow_the_rule():
    """Hidden suites use their week's public probes or their own; every public suite has probes."""
    for hidden in sorted((ROOT / "solutions").glob("week*")):
        public = ROOT / "assignments" / hidden.name / "public"
        assert base_suite(hidden) == public and (public / "probes.py").is_file()
        assert probes_file(hidden).is_file()
        shared = {p.name for p in public.glob("*.py")} & {p.name for p in hidden.glob("*.py")} - {"plan.py", "probes.py"}
        assert not shared, f"{hidden.name}: {sorted(shared)} in both suites (one copy, in the public suite)"


RUN_HIDDEN = """
import sys
from pathlib import Path

import pytest

from grader import config

config.ASSIGNMENTS = Path(sys.argv[1])
sys.exit(pytest.main([sys.argv[2], "-q", "-p", "no:cacheprovider", "--rootdir", sys.argv[2], "-rf"]))
"""


def test_a_shared_check_runs_in_the_hidden_module_with_rewritten_asserts(course, tmp_path):
    """The hidden suite grades a public check unchanged: collected under the hidden module, and pytest
    rewrites its assertions (the message names the values) as it does the suite's own."""
    public, hidden = course
    (public / "test_public.py").write_text("def test_shared():\n    x = 1\n    assert x == 2\n")
    (hidden / "test_week9.py").write_text(
        "from grader.config import public_module\n\ntest_shared = public_module(__file__, 'test_public').test_shared\n")
    run = subprocess.run([sys.executable, "-c", RUN_HIDDEN, str(tmp_path / "assignments"), str(hidden)],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "week9/test_week9.py::test_shared - assert 1 == 2" in run.stdout, run.stdout
