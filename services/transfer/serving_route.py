"""The serving route of the control relay: ServingPeerService calls between members' serving services.

Who may use it: at the sending member, only its serving service (the `serving` internal
credential) and only for `weft.v1.ServingPeerService` methods; at the receiving member,
a peer whose mutual-TLS certificate named its member id. The receiving transfer service
hands the call to its own serving service with a relay credential signed with the
member-internal key that names that member id and the method, exactly as it does for
scheduler peer calls; the serving service accepts nothing else on its peer API.
"""

from __future__ import annotations

from typing import Final

import grpc

from kernel.errors import PermissionDenied
from protos.weft.v1 import serving_pb2, transfer_pb2
from services.common import internal_auth
from services.common.config import MemberConfig

# The serving service restarts on its own (a new model version, an upgrade): reconnect quickly.
_CHANNEL_OPTIONS: Final = (
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
)

SERVING_PEER_SERVICE: Final = "weft.v1.ServingPeerService"


def _methods() -> frozenset[str]:
    service = serving_pb2.DESCRIPTOR.services_by_name[SERVING_PEER_SERVICE.rsplit(".", 1)[1]]
    return frozenset(f"/{SERVING_PEER_SERVICE}/{method.name}" for method in service.methods)


SERVING_METHODS: Final = _methods()


def is_serving_method(method: str) -> bool:
    return method in SERVING_METHODS


def check_signer(signer: str, method: str) -> None:
    """The serving service relays only serving calls; the scheduler only scheduler calls."""
    if (signer == internal_auth.SERVING) != is_serving_method(method):
        raise PermissionDenied(f"the {signer} may not relay {method!r}")


class ServingRoute:
    """Hands relayed serving calls to this member's serving service."""

    def __init__(self, config: MemberConfig, key: bytes) -> None:
        self.endpoint = config.serving.listen
        self.key = key
        self.control_timeout_s = config.transfer.control_timeout_s
        self._channel: grpc.aio.Channel | None = None

    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            self._channel = grpc.aio.insecure_channel(self.endpoint, options=_CHANNEL_OPTIONS)
        return self._channel

    async def call(self, request: transfer_pb2.ControlRequest, source: str) -> transfer_pb2.ControlReply:
        """The local serving service's answer to a peer's call, error or not.

        The call waits for the serving service to be reachable (it may be restarting), within
        the caller's deadline; a serving service that stays down ends as DEADLINE_EXCEEDED."""
        call = self.channel().unary_unary(request.method)
        timeout = request.timeout_ms / 1000 if request.timeout_ms > 0 else self.control_timeout_s
        credential = internal_auth.sign(self.key, internal_auth.RELAY, member=source, method=request.method)
        try:
            payload = await call(request.payload, timeout=timeout, metadata=internal_auth.metadata(credential),
                                 wait_for_ready=True)
        except grpc.aio.AioRpcError as exc:
            return transfer_pb2.ControlReply(status_code=exc.code().value[0], message=exc.details() or "")
        return transfer_pb2.ControlReply(payload=payload, status_code=0)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
