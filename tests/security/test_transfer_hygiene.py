"""Transfer hygiene: sessions end with their job, mailbox quotas, data lane deadlines and its connection cap."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kernel.errors import PermissionDenied, ResourceExhausted
from kernel.federation.base import Party, RoleTable
from kernel.federation.wire.lane import LENGTH, STATUS_FLAG, abstract_sockets, status_of
from protos.weft.v1 import common_pb2, transfer_pb2
from services.transfer.loopback_services import LocalCluster, LocalMember
from tests.test_scheduler_support import (
    ARBITER,
    PROMOTER,
    PROVIDER,
    distribution_spec,
    load_rows,
    start_members,
    stop_members,
)

A, C = "a" * 32, "c" * 32
SENDER, RECEIVER = Party("promoter", A), Party("arbiter", C)
ROLES = RoleTable({"promoter": (A,), "arbiter": (C,)})
STATS_VAR = "DistributionTransferVariable.local_statistics"  # promoter -> arbiter
MIB = 1024 * 1024


# ---- sessions end with their job --------------------------------------------------------------


async def test_a_job_that_ends_ends_its_sessions_and_a_late_delivery_stores_nothing(tmp_path: Path) -> None:
    # Prepare: three members, a CLUSTER job (its tasks talk through the transfer services).
    urls = {m: f"sqlite+aiosqlite:///{tmp_path / m[:6]}.db" for m in (PROMOTER, PROVIDER, ARBITER)}
    members = await start_members(tmp_path, urls)
    try:
        load_rows(members[PROMOTER], "promoter_rows", 200, 1, True)
        load_rows(members[PROVIDER], "provider_rows", 150, 2, False, id_offset=1000)
        spec = distribution_spec()
        spec["job_parameters"]["work_mode"] = "CLUSTER"

        # Execute: the job runs to success; then a "late" message for the arbiter's session.
        job_id = await members[PROMOTER].client.submit(spec)
        for member in members.values():
            info = await member.client.wait_status(job_id, {common_pb2.JOB_STATUS_SUCCESS}, timeout=300)
            assert info.status == common_pb2.JOB_STATUS_SUCCESS, info.message
        deadline = time.monotonic() + 60
        while any(len(m.transfer.core.sessions) for m in members.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # the scheduler cleans the sessions right after the job ends
        left = {m: len(member.transfer.core.sessions) for m, member in members.items()}
        session = f"{job_id}.distribution_0"
        promoter_transfer = members[PROMOTER].transfer.core
        promoter_transfer.sessions.register(  # the promoter's side still believes in the session
            _session(session, job_id, [Party("promoter", PROMOTER), Party("arbiter", ARBITER)]))
        key = internal_key(members[PROMOTER].config["internal_key_file"])
        federation = ClusterFederationAt(members[PROMOTER].config["transfer"]["internal_listen"], session,
                                         Party("promoter", PROMOTER), key, job_id)
        with pytest.raises(PermissionDenied) as refused:
            await asyncio.to_thread(federation.remote, "DistributionTransferVariable.local_statistics", "late",
                                    {"k": 1}, [Party("arbiter", ARBITER)])

        # Assert: no session left anywhere; the arbiter refused the delivery and holds nothing.
        assert left == {m: 0 for m in members}
        assert f"session {session!r} is not registered" in str(refused.value)
        assert members[ARBITER].transfer.core.mailbox.stats().messages == 0
        assert members[ARBITER].transfer.core.mailbox.usage("session", session) == (0, 0)
    finally:
        await stop_members(members)


def _session(session_id: str, job_id: str, parties: list[Party]) -> object:
    from services.transfer.sessions import Session

    return Session(session_id, job_id, frozenset(parties), 3600.0)


def internal_key(path: str) -> bytes:
    from services.common import internal_auth

    return internal_auth.read_key(path)


def ClusterFederationAt(endpoint: str, session_id: str, local: Party, key: bytes, job_id: str) -> object:  # noqa: N802
    """A task's client with the credential its executor would give it."""
    from kernel.federation.cluster import ClusterFederation
    from services.common import internal_auth

    roles = RoleTable({"promoter": (PROMOTER,), "provider": (PROVIDER,), "arbiter": (ARBITER,)})
    credential = internal_auth.sign(key, internal_auth.TASK, job=job_id, task="late")
    return ClusterFederation(endpoint, session_id, local, roles, credential=credential)


# ---- mailbox quotas ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_quotas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    transfer = {"mailbox_session_max_messages": 2, "mailbox_peer_max_mb": 1, "data_lane_port": -1}
    with LocalCluster(tmp_path_factory.mktemp("quotas"), [A, C], transfer=transfer) as cluster:
        yield cluster


