"""Read a grade's artifacts defensively and draw the figures the HTML reports embed.

Artifacts are files the trusted checks wrote (Grade.artifacts: name -> path); their numbers
and text often come from the student's code, so every reader caps sizes and validates types.

Loss-curve schema (`*.json` artifacts), the one format a check writes to get a plot:

    {"kind": "loss_curve", "title": "training loss",      # both optional
     "steps": [0, 100, 200],                              # x values ("step" works too; default 0..n-1)
     "train": [3.3, 2.6, 2.4], "val": [3.3, 2.7, 2.5],    # every other list of numbers is a series
     "ylabel": "loss", "target": 2.2}                     # optional: y label, a dashed target line

Figures are drawn with matplotlib's Agg canvas directly (no pyplot, so no global state and
no display), and returned as PNG bytes; the cohort's histogram is plain SVG.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

MAX_JSON_BYTES = 2 * 2**20
MAX_TEXT_BYTES = 20_000
MAX_PNG_BYTES = 3 * 2**20
MAX_POINTS = 2000  # a curve with more points is thinned for the plot
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SERIES = 6
COLOURS = ("#2563eb", "#ea580c", "#7c3aed", "#0891b2", "#db2777", "#65a30d")


class ArtifactError(ValueError):
    """An artifact that cannot be shown; the message is printed in its place."""


def read_text_artifact(path: str | Path) -> tuple[str, bool]:
    """A sample file's text, capped; returns (text, truncated)."""
    raw = _read(path, MAX_TEXT_BYTES + 1)
    truncated = len(raw) > MAX_TEXT_BYTES
    return raw[:MAX_TEXT_BYTES].decode("utf-8", errors="replace"), truncated


def read_png_artifact(path: str | Path) -> bytes:
    """A figure's bytes, only when they really are a PNG of reasonable size."""
    raw = _read(path, MAX_PNG_BYTES + 1)
    if len(raw) > MAX_PNG_BYTES:
        raise ArtifactError(f"image over {MAX_PNG_BYTES // 2**20} MiB, not embedded")
    if not raw.startswith(PNG_MAGIC):
        raise ArtifactError("not a PNG image")
    return raw


