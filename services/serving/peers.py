"""Serving-to-serving calls, always through the local transfer service's control relay, within a deadline."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from kernel.errors import FederationTimeout, Unavailable, WeftError
from protos.weft.v1 import transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.scheduler.peers import error_from_status
from services.serving.constants import PEER_SERVICE, RELAY_GRACE_S

M = TypeVar("M", bound=Message)


def _code_of(value: int) -> grpc.StatusCode:
    for status in grpc.StatusCode:
        if status.value[0] == value:
            return status
    return grpc.StatusCode.UNKNOWN


class ServingPeers:
    """Calls ServingPeerService at other members through this member's transfer service."""

    def __init__(self, transfer_endpoint: str, key: bytes) -> None:
        self.key = key
        self._channel = grpc.aio.insecure_channel(transfer_endpoint)
        self.stub = transfer_pb2_grpc.TransferServiceStub(self._channel)

    async def call(self, member_id: str, method: str, request: Message, reply_type: type[M],
                   deadline_s: float, what: str = "provider") -> M:
        """`method` at `member_id`'s serving; its error, or a deadline error naming the member."""
        control = transfer_pb2.ControlRequest(
            target_member_id=member_id, method=f"/{PEER_SERVICE}/{method}", payload=request.SerializeToString(),
            timeout_ms=max(1, int(deadline_s * 1000)))
        credential = internal_auth.metadata(internal_auth.sign(self.key, internal_auth.SERVING))
        try:
            reply = await asyncio.wait_for(
                self.stub.RelayControl(control, timeout=deadline_s + RELAY_GRACE_S, metadata=credential), deadline_s)
        except TimeoutError:
            raise FederationTimeout(
                f"{what} {member_id} did not answer {method} within {deadline_s * 1000:.0f} ms") from None
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise FederationTimeout(
                    f"{what} {member_id} did not answer {method} within {deadline_s * 1000:.0f} ms") from None
            if code == grpc.StatusCode.UNAVAILABLE:
                raise Unavailable(f"{what} {member_id} is unreachable for {method}: {exc.details()}") from None
            raise _named(error_from_status(code, exc.details() or code.name, member_id), what) from None
        if reply.status_code != 0:
            code = _code_of(reply.status_code)
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise FederationTimeout(f"{what} {member_id} did not answer {method} within "
                                        f"{deadline_s * 1000:.0f} ms: {reply.message}")
            raise _named(error_from_status(code, reply.message, member_id), what)
        parsed: Any = reply_type.FromString(reply.payload)
        return parsed  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self._channel.close()


def _named(error: WeftError, what: str) -> WeftError:
    """The peer's error, its message starting with who it is ("provider <id>: ...")."""
    text = str(error)
    if text.startswith("member "):
        error.args = (f"{what} {text[len('member '):]}",)
    return error
