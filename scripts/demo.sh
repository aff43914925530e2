#!/usr/bin/env bash
# Set up Weft in a virtual environment (once) and run the demo: two local members train a
# vertical logistic regression on bundled data and print its AUC.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WEFT_VENV:-.venv}"
if [ ! -x "$VENV/bin/weft" ]; then
  # the locked spark set: `weft demo --backend spark` works too
  bash scripts/install-image.sh --venv "$VENV" --editable --extras spark
fi
exec "$VENV/bin/weft" demo "$@"
