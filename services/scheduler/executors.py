"""The member's executors as the scheduler sees them: pick the least loaded, run, watch, stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import grpc

from kernel.errors import FailedPrecondition, NotFound, Unavailable
from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from services.common import internal_auth

log = logging.getLogger("weft.scheduler.executors")


class ExecutorPool:
    """gRPC clients of the configured executors (one channel each)."""

    def __init__(self, endpoints: Sequence[str], key: bytes,
                 on_task_finished: Callable[[str, str, float], None] | None = None,
                 call_timeout_s: float = 10.0) -> None:
        """`on_task_finished(component, status, seconds)` hears of each task end a stream brings.

        Every call is signed with the scheduler credential (`key`: the member-internal key)."""
        self.on_task_finished = on_task_finished
        self.call_timeout_s = call_timeout_s  # scheduler.executor_call_timeout_s
        if not endpoints:
            raise Unavailable("scheduler.executors is empty: configure at least one executor endpoint")
        self.endpoints = list(endpoints)
        self.key = key
        self._channels = {e: internal_auth.signed_aio_channel(e, key) for e in self.endpoints}
        self._stubs = {e: executor_pb2_grpc.ExecutorServiceStub(c) for e, c in self._channels.items()}

    def stub(self, endpoint: str) -> executor_pb2_grpc.ExecutorServiceStub:
        stub = self._stubs.get(endpoint)
        if stub is None:
            # A task recorded with an executor no longer configured: still reachable for
            # re-attaching and stopping.
            channel = self._channels[endpoint] = internal_auth.signed_aio_channel(endpoint, self.key)
            stub = self._stubs[endpoint] = executor_pb2_grpc.ExecutorServiceStub(channel)
        return stub

    async def _load(self, endpoint: str, job_id: str) -> float | None:
        try:
            reply = await self.stub(endpoint).ListTasks(
                executor_pb2.ListTasksRequest(job_id=job_id), timeout=self.call_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            log.warning("executor %s did not answer ListTasks: %s", endpoint, exc.details())
            return None
        busy = reply.running_count + reply.queued_count
        return busy / max(reply.slots_total, 1)

    async def pick(self, job_id: str) -> str:
        """The reachable executor with the fewest running and queued tasks per slot."""
        if len(self.endpoints) == 1:
            return self.endpoints[0]
        loads = await asyncio.gather(*(self._load(e, job_id) for e in self.endpoints))
        candidates = [(load, index) for index, load in enumerate(loads) if load is not None]
        if not candidates:
            raise Unavailable(f"no executor answers (tried {', '.join(self.endpoints)})")
        return self.endpoints[min(candidates)[1]]

    def run_task(self, endpoint: str, spec: executor_pb2.TaskSpec) -> AsyncIterator[executor_pb2.TaskEvent]:
        call = self.stub(endpoint).RunTask(executor_pb2.RunTaskRequest(spec=spec))
        return self._events(endpoint, call, spec.component_name)

    def watch_task(self, endpoint: str, task_id: str) -> AsyncIterator[executor_pb2.TaskEvent]:
        return self._events(endpoint, self.stub(endpoint).WatchTask(executor_pb2.WatchTaskRequest(task_id=task_id)))

    async def _events(
        self, endpoint: str, call: grpc.aio.UnaryStreamCall, component: str = ""
    ) -> AsyncIterator[executor_pb2.TaskEvent]:
        started_ms = 0
        try:
            async for event in call:
                kind = event.WhichOneof("event")
                if kind == "snapshot":  # WatchTask: the task as it stands, perhaps long started
                    component, started_ms = event.snapshot.component_name, event.snapshot.started_at_ms
                elif kind == "started":
                    started_ms = event.timestamp_ms
                elif kind == "finished" and started_ms and self.on_task_finished is not None:
                    status = common_pb2.TaskStatus.Name(event.finished.status).removeprefix("TASK_STATUS_")
                    self.on_task_finished(component, status.lower(), (event.timestamp_ms - started_ms) / 1000)
                yield event
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"executor {endpoint}: {exc.details()}") from None
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                              grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL):
                raise Unavailable(f"executor {endpoint}: {exc.code().name}: {exc.details()}") from None
            # The executor refused the task itself (a bad spec, say): retrying will not help.
            raise FailedPrecondition(f"executor {endpoint} refused the task: {exc.code().name}: {exc.details()}") from None
        finally:
            call.cancel()

    async def stop_task(self, endpoint: str, task_id: str, reason: str) -> int:
        """Stop a task; returns its TaskStatus after the call (an unknown task counts as stopped)."""
        try:
            reply = await self.stub(endpoint).StopTask(
                executor_pb2.StopTaskRequest(task_id=task_id, reason=reason), timeout=self.call_timeout_s
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                return common_pb2.TASK_STATUS_STOPPED
            raise Unavailable(f"executor {endpoint}: cannot stop {task_id}: {exc.details()}") from None
        return int(reply.status)

    async def tail_task_log(self, endpoint: str,
                            request: executor_pb2.TailTaskLogRequest) -> executor_pb2.TailTaskLogResponse:
        """A chunk of a task's log from the executor that runs or ran it."""
        try:
            return await self.stub(endpoint).TailTaskLog(request, timeout=self.call_timeout_s)
        except grpc.aio.AioRpcError as exc:
            if exc.code() is grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"executor {endpoint}: {exc.details()}") from None
            raise Unavailable(f"executor {endpoint}: cannot read the log of {request.task_id}: "
                              f"{exc.code().name}: {exc.details()}") from None

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
