"""The mailbox: delivered messages wait here, by key, until a task reads them or they expire."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from kernel.errors import FailedPrecondition, FederationTimeout, ResourceExhausted, Unavailable
from kernel.federation.wire.frames import MAX_CHUNK_BYTES, WireFrame
from kernel.federation.wire.messages import MessageKey, key_of
from protos.weft.v1 import transfer_pb2
from services.transfer.constants import SEEN_ID_GRACE_S, SPILL_SUFFIX, TABLE_SUFFIX
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


class Signal:
    """A marker in a hand-off pipe: the message ended, or broke off."""

    def __init__(self, name: str) -> None:
        self.name = name


END = Signal("end")
BROKEN = Signal("broken")


@dataclass
class StoredMessage:
    """One message: complete and verified, or (hand-off) flowing straight to a waiting reader."""

    key: MessageKey
    header: transfer_pb2.FrameHeader
    payload: Payload
    checksum: bytes
    expires_at: float
    reading: bool = False
    # Hand-off: chunk frames (as they arrived) pass through this pipe, at most a window of
    # them, to the reader already waiting.
    pipe: asyncio.Queue[bytes | Signal] | None = None
    size: int = 0
    closed: str = ""  # why a hand-off stopped early
    read_ok: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    charged: int = -1  # bytes counted against the quotas (-1: not counted, a hand-off)


@dataclass(frozen=True)
class Quotas:
    """Unread bytes and messages one session, and one sending member, may hold in the mailbox."""

    session_bytes: int
    session_messages: int
    peer_bytes: int
    peer_messages: int


UNLIMITED: Final = Quotas(1 << 62, 1 << 62, 1 << 62, 1 << 62)


@dataclass
class Reservation:
    """A message being written: invisible to readers until committed (unless handed off)."""

    header: transfer_pb2.FrameHeader
    payload: Payload
    id_key: IdKey
    done: asyncio.Event = field(default_factory=asyncio.Event)
    handoff: StoredMessage | None = None
    charge: Callable[[int], None] | None = None  # counts bytes against the quotas (refuses past them)
    charged: int = 0

    async def write(self, frame: WireFrame) -> None:
        """Store a chunk's payload, or pass the chunk frame to the waiting reader (waiting while its pipe is full)."""
        message = self.handoff
        if message is None:
            if self.charge is not None:
                self.charge(len(frame.data))
                self.charged += len(frame.data)
            self.payload.append(frame.data)
            return
        if message.closed:
            raise Unavailable(message.closed)
        assert message.pipe is not None
        await message.pipe.put(frame.raw)
        message.size += len(frame.data)
        if message.closed:
            raise Unavailable(message.closed)


@dataclass(frozen=True)
class MailboxStats:
    messages: int
    memory_bytes: int
    disk_bytes: int
    duplicates_dropped: int
    receivers_waiting: int = 0


