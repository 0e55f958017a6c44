#!/usr/bin/env bash
# The peers' own environment for bench.py (never the grading one: otter-grader and nbgrader pull
# their own Jupyter stack). torch is the same pinned CPU wheel as ours; the peers are pinned to the
# releases the figures in BENCHMARKS.md came from.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${PEERS_VENV:-.peers-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q torch==2.13.0 otter-grader==7.0.0 nbgrader==0.9.6 ipykernel
echo "peers installed in $VENV: bench.py finds them there"
