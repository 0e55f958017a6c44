#!/usr/bin/env bash
# The weeks whose notebooks a pull request changed, one weekN a line: BASE..HEAD file names only,
# read as data (no diff driver runs). WEEK=weekN answers that week alone. When there is none, says
# so in OUT/none.comment.md (the PR comment) and prints nothing. For check_pr.sh and grade_pr.sh.
#   bash ci/pr_weeks.sh BASE_SHA HEAD_SHA
set -uo pipefail
weeks="${WEEK:-}"
if [ -z "$weeks" ] && git cat-file -e "${1:-}^{commit}" 2>/dev/null; then
  weeks=$(git diff --no-ext-diff --no-textconv --name-only --diff-filter=AMR "$1" "$2" -- '*.ipynb' \
    | grep -o -i -E 'week ?[1-6]' | tr -d ' ' | tr '[:upper:]' '[:lower:]' | sort -u)
fi
for week in $weeks; do
  case "$week" in week[1-6]) echo "$week" ;; *) echo "::warning::ignoring '$week'" >&2 ;; esac
done
if [ -z "$weeks" ]; then
  echo "No week notebook changed in this pull request; nothing to grade." | tee "${OUT:-grades}/none.comment.md" >&2
fi
