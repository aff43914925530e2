"""Traffic counters of the transfer service, per peer member."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

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
            receivers_waiting=mailbox.receivers_waiting,
        )


class TransferCollector:
    """Prometheus view of the counters and the mailbox, read when /metrics is scraped."""

    def __init__(self, stats: TrafficStats, mailbox: Callable[[], MailboxStats], sessions: Callable[[], int]) -> None:
        self.stats = stats
        self.mailbox = mailbox
        self.sessions = sessions

    def describe(self) -> list[Metric]:
        return []  # no fixed set up front: families are produced per scrape

    def collect(self) -> Iterator[Metric]:
        peers = self.stats.snapshot()
        messages = CounterMetricFamily("weft_transfer_messages", "messages moved between members",
                                       labels=["peer", "direction"])
        retries = CounterMetricFamily("weft_transfer_retries", "delivery attempts retried after UNAVAILABLE",
                                      labels=["peer"])
        refused = CounterMetricFamily("weft_transfer_refused", "frames or calls from a peer refused",
                                      labels=["peer"])
        for member, counters in sorted(peers.items()):
            messages.add_metric([member, "sent"], counters.messages_out)
            messages.add_metric([member, "received"], counters.messages_in)
            retries.add_metric([member], counters.retries)
            refused.add_metric([member], counters.refused)
        yield from (messages, retries, refused)
        mailbox = self.mailbox()
        yield GaugeMetricFamily("weft_transfer_mailbox_messages", "messages waiting in the mailbox",
                                value=mailbox.messages)
        yield GaugeMetricFamily("weft_transfer_receivers_waiting", "Receive calls waiting for their message",
                                value=mailbox.receivers_waiting)
        size = GaugeMetricFamily("weft_transfer_mailbox_bytes", "mailbox payload bytes", labels=["where"])
        size.add_metric(["memory"], mailbox.memory_bytes)
        size.add_metric(["disk"], mailbox.disk_bytes)
        yield size
        yield CounterMetricFamily("weft_transfer_duplicates_dropped", "duplicate deliveries dropped",
                                  value=mailbox.duplicates_dropped)
        yield GaugeMetricFamily("weft_transfer_sessions", "registered sessions", value=self.sessions())
