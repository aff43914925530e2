"""GetMembers: this member, its certificate's expiry, its peers and the traffic counted on each link."""

from __future__ import annotations

import grpc

from protos.weft.v1 import scheduler_pb2, transfer_pb2
from services.common.config import MemberConfig
from services.scheduler.peers import TransferClient

#: GetStats is a local call; a transfer service that does not answer within this is reported as such.
STATS_TIMEOUT_S = 5.0


def certificate_not_after_ms(cert_file: str) -> int:
    """When the PEM certificate in `cert_file` expires (ms since the epoch); 0 without one."""
    if not cert_file:
        return 0
    from cryptography import x509

    try:
        with open(cert_file, "rb") as handle:
            certificate = x509.load_pem_x509_certificate(handle.read())
    except (OSError, ValueError):
        return 0
    return int(certificate.not_valid_after_utc.timestamp() * 1000)


class MembersView:
    """What GetMembers answers, from the member's config and its transfer service's counters."""

    def __init__(self, config: MemberConfig, transfer: TransferClient | None) -> None:
        self.config = config
        self.transfer = transfer

    async def describe(self) -> scheduler_pb2.GetMembersResponse:
        counters: dict[str, transfer_pb2.PeerStats] = {}
        error = ""
        if self.transfer is None:
            error = "no transfer service configured"
        else:
            try:
                stats = await self.transfer.stub.GetStats(transfer_pb2.GetStatsRequest(),
                                                          metadata=self.transfer.credential(), timeout=STATS_TIMEOUT_S)
                counters = {peer.member_id: peer for peer in stats.peers}
            except grpc.RpcError as exc:
                error = f"transfer service at {self.transfer.endpoint}: {exc.code().name} {exc.details() or ''}".strip()
        peers = []
        for member_id, peer in self.config.peers.items():
            seen = counters.get(member_id, transfer_pb2.PeerStats())
            peers.append(scheduler_pb2.MemberLink(
                member_id=member_id, name=peer.name, endpoint=peer.endpoint,
                messages_out=seen.messages_out, messages_in=seen.messages_in, bytes_out=seen.bytes_out,
                bytes_in=seen.bytes_in, retries=seen.retries, refused=seen.refused,
            ))
        return scheduler_pb2.GetMembersResponse(
            member_id=self.config.member_id, name=self.config.name,
            certificate_not_after_ms=certificate_not_after_ms(self.config.tls.cert_file),
            peers=peers, transfer_error=error,
        )
