"""The outbox: a message on its way to a peer, kept (memory, then disk) until the peer stores it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.transfer.constants import MAX_CHUNK_BYTES
from services.transfer.spool import Payload


class Outbox:
    """Bytes a task is still sending, readable from the start again by each delivery attempt.

    A retry after the peer dropped the stream replays the message from its first byte, so
    the bytes stay until the peer acknowledged: in memory up to the window, on disk past it.
    """

    def __init__(self, path: Path, memory_limit: int) -> None:
        self.payload = Payload(path, memory_limit)
        self.checksum = b""
        self.finished = False
        self.failed = False
        self._more = asyncio.Event()

    def append(self, data: bytes) -> None:
        self.payload.append(data)
        self._more.set()

    def finish(self, checksum: bytes) -> None:
        """The task sent its end frame: `checksum` closes the message."""
        self.checksum = checksum
        self.finished = True
        self._more.set()

    def fail(self) -> None:
        """The task's stream broke: delivery attempts stop without an end frame."""
        self.failed = True
        self._more.set()

    async def read_from(self, offset: int) -> bytes | None:
        """The next chunk at `offset`, waiting for the task to send it; None at the end."""
        while True:
            if self.payload.size > offset:
                return self.payload.read(offset, MAX_CHUNK_BYTES)
            if self.finished or self.failed:
                return None
            self._more.clear()
            await self._more.wait()

    def discard(self) -> None:
        self.payload.discard()
