#!/usr/bin/env bash
# Gradescope's `run_autograder`: grade /autograder/submission with the hidden checks and leave
# /autograder/results/results.json. Copy this file to the autograder zip as run_autograder,
# with the course repository (grader + solutions) at /autograder/source and WEEK set in setup.sh
# (or in /autograder/source/WEEK). AUTOGRADER_ROOT overrides /autograder (for tests).
set -uo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="${GRADER_SOURCE:-$ROOT/source}"
WEEK="${WEEK:-$(cat "$SOURCE/WEEK" 2>/dev/null || true)}"
mkdir -p "$ROOT/results"
GRADER="$SOURCE/.venv/bin/grader"
[ -x "$GRADER" ] || GRADER="grader"
case "$WEEK" in
  week[1-6]) ;;
  *) printf '{"score": 0, "output": "autograder misconfigured: WEEK is %s", "tests": []}\n' "${WEEK:-unset}" \
       > "$ROOT/results/results.json"; exit 0 ;;
esac
out=$(mktemp -d)
"$GRADER" grade "$WEEK" "$ROOT/submission" --student submission --out "$out" --format gradescope --format html
if [ -f "$out/submission-$WEEK.gradescope.json" ]; then
  cp "$out/submission-$WEEK.gradescope.json" "$ROOT/results/results.json"
else
  # no score at all (not a zero the student did not earn): the machine failed, not the submission
  printf '{"output": "the grader could not grade this submission (internal error); your instructor has been told", "tests": []}\n' \
    > "$ROOT/results/results.json"
fi
exit 0
