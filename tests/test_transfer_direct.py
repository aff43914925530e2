"""A task's direct path for real: member processes on loopback, task certificates, delivery tickets.

Members A and C have task certificates; member B has none (its tasks send through its
service). Every refusal is made with a real gRPC client over TLS, and each asserts that the
receiving member stored nothing.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kernel.errors import ConfError
from kernel.federation.base import Party, RoleTable
from kernel.federation.codec import encode
from kernel.federation.direct import deliver
from kernel.federation.wire.frames import OutFrame, checksum_of
from protos.weft.v1 import common_pb2, transfer_pb2, transfer_pb2_grpc
from services.common.certs import create_ca, issue_member_cert
from services.common.config import load_config
from services.transfer.core import TransferCore
from services.transfer.loopback_services import LocalCluster, LocalMember
from services.transfer.tickets import sign_ticket

A, B, C = "a" * 32, "b" * 32, "c" * 32
PROMOTER, PROVIDER, ARBITER = Party("promoter", A), Party("provider", B), Party("arbiter", C)
PARTIES = [PROMOTER, PROVIDER, ARBITER]
ROLES = RoleTable({"promoter": (A,), "provider": (B,), "arbiter": (C,)})
STATS_VAR = "DistributionTransferVariable.local_statistics"  # promoter|provider -> arbiter
EDGES_VAR = "DistributionTransferVariable.bin_edges"  # arbiter -> promoter|provider
MIB = 1024 * 1024
THRESHOLD = 256 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = tmp_path_factory.mktemp("direct")
    members = LocalCluster(root, [A, B, C], transfer={"window_mb": 2, "mailbox_memory_mb": 16,
                                                      "direct_min_bytes": THRESHOLD})
    values = yaml.safe_load(members[B].config_path.read_text())
    del values["tls"]["task_cert_file"], values["tls"]["task_key_file"]
    members[B].config_path.write_text(yaml.safe_dump(values))
    with members:
        yield members


@pytest.fixture()
def session(cluster: LocalCluster) -> str:
    session_id = f"session-{uuid.uuid4().hex[:8]}"
    cluster.register_session(session_id, PARTIES)
    return session_id


def peer_stats(member: LocalMember, peer: str) -> transfer_pb2.PeerStats:
    for stats in member.stats().peers:
        if stats.member_id == peer:
            return stats
    return transfer_pb2.PeerStats(member_id=peer)


def issue(cluster: LocalCluster, member: str, session_id: str, target: str,
          job_session: str | None = None) -> transfer_pb2.IssueTicketResponse:
    """IssueTicket as a task of `job_session`'s job (default: the session's own)."""
    stub = cluster[member].stub(job_session or session_id)
    response: transfer_pb2.IssueTicketResponse = stub.IssueTicket(
        transfer_pb2.IssueTicketRequest(session_id=session_id, target_member_id=target), timeout=10)
    return response


def task_channel(cluster: LocalCluster, member: str, target: str) -> grpc.Channel:
    """A TLS channel to `target`'s external listener with `member`'s task certificate."""
    directory = cluster[member].directory
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(cluster.ca_dir / "ca.crt").read_bytes(),
        private_key=(directory / f"{member}.task.key").read_bytes(),
        certificate_chain=(directory / f"{member}.task.crt").read_bytes())
    return grpc.secure_channel(cluster[target].external, credentials,
                               options=[("grpc.ssl_target_name_override", target)])


def frames(session_id: str, src: Party, dst: Party, payload: bytes, message_id: str = "") -> list[bytes]:
    header = transfer_pb2.FrameHeader(
        message_id=message_id or uuid.uuid4().hex, session_id=session_id, name=STATS_VAR, tag="fit",
        src=common_pb2.Party(role=src.role, member_id=src.member_id),
        dst=common_pb2.Party(role=dst.role, member_id=dst.member_id),
        total_size=len(payload), kind=transfer_pb2.PAYLOAD_KIND_OBJECT)
    chunks = [payload[i:i + MIB] for i in range(0, len(payload), MIB)]
    end = transfer_pb2.FrameEnd(chunk_count=len(chunks), total_size=len(payload), checksum=checksum_of(payload))
    return [transfer_pb2.Frame(header=header).SerializeToString(),
            *(transfer_pb2.Frame(chunk=transfer_pb2.FrameChunk(seq=i, data=c)).SerializeToString()
              for i, c in enumerate(chunks)),
            transfer_pb2.Frame(end=end).SerializeToString()]


def member_files(cluster: LocalCluster, member: str) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) of a member."""
    directory = cluster[member].directory
    return (directory / f"{member}.crt").read_bytes(), (directory / f"{member}.key").read_bytes()