def _new_session(cluster: LocalCluster) -> str:
    session_id = f"session-{uuid.uuid4().hex[:8]}"
    cluster.register_session(session_id, [SENDER, RECEIVER])
    return session_id


def test_a_session_past_its_message_quota_is_refused_with_resource_exhausted(small_quotas: LocalCluster) -> None:
    # Prepare
    session = _new_session(small_quotas)
    sender = small_quotas[A].federation(session, SENDER, ROLES)
    sender.remote(STATS_VAR, "one", 1, [RECEIVER])
    sender.remote(STATS_VAR, "two", 2, [RECEIVER])

    # Execute
    with pytest.raises(ResourceExhausted) as refused:
        sender.remote(STATS_VAR, "three", 3, [RECEIVER])
    receiver = small_quotas[C].federation(session, RECEIVER, ROLES)
    first = receiver.get(STATS_VAR, "one", [SENDER], timeout=10)
    sender.remote(STATS_VAR, "four", 4, [RECEIVER])  # room again once one was read

    # Assert
    assert "transfer.mailbox_session_max_messages" in str(refused.value)
    assert f"session {session} already has 2 unread messages here (at most 2)" in str(refused.value)
    assert first == [1]
    assert receiver.get(STATS_VAR, "four", [SENDER], timeout=10) == [4]
    small_quotas[C].stub().CleanSession(transfer_pb2.CleanSessionRequest(session_id=session), timeout=10)


def test_a_peer_past_its_byte_quota_is_refused_and_nothing_of_it_stays(small_quotas: LocalCluster) -> None:
    # Prepare
    session = _new_session(small_quotas)
    sender = small_quotas[A].federation(session, SENDER, ROLES)
    before = small_quotas[C].stats()

    # Execute
    with pytest.raises(ResourceExhausted) as refused:
        sender.remote(STATS_VAR, "big", b"x" * (2 * MIB), [RECEIVER])
    stats = small_quotas[C].stats()

    # Assert
    assert "transfer.mailbox_peer_max_mb" in str(refused.value) and f"member {A}" in str(refused.value)
    assert (stats.mailbox_messages, stats.mailbox_memory_bytes, stats.mailbox_disk_bytes) == (
        before.mailbox_messages, before.mailbox_memory_bytes, before.mailbox_disk_bytes)
    sender.remote(STATS_VAR, "small", b"y" * 1000, [RECEIVER])  # the quota was given back
    assert small_quotas[C].federation(session, RECEIVER, ROLES).get(STATS_VAR, "small", [SENDER], 10) == [b"y" * 1000]


# ---- the data lane: deadline per record, connection cap ------------------------------------------------


def _lane_socket(member: LocalMember) -> socket.socket:
    lane = member.stub().GetDataLane(transfer_pb2.GetDataLaneRequest(), timeout=10)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect("\0" + lane.unix_name)
    sock.settimeout(120)
    return sock


def _read_to_close(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.skipif(not abstract_sockets(), reason="the lane is on an abstract Unix socket on Linux")
def test_a_stalled_record_and_an_idle_connection_are_closed_after_the_deadline(tmp_path: Path) -> None:
    # Prepare
    with LocalCluster(tmp_path, [A], transfer={"lane_record_timeout_s": 1}) as cluster:
        stalled = _lane_socket(cluster[A])
        idle = _lane_socket(cluster[A])

        # Execute: a record that promises 1000 bytes and brings 10; a connection that says nothing.
        stalled.sendall(LENGTH.pack(1000) + b"0123456789")
        stalled_rest = _read_to_close(stalled)
        idle_rest = _read_to_close(idle)
        log = cluster[A].log_text()

    # Assert: both closed by the service (the reads ended), the log says why.
    assert stalled_rest == b"" and idle_rest == b""
    assert "a record of 1000 bytes did not arrive within 1 s" in log
    assert "no record within 1 s" in log


@pytest.mark.skipif(not abstract_sockets(), reason="the lane is on an abstract Unix socket on Linux")
def test_connections_past_the_cap_are_refused_with_resource_exhausted(tmp_path: Path) -> None:
    # Prepare: two connections held open (the cap), within the generous record deadline.
    with LocalCluster(tmp_path, [A], transfer={"lane_max_connections": 2}) as cluster:
        held = [_lane_socket(cluster[A]) for _ in range(2)]

        # Execute
        extra = _lane_socket(cluster[A])
        answer = _read_to_close(extra)
        for sock in held:
            sock.close()

    # Assert: one status record, RESOURCE_EXHAUSTED naming the option.
    (size,) = LENGTH.unpack(answer[:LENGTH.size])
    assert size & STATUS_FLAG
    code, details = status_of(answer[LENGTH.size:LENGTH.size + (size & ~STATUS_FLAG)])
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "transfer.lane_max_connections: 2 data lane connections are open" in details
