"""The generated reference pages (components, configuration) match the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_component_and_configuration_references_are_current() -> None:
    result = subprocess.run([sys.executable, "scripts/gen_reference_docs.py", "--check"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
