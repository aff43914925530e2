"""The mailbox: delivered messages wait here, by key, until a task reads them or they expire."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from kernel.errors import FailedPrecondition, FederationTimeout
from protos.weft.v1 import transfer_pb2
from services.transfer.constants import SEEN_ID_GRACE_S, SPILL_SUFFIX, TABLE_SUFFIX
from services.transfer.frames import MessageKey, key_of
from services.transfer.spool import MemoryBudget, Payload

log = logging.getLogger("weft.transfer.mailbox")
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")

# A message id is only unique per sending member and session: a peer must not be able to
# burn another member's ids.
IdKey = tuple[str, str, str]


def safe_name(part: str) -> str:
    """A file-name-safe rendering of a session id."""
    return _UNSAFE.sub(lambda m: f"%{ord(m.group()):02x}", part)


def id_key(header: transfer_pb2.FrameHeader) -> IdKey:
    return header.session_id, header.src.member_id, header.message_id


@dataclass
class StoredMessage:
    """One complete, verified message."""

    key: MessageKey
    header: transfer_pb2.FrameHeader
    payload: Payload
    checksum: bytes
    expires_at: float
    reading: bool = False


@dataclass
class Reservation:
    """A message being written: invisible to readers until committed."""

    header: transfer_pb2.FrameHeader
    payload: Payload
    id_key: IdKey
    done: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass(frozen=True)
class MailboxStats:
    messages: int
    memory_bytes: int
    disk_bytes: int
    duplicates_dropped: int


class Mailbox:
    """Messages by key with a memory budget, spill files, TTL expiry and duplicate dropping."""

    def __init__(self, spill_dir: Path, memory_budget_bytes: int, window_bytes: int, default_ttl_s: float) -> None:
        self.spill_dir = spill_dir
        self.window_bytes = window_bytes
        self.default_ttl_s = default_ttl_s
        self.budget = MemoryBudget(memory_budget_bytes)
        self.duplicates_dropped = 0
        self._messages: dict[MessageKey, StoredMessage] = {}
        self._in_progress: dict[IdKey, Reservation] = {}
        self._seen: dict[IdKey, float] = {}  # id -> when it may be forgotten
        self._changed = asyncio.Condition()
        self._expiry_wakeup = asyncio.Event()
        self._session_ttl: dict[str, float] = {}

    # ---- startup and sessions --------------------------------------------------------

    def clear_spill_dir(self) -> None:
        """Remove spill files a previous run left (their messages died with that process)."""
        if self.spill_dir.exists():
            shutil.rmtree(self.spill_dir, ignore_errors=True)
        self.spill_dir.mkdir(parents=True, exist_ok=True)

    def set_session_ttl(self, session_id: str, ttl_s: float) -> None:
        self._session_ttl[session_id] = ttl_s if ttl_s > 0 else self.default_ttl_s

    def _session_dir(self, session_id: str) -> Path:
        return self.spill_dir / safe_name(session_id)

    # ---- writing ---------------------------------------------------------------------

    async def reserve(self, header: transfer_pb2.FrameHeader) -> Reservation | None:
        """Start storing a message; None when this message id was already stored (a duplicate)."""
        key = id_key(header)
        while key in self._in_progress:
            # The same message is arriving on another stream (a retry racing its first try).
            await self._in_progress[key].done.wait()
        if key in self._seen:
            self.duplicates_dropped += 1
            return None
        message_key = key_of(header)
        if message_key in self._messages:
            raise FailedPrecondition(
                f"the mailbox already holds {message_key.describe()} under another message id"
            )
        is_table = header.kind == transfer_pb2.PAYLOAD_KIND_TABLE
        suffix = TABLE_SUFFIX if is_table else SPILL_SUFFIX
        path = self._session_dir(header.session_id) / f"{uuid.uuid4().hex}{suffix}"
        # Tables go straight to disk as they arrive; objects stay in memory while small.
        payload = Payload(path, 0 if is_table else self.window_bytes, self.budget)
        reservation = Reservation(header, payload, key)
        self._in_progress[key] = reservation
        return reservation

    async def commit(self, reservation: Reservation, checksum: bytes) -> StoredMessage:
        """Make a fully written, verified message visible to readers."""
        header = reservation.header
        ttl = self._session_ttl.get(header.session_id, self.default_ttl_s)
        message = StoredMessage(key_of(header), header, reservation.payload, checksum, time.monotonic() + ttl)
        async with self._changed:
            self._messages[message.key] = message
            self._seen[reservation.id_key] = message.expires_at + SEEN_ID_GRACE_S
            self._finish(reservation)
            self._changed.notify_all()
        self._expiry_wakeup.set()
        return message

    def abort(self, reservation: Reservation) -> None:
        """Drop a message that failed its checks: nothing of it stays."""
        reservation.payload.discard()
        self._finish(reservation)

    def _finish(self, reservation: Reservation) -> None:
        if self._in_progress.get(reservation.id_key) is reservation:
            del self._in_progress[reservation.id_key]
        reservation.done.set()

    # ---- reading ---------------------------------------------------------------------

    async def take(self, key: MessageKey, timeout: float) -> StoredMessage:
        """Wait (event-driven) for the message under `key` and claim it for reading."""

        def ready() -> bool:
            message = self._messages.get(key)
            return message is not None and not message.reading

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout=max(timeout, 0.0))
            except TimeoutError:
                raise FederationTimeout(
                    f"timed out after {timeout:g}s waiting for {key.name} (tag {key.tag!r}) "
                    f"from {key.src} in session {key.session_id}"
                ) from None
            message = self._messages[key]
            message.reading = True
            return message

    async def finish_read(self, message: StoredMessage) -> None:
        """The reader got the whole message: free it."""
        async with self._changed:
            if self._messages.get(message.key) is message:
                del self._messages[message.key]
        message.payload.discard()

    async def cancel_read(self, message: StoredMessage) -> None:
        """The reader went away before the end: the message waits for the next one."""
        async with self._changed:
            message.reading = False
            self._changed.notify_all()
        self._expiry_wakeup.set()

    # ---- cleaning --------------------------------------------------------------------

    async def clean_session(self, session_id: str) -> tuple[int, int]:
        """Drop every message of a session; returns (messages, bytes freed)."""
        async with self._changed:
            keys = [key for key in self._messages if key.session_id == session_id]
            dropped = [self._messages.pop(key) for key in keys]
            for seen in [k for k in self._seen if k[0] == session_id]:
                del self._seen[seen]
        freed = sum(message.payload.discard() for message in dropped)
        self._session_ttl.pop(session_id, None)
        shutil.rmtree(self._session_dir(session_id), ignore_errors=True)
        return len(dropped), freed

    async def expire(self) -> int:
        """Drop messages past their TTL and forget old message ids; returns messages dropped."""
        now = time.monotonic()
        async with self._changed:
            expired = [m for m in self._messages.values() if m.expires_at <= now and not m.reading]
            for message in expired:
                del self._messages[message.key]
            for seen in [k for k, until in self._seen.items() if until <= now]:
                del self._seen[seen]
        for message in expired:
            log.warning("expired unread %s", message.key.describe())
            message.payload.discard()
        return len(expired)

    def next_expiry(self) -> float | None:
        times = [m.expires_at for m in self._messages.values() if not m.reading]
        times.extend(self._seen.values())
        return min(times) if times else None

    async def run_expiry(self) -> None:
        """Expire messages when their time comes; wakes on new messages, not on a poll."""
        while True:
            await self.expire()
            self._expiry_wakeup.clear()
            upcoming = self.next_expiry()
            wait = None if upcoming is None else max(upcoming - time.monotonic(), 0.0) + 0.01
            try:
                await asyncio.wait_for(self._expiry_wakeup.wait(), timeout=wait)
            except TimeoutError:
                pass

    # ---- numbers ---------------------------------------------------------------------

    def stats(self) -> MailboxStats:
        messages = list(self._messages.values())
        in_progress = list(self._in_progress.values())
        memory = sum(m.payload.memory_bytes for m in messages) + sum(r.payload.memory_bytes for r in in_progress)
        disk = sum(m.payload.disk_bytes for m in messages) + sum(r.payload.disk_bytes for r in in_progress)
        return MailboxStats(len(messages), memory, disk, self.duplicates_dropped)
