"""Frames as bytes: the transfer contract's Frame messages without copying chunk payloads.

A chunk frame is almost all payload, and it crosses three gRPC streams between two tasks.
Parsing it into a protobuf object and serializing it again copies the megabyte each time,
so the task client and the transfer service handle frames as the bytes that travel:

- `encode_chunk` writes a chunk frame as protobuf would (field order, no defaults), with
  one copy of the payload; `chunk_parts` gives the same frame as two pieces (the protobuf
  prefix and the payload itself) for a writer that can send pieces (the data lane), which
  then copies nothing;
- `parse_frame` reads a chunk frame in that layout without copying its payload (a
  memoryview into the received bytes) and hands anything else to protobuf, so frames
  written by any protobuf library are still accepted;
- a service forwards the received bytes of a chunk frame unchanged.

The message checksum is XXH3-128 (16 bytes). It guards against corruption (a truncated or
damaged chunk, a spill file gone bad), not against forgery: the sender computes it and the
member-to-member stream is already authenticated by mutual TLS, so a cryptographic hash
buys nothing here and would cost five times the CPU at the member that checks it (BLAKE3
0.2-0.25 core-seconds per GiB on the development machine, XXH3-128 0.04; SHA-256 more still).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import xxhash
from google.protobuf.message import DecodeError

from kernel.errors import InvalidArgument
from protos.weft.v1 import transfer_pb2

#: Largest payload one chunk frame carries (the transfer contract's 1 MiB); senders cut payloads in
#: chunks of this size and the service refuses a larger one.
MAX_CHUNK_BYTES: Final = 1024 * 1024
#: Room for a frame's protobuf framing around its chunk payload.
FRAME_ENVELOPE_BYTES: Final = 64 * 1024
#: Largest frame either end sends or accepts (gRPC message limit, lane record limit).
MAX_FRAME_BYTES: Final = MAX_CHUNK_BYTES + FRAME_ENVELOPE_BYTES

# Bytes of a message checksum (XXH3 with 128-bit output, big-endian as xxhash's digest()).
CHECKSUM_BYTES: Final = 16
CHECKSUM_NAME: Final = "XXH3-128"

# Protobuf keys (field number << 3 | wire type) of the fields the fast path reads.
_FRAME_CHUNK_KEY: Final = (2 << 3) | 2  # Frame.chunk, length-delimited
_CHUNK_SEQ_KEY: Final = (1 << 3) | 0  # FrameChunk.seq, varint
_CHUNK_DATA_KEY: Final = (2 << 3) | 2  # FrameChunk.data, length-delimited
_MAX_VARINT_BYTES: Final = 10
_INT64_LIMIT: Final = 1 << 63

_EMPTY: Final = memoryview(b"")


def new_checksum() -> xxhash.xxh3_128:
    """A running checksum of a message's payload."""
    return xxhash.xxh3_128()


def checksum_of(payload: bytes | memoryview) -> bytes:
    """The checksum of a whole payload."""
    return xxhash.xxh3_128(payload).digest()


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes, offset: int) -> tuple[int, int]:
    """(value, next offset); (-1, -1) when the varint runs past the end or is too long."""
    value = shift = 0
    end = min(len(raw), offset + _MAX_VARINT_BYTES)
    while offset < end:
        byte = raw[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7
    return -1, -1


# A frame on its way out: its bytes, or a chunk frame as (prefix, payload) that joined are its bytes.
OutFrame = bytes | tuple[bytes, bytes | memoryview]


def chunk_parts(seq: int, data: bytes | memoryview) -> tuple[bytes, bytes | memoryview]:
    """Frame(chunk=FrameChunk(seq=seq, data=data)) as (the bytes before the payload, the payload).

    Joined they are exactly what protobuf writes; the payload is `data` itself, not a copy.
    """
    if seq < 0:
        raise InvalidArgument(f"chunk seq must not be negative (got {seq})")
    inner = bytearray()
    if seq:
        inner.append(_CHUNK_SEQ_KEY)
        inner += _varint(seq)
    size = len(data)
    if size:
        inner.append(_CHUNK_DATA_KEY)
        inner += _varint(size)
    return bytes((_FRAME_CHUNK_KEY,)) + _varint(len(inner) + size) + inner, data


def encode_chunk(seq: int, data: bytes | memoryview) -> bytes:
    """The bytes of Frame(chunk=FrameChunk(seq=seq, data=data)), exactly as protobuf writes them."""
    return b"".join(chunk_parts(seq, data))


def frame_pieces(frame: OutFrame) -> tuple[bytes | memoryview, ...]:
    """An outgoing frame as the pieces a writer sends one after the other."""
    return (frame,) if isinstance(frame, bytes) else frame


def frame_bytes(frame: OutFrame) -> bytes:
    """An outgoing frame as one bytes object (what a gRPC stream carries)."""
    return frame if isinstance(frame, bytes) else b"".join(frame)


def encode_header(header: transfer_pb2.FrameHeader) -> bytes:
    data: bytes = transfer_pb2.Frame(header=header).SerializeToString()
    return data


def encode_end(chunk_count: int, total_size: int, checksum: bytes) -> bytes:
    end = transfer_pb2.FrameEnd(chunk_count=chunk_count, total_size=total_size, checksum=checksum)
    data: bytes = transfer_pb2.Frame(end=end).SerializeToString()
    return data


@dataclass(frozen=True, slots=True)
class WireFrame:
    """One received frame: its bytes as they travelled and what they hold.

    `kind` is "header", "chunk", "end" or "" (a frame that set none of them). For a chunk,
    `data` is a view into `raw` (valid as long as the frame is kept).
    """

    raw: bytes
    kind: str
    seq: int = 0
    data: memoryview = _EMPTY
    header: transfer_pb2.FrameHeader | None = None
    end: transfer_pb2.FrameEnd | None = None


def _fast_chunk(raw: bytes) -> WireFrame | None:
    """A chunk frame in protobuf's own layout, read without copying; None for anything else."""
    if len(raw) < 2 or raw[0] != _FRAME_CHUNK_KEY:
        return None
    inner_size, offset = _read_varint(raw, 1)
    if offset < 0 or offset + inner_size != len(raw):
        return None
    seq = 0
    if offset < len(raw) and raw[offset] == _CHUNK_SEQ_KEY:
        seq, offset = _read_varint(raw, offset + 1)
        if offset < 0 or seq >= _INT64_LIMIT:
            return None
    data = _EMPTY
    if offset < len(raw):
        if raw[offset] != _CHUNK_DATA_KEY:
            return None
        size, offset = _read_varint(raw, offset + 1)
        if offset < 0 or offset + size != len(raw):
            return None
        data = memoryview(raw)[offset:]
    return WireFrame(raw, "chunk", seq, data)


def parse_frame(raw: bytes) -> WireFrame:
    """Read one frame's bytes; InvalidArgument when they are not a Frame."""
    fast = _fast_chunk(raw)
    if fast is not None:
        return fast
    try:
        frame = transfer_pb2.Frame.FromString(raw)
    except DecodeError as exc:
        raise InvalidArgument(f"a frame that is not a weft.v1.Frame: {exc}") from None
    kind = frame.WhichOneof("kind") or ""
    if kind == "chunk":
        return WireFrame(raw, kind, frame.chunk.seq, memoryview(frame.chunk.data))
    if kind == "header":
        return WireFrame(raw, kind, header=frame.header)
    if kind == "end":
        return WireFrame(raw, kind, end=frame.end)
    return WireFrame(raw, "")
