"""The transfer service for real: member processes on loopback, mutual TLS, the CLUSTER federation client."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

from kernel.errors import FederationTimeout, NotFound, PermissionDenied
from kernel.federation.base import Party, RoleTable
from kernel.federation.cluster import ClusterFederation
from kernel.federation.transfer_variable import FlowContext, TransferVariables
from kernel.federation.wire.frames import OutFrame, checksum_of
from kernel.registry import get_component
from protos.weft.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.common.certs import create_ca, issue_member_cert
from services.transfer.constants import PEER_SERVICE_NAME
from services.transfer.loopback_services import LocalCluster, LocalMember, free_port, rss_mb

A, B, C = "a" * 32, "b" * 32, "c" * 32
PROMOTER, PROVIDER, ARBITER = Party("promoter", A), Party("provider", B), Party("arbiter", C)
PARTIES = [PROMOTER, PROVIDER, ARBITER]
ROLES = RoleTable({"promoter": (A,), "provider": (B,), "arbiter": (C,)})
STATS_VAR = "DistributionTransferVariable.local_statistics"  # promoter|provider -> arbiter
EDGES_VAR = "DistributionTransferVariable.bin_edges"  # arbiter -> promoter|provider
MIB = 1024 * 1024
# The receiving service may grow by its window plus this much while a table passes.
FIXED_OVERHEAD_MB = 48


@pytest.fixture(scope="module")
def scheduler_ports() -> dict[str, int]:
    return {member: free_port() for member in (A, B, C)}


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, scheduler_ports: dict[str, int],
            metrics_port: int) -> Iterator[LocalCluster]:
    """Three members' transfer services, shared by the tests of this module (each its own session)."""
    root = tmp_path_factory.mktemp("members")
    members = LocalCluster(root, [A, B, C], transfer={"window_mb": 2, "mailbox_memory_mb": 4})
    for member, port in scheduler_ports.items():
        values = yaml.safe_load(members[member].config_path.read_text())
        values["scheduler"] = {"listen": f"127.0.0.1:{port}"}
        if member == C:
            values["transfer"]["metrics_listen"] = f"127.0.0.1:{metrics_port}"
        members[member].config_path.write_text(yaml.safe_dump(values))
    with members:
        yield members


@pytest.fixture()
def session(cluster: LocalCluster) -> str:
    session_id = f"session-{uuid.uuid4().hex[:8]}"
    cluster.register_session(session_id, PARTIES)
    return session_id


def federation(cluster: LocalCluster, session_id: str, party: Party) -> ClusterFederation:
    return cluster[party.member_id].federation(session_id, party, ROLES)


def peer_channel(cluster: LocalCluster, caller: str, target: str, cert_dir: Path | None = None) -> grpc.Channel:
    """A channel to `target`'s external listener holding `caller`'s certificate (or one from elsewhere)."""
    directory = cert_dir or cluster[caller].directory
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(cluster.ca_dir / "ca.crt").read_bytes(),
        private_key=(directory / f"{caller}.key").read_bytes(),
        certificate_chain=(directory / f"{caller}.crt").read_bytes(),
    )
    return grpc.secure_channel(cluster[target].external, credentials,
                               options=[("grpc.ssl_target_name_override", target)])


def peer_stub(cluster: LocalCluster, caller: str, target: str,
              cert_dir: Path | None = None) -> transfer_pb2_grpc.TransferPeerServiceStub:
    return transfer_pb2_grpc.TransferPeerServiceStub(peer_channel(cluster, caller, target, cert_dir))


