"""ExecutorService over gRPC (asyncio): the servicer, health checking and `serve(config)`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from kernel.errors import NotFound
from protos.weft.v1 import common_pb2, executor_pb2, executor_pb2_grpc
from services.common import internal_auth
from services.common.config import MemberConfig
from services.common.grpc_errors import grpc_method
from services.common.observability import (
    MetricsEndpoint,
    ServiceMetrics,
    enable_reflection,
    start_metrics,
)
from services.executor.constants import SERVICE_NAME, STOPPED_BY_REQUEST, TAIL_MAX_BYTES
from services.executor.logs import read_chunk
from services.executor.manager import TaskManager
from services.executor.task import Subscriber, TaskRun

log = logging.getLogger("weft.executor")


class ExecutorServicer(executor_pb2_grpc.ExecutorServiceServicer):
    """The gRPC edge: requests in, the task manager's events out; errors mapped in grpc_method.

    Every call must carry the member's scheduler credential (signed with the member-internal
    key); health checks stay open.
    """

    def __init__(self, manager: TaskManager) -> None:
        self.manager = manager
        self.replays = internal_auth.ReplayGuard()

    def _check(self, context: grpc.aio.ServicerContext, method: str) -> None:
        token = internal_auth.token_of(context.invocation_metadata())
        claims = internal_auth.verify(self.manager.key, token, {internal_auth.SCHEDULER}, what=f"executor {method}")
        self.replays.check(claims, f"executor {method}")

    @staticmethod
    async def _drain(run: TaskRun, subscriber: Subscriber) -> AsyncIterator[executor_pb2.TaskEvent]:
        try:
            while True:
                event = await subscriber.queue.get()
                if event is None:
                    return
                yield event
        finally:
            run.unsubscribe(subscriber)

    @grpc_method
    async def RunTask(self, request: executor_pb2.RunTaskRequest,
                      context: grpc.aio.ServicerContext) -> AsyncIterator[executor_pb2.TaskEvent]:
        self._check(context, "RunTask")
        run, subscriber = await self.manager.submit(request.spec, request.stream_logs)
        async for event in self._drain(run, subscriber):
            yield event

    @grpc_method
    async def WatchTask(self, request: executor_pb2.WatchTaskRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[executor_pb2.TaskEvent]:
        self._check(context, "WatchTask")
        run, subscriber = self.manager.watch(request.task_id, request.stream_logs)
        async for event in self._drain(run, subscriber):
            yield event

    @grpc_method
    async def StopTask(self, request: executor_pb2.StopTaskRequest,
                       context: grpc.aio.ServicerContext) -> executor_pb2.StopTaskResponse:
        self._check(context, "StopTask")
        status = await self.manager.stop(request.task_id, request.reason or STOPPED_BY_REQUEST)
        return executor_pb2.StopTaskResponse(status=status)

    @grpc_method
    async def GetTask(self, request: executor_pb2.GetTaskRequest,
                      context: grpc.aio.ServicerContext) -> executor_pb2.TaskInfo:
        self._check(context, "GetTask")
        return self.manager.latest(request.task_id).info()

    @grpc_method
    async def ListTasks(self, request: executor_pb2.ListTasksRequest,
                        context: grpc.aio.ServicerContext) -> executor_pb2.ListTasksResponse:
        self._check(context, "ListTasks")
        statuses = set(request.statuses) - {common_pb2.TASK_STATUS_UNSPECIFIED}
        tasks = [run.info() for run in self.manager.all_runs()
                 if (not request.job_id or run.spec.job_id == request.job_id)
                 and (not statuses or run.status in statuses)]
        return executor_pb2.ListTasksResponse(
            tasks=tasks, slots_total=self.manager.settings.slots,
            running_count=self.manager.running_count, queued_count=self.manager.queued_count,
            warm_workers=self.manager.warm_workers,
        )

    @grpc_method
    async def TailTaskLog(self, request: executor_pb2.TailTaskLogRequest,
                          context: grpc.aio.ServicerContext) -> executor_pb2.TailTaskLogResponse:
        self._check(context, "TailTaskLog")
        run = await asyncio.to_thread(self.manager.find_run, request.task_id, request.attempt)
        if request.job_id and run.spec.job_id != request.job_id:
            raise NotFound(f"task {request.task_id!r} is not a task of job {request.job_id}")
        path = run.stdout_path if request.stream == executor_pb2.LOG_STREAM_STDOUT else run.stderr_path
        limit = request.max_bytes if 0 < request.max_bytes <= TAIL_MAX_BYTES else TAIL_MAX_BYTES
        ended = run.ended
        chunk = await asyncio.to_thread(read_chunk, path, request.offset, limit, ended)
        return executor_pb2.TailTaskLogResponse(
            text=chunk.data.decode("utf-8", errors="replace"), next_offset=chunk.next_offset, size=chunk.size,
            restarted=chunk.restarted, complete=ended and chunk.next_offset >= chunk.size,
            attempt=run.attempt, status=run.status,
        )


class ExecutorServer:
    """A started executor: the task manager, the gRPC server and its health service."""

    def __init__(self, config: MemberConfig) -> None:
        self.config = config
        self.manager = TaskManager(config)
        self.health = health.aio.HealthServicer()
        self.metrics = ServiceMetrics("executor")
        self.metrics_endpoint: MetricsEndpoint | None = None
        self.manager.on_counts = self.metrics.set_tasks
        self.server = grpc.aio.server(interceptors=[self.metrics.interceptor()])
        executor_pb2_grpc.add_ExecutorServiceServicer_to_server(ExecutorServicer(self.manager), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (SERVICE_NAME,))
        self.port = 0

    async def start(self) -> None:
        await self.manager.start()
        self.port = self.server.add_insecure_port(self.config.executor.listen)
        if self.port == 0:
            raise OSError(f"executor.listen: cannot bind {self.config.executor.listen}")
        await self.server.start()
        self.metrics_endpoint = start_metrics(self.metrics, self.config.executor.metrics_listen)
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        log.info("executor listening on %s (mode %s, %d slots, warm pool %d)", self.config.executor.listen,
                 self.config.executor.mode, self.config.executor.slots, self.config.executor.warm_pool)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop serving; running tasks keep running and the next start re-attaches them."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        await self.manager.close()
        if self.metrics_endpoint is not None:
            self.metrics_endpoint.close()


async def serve(config: MemberConfig) -> None:
    """Run the executor until SIGINT/SIGTERM (or cancellation)."""
    server = ExecutorServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
