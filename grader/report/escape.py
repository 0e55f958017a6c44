"""Text from a submission made inert for the format it lands in.

A student controls exception names and messages, cell sources, file names and (through the roster)
names and sections. Each writer puts such text into its format only through one of these:

    md_text(s)       one line of GitHub Markdown: no heading, list, table cell break, link, image,
                     HTML tag or comment, emphasis, math, @mention or bare-URL autolink
    md_code_span(s)  an inline code span whose backticks outnumber any run inside it
    md_fence(s)      a fenced block whose fence is longer than any backtick run inside it
    csv_cell(s)      a spreadsheet cell that cannot start a formula (OWASP: CSV injection)

GitHub workflow commands are handled where lines are printed (grader.report.github.commands_stopped).
"""

from __future__ import annotations

import re

ZWSP = "\u200b"  # breaks @mentions and autolinks without changing what a reader sees
# Characters that open inline markup anywhere in a line (CommonMark + GFM tables, strikethrough,
# GitHub's math); `_` only at a word boundary (CommonMark never opens emphasis inside a word).
_INLINE = set("\\`*[]|~$")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
# What makes a line a block at its start: an ATX heading, a list item, a setext underline or thematic
# break (`>`, `*` and `_` are escaped anyway). Only then is the first character escaped.
_BLOCK_START = re.compile(r"^(?:#{1,6}(?:\s|$)|[+\-](?:\s|$)|\d{1,9}[.)](?:\s|$)|[=\-]+\s*$)")
_ORDERED = re.compile(r"^(\d{1,9})([.)])")
_AUTOLINK = re.compile(r"(?i)(://|www\.)")
_BACKTICKS = re.compile(r"`+")
# Bidirectional overrides reorder what a reader sees (a score shown backwards); they have no use here.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _one_line(text: object, limit: int | None) -> str:
    text = " ".join(_BIDI.sub("\ufffd", str(text)).split())
    return text if limit is None or len(text) <= limit else text[: max(0, limit - 1)] + "…"


def md_text(text: object, limit: int | None = None) -> str:
    """`text` as one line of inert Markdown (whitespace collapsed, cut to `limit` characters)."""
    text = _one_line(text, limit)
    out = []
    for i, ch in enumerate(text):
        if ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch in _INLINE:
            out.append("\\" + ch)
        elif ch == "_" and not (0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum()):
            out.append("\\_")
        elif ch == "@":
            out.append("@" + ZWSP)
        else:
            out.append(ch)
    line = _AUTOLINK.sub(lambda m: m[1][0] + ZWSP + m[1][1:], "".join(out))
    if _BLOCK_START.match(line):  # "1. x" -> "1\. x", "## x" -> "\## x"
        line = _ORDERED.sub(r"\1\\\2", line, count=1) if line[0].isdigit() else "\\" + line
    return line


def _longest_run(text: str) -> int:
    return max((len(m) for m in _BACKTICKS.findall(text)), default=0)


def md_code_span(text: object, limit: int | None = None) -> str:
    """`text` in an inline code span (one line): its content is shown verbatim and never parsed."""
    text = _one_line(text, limit)
    ticks = "`" * (_longest_run(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def md_fence(text: str, info: str = "") -> list[str]:
    """Lines of a fenced code block holding `text`: no line inside it can close the fence."""
    fence = "`" * max(3, _longest_run(text) + 1)
    return [fence + info, *text.splitlines(), fence]


def csv_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: one that would start a formula gets a leading quote, and
    line breaks become spaces (a bare CR is not quoted by the csv module and splits the row)."""
    text = str(value)
    text = "'" + text if text.startswith(FORMULA_START) else text
    return text.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
