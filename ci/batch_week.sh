#!/usr/bin/env bash
# Mentor batch grading on the GPU runner (mentor-batch.yml). Inputs come from the environment:
#   MODE=grade|fetch-only  WEEK=week1..week6  ROSTER=path in the repository  OUT=batch-out
#   DEADLINE=ISO time with a timezone  LATE_POLICY=GRACE_HOURS,PENALTY_PER_DAY,CAP
#   AT_DEADLINE / TRUST_COMMIT_DATES / REGRADE = true|false
# A scheduled fetch-only run (no WEEK) takes the week and deadline that just passed from deadlines.toml
# (ci/due_week.py). The grader validates every option and says what is wrong in one line (exit 4).
set -euo pipefail
cd "$(dirname "$0")/.."
MODE="${MODE:-grade}"
ROSTER="${ROSTER:-roster.csv}"
OUT="${OUT:-batch-out}"
if [ "$MODE" = fetch-only ] && [ -z "${WEEK:-}" ]; then
  due=$(python3 ci/due_week.py "${DEADLINES:-deadlines.toml}")
  [ -n "$due" ] || { echo "no deadline in ${DEADLINES:-deadlines.toml} has just passed; nothing to record"; exit 0; }
  read -r WEEK DEADLINE <<< "$due"
fi
case "${WEEK:-}" in week[1-6]) ;; *) echo "::error::WEEK must be week1..week6, got '${WEEK:-}'"; exit 4 ;; esac
if [ -n "${GITHUB_ENV:-}" ]; then echo "WEEK=$WEEK" >> "$GITHUB_ENV"; fi  # names the uploaded record
[ -f "$ROSTER" ] || { echo "::error::roster not found: $ROSTER"; exit 4; }
args=(batch "$WEEK" --roster "$ROSTER" --out "$OUT")
[ -n "${DEADLINE:-}" ] && args+=(--deadline "$DEADLINE")
if [ "$MODE" = fetch-only ]; then
  .venv/bin/grader "${args[@]}" --fetch-only
  exit
fi
PROFILE=cpu
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then PROFILE=cuda; fi
args+=(--profile "$PROFILE" --format json --format md --format html --format gradescope)
[ -n "${LATE_POLICY:-}" ] && args+=(--late-policy "$LATE_POLICY")
[ "${AT_DEADLINE:-false}" = true ] && args+=(--at-deadline)
[ "${TRUST_COMMIT_DATES:-false}" = true ] && args+=(--trust-commit-dates)
[ "${REGRADE:-false}" = true ] && args+=(--regrade)
status=0
.venv/bin/grader "${args[@]}" || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$OUT/summary-$WEEK.md" ]; then cat "$OUT/summary-$WEEK.md" >> "$GITHUB_STEP_SUMMARY"; fi
exit "$status"
