"""Public week-6 checks: the declared track, and quick structural probes for it."""

from __future__ import annotations

import ast
import json
from pathlib import Path


def declared_track(notebook: Path | None) -> str | None:
    """The last top-level TRACK = "..." in the notebook's code cells (read as text, never run)."""
    track = None
    try:
        cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"] if notebook else []
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"])
        except SyntaxError:
            continue
        for node in tree.body:
            if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                    and node.targets[0].id == "TRACK"):
                value = node.value
                track = value.value.lower() if isinstance(value, ast.Constant) and isinstance(value.value, str) else None
    return track


def plan(profile, thresholds, data_dir, notebook=None):
    track = declared_track(notebook)
    if track == "inspector":
        return [{"id": "maps", "probe": "maps", "args": {}}]
    if track == "architect":
        return [{"id": "rope", "probe": "rope", "args": {}}]
    if track == "specialist":
        return [{"id": "corpus", "probe": "corpus", "args": {}}]
    return []