def message_frames(session_id: str, name: str, src: Party, dst: Party, payload: bytes,
                   checksum: bytes | None = None, tag: str = "fit") -> list[transfer_pb2.Frame]:
    header = transfer_pb2.FrameHeader(
        message_id=uuid.uuid4().hex, session_id=session_id, name=name, tag=tag,
        src=common_pb2.Party(role=src.role, member_id=src.member_id),
        dst=common_pb2.Party(role=dst.role, member_id=dst.member_id),
        total_size=len(payload), kind=transfer_pb2.PAYLOAD_KIND_OBJECT,
    )
    chunks = [payload[i:i + MIB] for i in range(0, len(payload), MIB)]
    end = transfer_pb2.FrameEnd(chunk_count=len(chunks), total_size=len(payload),
                                checksum=checksum or checksum_of(payload))
    return [transfer_pb2.Frame(header=header),
            *(transfer_pb2.Frame(chunk=transfer_pb2.FrameChunk(seq=i, data=c)) for i, c in enumerate(chunks)),
            transfer_pb2.Frame(end=end)]


def run_parties(jobs: dict[Party, Callable[[], Any]]) -> dict[Party, Any]:
    with futures.ThreadPoolExecutor(len(jobs)) as pool:
        running = {party: pool.submit(job) for party, job in jobs.items()}
        return {party: future.result(timeout=60) for party, future in running.items()}


def peer_stats(member: LocalMember, peer: str) -> transfer_pb2.PeerStats:
    for stats in member.stats().peers:
        if stats.member_id == peer:
            return stats
    return transfer_pb2.PeerStats(member_id=peer)


# ---- moving messages ----------------------------------------------------------------------


def test_three_members_exchange_through_transfer_variables(cluster: LocalCluster, session: str) -> None:
    # Prepare: the Distribution component's real definitions, as a component would use them.
    definitions = get_component("Distribution").transfer_variables
    stats_before = {m: peer_stats(cluster[C], m) for m in (A, B)}

    def variables(party: Party) -> TransferVariables:
        return TransferVariables(definitions, federation(cluster, session, party), FlowContext("fit"), 20.0)

    def data_party(party: Party, values: np.ndarray) -> Callable[[], Any]:
        def job() -> Any:
            tv = variables(party)
            tv.local_statistics.remote({"sum": values.sum(), "values": values}, role="arbiter")
            return tv.bin_edges.get(idx=0)
        return job

    def arbiter() -> Any:
        tv = variables(ARBITER)
        received = tv.local_statistics.get()
        total = sum(float(item["sum"]) for item in received)
        tv.bin_edges.remote(np.linspace(0, total, 5))
        return [item["values"] for item in received]

    # Execute
    results = run_parties({
        PROMOTER: data_party(PROMOTER, np.arange(4.0)),
        PROVIDER: data_party(PROVIDER, np.arange(10.0, 13.0)),
        ARBITER: arbiter,
    })

    # Assert
    np.testing.assert_array_equal(results[ARBITER][0], np.arange(4.0))
    np.testing.assert_array_equal(results[ARBITER][1], np.arange(10.0, 13.0))
    np.testing.assert_allclose(results[PROMOTER], np.linspace(0, 39.0, 5))
    np.testing.assert_allclose(results[PROVIDER], np.linspace(0, 39.0, 5))
    for member in (A, B):
        after = peer_stats(cluster[C], member)
        assert after.messages_in == stats_before[member].messages_in + 1
        assert after.bytes_in > stats_before[member].bytes_in
        assert peer_stats(cluster[C], member).messages_out >= 1


