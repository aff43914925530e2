"""Scheduler-to-scheduler calls, always through the local transfer service's control relay."""

from __future__ import annotations

import abc
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
    WeftError,
)
from kernel.retry import Backoff, retry_async
from protos.weft.v1 import common_pb2, scheduler_pb2, transfer_pb2, transfer_pb2_grpc
from services.common import internal_auth
from services.scheduler.constants import (
    PEER_RETRY_ATTEMPTS,
    PEER_RETRY_BASE_S,
    PEER_RETRY_MAX_S,
    PEER_SERVICE,
)

M = TypeVar("M", bound=Message)

PEER_RETRY = Backoff(attempts=PEER_RETRY_ATTEMPTS, base_delay=PEER_RETRY_BASE_S, max_delay=PEER_RETRY_MAX_S)


class PeerCallError(WeftError):
    """A peer scheduler answered a call with an error; `code` is its gRPC status."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.grpc_status = code.name


_ERRORS: dict[grpc.StatusCode, type[WeftError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def error_from_status(code: grpc.StatusCode, message: str, member_id: str) -> WeftError:
    """The project exception for a peer's error status, naming the peer."""
    text = f"member {member_id}: {message}"
    cls = _ERRORS.get(code)
    return cls(text) if cls is not None else PeerCallError(code, text)


def _code_of(value: int) -> grpc.StatusCode:
    for status in grpc.StatusCode:
        if status.value[0] == value:
            return status
    return grpc.StatusCode.UNKNOWN


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, Unavailable)


class PeerClient(abc.ABC):
    """Calls SchedulerPeerService at another member; errors come back as WeftErrors."""

    @abc.abstractmethod
    async def call_once(self, member_id: str, method: str, request: Message, reply_type: type[M]) -> M:
        """One call of `method` (e.g. "CreateJob") at `member_id`'s scheduler."""

    async def call(self, member_id: str, method: str, request: Message, reply_type: type[M]) -> M:
        """`call_once`, retried with backoff while the peer is unavailable."""
        return await retry_async(
            lambda: self.call_once(member_id, method, request, reply_type), _retryable, PEER_RETRY
        )

    async def create_job(self, member_id: str, request: scheduler_pb2.CreateJobRequest) -> common_pb2.Ack:
        return await self.call(member_id, "CreateJob", request, common_pb2.Ack)

    async def report_task_status(
        self, member_id: str, request: scheduler_pb2.ReportTaskStatusRequest
    ) -> common_pb2.Ack:
        return await self.call(member_id, "ReportTaskStatus", request, common_pb2.Ack)

    async def push_job_status(
        self, member_id: str, request: scheduler_pb2.PushJobStatusRequest
    ) -> common_pb2.Ack:
        return await self.call(member_id, "PushJobStatus", request, common_pb2.Ack)

    async def stop_job(self, member_id: str, request: scheduler_pb2.PeerStopJobRequest) -> common_pb2.Ack:
        return await self.call(member_id, "StopJob", request, common_pb2.Ack)

    async def rerun_job(self, member_id: str, request: scheduler_pb2.PeerRerunJobRequest) -> common_pb2.Ack:
        return await self.call(member_id, "RerunJob", request, common_pb2.Ack)

    async def close(self) -> None:  # noqa: B027 (most clients hold channels; not all)
        """Release channels."""


class TransferClient:
    """The local transfer service's internal API as the scheduler uses it (each call signed)."""

    def __init__(self, endpoint: str, key: bytes, call_timeout_s: float = 30.0) -> None:
        """`call_timeout_s`: deadline of each call (`scheduler.peer_call_timeout_s`)."""
        self.endpoint = endpoint
        self.key = key
        self.call_timeout_s = call_timeout_s
        self._channel = grpc.aio.insecure_channel(endpoint)
        self.stub = transfer_pb2_grpc.TransferServiceStub(self._channel)

    def credential(self) -> tuple[tuple[str, str]]:
        """Metadata with a fresh scheduler credential for one call."""
        return internal_auth.metadata(internal_auth.sign(self.key, internal_auth.SCHEDULER))

    async def register_session(self, session_id: str, job_id: str, parties: list[tuple[str, str]]) -> None:
        """Tell the transfer service which parties may exchange messages in `session_id`."""
        request = transfer_pb2.RegisterSessionRequest(
            session_id=session_id, job_id=job_id,
            parties=[common_pb2.Party(role=role, member_id=member) for role, member in parties],
        )

        async def once() -> None:
            try:
                await self.stub.RegisterSession(request, timeout=self.call_timeout_s, metadata=self.credential())
            except grpc.aio.AioRpcError as exc:
                raise error_from_status(exc.code(), exc.details() or "", f"(transfer service {self.endpoint})") from None

        await retry_async(once, _retryable, PEER_RETRY)

    async def clean_session(self, session_id: str) -> tuple[int, int]:
        """Drop a session at the transfer service: its messages, and any later delivery into it."""
        request = transfer_pb2.CleanSessionRequest(session_id=session_id)

        async def once() -> tuple[int, int]:
            try:
                reply = await self.stub.CleanSession(request, timeout=self.call_timeout_s, metadata=self.credential())
            except grpc.aio.AioRpcError as exc:
                raise error_from_status(exc.code(), exc.details() or "", f"(transfer service {self.endpoint})") from None
            return int(reply.messages_removed), int(reply.bytes_freed)

        return await retry_async(once, _retryable, PEER_RETRY)

    async def close(self) -> None:
        await self._channel.close()


class RelayPeerClient(PeerClient):
    """Calls peers through the local transfer service's RelayControl (production path).

    The transfer services authenticate both ends with mutual TLS and hand the receiving
    scheduler the caller's certificate member id.
    """

    def __init__(self, transfer: TransferClient) -> None:
        self.transfer = transfer

    async def call_once(self, member_id: str, method: str, request: Message, reply_type: type[M]) -> M:
        control = transfer_pb2.ControlRequest(
            target_member_id=member_id, method=f"/{PEER_SERVICE}/{method}",
            payload=request.SerializeToString(), timeout_ms=int(self.transfer.call_timeout_s * 1000),
        )
        try:
            reply = await self.transfer.stub.RelayControl(control, timeout=self.transfer.call_timeout_s + 5,
                                                          metadata=self.transfer.credential())
        except grpc.aio.AioRpcError as exc:
            raise error_from_status(exc.code(), exc.details() or exc.code().name, member_id) from None
        if reply.status_code != 0:
            raise error_from_status(_code_of(reply.status_code), reply.message, member_id)
        parsed: Any = reply_type.FromString(reply.payload)
        return parsed  # type: ignore[no-any-return]
