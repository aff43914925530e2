"""Frames as bytes (kernel/federation/wire/frames.py) agree with protobuf on every frame, canonical or not."""

from __future__ import annotations

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from kernel.errors import InvalidArgument
from kernel.federation.wire.frames import (
    CHECKSUM_BYTES,
    checksum_of,
    chunk_parts,
    encode_chunk,
    encode_end,
    encode_header,
    frame_bytes,
    frame_pieces,
    new_checksum,
    parse_frame,
)
from protos.weft.v1 import common_pb2, transfer_pb2

SEQS = st.integers(min_value=0, max_value=2**63 - 1)
DATA = st.binary(max_size=4096)


def protobuf_chunk(seq: int, data: bytes) -> bytes:
    return transfer_pb2.Frame(chunk=transfer_pb2.FrameChunk(seq=seq, data=data)).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(seq=SEQS, data=DATA)
def test_encode_chunk_writes_what_protobuf_writes(seq: int, data: bytes) -> None:
    # Execute
    raw = encode_chunk(seq, data)
    frame = parse_frame(raw)

    # Assert
    assert raw == protobuf_chunk(seq, data)
    assert (frame.kind, frame.seq, bytes(frame.data)) == ("chunk", seq, data)


@settings(max_examples=200, deadline=None)
@given(seq=SEQS, data=DATA)
def test_chunk_parts_join_to_the_frame_and_keep_the_payload_itself(seq: int, data: bytes) -> None:
    # Prepare
    view = memoryview(data)

    # Execute
    parts = chunk_parts(seq, view)

    # Assert: the payload piece is the caller's buffer; joined, the pieces are the frame
    assert parts[1] is view
    assert frame_bytes(parts) == protobuf_chunk(seq, data) == encode_chunk(seq, data)
    assert frame_pieces(parts) is parts
    assert frame_bytes(b"as it is") == b"as it is" and frame_pieces(b"as it is") == (b"as it is",)


def test_a_megabyte_chunk_is_read_without_copying_its_payload() -> None:
    # Prepare
    data = bytes(range(256)) * 4096
    raw = encode_chunk(7, memoryview(data))

    # Execute
    frame = parse_frame(raw)

    # Assert
    assert frame.data.obj is raw and bytes(frame.data) == data and frame.seq == 7


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(min_value=-(2**63), max_value=2**63 - 1), data=DATA, unknown=st.binary(min_size=1, max_size=8),
       data_first=st.booleans())
def test_frames_in_other_layouts_are_read_by_protobuf(seq: int, data: bytes, unknown: bytes, data_first: bool) -> None:
    # Prepare: fields out of order, a field repeated, an unknown field; each a valid Frame.
    def field(number: int, wire_type: int, payload: bytes) -> bytes:
        key = bytes([(number << 3) | wire_type])
        return key + (bytes([len(payload)]) + payload if wire_type == 2 else payload)

    seq_field = transfer_pb2.FrameChunk(seq=seq).SerializeToString()
    data_field = transfer_pb2.FrameChunk(data=data).SerializeToString()
    inner = data_field + seq_field if data_first else seq_field + data_field + seq_field
    inner += field(15, 2, unknown)
    raw = bytes([0x12]) + _varint(len(inner)) + inner

    # Execute
    frame = parse_frame(raw)
    expected = transfer_pb2.Frame.FromString(raw)

    # Assert
    assert frame.kind == "chunk" and frame.seq == expected.chunk.seq and bytes(frame.data) == expected.chunk.data
    assert frame.raw is raw


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def test_header_and_end_frames_round_trip() -> None:
    # Prepare
    header = transfer_pb2.FrameHeader(
        message_id="m", session_id="s", name="V.x", tag="fit", kind=transfer_pb2.PAYLOAD_KIND_TABLE,
        src=common_pb2.Party(role="promoter", member_id="a" * 32), total_size=9,
    )
    digest = checksum_of(b"payload!!")

    # Execute
    head = parse_frame(encode_header(header))
    end = parse_frame(encode_end(3, 9, digest))
    empty = parse_frame(b"")

    # Assert
    assert head.kind == "header" and head.header == header
    assert end.kind == "end" and end.end == transfer_pb2.FrameEnd(chunk_count=3, total_size=9, checksum=digest)
    assert empty.kind == ""


@pytest.mark.parametrize("raw", [b"\x12\x05\x08", b"\x12\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\xff\xff"])
def test_bytes_that_are_no_frame_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidArgument, match="weft.v1.Frame"):
        parse_frame(raw)


def test_negative_chunk_numbers_take_protobuf_and_stay_negative() -> None:
    # Execute
    frame = parse_frame(protobuf_chunk(-1, b"x"))

    # Assert: the frame checks then refuse the sequence number
    assert frame.seq == -1 and bytes(frame.data) == b"x"
    with pytest.raises(InvalidArgument, match="negative"):
        encode_chunk(-1, b"x")


def test_the_checksum_is_xxh3_128_incremental_or_whole() -> None:
    # Prepare
    parts = [b"a" * 1000, b"", b"b" * 70000]
    running = new_checksum()

    # Execute
    for part in parts:
        running.update(part)

    # Assert
    assert running.digest() == checksum_of(b"".join(parts)) == xxhash.xxh3_128(b"".join(parts)).digest()
    assert len(running.digest()) == CHECKSUM_BYTES
    # XXH3-128 of no bytes, from the xxHash reference test vectors: the wire format pins the
    # algorithm and the byte order, not just "whatever xxhash computes".
    assert checksum_of(b"").hex() == "99aa06d3014798d86001c324468d497f"