def read_curve(path: str | Path) -> dict[str, Any]:
    """Load and validate a loss-curve artifact (schema in the module docstring)."""
    raw = _read(path, MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise ArtifactError("curve file too large")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ArtifactError(f"not JSON: {exc}") from None
    except (RecursionError, MemoryError) as exc:  # 2 MiB of `[` is deeper than json.loads can go
        raise ArtifactError(f"not a readable curve ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("kind", "loss_curve") != "loss_curve":
        raise ArtifactError('not a loss curve (expected an object with "kind": "loss_curve")')
    x_key = "steps" if "steps" in data else "step" if "step" in data else None
    series = {k: v for k, v in data.items() if isinstance(v, list) and k != x_key}
    if not series:
        raise ArtifactError("curve has no series (lists of numbers such as train, val or loss)")
    if len(series) > MAX_SERIES:
        raise ArtifactError(f"curve has {len(series)} series, more than {MAX_SERIES}")
    first = _numbers(next(iter(series.values())), next(iter(series)))
    steps = _numbers(data[x_key], x_key) if x_key else [float(i) for i in range(len(first))]
    curve: dict[str, Any] = {"title": str(data.get("title", ""))[:200], "steps": steps,
                             "ylabel": str(data.get("ylabel", "loss"))[:60], "series": {}}
    for name, values in series.items():
        values = _numbers(values, name)
        if len(values) != len(steps):
            raise ArtifactError(f"{name} has {len(values)} values for {len(steps)} steps")
        curve["series"][str(name)[:40]] = values
    target = data.get("target")
    if isinstance(target, (int, float)) and not isinstance(target, bool) and math.isfinite(target):
        curve["target"] = float(target)
    return curve


def write_curve(path: str | Path, points: Any, *, title: str, target: float | None = None) -> bool:
    """Write [[step, loss], ...] pairs (a probe's output, so untrusted) as a loss-curve artifact.

    Returns False, writing nothing, when the pairs are not numbers: the check's verdict comes from
    its own measurement, and a missing plot must not turn into a failed check.
    """
    try:
        pairs = [(float(step), float(loss)) for step, loss in points][:MAX_POINTS * 10]
    except (TypeError, ValueError):
        return False
    if not pairs:
        return False
    data: dict[str, Any] = {"kind": "loss_curve", "title": title,
                            "steps": [s for s, _ in pairs], "train": [v for _, v in pairs]}
    if target is not None:
        data["target"] = float(target)
    # allow_nan: a diverged run's NaN losses still plot (as gaps)
    Path(path).write_text(json.dumps(data))
    return True


def curve_png(curve: dict[str, Any]) -> bytes:
    """Plot a validated curve: train and val against steps, with the target line if any."""
    fig, ax = _figure(6.4, 3.4)
    steps = curve["steps"]
    stride = max(1, len(steps) // MAX_POINTS)
    for (name, values), colour in zip(curve["series"].items(), COLOURS):
        finite = [v if math.isfinite(v) else float("nan") for v in values]  # a diverged run still plots
        ax.plot(steps[::stride], finite[::stride], label=name, color=colour, linewidth=1.6)
    if "target" in curve:
        ax.axhline(curve["target"], color="#16a34a", linestyle="--", linewidth=1.2,
                   label=f"target {curve['target']:g}")
    ax.set_xlabel("step")
    ax.set_ylabel(curve["ylabel"])
    if curve["title"]:
        ax.set_title(curve["title"], fontsize=11)
    ax.grid(alpha=0.3)
    ax.legend(frameon=False)
    return _png(fig)


def histogram_svg(percents: list[float], bins: int = 10) -> str:
    """A cohort's score distribution, 0-100 % in `bins` equal bins, as inline SVG.

    Bars and axes only, so no matplotlib: importing it and drawing this one chart took 0.7 s at the
    very end of every batch, after the last grading, while the cores stood idle."""
    counts = [0] * bins
    for p in percents:
        if math.isfinite(p):
            counts[min(bins - 1, max(0, int(p * bins // 100)))] += 1
    top = max(counts) or 1
    step = max(1, math.ceil(top / 5))  # at most 6 whole-number ticks on the students axis
    y_max = step * math.ceil(top / step)
    w, h, left, right, bottom, up = 640, 300, 56, 12, 44, 16
    plot_w, plot_h = w - left - right, h - bottom - up

    def y(v: float) -> float:
        return up + plot_h * (1 - v / y_max)

    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
              f'role="img" font-family="sans-serif" font-size="12" fill="#334155">')]
    for v in range(0, y_max + 1, step):
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e2e8f0"/>')
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    bar_w = plot_w / bins
    for i, n in enumerate(counts):
        if n:
            parts.append(f'<rect x="{left + i * bar_w + 1:.1f}" y="{y(n):.1f}" width="{bar_w - 2:.1f}" '
                         f'height="{y(0) - y(n):.1f}" fill="#2563eb"><title>{n}</title></rect>')
    for i in range(bins + 1):
        x = left + i * bar_w
        parts.append(f'<text x="{x:.1f}" y="{h - bottom + 16}" text-anchor="middle">{100 * i // bins}</text>')
    parts += [f'<line x1="{left}" x2="{w - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#64748b"/>',
              f'<text x="{left + plot_w / 2:.1f}" y="{h - 6}" text-anchor="middle">score (%)</text>',
              f'<text transform="translate(14 {up + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle">students</text>',
              "</svg>"]
    return "".join(parts)


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Fixed margins, not layout="tight": the tight layout took half of a chart's 0.09 s, and a batch
    # draws one chart per submission in its parent process.
    fig = Figure(figsize=(width, height), dpi=100)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.15, top=0.9)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _numbers(value: Any, name: str) -> list[float]:
    if not isinstance(value, list) or not value:
        raise ArtifactError(f"{name} must be a non-empty list of numbers")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            raise ArtifactError(f"{name} holds a non-number: {str(item)[:40]!r}")
        out.append(float(item))
    return out


def _read(path: str | Path, limit: int) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise ArtifactError(f"cannot read artifact: {exc.strerror or exc}") from None
