#!/usr/bin/env bash
# A student's fork: run the week's PUBLIC checks on what a pull request hands in, chosen by the
# grader's one rule (grader/fetch/graded.py): the pull request's head commit, and in it the week's
# notebook the student changed (a Colab "Copy of weekN.ipynb" beats the untouched stub). Reports
# land in grades/; the workflow uploads them and pr-comment.yml turns the grade JSON into one PR
# comment and a check run.
#   WEEK=weekN     that week only; otherwise the weeks whose notebooks the PR changed (ci/pr_weeks.sh)
#   HEAD_SHA       the PR's head commit (default: the second parent of the merge commit that
#                  actions/checkout checks out for a pull request, else HEAD)
#   PR_NUMBER      recorded in grades/pr.json for the comment poster (which checks it against GitHub)
# Exit status: 0 when every report was written, whatever the scores.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-grades}"
mkdir -p "$OUT"
if [[ "${PR_NUMBER:-}" =~ ^[0-9]+$ ]]; then echo "{\"number\": ${PR_NUMBER}}" > "$OUT/pr.json"; fi
GRADER=".venv/bin/grader"
[ -x "$GRADER" ] || GRADER="grader"

head="${HEAD_SHA:-}"
if ! [[ "$head" =~ ^[0-9a-f]{40}$ ]]; then
  head=$(git rev-parse -q --verify 'HEAD^2' 2>/dev/null || git rev-parse -q --verify HEAD 2>/dev/null || true)
fi
if [ -z "$head" ]; then
  echo "::error::not a git checkout: nothing to check"
  exit 4
fi

weeks=$(OUT="$OUT" bash ci/pr_weeks.sh "${BASE_SHA:-}" "$head")

status=0
for week in $weeks; do
  echo "checking ${week} at ${head:0:12}"
  "$GRADER" check "$week" . --commit "$head" --out "$OUT" --format github --format json --format html
  code=$?
  # 0 all passed, 1 points lost: both are reports. Anything else is a harness or usage error.
  if [ "$code" -gt 1 ]; then status=$code; fi
done
exit "$status"
