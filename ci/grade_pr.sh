#!/usr/bin/env bash
# The course repository (it holds, or fetches, the HIDDEN checks): grade a pull request without running
# anything of the pull request outside the sandbox. ci/workflows/README.md has the threat model.
#
# This script and the grader are the base branch's (grade-pr.yml checks out the trusted base, never
# the PR). The PR's head is fetched into the object store as data only: never checked out, merged,
# sourced or executed here. `grader grade --commit` exports that commit's files from git objects
# (no links, size caps) into scratch and runs the week's notebook in the sandbox, which sees neither
# solutions/ nor this checkout nor the runner's environment; --require-isolation refuses to grade at
# all where bubblewrap is missing. File names from the PR are data too: they only pick the weeks.
#   PR_NUMBER, HEAD_SHA, BASE_SHA   from the pull_request_target event (validated here)
#   WEEK=weekN                      grade that week only (else the weeks whose notebooks the PR changed)
# Reports land in grades/; the workflow's comment job posts them from the grade JSON.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-grades}"
mkdir -p "$OUT"
GRADER="${GRADER_BIN:-.venv/bin/grader}"
[ -x "$GRADER" ] || GRADER="grader"

fail() { echo "::error::$1"; exit 4; }
[[ "${PR_NUMBER:-}" =~ ^[0-9]+$ ]] || fail "PR_NUMBER must be a pull request number"
[[ "${HEAD_SHA:-}" =~ ^[0-9a-f]{40}$ ]] || fail "HEAD_SHA must be a 40-digit commit sha"
[[ "${BASE_SHA:-}" =~ ^[0-9a-f]{40}$ ]] || fail "BASE_SHA must be a 40-digit commit sha"
echo "{\"number\": ${PR_NUMBER}}" > "$OUT/pr.json"

# As root (bubblewrap needs it on GitHub's runners) git refuses a clone another user owns: allow this one.
if [ "$(id -u)" = 0 ] && [ "$(stat -c %u .)" != 0 ]; then git config --global --add safe.directory "$PWD"; fi
# The base was cloned without keeping a token (persist-credentials: false); a private course repository
# needs one to fetch the pull request.
auth=()
if [ -n "${GH_TOKEN:-}" ]; then
  auth=(-c "http.https://github.com/.extraheader=AUTHORIZATION: basic $(printf 'x-access-token:%s' "$GH_TOKEN" | base64 -w0)")
fi
# Objects only: the ref lands under refs/pull/, where `grader grade --commit` looks for it.
git "${auth[@]}" -c protocol.ext.allow=never fetch --no-tags --no-recurse-submodules --quiet origin \
  "+refs/pull/${PR_NUMBER}/head:refs/pull/${PR_NUMBER}/head" || fail "could not fetch pull request #${PR_NUMBER}"
fetched=$(git rev-parse -q --verify "refs/pull/${PR_NUMBER}/head^{commit}")
[ "$fetched" = "$HEAD_SHA" ] || fail "pull request #${PR_NUMBER} moved on (head ${fetched:0:12}); the next run grades it"
git cat-file -e "${BASE_SHA}^{commit}" 2>/dev/null || git "${auth[@]}" fetch --no-tags --quiet origin "$BASE_SHA" \
  || fail "base commit ${BASE_SHA:0:12} not found"
unset GH_TOKEN auth  # nothing after this needs the token: the grading never sees it

weeks=$(OUT="$OUT" bash ci/pr_weeks.sh "$BASE_SHA" "$HEAD_SHA")  # file names, as data

status=0
for week in $weeks; do
  echo "grading ${week} at ${HEAD_SHA:0:12} with the hidden checks"
  "$GRADER" grade "$week" . --commit "$HEAD_SHA" --student "pr-${PR_NUMBER}" --require-isolation --out "$OUT" \
    --format github --format json --format html --format junit
  code=$?
  if [ "$code" -gt 1 ]; then status=$code; fi
done
exit "$status"
