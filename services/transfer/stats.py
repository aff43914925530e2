"""Traffic counters of the transfer service, per peer member."""

from __future__ import annotations

from dataclasses import dataclass

from protos.weft.v1 import transfer_pb2
from services.transfer.mailbox import MailboxStats


@dataclass
class PeerCounters:
    """What passed between this member and one peer."""

    bytes_out: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    messages_in: int = 0
    retries: int = 0
    refused: int = 0


class TrafficStats:
    """Counters by peer member id."""

    def __init__(self) -> None:
        self.peers: dict[str, PeerCounters] = {}

    def peer(self, member_id: str) -> PeerCounters:
        counters = self.peers.get(member_id)
        if counters is None:
            counters = self.peers[member_id] = PeerCounters()
        return counters

    def snapshot(self) -> dict[str, PeerCounters]:
        return {member: PeerCounters(**vars(c)) for member, c in dict(self.peers).items()}

    def to_proto(self, mailbox: MailboxStats, sessions: int) -> transfer_pb2.TransferStats:
        return transfer_pb2.TransferStats(
            peers=[
                transfer_pb2.PeerStats(member_id=member, **vars(counters))
                for member, counters in sorted(self.snapshot().items())
            ],
            mailbox_messages=mailbox.messages,
            mailbox_memory_bytes=mailbox.memory_bytes,
            mailbox_disk_bytes=mailbox.disk_bytes,
            sessions=sessions,
            duplicates_dropped=mailbox.duplicates_dropped,
        )
