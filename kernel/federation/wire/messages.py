"""Messages on the wire: a message's key and header rules, and the checks of its frames (order, sizes,
checksum) while its payload passes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from kernel.errors import ChecksumMismatch, InvalidArgument
from kernel.federation.base import Party
from kernel.federation.wire.frames import (
    CHECKSUM_BYTES,
    CHECKSUM_NAME,
    MAX_CHUNK_BYTES,
    WireFrame,
    new_checksum,
    parse_frame,
)
from protos.weft.v1 import common_pb2, transfer_pb2


@dataclass(frozen=True)
class MessageKey:
    """Where a message waits in the mailbox: session, variable, tag and both parties."""

    session_id: str
    name: str
    tag: str
    src: Party
    dst: Party

    def describe(self) -> str:
        return f"{self.name} (tag {self.tag!r}) from {self.src} to {self.dst} in session {self.session_id}"


def party_of(message: common_pb2.Party, field: str) -> Party:
    if not message.role or not message.member_id:
        raise InvalidArgument(f"{field}: role and member_id are required")
    return Party(message.role, message.member_id)


def to_proto_party(party: Party) -> common_pb2.Party:
    return common_pb2.Party(role=party.role, member_id=party.member_id)


def key_of(header: transfer_pb2.FrameHeader) -> MessageKey:
    return MessageKey(header.session_id, header.name, header.tag,
                      party_of(header.src, "header.src"), party_of(header.dst, "header.dst"))


def check_header(header: transfer_pb2.FrameHeader) -> MessageKey:
    """Refuse a header missing what the mailbox and the authorisation need."""
    for field in ("message_id", "session_id", "name", "tag"):
        if not getattr(header, field):
            raise InvalidArgument(f"header.{field} is required")
    if header.kind == transfer_pb2.PAYLOAD_KIND_UNSPECIFIED:
        raise InvalidArgument("header.kind is required (PAYLOAD_KIND_OBJECT or PAYLOAD_KIND_TABLE)")
    if header.total_size < 0:
        raise InvalidArgument(f"header.total_size is negative ({header.total_size})")
    if header.checksum and len(header.checksum) != CHECKSUM_BYTES:
        raise InvalidArgument(f"header.checksum must be {CHECKSUM_BYTES} bytes ({CHECKSUM_NAME}), not {len(header.checksum)}")
    return key_of(header)


async def wire_frames(stream: AsyncIterator[bytes]) -> AsyncIterator[WireFrame]:
    """The frames of a call whose requests arrive as bytes."""
    async for raw in stream:
        yield parse_frame(raw)


async def first_header(frames: AsyncIterator[WireFrame]) -> transfer_pb2.FrameHeader:
    """The stream's first frame, which must be a header."""
    async for frame in frames:
        if frame.header is None:
            raise InvalidArgument(f"the first frame must be a header, got {frame.kind or 'an empty frame'}")
        return frame.header
    raise InvalidArgument("empty frame stream: expected a header, chunks and an end frame")


class FrameChecker:
    """Follows one message's chunk and end frames, hashing the payload as it passes."""

    def __init__(self, header: transfer_pb2.FrameHeader, verify: bool = True) -> None:
        self.header = header
        self.verify = verify
        self.next_seq = 0
        self.size = 0
        self.ended = False
        self._checksum = new_checksum()

    def chunk(self, frame: WireFrame) -> None:
        """Check a chunk frame's place and size (and hash its payload)."""
        if self.ended:
            raise InvalidArgument("a chunk frame came after the end frame")
        if frame.seq != self.next_seq:
            raise InvalidArgument(f"chunk seq {frame.seq} out of order (expected {self.next_seq})")
        data = frame.data
        if len(data) > MAX_CHUNK_BYTES:
            raise InvalidArgument(f"chunk {frame.seq} holds {len(data)} bytes (at most {MAX_CHUNK_BYTES})")
        if self.header.total_size and self.size + len(data) > self.header.total_size:
            raise InvalidArgument(f"payload longer than header.total_size {self.header.total_size}")
        self.next_seq += 1
        self.size += len(data)
        if self.verify:
            self._checksum.update(data)

    def end(self, end: transfer_pb2.FrameEnd) -> bytes:
        """Check the end frame against what passed; returns the verified checksum."""
        if self.ended:
            raise InvalidArgument("a second end frame")
        self.ended = True
        if end.chunk_count != self.next_seq:
            raise InvalidArgument(f"end.chunk_count {end.chunk_count} but {self.next_seq} chunks arrived")
        if end.total_size != self.size:
            raise InvalidArgument(f"end.total_size {end.total_size} but {self.size} bytes arrived")
        if self.header.total_size and self.header.total_size != self.size:
            raise InvalidArgument(f"header.total_size {self.header.total_size} but {self.size} bytes arrived")
        if len(end.checksum) != CHECKSUM_BYTES:
            raise InvalidArgument(f"end.checksum must be {CHECKSUM_BYTES} bytes ({CHECKSUM_NAME}), not {len(end.checksum)}")
        if self.header.checksum and self.header.checksum != end.checksum:
            raise InvalidArgument("header.checksum and end.checksum differ")
        if not self.verify:
            return bytes(end.checksum)
        digest = self._checksum.digest()
        if digest != end.checksum:
            raise ChecksumMismatch(
                f"checksum mismatch for {self.header.name} (tag {self.header.tag!r}, message "
                f"{self.header.message_id}): the payload was corrupted or altered on the way"
            )
        return digest


async def consume_frames(
    header: transfer_pb2.FrameHeader,
    frames: AsyncIterator[WireFrame],
    on_chunk: Callable[[WireFrame], Awaitable[None]],
    verify: bool = True,
) -> bytes:
    """Read the chunks and end of one message after its header; returns its checksum.

    `on_chunk` gets each chunk frame once it passed the checks. With `verify` false the
    checksum is taken from the end frame unchecked (a forwarding hop leaves the check to
    the member that stores the message).
    """
    checker = FrameChecker(header, verify)
    checksum = b""
    async for frame in frames:
        kind = frame.kind
        if kind == "chunk":
            checker.chunk(frame)
            await on_chunk(frame)
        elif kind == "end":
            assert frame.end is not None
            checksum = checker.end(frame.end)
        elif kind == "header":
            raise InvalidArgument("a second header frame: one call carries exactly one message")
        else:
            raise InvalidArgument("a frame with no header, chunk or end")
    if not checker.ended:
        raise InvalidArgument(
            f"the stream of {header.name} (tag {header.tag!r}) ended before its end frame"
        )
    return checksum
