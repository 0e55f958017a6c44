"""What `grader mutate` tells course staff: the score, which checks kill which mutants, and the
survivors as diffs (the to-do list of whoever strengthens the suite), in the terminal, as Markdown and
as JSON (every mutant with its outcome and the checks that killed it)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from grader.report.markdown import atomic_write
from grader.staff.mutate import MutantResult, MutationRun
from grader.staff.operators import KINDS

OUTCOMES = ("killed", "survived", "timeout", "equivalent", "error", "not_graded")


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _score(results: list[MutantResult]) -> float | None:
    counts = Counter(r.outcome for r in results)
    scored = counts["killed"] + counts["survived"]
    return counts["killed"] / scored if scored else None


def _groups(run: MutationRun, key) -> list[tuple[str, list[MutantResult]]]:
    grouped: dict[str, list[MutantResult]] = defaultdict(list)
    for result in run.results:
        grouped[key(result)].append(result)
    return sorted(grouped.items(), key=lambda kv: (-sum(r.outcome == "survived" for r in kv[1]), kv[0]))


def _row(name: str, results: list[MutantResult]) -> str:
    counts = Counter(r.outcome for r in results)
    return (f"| {name} | {len(results)} | {counts['killed']} | {counts['survived']} | {counts['timeout']} | "
            f"{counts['equivalent']} | {percent(_score(results))} |")


def check_table(run: MutationRun) -> list[tuple[str, int, int]]:
    """(check id, mutants it kills, mutants only it kills), most kills first."""
    kills: Counter = Counter()
    alone: Counter = Counter()
    for result in run.results:
        kills.update(result.killed_by)
        if len(result.killed_by) == 1:
            alone[result.killed_by[0]] += 1
    return sorted(((cid, kills[cid], alone[cid]) for cid in kills), key=lambda row: (-row[1], row[0]))


def headline(run: MutationRun) -> str:
    n = Counter(r.outcome for r in run.results)
    return (f"{run.week}: mutation score {percent(run.score)} ({n['killed']} killed, {n['survived']} survived; "
            f"{n['timeout']} timeouts, {n['equivalent']} equivalent, {n['error']} errors"
            + (f", {n['not_graded']} not graded" if n["not_graded"] else "")
            + f") of {len(run.results)} mutants ({run.generated} in the solution)")


def render_markdown(run: MutationRun, command: str = "") -> str:
    """The full report: summary, tables by check, kind and function, then every survivor's diff."""
    lines = [f"# Mutation report: {run.week}", "", f"**{headline(run)}**", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    per = run.seconds_per_mutant
    lines += [f"Solution (unmutated): {run.baseline_score:g}/{run.baseline_max:g} at the `{run.profile}` profile"
              + (f", checks: {', '.join(run.checks)}" if run.checks else ", all checks") + ".",
              f"{run.graded} graded, {run.cached} from the cache, in {run.wall_seconds:g} s with --jobs {run.jobs}"
              + (f"; {per:.1f} s of grading per mutant" if per else "") + "."
              + (" **Interrupted: the results below are partial.**" if run.interrupted else ""), ""]
    lines += ["The score is killed / (killed + survived): equivalent mutants, timeouts and errors are left out.",
              "A mutant is killed when some check earns fewer points than on the solution.", ""]
    if run.variants:
        lines += [(f"The solution and its mutants were also graded as: {', '.join(run.variants)} (week.toml "
                   "[[mutation.variants]]; a variant with `scopes` grades only the mutants in them); a point lost "
                   "in any of them kills the mutant."), ""]
    lines += ["## Checks", "", "| check | kills | kills alone |", "|---|---|---|"]
    lines += [f"| {cid} | {kills} | {alone} |" for cid, kills, alone in check_table(run)] or ["| (none) | 0 | 0 |"]
    header = ["| {} | mutants | killed | survived | timeouts | equivalent | score |", "|---|---|---|---|---|---|---|"]
    lines += ["", "## By kind", "", header[0].format("kind"), header[1]]
    kinds = _groups(run, lambda r: r.mutant.kind)
    lines += [_row(kind, rs) for kind, rs in kinds]
    lines += [""] + [f"- **{kind}**: {KINDS.get(kind, '')}" for kind, _ in kinds]
    lines += ["", "## By function", "", header[0].format("function"), header[1]]
    lines += [_row(f"`{scope}`", rs) for scope, rs in _groups(run, lambda r: r.mutant.scope)]
    survivors = [r for r in run.results if r.outcome == "survived"]
    lines += ["", f"## Surviving mutants ({len(survivors)})", ""]
    if survivors:
        lines += [("Each is a bug that keeps full marks. Strengthen a check until it loses points, or, if no student "
                   "with this edit is wrong, mark it equivalent in the week's week.toml:"), "",
                  "```toml", "[[mutation.equivalent]]", f'id = "{survivors[0].mutant.id}"',
                  'reason = "why no student with this edit is wrong"', "```", ""]
    lines += _diffs(survivors)
    for title, outcome in (("Timeouts", "timeout"), ("Errors (the harness, not the mutant)", "error")):
        chosen = [r for r in run.results if r.outcome == outcome]
        if chosen:
            lines += [f"## {title} ({len(chosen)})", ""] + _diffs(chosen, note=True)
    equivalent = [r for r in run.results if r.outcome == "equivalent"]
    if equivalent or run.stale_equivalents:
        lines += [f"## Marked equivalent ({len(equivalent)})", ""]
        lines += [f"- `{r.mutant.id}` {r.mutant.title}: {r.note}" for r in equivalent]
        if run.stale_equivalents:
            lines += ["", "week.toml marks ids that no mutant has any more (the solution changed): "
                      + ", ".join(f"`{i}`" for i in run.stale_equivalents)]
        lines += [""]
    if run.skipped_cells:
        lines += ["## Cells not mutated", ""] + [f"- {s}" for s in run.skipped_cells] + [""]
    return "\n".join(lines).rstrip() + "\n"


def _diffs(results: list[MutantResult], note: bool = False) -> list[str]:
    out = []
    for kind, group in _groups_by_kind(results):
        out += [f"### {kind} ({len(group)}): {KINDS.get(kind, '')}", ""]
        for r in group:
            out += [f"`{r.mutant.id}` {r.mutant.operator} in `{r.mutant.scope}` (cell {r.mutant.cell}, line "
                    f"{r.mutant.line})" + (f": {r.note}" if note and r.note else ""), "", "```diff",
                    r.mutant.diff.rstrip("\n"), "```", ""]
    return out


def _groups_by_kind(results: list[MutantResult]) -> list[tuple[str, list[MutantResult]]]:
    grouped: dict[str, list[MutantResult]] = defaultdict(list)
    for r in results:
        grouped[r.mutant.kind].append(r)
    return sorted(grouped.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def render_terminal(run: MutationRun, show: int = 10) -> str:
    """The headline, the checks' kills, survivors by kind and the first `show` survivors' diffs."""
    lines = [headline(run)]
    rows = check_table(run)
    if rows:
        lines.append("kills by check: " + ", ".join(f"{cid} {kills}" for cid, kills, _ in rows))
    survivors = [r for r in run.results if r.outcome == "survived"]
    if survivors:
        by_kind = Counter(r.mutant.kind for r in survivors)
        lines.append("survivors by kind: " + ", ".join(f"{k} {n}" for k, n in by_kind.most_common()))
        for r in survivors[:show]:
            lines += ["", f"survived {r.mutant.id}: {r.mutant.title}", r.mutant.diff.rstrip("\n")]
        if len(survivors) > show:
            lines.append(f"\n... {len(survivors) - show} more survivors in the Markdown report")
    timeouts = [r for r in run.results if r.outcome == "timeout"]
    if timeouts:
        lines.append("timeouts: " + ", ".join(f"{r.mutant.id} ({r.mutant.scope})" for r in timeouts))
    if run.stale_equivalents:
        lines.append("week.toml marks ids no mutant has any more: " + ", ".join(run.stale_equivalents))
    return "\n".join(lines)


def write_mutation_reports(run: MutationRun, out_dir: Path, command: str = "") -> dict[str, Path]:
    """out_dir/<week>-mutation.md and .json (the JSON without each mutant's whole cell source)."""
    paths = {"md": Path(out_dir) / f"{run.week}-mutation.md", "json": Path(out_dir) / f"{run.week}-mutation.json"}
    atomic_write(paths["md"], render_markdown(run, command))
    data = run.model_dump(mode="json", exclude={"results": {"__all__": {"mutant": {"source"}}}})
    data.update({"command": command, "score": run.score, "seconds_per_mutant": run.seconds_per_mutant,
                 "counts": {o: run.count(o) for o in OUTCOMES}})
    atomic_write(paths["json"], json.dumps(data, indent=1) + "\n")
    return paths
