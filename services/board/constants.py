"""Constants of the board."""

from __future__ import annotations

from pathlib import Path
from typing import Final

PACKAGE_DIR: Final = Path(__file__).resolve().parent
TEMPLATES_DIR: Final = PACKAGE_DIR / "templates"
STATIC_DIR: Final = PACKAGE_DIR / "static"
#: Where scripts/build-board-assets.sh puts Chart.js, Cytoscape and dagre from npm (git-ignored).
VENDOR_DIR: Final = STATIC_DIR / "vendor"
VENDOR_FILES: Final = ("chart.umd.js", "cytoscape.min.js", "dagre.min.js", "cytoscape-dagre.js")

COOKIE_NAME: Final = "weft_board"
SESSION_KEY_BYTES: Final = 32
#: Paths served without a login: the form itself, its static files, the liveness probe.
OPEN_PATHS: Final = frozenset({"/login", "/healthz"})
OPEN_PREFIXES: Final = ("/static/",)
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-Weft-Csrf"
#: Calls to the scheduler time out after this many seconds.
SCHEDULER_TIMEOUT_S: Final = 30.0
JOBS_PAGE_SIZE: Final = 100
#: Job statuses the jobs page filters by (the scheduler's names).
JOB_STATUSES: Final = ("waiting", "running", "success", "failed", "stopped")
