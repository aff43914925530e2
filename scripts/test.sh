#!/usr/bin/env bash
# The project's test command (README names it): the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python -m pytest -q -p no:cacheprovider "$@"
