#!/usr/bin/env bash
# The project's test command (README names it): makes sure .venv holds Weft with its dev
# extra (quick when it already does), then runs the whole pytest suite with it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WEFT_CI_VENV:-.venv}"
bash scripts/install-deploy-tools.sh >/dev/null
bash scripts/install-image.sh --venv "$VENV" --editable --extras dev >/dev/null
export PATH="$PWD/$VENV/bin:$PATH"
exec python -m pytest -q -p no:cacheprovider "$@"
