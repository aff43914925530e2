#!/usr/bin/env bash
# Set up Weft in a virtual environment (once) and run the demo: two local members train a
# vertical logistic regression on bundled data and print its AUC.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WEFT_VENV:-.venv}"
if [ ! -x "$VENV/bin/weft" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -e .
fi
exec "$VENV/bin/weft" demo "$@"
