#!/usr/bin/env bash
# Builds the board's front-end files: installs the npm packages pinned by
# services/board/static/package-lock.json (npm ci, no install scripts) and copies their browser
# builds into services/board/static/vendor/ (git-ignored). Skips the work when vendor/ is already
# newer than the lock. Needs npm (Debian's `npm`; scripts/install-deploy-tools.sh installs it).
set -euo pipefail

STATIC="$(cd "$(dirname "$0")/.." && pwd)/services/board/static"
VENDOR="$STATIC/vendor"
FILES=(
  "chart.js/dist/chart.umd.js:chart.umd.js"
  "cytoscape/dist/cytoscape.min.js:cytoscape.min.js"
  "dagre/dist/dagre.min.js:dagre.min.js"
  "cytoscape-dagre/cytoscape-dagre.js:cytoscape-dagre.js"
)

current=1
for entry in "${FILES[@]}"; do
  target="$VENDOR/${entry#*:}"
  [ -f "$target" ] && [ "$target" -nt "$STATIC/package-lock.json" ] || current=0
done
if [ "$current" = 1 ]; then
  echo "build-board-assets: vendor/ is current"
  exit 0
fi

command -v npm >/dev/null 2>&1 || { echo "build-board-assets: npm is not installed (scripts/install-deploy-tools.sh)" >&2; exit 1; }
(cd "$STATIC" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
mkdir -p "$VENDOR"
for entry in "${FILES[@]}"; do
  cp "$STATIC/node_modules/${entry%%:*}" "$VENDOR/${entry#*:}"
done
rm -rf "$STATIC/node_modules"  # only the copies are served (and packaged)
echo "build-board-assets: copied ${#FILES[@]} files into $VENDOR"
