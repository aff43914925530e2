"""Task logs on disk: follow the stdout/stderr files a task writes, stream new lines, cap their size.

A task writes its output straight to files (opened in append mode), so it keeps running
and logging while the executor restarts. The executor wakes on inotify when a file
grows, hands complete new lines to its listener, and keeps each stream within its cap:
when a file reaches half the cap it is copied to `<name>.1` (replacing the older copy) and
truncated, so a stream never holds more than the cap on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from services.executor.constants import ROTATED_SUFFIX

log = logging.getLogger("weft.executor.logs")

_IN_MODIFY = 0x00000002
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_READ_CHUNK = 4 * 1024 * 1024
# Without inotify nothing wakes us when a file grows: look this often instead.
_FALLBACK_INTERVAL_S = 0.5

LineListener = Callable[[int, str], None]


def _inotify_fd(directory: Path) -> int:
    """An inotify descriptor watching `directory` for writes, or -1 where inotify is missing."""
    name = ctypes.util.find_library("c")
    if name is None:
        return -1
    libc = ctypes.CDLL(name, use_errno=True)
    if not hasattr(libc, "inotify_init1"):
        return -1
    fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
    if fd < 0:
        return -1
    if libc.inotify_add_watch(fd, str(directory).encode(), _IN_MODIFY) < 0:
        os.close(fd)
        return -1
    return fd


class _FollowedFile:
    def __init__(self, stream: int, path: Path) -> None:
        self.stream = stream
        self.path = path
        self.offset = 0
        self.partial = b""


class LogFollower:
    """Follows one task's log files; `listener(stream, line)` gets each new complete line."""

    def __init__(self, files: dict[int, Path], max_bytes: int, listener: LineListener,
                 wants_lines: Callable[[], bool]) -> None:
        self.files = [_FollowedFile(stream, path) for stream, path in files.items()]
        self.max_bytes = max_bytes
        self.listener = listener
        self.wants_lines = wants_lines
        self._fd = -1
        self._fallback: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self, from_end: bool = False) -> None:
        """Begin following; with `from_end`, lines already written are not delivered."""
        if from_end:
            for followed in self.files:
                followed.offset = _size(followed.path)
        self._loop = asyncio.get_running_loop()
        directory = self.files[0].path.parent
        self._fd = _inotify_fd(directory)
        if self._fd >= 0:
            self._loop.add_reader(self._fd, self._on_inotify)
        else:
            self._fallback = self._loop.create_task(self._poll_forever())
        self.poll()

    def _on_inotify(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._fd, 65536):
                pass
        self.poll()

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(_FALLBACK_INTERVAL_S)
            self.poll()

    def poll(self) -> None:
        """Deliver what was written since the last look; rotate a file past its cap."""
        more = False
        for followed in self.files:
            more = self._advance(followed) or more
        if more and self._loop is not None:
            self._loop.call_soon(self.poll)

    def _advance(self, followed: _FollowedFile) -> bool:
        size = _size(followed.path)
        if size < followed.offset:  # truncated by someone else: start over
            followed.offset, followed.partial = 0, b""
        unread = size - followed.offset
        if unread > 0:
            if self.wants_lines():
                with open(followed.path, "rb") as handle:
                    handle.seek(followed.offset)
                    chunk = handle.read(min(unread, _READ_CHUNK))
                followed.offset += len(chunk)
                self._deliver(followed, chunk)
            else:
                followed.offset, followed.partial = size, b""
        if followed.offset < size:
            return True
        if size >= max(1, self.max_bytes // 2):
            self._rotate(followed)
        return False

    def _deliver(self, followed: _FollowedFile, chunk: bytes) -> None:
        data = followed.partial + chunk
        *lines, followed.partial = data.split(b"\n")
        for line in lines:
            self.listener(followed.stream, line.rstrip(b"\r").decode("utf-8", errors="replace"))

    def _rotate(self, followed: _FollowedFile) -> None:
        rotated = followed.path.with_name(followed.path.name + ROTATED_SUFFIX)
        try:
            shutil.copyfile(followed.path, rotated)
            os.truncate(followed.path, 0)
        except OSError as exc:
            log.warning("cannot rotate %s: %s", followed.path, exc)
            return
        followed.offset, followed.partial = 0, b""

    def close(self) -> None:
        """Deliver the last lines (a final line without newline included) and stop."""
        self.poll()
        for followed in self.files:
            if followed.partial and self.wants_lines():
                self.listener(followed.stream, followed.partial.decode("utf-8", errors="replace"))
            followed.partial = b""
        if self._fd >= 0:
            if self._loop is not None:
                self._loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1
        if self._fallback is not None:
            self._fallback.cancel()
            self._fallback = None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def tail_error(path: Path, limit: int = 64 * 1024) -> str:
    """The last `error: ...` line the task printed (its one-line failure reason), or ''."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, _size(path) - limit))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    for line in reversed(text.splitlines()):
        if line.startswith("error: "):
            return line[len("error: "):].strip()
    return ""


class LogChunk:
    """What `read_chunk` found: the bytes, where to read next, the file's size, a restart."""

    def __init__(self, data: bytes, next_offset: int, size: int, restarted: bool) -> None:
        self.data = data
        self.next_offset = next_offset
        self.size = size
        self.restarted = restarted


def read_chunk(path: Path, offset: int, max_bytes: int, whole: bool) -> LogChunk:
    """Up to `max_bytes` of `path` from `offset`, cut after its last newline.

    A chunk ends inside a line only when `whole` is set (the writer is gone) or when one
    line is longer than `max_bytes`. An offset past the end means the file was rotated or
    truncated since: reading restarts at 0 and the chunk says so.
    """
    size = _size(path)
    restarted = False
    if offset < 0 or offset > size:
        offset, restarted = 0, True
    if offset == size:
        return LogChunk(b"", offset, size, restarted)
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(max_bytes)
    except OSError:
        return LogChunk(b"", offset, size, restarted)
    reached_end = offset + len(data) >= size
    if not (whole and reached_end):
        cut = data.rfind(b"\n")
        if cut >= 0:
            data = data[:cut + 1]
        elif len(data) < max_bytes:
            data = b""  # a line still being written: wait for its end
    return LogChunk(data, offset + len(data), size, restarted)