class Mailbox:
    """Messages by key with a memory budget, spill files, TTL expiry and duplicate dropping."""

    def __init__(self, spill_dir: Path, memory_budget_bytes: int, window_bytes: int, default_ttl_s: float,
                 quotas: Quotas = UNLIMITED) -> None:
        self.spill_dir = spill_dir
        self.quotas = quotas
        # ("session", id) or ("peer", member id) -> [unread bytes, unread messages]
        self._usage: dict[tuple[str, str], list[int]] = {}
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
        self._waiting: dict[MessageKey, int] = {}  # readers waiting for a message not yet here

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
        if self._waiting.get(message_key):
            # A reader is already waiting: hand the chunks to it as they come, no disk.
            return await self._reserve_handoff(header, key, message_key, path)
        self._charge(header, 0, 1)
        # Tables go straight to disk as they arrive; objects stay in memory while small.
        payload = Payload(path, 0 if is_table else self.window_bytes, self.budget)
        reservation = Reservation(header, payload, key, charge=lambda size: self._charge(header, size, 0))
        self._in_progress[key] = reservation
        return reservation

    # ---- quotas ----------------------------------------------------------------------

    def _scopes(self, header: transfer_pb2.FrameHeader) -> list[tuple[str, str]]:
        return [("session", header.session_id), ("peer", header.src.member_id)]

    def _charge(self, header: transfer_pb2.FrameHeader, size: int, messages: int) -> None:
        """Count a message or its bytes against its session's and its sender's quotas, or refuse it."""
        limits = {"session": (self.quotas.session_bytes, self.quotas.session_messages, "mailbox_session"),
                  "peer": (self.quotas.peer_bytes, self.quotas.peer_messages, "mailbox_peer")}
        for scope in self._scopes(header):
            used = self._usage.get(scope, [0, 0])
            max_bytes, max_messages, option = limits[scope[0]]
            who = f"session {scope[1]}" if scope[0] == "session" else f"member {scope[1]}"
            if messages and used[1] + messages > max_messages:
                raise ResourceExhausted(f"transfer.{option}_max_messages: {who} already has {used[1]} unread "
                                        f"messages here (at most {max_messages})")
            if size and used[0] + size > max_bytes:
                raise ResourceExhausted(f"transfer.{option}_max_mb: {who} would have {used[0] + size} unread bytes "
                                        f"here (at most {max_bytes})")
        for scope in self._scopes(header):
            used = self._usage.setdefault(scope, [0, 0])
            used[0] += size
            used[1] += messages

    def _release(self, header: transfer_pb2.FrameHeader, size: int) -> None:
        for scope in self._scopes(header):
            used = self._usage.get(scope)
            if used is None:
                continue
            used[0] = max(0, used[0] - size)
            used[1] = max(0, used[1] - 1)
            if used == [0, 0]:
                del self._usage[scope]

    def _release_message(self, message: StoredMessage) -> None:
        if message.charged >= 0:
            self._release(message.header, message.charged)
            message.charged = -1

    def usage(self, kind: str, name: str) -> tuple[int, int]:
        """(unread bytes, unread messages) of a session or a sending member."""
        used = self._usage.get((kind, name), [0, 0])
        return used[0], used[1]

    async def _reserve_handoff(self, header: transfer_pb2.FrameHeader, key: IdKey, message_key: MessageKey,
                               path: Path) -> Reservation:
        ttl = self._session_ttl.get(header.session_id, self.default_ttl_s)
        pipe: asyncio.Queue[bytes | Signal] = asyncio.Queue(max(1, self.window_bytes // MAX_CHUNK_BYTES))
        message = StoredMessage(message_key, header, Payload(path, self.window_bytes), b"",
                                time.monotonic() + ttl, pipe=pipe)
        reservation = Reservation(header, message.payload, key, handoff=message)
        self._in_progress[key] = reservation
        async with self._changed:
            self._messages[message_key] = message
            self._changed.notify_all()
        return reservation

    async def commit(self, reservation: Reservation, checksum: bytes) -> StoredMessage:
        """Make a fully written, verified message visible to readers.

        A handed-off message is committed once its reader got the end frame; if the reader
        left first, Unavailable tells the sender to deliver again.
        """
        if reservation.handoff is not None:
            return await self._commit_handoff(reservation, checksum)
        header = reservation.header
        ttl = self._session_ttl.get(header.session_id, self.default_ttl_s)
        message = StoredMessage(key_of(header), header, reservation.payload, checksum, time.monotonic() + ttl,
                                charged=reservation.charged)
        async with self._changed:
            self._messages[message.key] = message
            self._seen[reservation.id_key] = message.expires_at + SEEN_ID_GRACE_S
            self._finish(reservation)
            self._changed.notify_all()
        self._expiry_wakeup.set()
        return message

    async def _commit_handoff(self, reservation: Reservation, checksum: bytes) -> StoredMessage:
        message = reservation.handoff
        assert message is not None and message.pipe is not None
        message.checksum = checksum
        try:
            if not message.closed:
                await message.pipe.put(END)
            await message.done.wait()
            if not message.read_ok:
                raise Unavailable(message.closed or "the receiving task left before the end of the message")
            self._seen[reservation.id_key] = message.expires_at + SEEN_ID_GRACE_S
            self._expiry_wakeup.set()
            return message
        finally:
            self._finish(reservation)

    def abort(self, reservation: Reservation) -> None:
        """Drop a message that failed its checks: nothing of it stays."""
        if reservation.handoff is not None:
            self._close_handoff(reservation.handoff, "the sender's stream broke off; waiting for its retry")
        else:
            self._release(reservation.header, reservation.charged)
        reservation.payload.discard()
        self._finish(reservation)

    def _close_handoff(self, message: StoredMessage, reason: str) -> None:
        """Stop a hand-off: the writer fails at its next chunk, the reader gets BROKEN."""
        if message.closed or message.read_ok:
            return
        message.closed = reason
        if self._messages.get(message.key) is message:
            del self._messages[message.key]
        assert message.pipe is not None
        while not message.pipe.empty():  # unblocks a writer waiting for room
            message.pipe.get_nowait()
        message.pipe.put_nowait(BROKEN)
        message.done.set()

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
            self._waiting[key] = self._waiting.get(key, 0) + 1
            try:
                await asyncio.wait_for(self._changed.wait_for(ready), timeout=max(timeout, 0.0))
            except TimeoutError:
                raise FederationTimeout(
                    f"timed out after {timeout:g}s waiting for {key.name} (tag {key.tag!r}) "
                    f"from {key.src} in session {key.session_id}"
                ) from None
            finally:
                self._waiting[key] -= 1
                if not self._waiting[key]:
                    del self._waiting[key]
            message = self._messages[key]
            message.reading = True
            return message

    async def finish_read(self, message: StoredMessage) -> None:
        """The reader got the whole message: free it."""
        message.read_ok = True
        message.done.set()
        async with self._changed:
            if self._messages.get(message.key) is message:
                del self._messages[message.key]
        self._release_message(message)
        message.payload.discard()

    async def cancel_read(self, message: StoredMessage) -> None:
        """The reader went away before the end: the message waits for the next one."""
        if message.pipe is not None:  # a hand-off cannot be read twice: the sender delivers again
            self._close_handoff(message, "the receiving task left mid-message; deliver again")
            return
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
            for message in dropped:
                self._release_message(message)
                if message.pipe is not None:
                    self._close_handoff(message, f"session {session_id} was cleaned")
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
            self._release_message(message)
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
        waiting = sum(self._waiting.values())
        return MailboxStats(len(messages), memory, disk, self.duplicates_dropped, waiting)
