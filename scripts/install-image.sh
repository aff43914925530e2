#!/usr/bin/env bash
# Installs Weft and its locked Python dependencies into a virtualenv: the container images'
# install steps, also run by CI so that a broken step fails there first. Dependencies come from
# requirements/<set>.txt (exact versions with hashes, pip --require-hashes; scripts/lock.py writes
# them from pyproject.toml). Safe to run again: when the venv already holds the set it skips pip.
#
#   scripts/install-image.sh --venv DIR [--python PY] [--extras SET] [--editable]
#                            [--deps-only] [--require-java]
#
#   --venv DIR       virtualenv to install into (created with PY when missing)
#   --python PY      interpreter that creates the venv (default: python3); 3.11 or newer
#   --extras SET     install set: core (default; scheduler, transfer), spark (+ pyspark: the
#                    executor), dev (everything: tests, lint, CI)
#   --editable       install the project in development mode (pip install -e)
#   --deps-only      install the dependencies but not the project (the image caches this layer)
#   --require-java   fail unless a Java 17+ runtime is on PATH (Spark needs it)
#
# The packages are installed by uv when one is on PATH (or named by WEFT_UV) or the set's lock
# holds one (dev: pip installs that uv first), else by pip; WEFT_INSTALLER=pip forces pip. Both
# check every file against the lock's hashes.
set -euo pipefail

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
fail() { echo "install-image: $*" >&2; exit 1; }

PYTHON=python3
VENV=""
EXTRAS="core"
EDITABLE=0
DEPS_ONLY=0
REQUIRE_JAVA=0
while [ $# -gt 0 ]; do
  case "$1" in
    --venv) VENV="${2:?--venv needs a directory}"; shift 2 ;;
    --python) PYTHON="${2:?--python needs an interpreter}"; shift 2 ;;
    --extras) EXTRAS="${2:?--extras needs an install set: core, spark or dev}"; shift 2 ;;
    --editable) EDITABLE=1; shift ;;
    --deps-only) DEPS_ONLY=1; shift ;;
    --require-java) REQUIRE_JAVA=1; shift ;;
    -h|--help) usage 0 ;;
    *) echo "install-image: unknown option $1" >&2; usage 2 ;;
  esac
done
[ -n "$VENV" ] || fail "--venv is required (the virtualenv to install into)"

SRC="$(cd "$(dirname "$0")/.." && pwd)"
[ -f "$SRC/pyproject.toml" ] || fail "no pyproject.toml in $SRC"

if [ "$REQUIRE_JAVA" = 1 ]; then
  command -v java >/dev/null 2>&1 || fail "java is not on PATH; Spark needs a Java 17 runtime"
  JAVA_MAJOR="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
  [ -n "$JAVA_MAJOR" ] && [ "$JAVA_MAJOR" -ge 17 ] \
    || fail "Spark needs Java 17 or newer; java -version reports '${JAVA_MAJOR:-unknown}'"
fi

# The install set: one locked requirements file (an old comma list naming one set still works).
SET="${EXTRAS//,/ }"
SET="$(echo $SET)"
case "$SET" in ""|core) SET=core ;; esac
LOCK="$SRC/requirements/$SET.txt"
if [ ! -f "$LOCK" ]; then
  SETS="$(cd "$SRC/requirements" 2>/dev/null && ls -- *.txt 2>/dev/null | sed 's/\.txt$//' | tr '\n' ' ')"
  fail "no install set '$EXTRAS' (requirements/$SET.txt); the sets are: ${SETS:-none, run scripts/lock.py}"
fi

if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PYTHON" >/dev/null 2>&1 || fail "interpreter '$PYTHON' not found"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || fail "'$PYTHON' is $("$PYTHON" -V 2>&1); Weft needs Python 3.11 or newer"
  # pip itself is part of the lock: the venv's bundled pip installs the locked one below
  "$PYTHON" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
"$VPY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || fail "the venv $VENV runs $("$VPY" -V 2>&1); Weft needs Python 3.11 or newer"

STAMP="$VENV/.weft-install-stamp"
WANT_STAMP="$( (cat "$LOCK"; echo "set=$SET"; echo "editable=$EDITABLE"; echo "src=$SRC") | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && "$VPY" -m pip check >/dev/null 2>&1; then
  echo "install-image: the venv already holds install set $SET"
else
  # --require-hashes: a package whose bytes differ from the lock's is refused; --no-deps: the lock
  # is the whole closure, nothing outside it may slip in. uv, when at hand (the dev set brings it;
  # WEFT_UV names one), installs the same files with the same hashes several times faster. A set
  # whose lock holds uv (dev) installs that uv first, with pip from the same lock, and the rest
  # with it: its cache then also serves the other sets' venvs (scripts/check_install_sets.py).
  UV="${WEFT_UV:-$(command -v uv || true)}"
  if [ -z "$UV" ] && [ "${WEFT_INSTALLER:-}" != pip ] && grep -q '^uv==' "$LOCK"; then
    UV_LOCK="$(mktemp)"
    sed -n '/^uv==/,/[^\\]$/p' "$LOCK" > "$UV_LOCK"
    "$VPY" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$UV_LOCK"
    rm -f "$UV_LOCK"
    UV="$VENV/bin/uv"
  fi
  if [ -n "$UV" ] && [ "${WEFT_INSTALLER:-}" != pip ]; then
    "$UV" pip install -q --python "$VPY" --require-hashes --no-deps -r "$LOCK"
  else
    "$VPY" -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r "$LOCK"
  fi
  rm -f "$STAMP"  # written only once the project is installed too
fi

if [ "$DEPS_ONLY" = 1 ]; then
  echo "install-image: dependencies installed into $VENV (project not installed: --deps-only)"
  exit 0
fi

# pip check above passes only when what is installed fits together; the project itself is
# reinstalled unless it is an editable install of this very checkout (-I: a weft.egg-info in
# the working directory must not answer for the venv).
EDITABLE_HERE="$("$VPY" -I - "$SRC" <<'PY'
import json
import sys
from importlib import metadata
from pathlib import Path

try:
    dist = metadata.distribution("weft")
    info = json.loads(dist.read_text("direct_url.json") or "{}")
except metadata.PackageNotFoundError:
    info = {}
here = Path(sys.argv[1]).resolve().as_uri()
print(int(info.get("dir_info", {}).get("editable", False) and info.get("url") == here))
PY
)"
if [ "$EDITABLE" = 1 ]; then
  if [ "$EDITABLE_HERE" != 1 ] || [ ! -f "$STAMP" ]; then
    "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$SRC"
  fi
else
  # Build from a copy of what the package holds: no build/ left in the checkout, and no stale
  # module from an earlier build/ slipping into the install.
  BUILD_DIR="$(mktemp -d)"
  trap 'rm -rf "$BUILD_DIR"' EXIT
  tar -C "$SRC" --exclude=__pycache__ -cf - pyproject.toml README.md kernel services protos \
    | tar -C "$BUILD_DIR" -xf -
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation "$BUILD_DIR"
fi

# What the image's entrypoint needs: the console script and the packages it imports.
[ -x "$VENV/bin/weft" ] || fail "the console script $VENV/bin/weft was not installed"
"$VPY" -c 'import kernel, protos, services.common.config' \
  || fail "the installed project does not import; see the error above"
"$VPY" -m pip check >/dev/null || { "$VPY" -m pip check; fail "installed packages conflict"; }
echo "$WANT_STAMP" > "$STAMP"
echo "install-image: weft (install set $SET) installed into $VENV"
