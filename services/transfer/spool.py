"""Message payload buffers: bytes held in memory while small, moved to a spill file past a limit."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from kernel.federation.wire.frames import MAX_CHUNK_BYTES


class MemoryBudget:
    """Bytes the mailbox may hold in memory, shared by every message."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self.used = 0

    def reserve(self, n: int) -> bool:
        if self.used + n > self.limit:
            return False
        self.used += n
        return True

    def release(self, n: int) -> None:
        self.used -= n


class Payload:
    """The bytes of one message.

    They stay in memory while the message is at most `memory_limit` bytes and the shared
    `budget` (if any) allows; past either, everything moves to `spill_path` and later bytes
    are appended to that file. Reads work while bytes are still being appended.
    """

    def __init__(self, spill_path: Path, memory_limit: int, budget: MemoryBudget | None = None) -> None:
        self.spill_path = spill_path
        self.memory_limit = memory_limit
        self.budget = budget
        self.size = 0
        self._memory: bytearray | None = bytearray() if memory_limit > 0 else None
        self._fd = -1
        if self._memory is None:
            self._open_file()

    @property
    def memory_bytes(self) -> int:
        return len(self._memory) if self._memory is not None else 0

    @property
    def disk_bytes(self) -> int:
        return self.size if self._memory is None else 0

    @property
    def spilled(self) -> bool:
        return self._memory is None

    def _open_file(self) -> None:
        self.spill_path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.spill_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)

    def _write_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def append(self, data: bytes | memoryview) -> None:
        """Add bytes at the end, spilling to disk when the limits are reached."""
        if self._memory is not None:
            fits = len(self._memory) + len(data) <= self.memory_limit
            if fits and (self.budget is None or self.budget.reserve(len(data))):
                self._memory += data
                self.size += len(data)
                return
            self.spill()
        self._write_all(data)
        self.size += len(data)

    def spill(self) -> None:
        """Move the bytes held in memory to the spill file."""
        if self._memory is None:
            return
        memory, self._memory = self._memory, None
        self._open_file()
        self._write_all(memory)
        if self.budget is not None:
            self.budget.release(len(memory))

    def read(self, offset: int, n: int) -> bytes:
        """Up to `n` bytes from `offset` (fewer at the end)."""
        n = max(0, min(n, self.size - offset))
        if self._memory is not None:
            return bytes(memoryview(self._memory)[offset:offset + n])
        return os.pread(self._fd, n, offset)

    def chunks(self, chunk_size: int = MAX_CHUNK_BYTES) -> Iterator[bytes]:
        offset = 0
        while offset < self.size:
            data = self.read(offset, chunk_size)
            offset += len(data)
            yield data

    def discard(self) -> int:
        """Free memory and delete the spill file; returns the bytes freed."""
        freed = self.size
        if self._memory is not None:
            if self.budget is not None:
                self.budget.release(len(self._memory))
            self._memory = bytearray()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            try:
                os.unlink(self.spill_path)
            except FileNotFoundError:
                pass
        self.size = 0
        return freed
