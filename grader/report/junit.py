"""JUnit XML for one Grade: one testcase per check, so any CI dashboard can show the checks."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from grader.records import Grade
from grader.report.markdown import register

# XML 1.0 cannot hold most control characters, even escaped; a student's message may contain them.
_INVALID_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text: str) -> str:
    return _INVALID_XML.sub("\ufffd", text)


@register("junit", ".junit.xml")
def render_junit(grade: Grade) -> str:
    """<testsuites><testsuite name=weekN> with a testcase per check; lost points are failures."""
    suite = ET.Element("testsuite", name=_clean(f"{grade.week}"), tests=str(len(grade.checks)),
                       timestamp=grade.graded_at.isoformat(),
                       time=f"{sum(c.seconds for c in grade.checks):.3f}")
    failures = errors = skipped = 0
    props = ET.SubElement(suite, "properties")
    for name, value in (("student", grade.student), ("score", f"{grade.score:g}"),
                        ("max_score", f"{grade.max_score:g}"), ("status", grade.status),
                        ("grader_version", grade.provenance.grader_version),
                        ("checks_hash", grade.provenance.checks_hash), ("profile", grade.provenance.profile)):
        ET.SubElement(props, "property", name=name, value=_clean(value))
    for c in grade.checks:
        case = ET.SubElement(suite, "testcase", classname=f"{grade.week}.{c.category.value}",
                             name=_clean(c.id), time=f"{c.seconds:.3f}")
        detail = _clean(f"{c.points:g}/{c.max_points:g} points; measured {c.measured}; target {c.target}\n"
                        f"{c.message}")
        if c.outcome == "skipped":
            skipped += 1
            ET.SubElement(case, "skipped", message=_clean(c.message[:500]))
        elif c.outcome == "error":
            errors += 1
            ET.SubElement(case, "error", message=_clean(c.message[:500]), type="CheckError").text = detail
        elif c.points < c.max_points:
            failures += 1
            ET.SubElement(case, "failure", message=_clean(c.message[:500] or "lost points"),
                          type=c.outcome).text = detail
    if grade.status != "graded":  # no check could run: one failing case says why
        errors += 1
        case = ET.SubElement(suite, "testcase", classname=f"{grade.week}.submission", name="submission")
        ET.SubElement(case, "error", message=_clean(grade.message[:500]), type=grade.status)
        suite.set("tests", str(len(grade.checks) + 1))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("skipped", str(skipped))
    root = ET.Element("testsuites", name=_clean(f"{grade.student} {grade.week}"))
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
