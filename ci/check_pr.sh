#!/usr/bin/env bash
# Grade the notebooks a pull request changed, one week at a time, and leave the reports in
# grades/ (the workflow uploads grades/*.comment.md for the comment poster).
#   MODE=check (default): the public checks (`grader check`), what a student's fork runs.
#   MODE=grade: the hidden checks (`grader grade`), only where solutions/ is in the repository.
# WEEK=weekN grades that week only; otherwise the weeks are read from the changed files
# (BASE_SHA..HEAD). Exit status: 0 when every report was written, whatever the scores.
set -uo pipefail
cd "$(dirname "$0")/.."
MODE="${MODE:-check}"
OUT="${OUT:-grades}"
mkdir -p "$OUT"
# The comment poster needs the PR number; it re-checks it against the graded commit.
if [[ "${PR_NUMBER:-}" =~ ^[0-9]+$ ]]; then echo "{\"number\": ${PR_NUMBER}}" > "$OUT/pr.json"; fi
GRADER=".venv/bin/grader"
[ -x "$GRADER" ] || GRADER="grader"

changed_notebooks() {
  if [ -n "${BASE_SHA:-}" ] && git cat-file -e "${BASE_SHA}^{commit}" 2>/dev/null; then
    git diff --name-only --diff-filter=AMR "$BASE_SHA" HEAD -- '*.ipynb'
  fi
}

# For a week: the notebook this PR changed (a "Copy of weekN.ipynb" from Colab counts), else the stub.
notebook_for() {
  local week="$1" hit
  hit=$(changed_notebooks | grep -i -E "(^|/)(copy of )*${week}[^/]*\.ipynb$|(^|/)${week}/[^/]*\.ipynb$" | tail -n 1 || true)
  if [ -n "$hit" ]; then echo "$hit"; else echo "assignments/${week}/${week}.ipynb"; fi
}

if [ -n "${WEEK:-}" ]; then
  weeks="$WEEK"
else
  weeks=$(changed_notebooks | grep -o -i -E 'week ?[1-6]' | tr -d ' ' | tr '[:upper:]' '[:lower:]' | sort -u)
fi
if [ -z "$weeks" ]; then
  echo "No week notebook changed in this pull request; nothing to grade." | tee "$OUT/none.comment.md"
  exit 0
fi

status=0
for week in $weeks; do
  case "$week" in week[1-6]) ;; *) echo "::warning::ignoring '$week'"; continue ;; esac
  notebook=$(notebook_for "$week")
  if [ ! -f "$notebook" ]; then
    echo "::error::${week}: no notebook at ${notebook}"
    status=1
    continue
  fi
  echo "grading ${week}: ${notebook} (${MODE})"
  if [ "$MODE" = grade ]; then
    "$GRADER" grade "$week" "$notebook" --student "${GITHUB_ACTOR:-student}" --out "$OUT" \
      --format github --format json --format html --format junit
  else
    "$GRADER" check "$week" "$notebook" --out "$OUT" --format github --format json --format html
  fi
  code=$?
  # 0 all passed, 1 points lost: both are reports. Anything else is a harness or usage error.
  if [ "$code" -gt 1 ]; then status=$code; fi
done
exit "$status"
