#!/usr/bin/env bash
# The project's test command (README names it): makes sure .venv holds Weft with its dev
# extra (quick when it already does), then runs the whole pytest suite with it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${WEFT_CI_VENV:-.venv}"
bash scripts/install-deploy-tools.sh >/dev/null
bash scripts/install-image.sh --venv "$VENV" --editable --extras dev >/dev/null
export PATH="$PWD/$VENV/bin:$PATH"
# The modules run on WEFT_TEST_WORKERS workers (pytest-xdist; 0 runs them in this process). Most of
# the suite waits on federations, Spark and the network rather than on the CPU, so two workers
# finish sooner than one on two cores. Each module stays on one worker (--dist loadfile), so
# its module-scoped fixtures start once.
WORKERS="${WEFT_TEST_WORKERS:-2}"
exec python -m pytest -q -p no:cacheprovider -n "$WORKERS" --dist loadfile --durations=30 "$@"
