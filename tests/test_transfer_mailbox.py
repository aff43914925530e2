"""The transfer service's mailbox and frame checks, in process: budget, spill, duplicates, TTL, checksums."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kernel.errors import ChecksumMismatch, FederationTimeout, InvalidArgument, Unavailable
from kernel.federation.base import Party
from kernel.federation.wire.frames import (
    WireFrame,
    checksum_of,
    encode_chunk,
    encode_end,
    parse_frame,
)
from kernel.federation.wire.messages import check_header, consume_frames, key_of
from protos.weft.v1 import common_pb2, transfer_pb2
from services.transfer.mailbox import END, Mailbox, MailboxStats, Signal, StoredMessage

A, B = "a" * 32, "b" * 32
MIB = 1024 * 1024


def header(message_id: str = "m1", tag: str = "fit", size: int = 0,
           kind: int = transfer_pb2.PAYLOAD_KIND_OBJECT, session: str = "s1") -> transfer_pb2.FrameHeader:
    return transfer_pb2.FrameHeader(
        message_id=message_id, session_id=session, name="Demo.value", tag=tag,
        src=common_pb2.Party(role="promoter", member_id=A), dst=common_pb2.Party(role="arbiter", member_id=B),
        total_size=size, kind=kind,  # type: ignore[arg-type]
    )


async def frames_of(payload: bytes, chunk: int = MIB, checksum: bytes | None = None) -> AsyncIterator[WireFrame]:
    seq = 0
    for offset in range(0, len(payload), chunk):
        yield parse_frame(encode_chunk(seq, payload[offset:offset + chunk]))
        seq += 1
    digest = checksum_of(payload) if checksum is None else checksum
    yield parse_frame(encode_end(seq, len(payload), digest))


async def store(mailbox: Mailbox, head: transfer_pb2.FrameHeader, payload: bytes, **kwargs: bytes) -> bool:
    """Write one message; False when the mailbox dropped it as a duplicate."""
    reservation = await mailbox.reserve(head)
    if reservation is None:
        return False
    try:
        checksum = await consume_frames(head, frames_of(payload, **kwargs), reservation.write)
    except BaseException:
        mailbox.abort(reservation)
        raise
    await mailbox.commit(reservation, checksum)
    return True


@pytest.fixture()
def mailbox(tmp_path: Path) -> Mailbox:
    box = Mailbox(tmp_path / "spill", memory_budget_bytes=3 * MIB, window_bytes=2 * MIB, default_ttl_s=60)
    box.clear_spill_dir()
    return box


async def test_small_messages_stay_in_memory_and_large_ones_spill(mailbox: Mailbox, tmp_path: Path) -> None:
    # Prepare
    small, large = b"s" * 1000, b"L" * (5 * MIB + 3)

    # Execute
    await store(mailbox, header("m1", "fit.small"), small)
    await store(mailbox, header("m2", "fit.large"), large)
    stats = mailbox.stats()
    got = await mailbox.take(key_of(header(tag="fit.large")), timeout=1)
    read_back = b"".join(got.payload.chunks())
    await mailbox.finish_read(got)

    # Assert
    assert (stats.messages, stats.memory_bytes, stats.disk_bytes) == (2, len(small), len(large))
    assert read_back == large
    assert mailbox.stats().disk_bytes == 0
    assert not any((tmp_path / "spill").rglob("*.msg"))


async def test_memory_budget_spills_when_full(mailbox: Mailbox) -> None:
    # Prepare: each message fits the 2 MiB window; together they pass the 3 MiB budget.
    payload = b"x" * (MIB + MIB // 2)

    # Execute
    for index in range(3):
        await store(mailbox, header(f"m{index}", f"fit.{index}"), payload)

    # Assert
    stats = mailbox.stats()
    assert stats.memory_bytes <= 3 * MIB
    assert stats.memory_bytes + stats.disk_bytes == 3 * len(payload)
    assert stats.disk_bytes > 0


async def test_tables_go_to_disk_as_they_arrive(mailbox: Mailbox) -> None:
    # Execute
    await store(mailbox, header("t1", kind=transfer_pb2.PAYLOAD_KIND_TABLE), b"arrow" * 100)

    # Assert
    assert mailbox.stats().memory_bytes == 0
    assert mailbox.stats().disk_bytes == 500


async def test_duplicate_message_id_is_dropped_even_after_it_was_read(mailbox: Mailbox) -> None:
    # Prepare
    await store(mailbox, header("m1"), b"first")

    # Execute
    second = await store(mailbox, header("m1"), b"first")
    message = await mailbox.take(key_of(header()), timeout=1)
    await mailbox.finish_read(message)
    third = await store(mailbox, header("m1"), b"first")

    # Assert
    assert (second, third) == (False, False)
    assert mailbox.stats().duplicates_dropped == 2
    assert mailbox.stats().messages == 0


async def test_take_times_out_naming_variable_tag_and_peer(mailbox: Mailbox) -> None:
    # Execute
    with pytest.raises(FederationTimeout) as error:
        await mailbox.take(key_of(header(tag="fit.9")), timeout=0.05)

    # Assert
    assert "Demo.value" in str(error.value) and "'fit.9'" in str(error.value) and f"promoter:{A}" in str(error.value)


async def drain_handoff(message: StoredMessage) -> bytes:
    assert message.pipe is not None
    received = bytearray()
    while not isinstance(item := await message.pipe.get(), Signal):
        received += parse_frame(item).data  # the chunk frames as they arrived
    assert item is END
    return bytes(received)


async def test_a_waiting_reader_gets_the_chunks_handed_over_without_disk(mailbox: Mailbox, tmp_path: Path) -> None:
    # Prepare: the reader waits before the message arrives; the message is larger than the window.
    payload = b"h" * (5 * MIB + 1)
    waiting = asyncio.create_task(mailbox.take(key_of(header()), timeout=5))
    await asyncio.sleep(0)

    # Execute
    storing = asyncio.create_task(store(mailbox, header(), payload))
    message = await waiting
    received = await drain_handoff(message)
    await mailbox.finish_read(message)
    stored = await storing

    # Assert
    assert stored and received == payload and message.checksum == checksum_of(payload)
    assert not any((tmp_path / "spill").rglob("*.msg"))
    assert await store(mailbox, header(), payload) is False  # a retry of it is a duplicate


async def test_a_reader_leaving_mid_handoff_fails_the_delivery_for_a_retry(mailbox: Mailbox) -> None:
    # Prepare
    waiting = asyncio.create_task(mailbox.take(key_of(header()), timeout=5))
    await asyncio.sleep(0)
    storing = asyncio.create_task(store(mailbox, header(), b"r" * (6 * MIB)))
    message = await waiting

    # Execute
    await mailbox.cancel_read(message)

    # Assert: the sender learns to deliver again, and the retry is stored normally.
    with pytest.raises(Unavailable, match="left mid-message"):
        await storing
    assert await store(mailbox, header(), b"r" * (6 * MIB)) is True
    assert mailbox.stats().messages == 1


async def test_a_cancelled_reader_leaves_the_message_for_the_next(mailbox: Mailbox) -> None:
    # Prepare
    await store(mailbox, header(), b"keep me")
    message = await mailbox.take(key_of(header()), timeout=1)

    # Execute
    await mailbox.cancel_read(message)
    again = await mailbox.take(key_of(header()), timeout=1)

    # Assert
    assert again is message


async def test_messages_expire_after_the_session_ttl(mailbox: Mailbox) -> None:
    # Prepare
    mailbox.set_session_ttl("short", 0.05)
    expiry = asyncio.create_task(mailbox.run_expiry())
    await store(mailbox, header(session="short"), b"x" * (3 * MIB))

    # Execute: the expiry task wakes by itself when the TTL passes.
    await asyncio.sleep(0.3)
    expiry.cancel()
    with pytest.raises(FederationTimeout):
        await mailbox.take(key_of(header(session="short")), timeout=0.01)

    # Assert
    assert mailbox.stats().messages == 0 and mailbox.stats().disk_bytes == 0


async def test_bad_checksum_and_bad_order_store_nothing(mailbox: Mailbox, tmp_path: Path) -> None:
    # Execute
    with pytest.raises(ChecksumMismatch):
        await store(mailbox, header("m1"), b"y" * (3 * MIB), checksum=b"\0" * 16)

    async def out_of_order() -> AsyncIterator[WireFrame]:
        yield parse_frame(encode_chunk(1, b"z"))

    reservation = await mailbox.reserve(header("m2"))
    assert reservation is not None
    with pytest.raises(InvalidArgument, match="out of order"):
        await consume_frames(header("m2"), out_of_order(), reservation.write)
    mailbox.abort(reservation)

    # Assert
    assert mailbox.stats() == MailboxStats(0, 0, 0, 0)
    assert not any((tmp_path / "spill").rglob("*.msg"))


async def test_a_digest_of_the_wrong_length_is_refused_and_stores_nothing(mailbox: Mailbox, tmp_path: Path) -> None:
    # Prepare: a 32-byte digest, as a client of the BLAKE3 era would send
    old_digest = b"\1" * 32

    # Execute
    with pytest.raises(InvalidArgument, match=r"end.checksum must be 16 bytes \(XXH3-128\), not 32"):
        await store(mailbox, header("m1"), b"y" * (3 * MIB), checksum=old_digest)

    # Assert
    assert mailbox.stats() == MailboxStats(0, 0, 0, 0)
    assert not any((tmp_path / "spill").rglob("*.msg"))


async def test_clean_session_frees_memory_and_disk(mailbox: Mailbox, tmp_path: Path) -> None:
    # Prepare
    await store(mailbox, header("m1", "fit.1"), b"a" * 100)
    await store(mailbox, header("m2", "fit.2"), b"b" * (4 * MIB))
    await store(mailbox, header("m3", "fit.3", session="other"), b"c" * 10)

    # Execute
    removed, freed = await mailbox.clean_session("s1")

    # Assert
    assert (removed, freed) == (2, 100 + 4 * MIB)
    assert mailbox.stats().messages == 1 and mailbox.stats().disk_bytes == 0
    assert mailbox.budget.used == 10
    assert not (tmp_path / "spill" / "s1").exists()


def test_header_checks_name_the_field() -> None:
    # Prepare
    missing_tag = header()
    missing_tag.tag = ""
    no_kind = header(kind=transfer_pb2.PAYLOAD_KIND_UNSPECIFIED)

    # Execute / Assert
    with pytest.raises(InvalidArgument, match="header.tag"):
        check_header(missing_tag)
    with pytest.raises(InvalidArgument, match="header.kind"):
        check_header(no_kind)
    assert check_header(header()).src == Party("promoter", A)
