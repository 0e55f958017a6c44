"""The HTML reports in a real headless browser (Debian's chromium): they render, make no
console errors or blocked requests, show the score, and student text stays text."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from grade_factory import XSS, check, failure, make_grade, write_artifacts

from grader.report.html import render_cohort_html, render_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (ci/install.sh installs it "
                                                        "as root: apt-get install chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--enable-logging=stderr",
         "--v=0"]


def _chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, cwd=tmp, check=False)


def _console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line or "Refused to" in line or "Content Security Policy" in line]


def _render_and_check(html: str, name: str, tmp_path: Path, expect: str) -> tuple[str, Path]:
    page = tmp_path / f"{name}.html"
    page.write_text(html)
    dom = _chromium(page, tmp_path, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert not _console_problems(dom.stderr), _console_problems(dom.stderr)
    assert expect in dom.stdout
    shot = tmp_path / f"{name}.png"
    run = _chromium(page, tmp_path, f"--screenshot={shot}", "--window-size=1100,1400", "--hide-scrollbars")
    assert shot.is_file(), run.stderr[-2000:]
    assert shot.stat().st_size > 20_000, "a blank page compresses to a few KB"
    return dom.stdout, shot


def test_week_report_renders_with_score_and_inert_student_text(tmp_path):
    grade = make_grade(checks=[check("value_ops", 2, 2), check("value_backward", 1.5, 3, "gradient", message=XSS)],
                       failures=[failure(evalue=XSS)], artifacts=write_artifacts(tmp_path / "art"))
    dom, _shot = _render_and_check(render_html(grade), "week", tmp_path, "3.5 / 5")
    assert "<script" not in dom.lower(), "a student's <script> became an element"
    assert not re.search(r"<img[^>]+onerror", dom, re.IGNORECASE)
    assert "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    assert dom.count('src="data:image/png;base64,') == 2


def test_cohort_report_renders(tmp_path):
    grades = [make_grade(f"s{i}", checks=[check("value_ops", i % 3, 2), check("train_loss", 3 * (i % 2), 3)])
              for i in range(12)]
    dom, _ = _render_and_check(render_cohort_html(grades), "cohort", tmp_path, "12 <span")
    assert "Checks: pass rates" in dom and "s11" in dom


@pytest.mark.slow
def test_real_week5_report_renders_with_its_curve_and_samples(solution_grade, tmp_path):
    """The week-5 solution's own report, as a student would open it: score, loss curve, samples."""
    grade = solution_grade("week5")
    assert grade.status == "graded" and grade.score == grade.max_score > 0
    expect = f"{grade.score:g} / {grade.max_score:g}"
    dom, _shot = _render_and_check(render_html(grade), "week5", tmp_path, expect)
    assert "Loss curves" in dom and "Samples" in dom
    assert dom.count('src="data:image/png;base64,') >= 1
