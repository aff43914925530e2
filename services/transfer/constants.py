"""Constants of the transfer service: frame limits, retry policy, metadata keys, file layout."""

from __future__ import annotations

from typing import Final

from kernel.federation.wire.frames import MAX_FRAME_BYTES
from kernel.retry import Backoff

# gRPC message size limit on every channel and server: one chunk plus the frame's envelope.
MAX_GRPC_MESSAGE_BYTES: Final = MAX_FRAME_BYTES

# Only methods of this service are relayed between schedulers.
RELAYED_SERVICE: Final = "weft.v1.SchedulerPeerService"

# Forwarding a message to a peer: retried on UNAVAILABLE while the peer restarts, for
# transfer.deliver_deadline_s (the deadline here is replaced by the setting).
DELIVER_BACKOFF: Final = Backoff(attempts=30, base_delay=0.1, max_delay=2.0, deadline=120.0)

# Relayed control calls: a shorter patience, they are small and the caller has its own timeout.
CONTROL_BACKOFF: Final = Backoff(attempts=6, base_delay=0.1, max_delay=1.0, deadline=10.0)

# Calls still running on a replaced peer channel get this long to finish.
CHANNEL_CLOSE_GRACE_S: Final = 30.0

# Server options of both listeners.
SERVER_OPTIONS: Final[tuple[tuple[str, int], ...]] = (
    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_BYTES),
    ("grpc.keepalive_permit_without_calls", 1),
    # Accept the clients' keepalive pings (every 30 s) instead of answering "too many pings".
    ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
)

# Files under <data_dir>/transfer: registered sessions survive a restart.
STATE_DIR: Final = "transfer"
SESSIONS_DIR: Final = "sessions"

# Spill file suffixes: object payloads and Arrow IPC table streams.
SPILL_SUFFIX: Final = ".msg"
TABLE_SUFFIX: Final = ".arrows"

# How long a delivered message id is remembered after it was read (duplicates still dropped).
SEEN_ID_GRACE_S: Final = 3600.0

# Service names reported by the gRPC health service.
INTERNAL_SERVICE_NAME: Final = "weft.v1.TransferService"
PEER_SERVICE_NAME: Final = "weft.v1.TransferPeerService"

# Bytes in a MiB (config sizes are in MiB).
MIB: Final = 1024 * 1024

# How long the local-cluster helper waits for a started service to report SERVING.
READY_TIMEOUT_S: Final = 30.0
