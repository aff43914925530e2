"""Process helpers of the executor: identity by start time, process groups, waiting for any pid."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

_PROC = Path("/proc")
# A re-attached process is no child of ours: without pidfd we look at it this often.
_POLL_INTERVAL_S = 0.5


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat).

    Together with the pid it names one process: a pid reused after a restart has another
    start time.
    """
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[19])


def is_running(pid: int, ticks: int | None) -> bool:
    """True if `pid` still names the process that started at `ticks` and is not a zombie."""
    if pid <= 0:
        return False
    try:
        stat = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        return False
    return ticks is None or int(fields[19]) == ticks


def group_members(pgid: int) -> list[int]:
    """Pids of the live (non-zombie) processes in process group `pgid`."""
    members: list[int] = []
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to every process of the group; False if the group is empty."""
    if pgid <= 0:
        return False
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


async def wait_for_exit(pid: int, ticks: int | None) -> None:
    """Return when the process `pid` (started at `ticks`) has ended; it need not be our child."""
    if not is_running(pid, ticks):
        return
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd >= 0:
        loop = asyncio.get_running_loop()
        ended: asyncio.Future[None] = loop.create_future()

        def on_exit() -> None:
            if not ended.done():
                ended.set_result(None)

        loop.add_reader(pidfd, on_exit)
        try:
            if is_running(pid, ticks):  # it may have ended between the check and pidfd_open
                await ended
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return
    while is_running(pid, ticks):  # no pidfd (old kernel): nothing can wake us, so look again
        await asyncio.sleep(_POLL_INTERVAL_S)


async def kill_group(pgid: int, leader_ended: asyncio.Event, grace: float) -> None:
    """SIGTERM the group, give the leader `grace` seconds, then SIGKILL whatever is left.

    The final SIGKILL goes out even when the leader ended in time: a Spark JVM or a Python
    worker it started must not outlive the task.
    """
    if signal_group(pgid, signal.SIGTERM):
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(leader_ended.wait(), grace)
    signal_group(pgid, signal.SIGKILL)
