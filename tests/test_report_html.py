"""The HTML reports: self-contained, verdict first, every student string escaped."""

from __future__ import annotations

import base64
import json
import re
from collections import Counter

from grade_factory import XSS, check, failure, make_grade, write_artifacts

from grader.report.charts import PNG_MAGIC, ArtifactError, read_curve, write_curve
from grader.report.html import render_cohort_html, render_html, strip_ansi
from grader.report.markdown import write_report


def _no_live_markup(page: str) -> None:
    """No script element, no event handler, no external reference anywhere in the page."""
    assert "<script" not in page.lower()
    assert not re.search(r"<[^>]+\son\w+\s*=", page, re.IGNORECASE), "an element carries an event handler"
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page, re.IGNORECASE), "external request"


def test_verdict_comes_first_then_categories_and_checks():
    page = render_html(make_grade())
    assert page.index("3.5 / 8") < page.index("Scores by category") < page.index("Checks")
    assert "(44%)" in page
    assert "max relative error 3.0e-05" in page
    assert "≤ 2.5" in page and "2.71" in page  # target beside measured value
    assert "Gradient accuracy" in page
    _no_live_markup(page)


def test_student_text_is_inert(tmp_path):
    grade = make_grade(student="eve" + XSS, checks=[check("x", 0, 1, message=XSS, title=XSS)],
                       failures=[failure(evalue=XSS)], artifacts=write_artifacts(tmp_path / "art"),
                       status="failed_to_run", message=XSS)
    page = render_html(grade)
    _no_live_markup(page)
    assert "&lt;script&gt;document.title=&quot;pwned&quot;&lt;/script&gt;" in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    cohort = render_cohort_html([grade, make_grade()])
    _no_live_markup(cohort)
    assert "&lt;script&gt;" in cohort


def test_failing_cell_and_traceback_without_colour_codes():
    page = render_html(make_grade(failures=[failure()]))
    assert "Cell 5 [5]: ZeroDivisionError" in page
    assert "y = x / 0" in page
    assert "\x1b" not in page
    assert strip_ansi("\x1b[0;31mred\x1b[0m plain") == "red plain"


def test_artifacts_are_embedded_as_data_uris(tmp_path):
    page = render_html(make_grade(artifacts=write_artifacts(tmp_path / "art")))
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2  # the plotted loss curve and the heatmap figure
    assert all(base64.b64decode(data).startswith(PNG_MAGIC) for data in images)
    assert "bigram training" in page and "olivia." in page
    assert page.index("Loss curves") < page.index("Figures") < page.index("Samples") < page.index("Measurements")
    assert "| vanilla | 1.91 |" in page


def test_bad_artifacts_become_messages_not_crashes(tmp_path):
    (tmp_path / "fake.png").write_text("<svg onload=alert(1)>")
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "wrong.json").write_text(json.dumps({"kind": "loss_curve", "steps": [1, 2], "train": [1]}))
    artifacts = {p.name: str(p) for p in tmp_path.iterdir()}
    artifacts["gone.txt"] = str(tmp_path / "missing.txt")
    page = render_html(make_grade(artifacts=artifacts))
    assert "fake.png: not a PNG image" in page
    assert "broken.json: not JSON" in page
    assert "train has 1 values for 2 steps" in page
    assert "gone.txt: cannot read artifact" in page
    _no_live_markup(page)


def test_curve_schema_rejects_non_numbers(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"kind": "loss_curve", "steps": [0, 1], "train": [1.0, "x"]}))
    try:
        read_curve(path)
    except ArtifactError as exc:
        assert "non-number" in str(exc)
    else:
        raise AssertionError("a string in a curve was accepted")


def test_curve_without_kind_or_steps_uses_every_series(tmp_path):
    path = tmp_path / "toy.json"
    path.write_text(json.dumps({"step": [0, 1, 2], "loss": [1.0, float("inf"), 0.2]}))
    curve = read_curve(path)
    assert curve["steps"] == [0, 1, 2] and list(curve["series"]) == ["loss"]
    page = render_html(make_grade(artifacts={"toy.json": str(path)}))
    assert page.count('src="data:image/png;base64,') == 1


def test_probe_curve_pairs_round_trip_and_bad_pairs_write_nothing(tmp_path):
    """Weeks 4 and 5 return [[step, loss], ...] from the sandbox; the check turns them into a plot."""
    path = tmp_path / "train.json"
    assert write_curve(path, [[0, 3.3], [100, 2.6], [199, float("nan")]], title="GPT train loss", target=2.2)
    curve = read_curve(path)
    assert curve["steps"] == [0.0, 100.0, 199.0] and curve["series"]["train"][:2] == [3.3, 2.6]
    assert curve["target"] == 2.2 and curve["title"] == "GPT train loss"
    for bad in ([[0, "x"]], [[0]], "not pairs", [], None):
        assert not write_curve(tmp_path / "bad.json", bad, title="t")
    assert not (tmp_path / "bad.json").exists()


def test_cohort_report_has_histogram_pass_rates_and_rows():
    grades = [make_grade("ada"), make_grade("bob", checks=[check("value_ops", 2, 2), check("train_loss", 3, 3)]),
              make_grade("cy", checks=[], status="invalid_submission", message="no notebook found")]
    page = render_cohort_html(grades)
    assert "3 <span" in page and "submissions" in page
    # the histogram: inline SVG, one bar (titled with its count) per occupied 10 % bin
    svg = page[page.index("<svg"):page.index("</svg>")]
    bins = Counter(min(9, int(g.percent // 10)) for g in grades)
    assert sorted(re.findall(r"<title>(\d+)</title></rect>", svg)) == sorted(str(n) for n in bins.values())
    assert "score (%)" in svg and "students" in svg
    # value_ops: full marks for ada and bob; train_loss: only bob of two
    rates = dict(re.findall(r"<code class=\"muted\">(\w+)</code></td><td class=\"num\">(\d+ / \d+)</td>", page))
    assert rates["value_ops"] == "2 / 2" and rates["train_loss"] == "1 / 2"
    assert "no notebook found" in page
    _no_live_markup(page)


def test_write_report_dispatches_html(tmp_path):
    written = write_report(make_grade(), tmp_path, ("html", "json"))
    assert written["html"].name == "ada-week1.html"
    assert written["html"].read_text().startswith("<!DOCTYPE html>")


def test_cohort_page_names_students_links_their_reports_and_agrees_with_the_summary():
    from grader.cohort.gradebook import cohort_summary, summary_markdown

    grades = [make_grade("ada"), make_grade("bob", checks=[check("value_ops", 2, 2), check("train_loss", 3, 3)]),
              make_grade("cy", checks=[check("value_ops", 1, 2), check("train_loss", 0, 3)]),
              make_grade("dee", checks=[check("value_ops", 2, 2), check("train_loss", 1, 3)])]
    grades[2] = grades[2].model_copy(update={"late_days": 2})
    summary = cohort_summary(grades, students={"ada": {"name": "Ada Lovelace"}, "cy": {"name": "Cy D. Fect"}})
    page = render_cohort_html(grades, summary=summary)
    assert "Ada Lovelace" in page and "Cy D. Fect" in page
    assert '<a href="reports/ada-week1.html">ada</a>' in page
    row = next(r for r in page.split("<tr>") if "reports/cy-week1.html" in r)
    assert '<td class="num">2</td>' in row and "<th>Late days</th>" in page  # cy's two late days
    median = summary["scores"]["median"]
    assert f"median {median:g}%" in page and f"median {median}%" in summary_markdown(summary)
