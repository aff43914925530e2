"""Where a tree's time goes: seconds per phase (encryption, histograms, messages...) of one member."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class PhaseClock:
    """Adds up wall seconds per named phase until `take` hands them over and starts again."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self._seconds[name] = self._seconds.get(name, 0.0) + time.perf_counter() - start

    def take(self) -> dict[str, float]:
        """The seconds per phase since the last call, rounded to milliseconds."""
        taken = {name: round(seconds, 3) for name, seconds in self._seconds.items()}
        self._seconds = {}
        return taken