def assert_refused(cluster: LocalCluster, channel: grpc.Channel, session_id: str, ticket: bytes,
                   src: Party = PROMOTER, code: grpc.StatusCode = grpc.StatusCode.PERMISSION_DENIED,
                   caller: str = A) -> str:
    """Deliver to C must fail with `code`, C's mailbox must hold nothing more and C must count the
    refusal against `caller` (the member of the task certificate); the details."""
    before = cluster[C].stats().mailbox_messages
    refused = peer_stats(cluster[C], caller).refused
    with pytest.raises(grpc.RpcError) as caught:
        deliver(channel, iter(frames(session_id, src, ARBITER, b"x" * 1000)), ticket, timeout=10)
    assert caught.value.code() == code, caught.value.details()
    assert cluster[C].stats().mailbox_messages == before
    assert peer_stats(cluster[C], caller).refused == refused + 1
    return str(caught.value.details())


# ---- the product's path -----------------------------------------------------------------------


def test_large_message_travels_direct_and_small_one_through_the_service(cluster: LocalCluster, session: str) -> None:
    # Prepare: one message above the threshold, one below.
    big = bytes(range(256)) * (3 * MIB // 256 + 7)
    sender = cluster[A].federation(session, PROMOTER, ROLES)
    receiver = cluster[C].federation(session, ARBITER, ROLES)
    out_before, in_before = peer_stats(cluster[A], C), peer_stats(cluster[C], A)
    try:
        # Act
        sender.remote(STATS_VAR, "big", big, [ARBITER])
        out_mid = peer_stats(cluster[A], C)
        sender.remote(STATS_VAR, "small", b"s" * 1000, [ARBITER])
        got_big = receiver.get(STATS_VAR, "big", [PROMOTER], timeout=20)[0]
        got_small = receiver.get(STATS_VAR, "small", [PROMOTER], timeout=20)[0]
    finally:
        sender.close()
        receiver.close()
    # Assert: intact; A's service never saw the big message's bytes, C's service counted them.
    assert got_big == big and got_small == b"s" * 1000
    assert out_mid.bytes_out == out_before.bytes_out and out_mid.messages_out == out_before.messages_out
    in_after, out_after = peer_stats(cluster[C], A), peer_stats(cluster[A], C)
    assert in_after.messages_in == in_before.messages_in + 2
    assert in_after.bytes_in >= in_before.bytes_in + len(big)
    assert out_after.messages_out == out_before.messages_out + 1  # the small one only
    assert out_after.bytes_out < out_before.bytes_out + THRESHOLD


def test_a_resent_direct_message_is_stored_once(cluster: LocalCluster, session: str) -> None:
    # Prepare: a valid ticket and one message sent twice with the same id (a resend after a broken stream).
    grant = issue(cluster, A, session, C)
    payload = b"r" * (MIB + 5)
    message = frames(session, PROMOTER, ARBITER, encode(payload), message_id=uuid.uuid4().hex)
    before = cluster[C].stats().mailbox_messages
    with task_channel(cluster, A, C) as channel:
        # Act
        first = deliver(channel, iter(message), grant.ticket, timeout=10)
        second = deliver(channel, iter(message), grant.ticket, timeout=10)
    # Assert
    assert not first.duplicate and second.duplicate
    assert cluster[C].stats().mailbox_messages == before + 1
    receiver = cluster[C].federation(session, ARBITER, ROLES)
    try:
        assert receiver.get(STATS_VAR, "fit", [PROMOTER], timeout=10) == [payload]
    finally:
        receiver.close()


def test_issue_ticket_gives_what_the_task_needs(cluster: LocalCluster, session: str) -> None:
    grant = issue(cluster, A, session, C)
    assert grant.peer_endpoint == cluster[C].external and grant.server_name == C
    assert grant.ca_pem == (cluster.ca_dir / "ca.crt").read_bytes()
    assert grant.task_cert_pem == (cluster[A].directory / f"{A}.task.crt").read_bytes()
    assert grant.expires_at_ms > time.time() * 1000 + 60_000


def test_member_without_task_certificate_refuses_tickets_and_sends_through_its_service(
        cluster: LocalCluster, session: str) -> None:
    # Act: IssueTicket at B, which has no task certificate.
    with pytest.raises(grpc.RpcError) as caught:
        issue(cluster, B, session, C)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Act: a big message from B still arrives, through B's service.
    payload = b"p" * (2 * MIB)
    out_before = peer_stats(cluster[B], C)
    sender = cluster[B].federation(session, PROVIDER, ROLES)
    receiver = cluster[C].federation(session, ARBITER, ROLES)
    try:
        sender.remote(STATS_VAR, "fit", payload, [ARBITER])
        assert receiver.get(STATS_VAR, "fit", [PROVIDER], timeout=20)[0] == payload
    finally:
        sender.close()
        receiver.close()
    assert peer_stats(cluster[B], C).bytes_out >= out_before.bytes_out + len(payload)


# ---- IssueTicket refusals ---------------------------------------------------------------------


def test_issue_ticket_refuses_another_jobs_session_unknown_session_and_bad_member(
        cluster: LocalCluster, session: str) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    cluster.register_session(other, PARTIES)
    cases = [
        (lambda: issue(cluster, A, session, C, job_session=other), grpc.StatusCode.PERMISSION_DENIED),
        (lambda: issue(cluster, A, "no-such-session", C, job_session=session), grpc.StatusCode.NOT_FOUND),
        (lambda: issue(cluster, A, session, "C" * 32), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: issue(cluster, A, session, f"{C}.task"), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: issue(cluster, A, session, A), grpc.StatusCode.INVALID_ARGUMENT),
        (lambda: issue(cluster, A, session, "d" * 32), grpc.StatusCode.PERMISSION_DENIED),  # not a party
    ]
    for call, code in cases:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == code, caught.value.details()
    # The scheduler's credential is no task's: refused too.
    with pytest.raises(grpc.RpcError) as caught:
        cluster[A].stub().IssueTicket(transfer_pb2.IssueTicketRequest(session_id=session, target_member_id=C),
                                      timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


# ---- Deliver refusals of a task certificate ------------------------------------------------------


def test_task_certificate_without_ticket_is_refused(cluster: LocalCluster, session: str) -> None:
    with task_channel(cluster, A, C) as channel:
        details = assert_refused(cluster, channel, session, b"")
    assert "ticket" in details


def test_garbage_ticket_is_refused(cluster: LocalCluster, session: str) -> None:
    with task_channel(cluster, A, C) as channel:
        assert_refused(cluster, channel, session, b"\x0a\x03abc not a ticket")


def test_ticket_signed_by_another_key_is_refused(cluster: LocalCluster, session: str) -> None:
    # A forged ticket: A's certificate, but signed with a key that is not A's.
    cert, _ = member_files(cluster, A)
    forger = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    ticket, _ = sign_ticket(forger, cert, source=A, target=C, session_id=session, job_id="", ttl_s=300)
    with task_channel(cluster, A, C) as channel:
        assert "signature" in assert_refused(cluster, channel, session, ticket)


def test_ticket_signed_by_a_member_key_with_another_members_certificate_is_refused(
        cluster: LocalCluster, session: str) -> None:
    # B signs a ticket claiming to be A, attaching A's certificate.
    a_cert, _ = member_files(cluster, A)
    _, b_key = member_files(cluster, B)
    ticket, _ = sign_ticket(b_key, a_cert, source=A, target=C, session_id=session, job_id="", ttl_s=300)
    with task_channel(cluster, A, C) as channel:
        assert "signature" in assert_refused(cluster, channel, session, ticket)


def test_another_members_valid_ticket_is_refused_with_this_task_certificate(
        cluster: LocalCluster, session: str) -> None:
    # B's own valid ticket (signed by B with B's certificate), presented with A's task certificate.
    b_cert, b_key = member_files(cluster, B)
    ticket, _ = sign_ticket(b_key, b_cert, source=B, target=C, session_id=session, job_id="", ttl_s=300)
    with task_channel(cluster, A, C) as channel:
        assert_refused(cluster, channel, session, ticket)
        # ... and frames claiming B as source do not help either.
        assert_refused(cluster, channel, session, ticket, src=PROVIDER)


def test_a_ticket_whose_claims_were_altered_is_refused(cluster: LocalCluster, session: str) -> None:
    # A real ticket for another session, its claims rewritten to name this one; the signature kept.
    other = f"other-{uuid.uuid4().hex[:8]}"
    cluster.register_session(other, PARTIES)
    ticket = transfer_pb2.DeliveryTicket.FromString(issue(cluster, A, other, C).ticket)
    claims = transfer_pb2.TicketClaims.FromString(ticket.claims)
    claims.session_id = session
    ticket.claims = claims.SerializeToString()
    with task_channel(cluster, A, C) as channel:
        assert "signature" in assert_refused(cluster, channel, session, ticket.SerializeToString())


def test_a_ticket_presented_with_another_members_task_certificate_is_refused(
        cluster: LocalCluster, session: str) -> None:
    # B's task certificate (issued by the CA, though B's service hands it to nobody) with A's real ticket.
    grant = issue(cluster, A, session, C)
    with task_channel(cluster, B, C) as channel:
        assert_refused(cluster, channel, session, grant.ticket, caller=B)
        assert_refused(cluster, channel, session, grant.ticket, src=PROVIDER, caller=B)


def test_ticket_whose_certificate_comes_from_another_ca_is_refused(
        cluster: LocalCluster, session: str, tmp_path: Path) -> None:
    # A rogue CA issues a certificate with CN A; its key signs a well-formed ticket.
    create_ca(tmp_path / "rogue")
    rogue = issue_member_cert(tmp_path / "rogue", A, out_dir=tmp_path / "rogue")
    ticket, _ = sign_ticket(rogue.key_file.read_bytes(), rogue.cert_file.read_bytes(), source=A, target=C,
                            session_id=session, job_id="", ttl_s=300)
    with task_channel(cluster, A, C) as channel:
        assert "federation CA" in assert_refused(cluster, channel, session, ticket)


def test_ticket_carrying_an_expired_member_certificate_is_refused(cluster: LocalCluster, session: str) -> None:
    # The federation CA's own key issues a certificate for A that expired yesterday; its key signs.
    ca_cert = x509.load_pem_x509_certificate((cluster.ca_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((cluster.ca_dir / "ca.key").read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, A)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30)).not_valid_after(now - datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    ticket, _ = sign_ticket(key_pem, cert.public_bytes(serialization.Encoding.PEM), source=A, target=C,
                            session_id=session, job_id="", ttl_s=300)
    with task_channel(cluster, A, C) as channel:
        assert "validity dates" in assert_refused(cluster, channel, session, ticket)


def test_ticket_carrying_a_task_certificate_is_refused(cluster: LocalCluster, session: str) -> None:
    # Signed with the task key itself, carrying the task certificate: no member certificate.
    directory = cluster[A].directory
    ticket, _ = sign_ticket((directory / f"{A}.task.key").read_bytes(), (directory / f"{A}.task.crt").read_bytes(),
                            source=A, target=C, session_id=session, job_id="", ttl_s=300)
    with task_channel(cluster, A, C) as channel:
        assert "not a member certificate" in assert_refused(cluster, channel, session, ticket)


def test_expired_ticket_is_refused(cluster: LocalCluster, session: str) -> None:
    cert, key = member_files(cluster, A)
    ticket, _ = sign_ticket(key, cert, source=A, target=C, session_id=session, job_id="", ttl_s=300,
                            now=time.time() - 3600)
    with task_channel(cluster, A, C) as channel:
        assert "expired" in assert_refused(cluster, channel, session, ticket)


def test_ticket_valid_for_longer_than_a_peer_accepts_is_refused(cluster: LocalCluster, session: str) -> None:
    # Signed with A's own key for a day: genuine, unexpired, but a peer bounds what a stolen ticket is worth.
    cert, key = member_files(cluster, A)
    ticket, _ = sign_ticket(key, cert, source=A, target=C, session_id=session, job_id="", ttl_s=86400)
    with task_channel(cluster, A, C) as channel:
        assert "longer than the 3600 s" in assert_refused(cluster, channel, session, ticket)


def test_ticket_for_another_session_is_refused(cluster: LocalCluster, session: str) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    cluster.register_session(other, PARTIES)
    grant = issue(cluster, A, other, C)
    with task_channel(cluster, A, C) as channel:
        assert "session" in assert_refused(cluster, channel, session, grant.ticket)


def test_ticket_for_another_target_is_refused(cluster: LocalCluster, session: str) -> None:
    grant = issue(cluster, A, session, B)  # a real ticket, for member B
    with task_channel(cluster, A, C) as channel:
        assert "issued for member" in assert_refused(cluster, channel, session, grant.ticket)


def test_frames_from_another_source_member_are_refused(cluster: LocalCluster, session: str) -> None:
    grant = issue(cluster, A, session, C)
    with task_channel(cluster, A, C) as channel:
        assert_refused(cluster, channel, session, grant.ticket, src=PROVIDER)


def test_frames_addressed_elsewhere_or_against_the_roles_are_refused(cluster: LocalCluster, session: str) -> None:
    grant = issue(cluster, A, session, C)
    before = cluster[C].stats().mailbox_messages
    with task_channel(cluster, A, C) as channel:
        # Addressed to B while delivered at C.
        with pytest.raises(grpc.RpcError) as caught:
            deliver(channel, iter(frames(session, PROMOTER, PROVIDER, b"x")), grant.ticket, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
        # A variable that does not go promoter -> arbiter.
        message = frames(session, PROMOTER, ARBITER, b"x")
        header = transfer_pb2.Frame.FromString(message[0])
        header.header.name = EDGES_VAR
        message[0] = header.SerializeToString()
        with pytest.raises(grpc.RpcError) as caught:
            deliver(channel, iter(message), grant.ticket, timeout=10)
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert cluster[C].stats().mailbox_messages == before


def test_task_certificate_may_not_call_control(cluster: LocalCluster, session: str) -> None:
    refused = peer_stats(cluster[C], A).refused
    with task_channel(cluster, A, C) as channel:
        stub = transfer_pb2_grpc.TransferPeerServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.Control(transfer_pb2.ControlRequest(
                method="/weft.v1.SchedulerPeerService/CreateJob", target_member_id=C), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "task certificate" in str(caught.value.details())
    assert peer_stats(cluster[C], A).refused == refused + 1


def test_peer_restarted_mid_stream_of_a_direct_send_gets_the_message_once(tmp_path: Path) -> None:
    # Prepare: C is killed after a few chunks of a direct Deliver went out, then started again.
    with LocalCluster(tmp_path, [A, C], transfer={"window_mb": 2, "direct_min_bytes": THRESHOLD}) as pair:
        pair.register_session("s", [PROMOTER, ARBITER])
        payload = bytes(range(256)) * (12 * MIB // 256)
        sender = pair[A].federation("s", PROMOTER, ROLES)
        attempts: list[int] = []
        original_send = sender.direct.send

        def crash_after_chunks(frames: Iterator[OutFrame]) -> Iterator[OutFrame]:
            for index, frame in enumerate(frames):
                if index == 6:
                    pair[C].kill()
                    pair[C].start(wait=False)
                yield frame

        def send(frames: Callable[[], Iterator[OutFrame]], session_id: str, member_id: str) -> Any:
            def counted() -> Iterator[OutFrame]:
                attempts.append(1)
                return crash_after_chunks(frames()) if len(attempts) == 1 else frames()
            return original_send(counted, session_id, member_id)

        sender.direct.send = send  # type: ignore[method-assign]
        try:
            # Act
            sender.remote(STATS_VAR, "fit", payload, [ARBITER])
            receiver = pair[C].federation("s", ARBITER, ROLES)
            received = receiver.get(STATS_VAR, "fit", [PROMOTER], timeout=30)
        finally:
            sender.close()
        # Assert: sent again after the broken stream (same message id), stored once (no second copy waits).
        assert received == [payload]
        assert len(attempts) >= 2
        assert pair[C].stats().mailbox_messages == 0


@pytest.mark.parametrize(
    ("cert_of", "key_of", "problem"),
    [pytest.param(C, C, "has CN", id="another-members-task-certificate"),
     pytest.param(A, C, "is not the key", id="another-key"),
     pytest.param(A, None, "go together", id="key-missing")],
)
def test_the_service_refuses_to_start_with_a_wrong_task_certificate(
        tmp_path: Path, cert_of: str, key_of: str | None, problem: str) -> None:
    # Prepare: member A's config names a task certificate that is not its own, or half of one.
    members = LocalCluster(tmp_path, [A, C])
    values = yaml.safe_load(members[A].config_path.read_text())
    values["tls"]["task_cert_file"] = str(members[cert_of].directory / f"{cert_of}.task.crt")
    values["tls"]["task_key_file"] = str(members[key_of].directory / f"{key_of}.task.key") if key_of else ""
    members[A].config_path.write_text(yaml.safe_dump(values))

    # Act / Assert
    with pytest.raises(ConfError, match=problem):
        TransferCore(load_config(members[A].config_path))
