"""One copy of each week's suite code: the public suite holds what both suites share, the hidden
suite imports it (grader.config: base_suite, probes_file, public_module, suite_hash).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grader import config
from grader.config import base_suite, probes_file, public_module, suite_hash


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
