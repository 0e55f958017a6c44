#!/usr/bin/env bash
# Set up the pinned grading environment in .venv (idempotent). Installs bubblewrap when run as
# root on Debian; elsewhere the sandbox falls back to a weaker level and says so in every grade.
# GRADER_EXTRAS=dev (what ci/test.sh sets) adds the project's own test tools (ruff, actionlint, Ray,
# the dataset builders) and chromium for the browser tests; students and graders need neither.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${GRADER_EXTRAS:-}"
case "$EXTRAS" in ""|dev|data|ray) ;; *) echo "error: GRADER_EXTRAS must be empty, dev, data or ray" >&2; exit 4 ;; esac

if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null) \
      || echo "notice: could not install bubblewrap; grading will use the 'unshare' or 'process' isolation level"
  else
    echo "notice: bubblewrap is missing and this is not root; install it (apt-get install bubblewrap) for full isolation"
  fi
fi

# Chromium renders the HTML reports in tests/test_browser.py (skipped without it).
if [ "$EXTRAS" = dev ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "notice: could not install chromium; the browser tests of the HTML reports will be skipped"
  else
    echo "notice: chromium is missing and this is not root; the browser tests of the HTML reports will be skipped"
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch==2.13.0 comes from the CPU wheel on local disk; the constraints file pins everything.
.venv/bin/python -m pip install -q -c ci/constraints.txt -e ".${EXTRAS:+[$EXTRAS]}"

# The probes' fixed-address allocator (grader/run/detalloc.c): an order-dependent bug then gets the same
# grade every time. Without a C compiler grades still work, and record that the heap was not fixed.
if command -v cc >/dev/null 2>&1; then
  cc -O2 -shared -fPIC -o .venv/lib/grader-detalloc.so grader/run/detalloc.c -lpthread \
    || echo "notice: could not build grader/run/detalloc.c; order-dependent bugs may grade differently between runs"
else
  echo "notice: no C compiler (cc); order-dependent bugs may grade differently between runs (apt-get install gcc)"
fi
