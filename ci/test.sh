#!/usr/bin/env bash
# Install, then run the test suite (what .ci/run calls). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
GRADER_EXTRAS=dev bash ci/install.sh
exec .venv/bin/python -m pytest "$@"
