"""docs/architecture.md: the reader's path names at most twelve files, each once, and every path it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "architecture.md"
PATH = re.compile(r"`((?:kernel|services)/[\w/<>.-]+)`")


def reader_path(text: str) -> list[str]:
    """The first file each numbered step of the "reader's path" section names."""
    section = text.split("## A reader's path", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d+\. (.*?)(?=^\d+\. |\Z)", section, flags=re.MULTILINE | re.DOTALL)
    return [match.group(1) for step in steps if (match := PATH.search(step))]


def test_the_path_from_submitjob_to_fit_takes_at_most_twelve_distinct_files() -> None:
    # Execute
    files = reader_path(PAGE.read_text(encoding="utf-8"))

    # Assert
    assert 8 <= len(files) <= 12
    assert len(set(files)) == len(files)
    assert files[0].startswith("services/scheduler/") and files[-1].startswith("kernel/components/")


def test_every_file_the_page_names_exists() -> None:
    # Prepare: `<name>` stands for any component; the example given is checked instead.
    named = set(PATH.findall(PAGE.read_text(encoding="utf-8")))

    # Execute
    missing = [path for path in sorted(named) if "<" not in path and not (ROOT / path.rstrip("/")).exists()]

    # Assert
    assert len(named) > 12
    assert missing == []
