"""What every benchmark prints beside a figure: the load average, CPU seconds, interleaved ratios.

A figure measured on a shared machine means little alone. Each benchmark therefore prints,
as soon as a section is measured (flushed, so a stopped run keeps what it had):

- the load average when the section ended (`load 1-min/5-min/15-min`);
- wall seconds and the CPU seconds this process and its descendants used meanwhile
  (`cpu_seconds()`: its own, those of children it has waited for, and those of every live
  descendant read from /proc, so a process pool that outlives the section is counted);
- for a comparison, `interleaved()` rounds: ours, then the baseline, `rounds` times, each
  round giving one ratio; the median of the per-round ratios is the figure, with min and
  max beside it, so a busy spell moves both sides of one ratio instead of one side of all.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_ROUNDS = 3
_TICKS = os.sysconf("SC_CLK_TCK")


def load_average() -> tuple[float, float, float]:
    """The machine's 1, 5 and 15 minute load averages."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


def load_text() -> str:
    one, five, fifteen = load_average()
    return f"load {one:.2f}/{five:.2f}/{fifteen:.2f} on {len(os.sched_getaffinity(0))} cores"


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # the process ended meanwhile
        return None
    # The command name (field 2) may hold spaces; every field after it follows the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_cpu_seconds(pid: int, with_waited_children: bool = True) -> float:
    """User + system seconds of one process (and the children it has waited for), from /proc."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # After the name: state ppid ... utime(14) stime(15) cutime(16) cstime(17), 1-based in stat(5).
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    ticks = utime + stime + ((cutime + cstime) if with_waited_children else 0)
    return ticks / _TICKS


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` in the process tree."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds of `pid` (default: this process) and all its descendants, live or reaped."""
    root = os.getpid() if pid is None else pid
    return process_cpu_seconds(root) + sum(process_cpu_seconds(child) for child in descendants(root))


@dataclass
class Span:
    """Wall and CPU seconds of one measured stretch, and the load average at its end."""

    wall_s: float = 0.0
    cpu_s: float = 0.0
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def text(self) -> str:
        return f"{self.wall_s:.3f} s wall, {self.cpu_s:.2f} CPU-s, {load_text_of(self.load)}"

    def as_dict(self) -> dict[str, Any]:
        return {"wall_s": round(self.wall_s, 4), "cpu_s": round(self.cpu_s, 3), "load": list(self.load)}


def load_text_of(load: tuple[float, float, float]) -> str:
    return f"load {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}"


@contextmanager
def span() -> Iterator[Span]:
    """Measure the body: wall seconds, CPU seconds of this process tree, load at the end."""
    measured = Span()
    cpu0, wall0 = cpu_seconds(), time.perf_counter()
    try:
        yield measured
    finally:
        measured.wall_s = time.perf_counter() - wall0
        measured.cpu_s = cpu_seconds() - cpu0
        measured.load = load_average()


def report(label: str, text: str) -> None:
    """One result line, flushed at once so that a stopped run keeps it."""
    print(f"{label}: {text}", flush=True)


@dataclass
class Rounds:
    """Interleaved rounds of ours and a baseline: per-round seconds and ratios."""

    ours_s: list[float] = field(default_factory=list)
    theirs_s: list[float] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        """Per round: the baseline's time over ours (above 1: we are faster)."""
        return [t / o for o, t in zip(self.ours_s, self.theirs_s, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def spread(self) -> tuple[float, float]:
        return min(self.ratios), max(self.ratios)

    def text(self, unit: str = "x") -> str:
        low, high = self.spread()
        return (f"{self.ratio:.2f}{unit} (median of {len(self.ratios)} rounds, min {low:.2f}, max {high:.2f}; "
                f"load {min(self.loads):.2f}-{max(self.loads):.2f})")


def interleaved(ours: Callable[[], Any], theirs: Callable[[], Any], rounds: int = MIN_ROUNDS,
                ours_scale: float = 1.0, theirs_scale: float = 1.0,
                clock: Callable[[], float] = time.perf_counter) -> tuple[Rounds, Any, Any]:
    """Time `ours` then `theirs`, `rounds` times; each side's seconds are multiplied by its scale.

    A scale turns a time into a comparable unit (e.g. seconds per operation when the two sides
    run different counts). `clock` is wall time by default; one-thread work is better timed
    with `time.process_time` (CPU seconds), which other work on the machine does not inflate.
    Returns the rounds and each side's last result.
    """
    if rounds < MIN_ROUNDS:
        raise ValueError(f"a ratio needs at least {MIN_ROUNDS} interleaved rounds, got {rounds}")
    measured = Rounds()
    out_ours: Any = None
    out_theirs: Any = None
    for _ in range(rounds):
        start = clock()
        out_ours = ours()
        measured.ours_s.append((clock() - start) * ours_scale)
        start = clock()
        out_theirs = theirs()
        measured.theirs_s.append((clock() - start) * theirs_scale)
        measured.loads.append(load_average()[0])
    return measured, out_ours, out_theirs


def ratio_keys(prefix: str, measured: Rounds) -> dict[str, float]:
    """`prefix` (the median ratio) with `prefix_min` and `prefix_max` beside it."""
    low, high = measured.spread()
    return {prefix: round(measured.ratio, 3), f"{prefix}_min": round(low, 3), f"{prefix}_max": round(high, 3)}
