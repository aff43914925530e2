"""The data lane (kernel/federation/lane.py, kernel/federation/wire/lane.py) against real transfer services on loopback."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pytest

from kernel.errors import FederationTimeout, PermissionDenied
from kernel.federation.base import Party, RoleTable
from kernel.federation.lane import LaneClient, _Connection, lane_of
from kernel.federation.wire.lane import MAGIC, LaneError
from protos.weft.v1 import common_pb2, transfer_pb2
from services.transfer.loopback_services import LocalCluster, LocalMember, free_port

A, C = "a" * 32, "c" * 32
PROMOTER, ARBITER = Party("promoter", A), Party("arbiter", C)
ROLES = RoleTable({"promoter": (A,), "arbiter": (C,)})
STATS_VAR = "DistributionTransferVariable.local_statistics"  # promoter -> arbiter
EDGES_VAR = "DistributionTransferVariable.bin_edges"  # arbiter -> promoter only
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def a_tcp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory, a_tcp_port: int) -> Iterator[LocalCluster]:
    """Member A's lane on a TCP port, member C's on its default (an abstract Unix socket)."""
    root = tmp_path_factory.mktemp("lanes")
    with LocalCluster(root, [A, C], transfer={"window_mb": 2, "mailbox_memory_mb": 4},
                      member_transfer={A: {"data_lane_port": a_tcp_port}}) as cluster:
        yield cluster


@pytest.fixture()
def session(members: LocalCluster) -> str:
    session_id = f"lane-{uuid.uuid4().hex[:8]}"
    members.register_session(session_id, [PROMOTER, ARBITER])
    return session_id


def lane_at(member: LocalMember, session_id: str = "any") -> LaneClient:
    credential = member.task_credential(session_id)
    with grpc.insecure_channel(member.internal) as channel:
        lane = lane_of(channel, member.internal, credential=credential)
    assert lane is not None
    return lane


def grpc_forbidden(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the gRPC path was used although the service has a data lane")


def test_each_service_says_where_its_lane_is(members: LocalCluster, a_tcp_port: int) -> None:
    # Execute
    at_a, at_c = lane_at(members[A]), lane_at(members[C])

    # Assert
    assert at_a.address == ("127.0.0.1", a_tcp_port)
    assert isinstance(at_c.address, str) and at_c.address.startswith(f"weft-transfer-lane-{C}-")


def test_objects_and_tables_travel_over_the_lanes(members: LocalCluster, session: str, tmp_path: Path) -> None:
    # Prepare: the gRPC calls are taken away, so only the lanes can carry the frames.
    sender = members[A].federation(session, PROMOTER, ROLES)
    receiver = members[C].federation(session, ARBITER, ROLES)
    for client in (sender, receiver):
        client._send = grpc_forbidden  # type: ignore[assignment]
        client._receive = grpc_forbidden  # type: ignore[assignment]
    payload = np.random.default_rng(5).bytes(3 * MIB + 17)
    table = pa.table({"id": np.arange(200_000), "x": np.random.default_rng(6).random(200_000)})

    # Execute
    sender.remote(STATS_VAR, "fit", payload, [ARBITER])
    sender.remote_table(STATS_VAR, "table", table, [ARBITER])
    got = receiver.get(STATS_VAR, "fit", [PROMOTER], timeout=30)
    got_table = receiver.get_table(STATS_VAR, "table", PROMOTER, timeout=30)

    # Assert
    assert got == [payload]
    assert got_table.equals(table)
    assert members[C].stats().mailbox_messages == 0


def test_a_refusal_mid_send_stops_the_sender_and_stores_nothing(members: LocalCluster, session: str) -> None:
    # Prepare: the arbiter may not send local_statistics; the message is far bigger than
    # the socket buffers, so the task is still writing when the service refuses.
    wrong = members[C].federation(session, ARBITER, ROLES)

    # Execute
    with pytest.raises(PermissionDenied, match="may not send it"):
        wrong.remote(STATS_VAR, "fit", b"x" * (64 * MIB), [PROMOTER])

    # Assert
    assert members[A].stats().mailbox_messages == 0


def test_a_receive_times_out_with_the_variable_tag_and_peer(members: LocalCluster, session: str) -> None:
    # Prepare
    receiver = members[C].federation(session, ARBITER, ROLES)

    # Execute
    with pytest.raises(FederationTimeout) as error:
        receiver.get(STATS_VAR, "never", [PROMOTER], timeout=0.3)

    # Assert
    assert STATS_VAR in str(error.value) and "never" in str(error.value) and A in str(error.value)


def test_a_receiver_that_goes_away_stops_waiting_and_the_message_stays(members: LocalCluster, session: str) -> None:
    # Prepare: a receive is waiting on the lane.
    request = transfer_pb2.ReceiveRequest(
        session_id=session, name=STATS_VAR, tag="later", timeout_ms=60_000,
        src=common_pb2.Party(role="promoter", member_id=A), dst=common_pb2.Party(role="arbiter", member_id=C))
    stream = lane_at(members[C], session).receive(request)
    wait_until(lambda: members[C].stats().receivers_waiting == 1)

    # Execute: the task closes its end; then the message arrives and another reader asks.
    stream.close()
    wait_until(lambda: members[C].stats().receivers_waiting == 0)
    members[A].federation(session, PROMOTER, ROLES).remote(STATS_VAR, "later", {"k": 1}, [ARBITER])
    got = members[C].federation(session, ARBITER, ROLES).get(STATS_VAR, "later", [PROMOTER], 10)

    # Assert
    assert got == [{"k": 1}]


def test_a_connection_that_is_not_a_lane_call_is_refused(members: LocalCluster) -> None:
    # Prepare
    connection = _Connection(lane_at(members[C]).address, connect_timeout=5)

    # Execute
    connection.write(b"GET / HTTP/1.1\r\n")
    is_status, body = connection.read()
    connection.close()

    # Assert
    assert is_status and body[0] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert b"not a data lane call" in body


def test_an_unknown_call_on_the_lane_is_refused(members: LocalCluster) -> None:
    # Prepare
    connection = _Connection(lane_at(members[A]).address, connect_timeout=5)

    # Execute
    connection.write(MAGIC, bytes((9,)))
    is_status, body = connection.read()
    connection.close()

    # Assert
    assert is_status and body[0] == grpc.StatusCode.INVALID_ARGUMENT.value[0]


def test_a_lane_nobody_listens_on_is_unavailable() -> None:
    # Execute
    with pytest.raises(LaneError) as error:
        LaneClient(("127.0.0.1", free_port()), connect_timeout=2).send(iter([]))

    # Assert
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE


def test_with_the_lane_off_tasks_use_grpc(tmp_path: Path) -> None:
    # Prepare
    with LocalCluster(tmp_path, [A, C], transfer={"data_lane_port": -1}) as cluster:
        cluster.register_session("s", [PROMOTER, ARBITER])
        sender = cluster[A].federation("s", PROMOTER, ROLES)
        receiver = cluster[C].federation("s", ARBITER, ROLES)

        # Execute
        with grpc.insecure_channel(cluster[A].internal) as channel:
            lane = lane_of(channel, cluster[A].internal, credential=cluster[A].task_credential("s"))
        sender.remote(STATS_VAR, "fit", b"y" * (2 * MIB), [ARBITER])
        got = receiver.get(STATS_VAR, "fit", [PROMOTER], timeout=30)

    # Assert
    assert lane is None
    assert got == [b"y" * (2 * MIB)]


def test_a_restarted_service_is_found_again(members: LocalCluster, session: str) -> None:
    # Prepare: the task has used the lane once.
    sender = members[A].federation(session, PROMOTER, ROLES)
    sender.remote(STATS_VAR, "before", 1, [ARBITER])

    # Execute: the sending member's service restarts; the task sends again.
    members[A].kill()
    members[A].start()
    members.register_session(session, [PROMOTER, ARBITER])
    sender.remote(STATS_VAR, "after", 2, [ARBITER])
    receiver = members[C].federation(session, ARBITER, ROLES)

    # Assert
    assert receiver.get(STATS_VAR, "before", [PROMOTER], 10) == [1]
    assert receiver.get(STATS_VAR, "after", [PROMOTER], 10) == [2]


def wait_until(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
