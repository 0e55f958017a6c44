#!/usr/bin/env bash
# Mentor batch grading on the GPU runner: grade every fork on the roster for one week; the
# gradebook, Canvas CSV, per-student reports and the cohort summary (Markdown, HTML) land in OUT. Inputs come from the environment:
#   WEEK=week1..week6  ROSTER=path in the repository  DEADLINE=ISO time (optional)  OUT=batch-out
set -euo pipefail
cd "$(dirname "$0")/.."
case "${WEEK:-}" in week[1-6]) ;; *) echo "::error::WEEK must be week1..week6, got '${WEEK:-}'"; exit 4 ;; esac
ROSTER="${ROSTER:-roster.csv}"
OUT="${OUT:-batch-out}"
[ -f "$ROSTER" ] || { echo "::error::roster not found: $ROSTER"; exit 4; }
PROFILE=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then PROFILE=cuda; fi
args=(batch "$WEEK" --roster "$ROSTER" --out "$OUT" --profile "$PROFILE" --format json --format md --format html)
[ -n "${DEADLINE:-}" ] && args+=(--deadline "$DEADLINE")
.venv/bin/grader "${args[@]}"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$OUT/summary-$WEEK.md" ]; then cat "$OUT/summary-$WEEK.md" >> "$GITHUB_STEP_SUMMARY"; fi
