"""tests/benchmarks/calibrate.py's own arithmetic and inputs (the calibrations themselves are benchmarks,
minutes each): the false-negative rate a band is judged by, and the specialist's second corpus."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def calibrate():
    spec = importlib.util.spec_from_file_location("calibrate_under_test", ROOT / "tests" / "benchmarks" / "calibrate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_false_negative_rate_is_the_normal_tail_past_the_line(calibrate):
    lower = calibrate.Metric("loss", "impl", values=[1.0, 3.0], pass_at=4.0)  # mean 2, sd 1: the line at +2 sd
    assert lower.failing() == 0
    assert lower.normal_fn_rate() == pytest.approx(0.5 * math.erfc(2 / math.sqrt(2)))  # 2.3 %
    higher = calibrate.Metric("validity", "impl", values=[0.4, 0.6], pass_at=0.3, higher_is_better=True)
    assert higher.normal_fn_rate() == pytest.approx(0.5 * math.erfc(2 / math.sqrt(2)))
    assert calibrate.Metric("v", "i", values=[0.2, 0.6], pass_at=0.3, higher_is_better=True).failing() == 1
    errors = calibrate.Metric("rel. error", "impl", values=[1e-6, 1e-4], pass_at=1e-3, log=True)  # decades
    assert errors.normal_fn_rate() == pytest.approx(0.5 * math.erfc(2 / math.sqrt(2)))
    assert "| 0/2 |" in errors.row() and "≤ 0.001" in errors.row()


def test_the_specialists_second_corpus_is_python_source_of_the_reference_modules(calibrate):
    text = calibrate.stdlib_source_corpus()
    assert text == calibrate.stdlib_source_corpus()  # the same file each time, on one Python
    assert 290_000 < len(text) <= 300_000 and text.endswith("\n") and text.isascii()
    assert "def " in text and "import " in text  # source, not the pydoc rendering of the first corpus
    reference = (ROOT / "fixtures" / "submissions" / "week6" / "specialist_passes" / "my_corpus.txt").read_text()
    assert text[:2000] not in reference