def test_object_larger_than_a_chunk_arrives_intact(cluster: LocalCluster, session: str) -> None:
    # Prepare
    payload = np.random.default_rng(1).random(3 * MIB // 8 + 17)
    sender, receiver = federation(cluster, session, PROMOTER), federation(cluster, session, ARBITER)

    # Execute
    sender.remote(STATS_VAR, "fit.big", payload, [ARBITER])
    received = receiver.get(STATS_VAR, "fit.big", [PROMOTER], timeout=20)

    # Assert
    np.testing.assert_array_equal(received[0], payload)


def test_receive_timeout_names_variable_tag_and_peer(cluster: LocalCluster, session: str) -> None:
    # Prepare
    receiver = federation(cluster, session, ARBITER)
    request = transfer_pb2.ReceiveRequest(
        session_id=session, name=STATS_VAR, tag="fit.never", timeout_ms=200,
        src=common_pb2.Party(role="provider", member_id=B), dst=common_pb2.Party(role="arbiter", member_id=C),
    )

    # Execute
    with pytest.raises(FederationTimeout) as timeout:
        receiver.get(STATS_VAR, "fit.never", [PROMOTER], timeout=0.3)
    with pytest.raises(grpc.RpcError) as raw:
        list(cluster[C].stub(session).Receive(request, timeout=10))

    # Assert
    assert STATS_VAR in str(timeout.value) and "'fit.never'" in str(timeout.value)
    assert f"promoter:{A}" in str(timeout.value)
    assert raw.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert STATS_VAR in raw.value.details() and "fit.never" in raw.value.details() and B in raw.value.details()


def test_stats_count_the_receive_calls_still_waiting(cluster: LocalCluster, session: str) -> None:
    # Prepare: a task waits for a message nobody has sent yet
    request = transfer_pb2.ReceiveRequest(
        session_id=session, name=STATS_VAR, tag="fit.later", timeout_ms=60_000,
        src=common_pb2.Party(role="promoter", member_id=A), dst=common_pb2.Party(role="arbiter", member_id=C),
    )
    waiting = cluster[C].stub(session).Receive(request, timeout=60)
    deadline = time.monotonic() + 10
    while cluster[C].stats().receivers_waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    during = cluster[C].stats().receivers_waiting

    # Execute: the message comes and the task reads it
    federation(cluster, session, PROMOTER).remote(STATS_VAR, "fit.later", b"x" * 10, [ARBITER])
    frames = list(waiting)

    # Assert
    assert during == 1
    assert frames[-1].WhichOneof("kind") == "end"
    assert cluster[C].stats().receivers_waiting == 0


def test_clean_session_frees_memory_and_disk(cluster: LocalCluster, session: str) -> None:
    # Prepare: one small message (memory) and one past the window (spilled), never read.
    sender = federation(cluster, session, PROMOTER)
    sender.remote(STATS_VAR, "fit.small", b"s" * 1000, [ARBITER])
    sender.remote(STATS_VAR, "fit.large", b"L" * (3 * MIB), [ARBITER])
    held = cluster[C].stats()
    spill = cluster[C].directory / "data" / "spill" / "mailbox" / session

    # Execute
    cleaned = cluster[C].stub().CleanSession(transfer_pb2.CleanSessionRequest(session_id=session), timeout=10)
    after = cluster[C].stats()

    # Assert
    assert held.mailbox_memory_bytes >= 1000 and held.mailbox_disk_bytes >= 3 * MIB
    assert cleaned.messages_removed == 2 and cleaned.bytes_freed > 3 * MIB
    assert (after.mailbox_messages, after.mailbox_memory_bytes, after.mailbox_disk_bytes) == (0, 0, 0)
    assert after.sessions == held.sessions - 1
    assert not spill.exists()


# ---- refusals -------------------------------------------------------------------------------


def assert_nothing_stored(member: LocalMember) -> None:
    stats = member.stats()
    assert (stats.mailbox_messages, stats.mailbox_memory_bytes, stats.mailbox_disk_bytes) == (0, 0, 0)


def test_a_certificate_from_another_ca_is_refused(cluster: LocalCluster, session: str, tmp_path: Path) -> None:
    # Prepare: a certificate for member A issued by a CA the federation does not trust.
    create_ca(tmp_path / "rogue")
    issue_member_cert(tmp_path / "rogue", A, out_dir=tmp_path / "rogue")
    stub = peer_stub(cluster, A, C, cert_dir=tmp_path / "rogue")

    # Execute
    with pytest.raises(grpc.RpcError) as error:
        stub.Deliver(iter(message_frames(session, STATS_VAR, PROMOTER, ARBITER, b"x")), timeout=10)

    # Assert
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    assert_nothing_stored(cluster[C])


@pytest.mark.parametrize(
    ("caller", "name", "src", "dst", "session_override", "expected"),
    [
        pytest.param(B, STATS_VAR, PROMOTER, ARBITER, None, "is not the certificate's member", id="B-claims-to-be-A"),
        pytest.param(A, STATS_VAR, PROMOTER, Party("arbiter", B), None, "addressed to member", id="for-another-member"),
        pytest.param(A, EDGES_VAR, PROMOTER, ARBITER, None, "role promoter may not send", id="role-not-allowed"),
        pytest.param(A, STATS_VAR, PROMOTER, Party("provider", C), None, "is not a party", id="not-in-role-table"),
        pytest.param(A, "Nobody.secret", PROMOTER, ARBITER, None, "no component defines", id="unknown-variable"),
        pytest.param(A, STATS_VAR, PROMOTER, ARBITER, "no-such-session", "not registered", id="unknown-session"),
    ],
)
def test_peer_frames_the_rules_refuse(cluster: LocalCluster, session: str, caller: str, name: str, src: Party,
                                      dst: Party, session_override: str | None, expected: str) -> None:
    # Prepare
    refused_before = peer_stats(cluster[C], caller).refused
    frames = message_frames(session_override or session, name, src, dst, b"payload")

    # Execute
    with pytest.raises(grpc.RpcError) as error:
        peer_stub(cluster, caller, C).Deliver(iter(frames), timeout=10)

    # Assert
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert expected in error.value.details()
    assert peer_stats(cluster[C], caller).refused == refused_before + 1
    assert_nothing_stored(cluster[C])


def test_a_bad_checksum_is_refused_with_data_loss(cluster: LocalCluster, session: str) -> None:
    # Prepare
    frames = message_frames(session, STATS_VAR, PROMOTER, ARBITER, b"z" * (2 * MIB + 5), checksum=b"\1" * 16)

    # Execute
    with pytest.raises(grpc.RpcError) as error:
        peer_stub(cluster, A, C).Deliver(iter(frames), timeout=10)

    # Assert
    assert error.value.code() == grpc.StatusCode.DATA_LOSS
    assert_nothing_stored(cluster[C])


def test_the_sending_member_refuses_what_the_definition_forbids(cluster: LocalCluster, session: str) -> None:
    # Prepare: a promoter may not send bin_edges (only the arbiter may).
    sender = federation(cluster, session, PROMOTER)

    # Execute
    with pytest.raises(PermissionDenied, match="role promoter may not send it"):
        sender.remote(EDGES_VAR, "fit", [1, 2, 3], [PROVIDER])

    # Assert
    assert_nothing_stored(cluster[B])


# ---- control relay, health, routing --------------------------------------------------------


@pytest.fixture()
def scheduler_at_c(cluster: LocalCluster, scheduler_ports: dict[str, int]) -> Iterator[list[tuple[str, bytes, str]]]:
    """A stand-in for member C's scheduler: records relayed calls (source from the relay credential), acks."""
    calls: list[tuple[str, bytes, str]] = []
    key = internal_auth.read_key(cluster[C].directory / "internal.key")

    def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
        claims = internal_auth.verify(key, internal_auth.token_of(context.invocation_metadata()), {internal_auth.RELAY})
        source = claims.member
        calls.append((context.method if hasattr(context, "method") else "", request, str(source)))
        if request == b"fail":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "spec_json: not valid JSON")
        return common_pb2.Ack(message=f"created for {source}").SerializeToString()

    class Handler(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            return grpc.unary_unary_rpc_method_handler(handle)

    server = grpc.server(futures.ThreadPoolExecutor(2))
    server.add_generic_rpc_handlers((Handler(),))
    server.add_insecure_port(f"127.0.0.1:{scheduler_ports[C]}")
    server.start()
    yield calls
    server.stop(0)


def test_control_calls_are_relayed_to_the_peer_scheduler(cluster: LocalCluster, scheduler_at_c: list[Any]) -> None:
    # Prepare
    method = "/weft.v1.SchedulerPeerService/CreateJob"

    def relay(payload: bytes, target: str = C, name: str = method) -> transfer_pb2.ControlReply:
        request = transfer_pb2.ControlRequest(target_member_id=target, method=name, payload=payload, timeout_ms=5000)
        reply: transfer_pb2.ControlReply = cluster[A].stub().RelayControl(request, timeout=20)
        return reply

    # Execute
    ok = relay(b"job")
    failed = relay(b"fail")
    with pytest.raises(grpc.RpcError) as not_relayed:
        relay(b"x", name="/weft.v1.SchedulerService/SubmitJob")
    with pytest.raises(grpc.RpcError) as no_route:
        relay(b"x", target="d" * 32)

    # Assert
    assert ok.status_code == 0 and common_pb2.Ack.FromString(ok.payload).message == f"created for {A}"
    assert [(request, source) for _, request, source in scheduler_at_c] == [(b"job", A), (b"fail", A)]
    assert failed.status_code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert failed.message == "spec_json: not valid JSON"
    assert not_relayed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert no_route.value.code() == grpc.StatusCode.NOT_FOUND


def test_both_listeners_answer_health_checks(cluster: LocalCluster) -> None:
    # Prepare
    external = health_pb2_grpc.HealthStub(peer_channel(cluster, A, B))

    # Execute
    reply = external.Check(health_pb2.HealthCheckRequest(service=PEER_SERVICE_NAME), timeout=10)

    # Assert
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    cluster[B].wait_ready(timeout=5)


def test_prometheus_metrics_show_traffic_and_mailbox(cluster: LocalCluster, session: str, metrics_port: int) -> None:
    # Prepare
    federation(cluster, session, PROMOTER).remote(STATS_VAR, "fit.metrics", b"m" * 5000, [ARBITER])

    # Execute
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()

    # Assert
    assert f'weft_transfer_messages_total{{direction="received",peer="{A}"}}' in text
    assert f'weft_transfer_bytes_total{{direction="received",peer="{A}",service="transfer"}}' in text
    assert "weft_transfer_mailbox_messages 1.0" in text
    assert 'weft_grpc_requests_total{method="/weft.v1.TransferPeerService/Deliver",service="transfer"}' in text
    cluster[C].stub().CleanSession(transfer_pb2.CleanSessionRequest(session_id=session), timeout=10)


def test_routes_are_reloaded_when_the_config_file_changes(cluster: LocalCluster) -> None:
    # Prepare: member D is unknown to A; then A's config names it, at B's endpoint.
    d = "d" * 32
    request = transfer_pb2.ControlRequest(target_member_id=d, method="/weft.v1.SchedulerPeerService/StopJob",
                                          timeout_ms=1500)
    with pytest.raises(grpc.RpcError) as before:
        cluster[A].stub().RelayControl(request, timeout=20)
    original = cluster[A].config_path.read_text()
    values = yaml.safe_load(original)
    values["peers"][d] = {"endpoint": cluster[B].external}

    # Execute
    cluster[A].config_path.write_text(yaml.safe_dump(values))
    try:
        with pytest.raises(grpc.RpcError) as after:
            cluster[A].stub().RelayControl(request, timeout=20)
    finally:
        cluster[A].config_path.write_text(original)

    # Assert: the route is known now, and B's certificate is not accepted as D's.
    assert before.value.code() == grpc.StatusCode.NOT_FOUND
    assert after.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_member_without_a_route_is_not_found(cluster: LocalCluster) -> None:
    # Prepare: member E takes part in the session but A's config has no route to it.
    d_arbiter = Party("arbiter", "e" * 32)
    cluster[A].register_session("no-route", [PROMOTER, d_arbiter])
    sender = cluster[A].federation("no-route", PROMOTER,
                               RoleTable({"promoter": (A,), "arbiter": (d_arbiter.member_id,)}))

    # Execute / Assert
    with pytest.raises(NotFound, match=f"no route to member {d_arbiter.member_id}"):
        sender.remote(STATS_VAR, "fit", 1, [d_arbiter])


# ---- big tables, restarts --------------------------------------------------------------------


@pytest.fixture()
def pair(tmp_path: Path) -> Iterator[LocalCluster]:
    """Two fresh members (promoter A, arbiter C) with an 8 MiB window and a 16 MiB mailbox budget.

    Every message goes through A's service (the direct path is off): these tests are about the
    service path; tests/test_transfer_direct.py has the direct path's."""
    with LocalCluster(tmp_path, [A, C], transfer={"window_mb": 8, "mailbox_memory_mb": 16,
                                                  "direct_min_bytes": 0}) as members:
        members.register_session("s", [PROMOTER, ARBITER])
        yield members


def test_a_200_mb_table_passes_with_bounded_receiver_memory(pair: LocalCluster, tmp_path: Path) -> None:
    # Prepare
    rows = 200 * MIB // 16
    table = pa.table({"id": np.arange(rows, dtype=np.int64), "x": np.random.default_rng(2).random(rows)})
    rss_before, _ = rss_mb(pair[C].pid)
    sender = pair[A].federation("s", PROMOTER, ROLES)
    receiver = pair[C].federation("s", ARBITER, ROLES)

    # Execute
    sender.remote_table(STATS_VAR, "fit", table, [ARBITER])
    _, peak_while_storing = rss_mb(pair[C].pid)
    stored = pair[C].stats()
    saved = receiver.save_table(STATS_VAR, "fit", PROMOTER, tmp_path / "received.parquet", timeout=60)
    _, peak = rss_mb(pair[C].pid)

    # Assert
    import pyarrow.parquet as pq

    assert stored.mailbox_memory_bytes == 0 and stored.mailbox_disk_bytes >= 200 * MIB
    assert saved == rows
    received = pq.read_table(tmp_path / "received.parquet")
    assert received.equals(table)
    assert max(peak_while_storing, peak) - rss_before < 8 + FIXED_OVERHEAD_MB
    assert pair[C].stats().mailbox_disk_bytes == 0


@pytest.mark.parametrize(
    ("size_mib", "kill_at_chunk", "service_replays"),
    [pytest.param(6, 4, True, id="within-window-service-retries"),
     pytest.param(48, 24, False, id="past-window-task-sends-again")],
)
def test_peer_restarted_mid_stream_gets_the_message_once(pair: LocalCluster, size_mib: int, kill_at_chunk: int,
                                                         service_replays: bool) -> None:
    # Prepare: the receiving member is killed after a few chunks went out, then started again.
    payload = np.random.default_rng(3).bytes(size_mib * MIB)
    sender = pair[A].federation("s", PROMOTER, ROLES)
    send_calls: list[int] = []
    original_send = sender._call_send

    def crash_after_chunks(frames: Iterator[OutFrame]) -> Iterator[OutFrame]:
        for index, frame in enumerate(frames):
            if index == kill_at_chunk:
                if not service_replays:
                    # The sending service must be past its first window before the peer dies
                    # (the task's frames may still sit in socket buffers at this point).
                    deadline = time.monotonic() + 30
                    while peer_stats(pair[A], C).bytes_out <= 2 * 8 * MIB and time.monotonic() < deadline:
                        time.sleep(0.01)
                pair[C].kill()
                pair[C].start(wait=False)
            yield frame

    def send(frames: Iterator[OutFrame], **kwargs: Any) -> Any:
        send_calls.append(1)
        return original_send(crash_after_chunks(frames) if len(send_calls) == 1 else frames, **kwargs)

    sender._call_send = send  # type: ignore[assignment]

    # Execute
    sender.remote(STATS_VAR, "fit", payload, [ARBITER])
    receiver = pair[C].federation("s", ARBITER, ROLES)
    received = receiver.get(STATS_VAR, "fit", [PROMOTER], timeout=30)
    with pytest.raises(FederationTimeout):
        receiver._receive_bytes(STATS_VAR, "fit", PROMOTER, timeout=0.5)

    # Assert
    assert received == [payload]
    assert peer_stats(pair[A], C).retries >= 1
    assert len(send_calls) == (1 if service_replays else 2)
    assert pair[C].stats().mailbox_messages == 0
