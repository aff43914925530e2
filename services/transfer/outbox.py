"""The outbox: a message on its way to a peer, held in memory up to the window.

It holds the message's chunk frames as the bytes the task sent: they go to the peer as
they are.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Outbox:
    """The chunks a task is sending, read by the delivery attempts to the peer.

    While the whole message fits in the window, every chunk stays until the peer
    acknowledges, so a delivery attempt that fails can replay the message from its start.
    A longer message streams through: the task is slowed to the peer's pace (at most a
    window in memory) and a failure after the first window is passed on to the task,
    which sends the message again under the same id.
    """

    def __init__(self, window_bytes: int) -> None:
        self.window_bytes = window_bytes
        self.checksum = b""
        self.finished = False
        self.failed = False
        self.replayable = True
        self.size = 0
        self._chunks: deque[tuple[bytes, int]] = deque()  # (chunk frame, payload bytes in it)
        self._first = 0  # index of the first chunk still held
        self._held = 0
        self._read = 0  # chunks the current attempt has taken
        self._changed = asyncio.Event()

    async def append(self, frame: bytes, payload_size: int) -> None:
        """Add a chunk frame; waits while a window of bytes is ahead of the peer."""
        n = len(frame)
        if self.replayable and self._held + n > self.window_bytes:
            self.replayable = False
        while not self.replayable and self._held > 0 and self._held + n > self.window_bytes:
            self._trim()
            if self._held + n <= self.window_bytes:
                break
            self._changed.clear()
            await self._changed.wait()
        self._chunks.append((frame, payload_size))
        self._held += n
        self.size += payload_size
        self._changed.set()

    def _trim(self) -> None:
        while self._first < self._read and self._chunks:
            self._held -= len(self._chunks.popleft()[0])
            self._first += 1

    def finish(self, checksum: bytes) -> None:
        """The task sent its end frame: `checksum` closes the message."""
        self.checksum = checksum
        self.finished = True
        self._changed.set()

    def fail(self) -> None:
        """The task's stream broke: delivery attempts stop without an end frame."""
        self.failed = True
        self._changed.set()

    def restart(self) -> bool:
        """Prepare a new attempt from the first chunk; False when those chunks are gone."""
        if self._first > 0:
            return False
        self._read = 0
        return True

    async def next_chunk(self) -> tuple[bytes, int] | None:
        """The attempt's next (chunk frame, payload bytes), waiting for the task; None at the end."""
        while True:
            index = self._read - self._first
            if index < len(self._chunks):
                self._read += 1
                self._changed.set()  # a waiting append may trim now
                return self._chunks[index]
            if self.finished or self.failed:
                return None
            self._changed.clear()
            await self._changed.wait()
