"""The gRPC edges: SchedulerService for clients, SchedulerPeerService for other members' schedulers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc

from kernel.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from kernel.safe_text import check_path_name, check_text
from protos.weft.v1 import common_pb2, scheduler_pb2, scheduler_pb2_grpc
from services.common import internal_auth
from services.common.db.constants import RESULT_DATA, RESULT_METRIC, RESULT_MODEL
from services.common.db.records import JobRecord
from services.common.db.repository import list_task_results, list_tasks
from services.common.grpc_errors import grpc_method
from services.scheduler import store
from services.scheduler.constants import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PEER_SERVICE
from services.scheduler.datasets import upload_data_set
from services.scheduler.members_view import MembersView
from services.scheduler.scheduler import Scheduler
from services.scheduler.views import (
    JOB_STATUS,
    JOB_STATUS_NAME,
    TASK_STATUS,
    data_set_info,
    job_info,
    task_key,
)


def _page(size: int, token: str) -> tuple[int, int]:
    limit = DEFAULT_PAGE_SIZE if size <= 0 else min(size, MAX_PAGE_SIZE)
    if not token:
        return limit, 0
    if not token.isdigit():
        raise InvalidArgument(f"page_token: {token!r} is not a token this server returned")
    return limit, int(token)


def _next_token(offset: int, limit: int, got: int) -> str:
    """The token of the next page; lists fetch one row more than a page to know if it exists."""
    return str(offset + limit) if got > limit else ""


def relayed_caller(key: bytes, context: grpc.aio.ServicerContext, method: str, known: frozenset[str],
                   replays: internal_auth.ReplayGuard | None = None) -> str:
    """The peer member a peer call comes from, as this member's transfer service stamped it.

    Only the relay credential counts: it is signed with the member-internal key and names
    the member id the transfer service took from the peer's TLS certificate and the method.
    Plain metadata (`weft-source-member-id`) proves nothing and is ignored.
    """
    path = f"/{PEER_SERVICE}/{method}"
    claims = internal_auth.verify(key, internal_auth.token_of(context.invocation_metadata()), {internal_auth.RELAY},
                                  what=f"peer call {method}")
    if claims.method != path:
        raise Unauthenticated(f"peer call {method}: the relay credential was issued for {claims.method or 'no method'}")
    if replays is not None:
        replays.check(claims, f"peer call {method}")
    if claims.member not in known:
        raise PermissionDenied(f"peer call {method}: member {claims.member or '(none)'} is not a member this one knows")
    return claims.member


def _job_id(value: str) -> str:
    """A job id from a client: it names folders of the member's storage, so a plain name only."""
    return check_path_name(value, "job_id")


def _metric(value: dict[str, object]) -> common_pb2.Metric:
    import json

    return common_pb2.Metric(
        name=str(value.get("name", "")), namespace=str(value.get("namespace", "")),
        metric_type=str(value.get("metric_type", "")), points_json=json.dumps(value.get("points")),
        recorded_at_ms=int(str(value.get("recorded_at_ms", 0))),
    )


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServiceServicer):
    """What a member's clients call."""

    def __init__(self, scheduler: Scheduler, scratch_dir: Path, members: MembersView | None = None) -> None:
        self.scheduler = scheduler
        self.scratch_dir = scratch_dir
        self.members = members

    @grpc_method
    async def SubmitJob(self, request: scheduler_pb2.SubmitJobRequest,
                        context: grpc.aio.ServicerContext) -> scheduler_pb2.SubmitJobResponse:
        job_id = await self.scheduler.submit_job(request.spec_json)
        return scheduler_pb2.SubmitJobResponse(job_id=job_id, status=common_pb2.JOB_STATUS_WAITING)

    @grpc_method
    async def GetJob(self, request: scheduler_pb2.GetJobRequest,
                     context: grpc.aio.ServicerContext) -> scheduler_pb2.GetJobResponse:
        return scheduler_pb2.GetJobResponse(job=await self.scheduler.job_info(_job_id(request.job_id)))

    @grpc_method
    async def ListJobs(self, request: scheduler_pb2.ListJobsRequest,
                       context: grpc.aio.ServicerContext) -> scheduler_pb2.ListJobsResponse:
        limit, offset = _page(request.page_size, request.page_token)
        statuses = [JOB_STATUS_NAME[s] for s in request.statuses if s in JOB_STATUS_NAME]
        rows = await store.list_jobs_page(
            self.scheduler.engine, statuses=statuses, name_contains=request.name_contains, role=request.role,
            initiator_member_id=request.initiator_member_id,
            created_after=request.created_after_ms / 1000 if request.created_after_ms else None,
            created_before=request.created_before_ms / 1000 if request.created_before_ms else None,
            limit=limit + 1, offset=offset,
        )
        jobs = [job_info(JobRecord(**dict(row))) for row in rows[:limit]]
        return scheduler_pb2.ListJobsResponse(jobs=jobs, next_page_token=_next_token(offset, limit, len(rows)))

    @grpc_method
    async def StopJob(self, request: scheduler_pb2.StopJobRequest,
                      context: grpc.aio.ServicerContext) -> scheduler_pb2.StopJobResponse:
        status = await self.scheduler.stop_job(_job_id(request.job_id), check_text(request.reason, "reason", 1000))
        return scheduler_pb2.StopJobResponse(status=JOB_STATUS[status])  # type: ignore[arg-type]

    @grpc_method
    async def RerunJob(self, request: scheduler_pb2.RerunJobRequest,
                       context: grpc.aio.ServicerContext) -> scheduler_pb2.RerunJobResponse:
        components = await self.scheduler.rerun_job(_job_id(request.job_id), list(request.component_names))
        return scheduler_pb2.RerunJobResponse(component_names=components, status=common_pb2.JOB_STATUS_WAITING)

    @grpc_method
    async def WatchJob(self, request: scheduler_pb2.WatchJobRequest,
                       context: grpc.aio.ServicerContext) -> AsyncIterator[scheduler_pb2.JobEvent]:
        async for event in self.scheduler.watch_job(_job_id(request.job_id), request.include_metrics):
            yield event

    @grpc_method
    async def UploadDataSet(self, request_iterator: AsyncIterator[scheduler_pb2.UploadDataSetRequest],
                            context: grpc.aio.ServicerContext) -> scheduler_pb2.DataSetInfo:
        record = await upload_data_set(
            self.scheduler.engine, self.scheduler.data_store, request_iterator, self.scratch_dir
        )
        return data_set_info(record)

    @grpc_method
    async def ListDataSets(self, request: scheduler_pb2.ListDataSetsRequest,
                           context: grpc.aio.ServicerContext) -> scheduler_pb2.ListDataSetsResponse:
        from services.common.db.records import DataSetRecord

        limit, offset = _page(request.page_size, request.page_token)
        rows = await store.list_data_sets_page(
            self.scheduler.engine, namespace=request.namespace, name_contains=request.name_contains,
            limit=limit + 1, offset=offset,
        )
        infos = [data_set_info(DataSetRecord(**{k: v for k, v in dict(row).items() if k != "id"}))
                 for row in rows[:limit]]
        return scheduler_pb2.ListDataSetsResponse(data_sets=infos, next_page_token=_next_token(offset, limit, len(rows)))

    async def _own_tasks(self, job_id: str, component: str, role: str) -> list[store.TaskRecord]:
        await self.scheduler._job(_job_id(job_id))
        tasks = await list_tasks(self.scheduler.engine, job_id=job_id, member_id=self.scheduler.me,
                                 component=component or None, role=role or None)
        if component and not tasks:
            raise NotFound(f"job {job_id} has no task of component {component!r} at member {self.scheduler.me}")
        return tasks

    @grpc_method
    async def GetTaskResult(self, request: scheduler_pb2.GetTaskResultRequest,
                            context: grpc.aio.ServicerContext) -> scheduler_pb2.GetTaskResultResponse:
        tasks = await self._own_tasks(request.job_id, request.component_name, request.role)
        results = await list_task_results(self.scheduler.engine, job_id=request.job_id)
        out: list[scheduler_pb2.TaskResult] = []
        for task in tasks:
            mine = [r for r in results if r.task_id == task.task_id]
            data = [
                common_pb2.OutputDataSet(
                    output_name=r.name,
                    data_set=common_pb2.DataSetRef(namespace=str(r.value.get("namespace", "")), name=str(r.value.get("name", ""))),
                    uri=str(r.value.get("uri", "")), row_count=int(r.value.get("rows", -1)),
                )
                for r in mine if r.kind == RESULT_DATA
            ]
            models = [
                common_pb2.OutputModel(output_name=r.name, version=int(r.value.get("version", 0)),
                                       uri=str(r.value.get("path", "")))
                for r in mine if r.kind == RESULT_MODEL
            ]
            metrics = [_metric(r.value) for r in mine if r.kind == RESULT_METRIC]
            out.append(scheduler_pb2.TaskResult(
                task=task_key(task), module=task.module, status=TASK_STATUS[task.status],  # type: ignore[arg-type]
                data=data, models=models, metrics=metrics,
            ))
        return scheduler_pb2.GetTaskResultResponse(results=out)

    @grpc_method
    async def GetMetrics(self, request: scheduler_pb2.GetMetricsRequest,
                         context: grpc.aio.ServicerContext) -> scheduler_pb2.GetMetricsResponse:
        tasks = await self._own_tasks(request.job_id, request.component_name, "")
        results = await list_task_results(self.scheduler.engine, job_id=request.job_id, kind=RESULT_METRIC)
        out: list[scheduler_pb2.TaskMetrics] = []
        for task in tasks:
            metrics = [
                _metric(r.value) for r in results
                if r.task_id == task.task_id
                and (not request.namespace or r.value.get("namespace") == request.namespace)
                and (not request.name or r.value.get("name") == request.name)
            ]
            if metrics:
                out.append(scheduler_pb2.TaskMetrics(task=task_key(task), metrics=metrics))
        return scheduler_pb2.GetMetricsResponse(tasks=out)

    @grpc_method
    async def WhoAmI(self, request: scheduler_pb2.WhoAmIRequest,
                     context: grpc.aio.ServicerContext) -> scheduler_pb2.WhoAmIResponse:
        from services.scheduler.access import current_principal

        principal = current_principal()
        if principal is None:
            raise Unauthenticated("no verified caller on this call")
        return scheduler_pb2.WhoAmIResponse(user=principal.user, role=principal.role, via=principal.via)

    @grpc_method
    async def GetModel(self, request: scheduler_pb2.GetModelRequest,
                       context: grpc.aio.ServicerContext) -> scheduler_pb2.GetModelResponse:
        import asyncio

        from services.scheduler.model_view import model_json

        tasks = await self._own_tasks(request.job_id, request.component_name, request.role)
        results = await list_task_results(self.scheduler.engine, job_id=request.job_id, kind=RESULT_MODEL)
        out: list[scheduler_pb2.ExportedModel] = []
        for task in tasks:
            for result in results:
                if result.task_id != task.task_id or not result.value.get("path"):
                    continue
                text = await asyncio.to_thread(model_json, str(result.value["path"]))
                out.append(scheduler_pb2.ExportedModel(
                    task=task_key(task), module=task.module, output_name=result.name,
                    version=int(result.value.get("version", 0)), model_json=text,
                ))
        return scheduler_pb2.GetModelResponse(models=out)

    @grpc_method
    async def GetDataSetSummary(self, request: scheduler_pb2.GetDataSetSummaryRequest,
                                context: grpc.aio.ServicerContext) -> scheduler_pb2.DataSetSummary:
        from kernel.storage import check_name
        from services.common.db.repository import get_data_set
        from services.scheduler.data_summary import summarize

        namespace, name = check_name(request.namespace, "namespace"), check_name(request.name, "name")
        record = await get_data_set(self.scheduler.engine, namespace, name)
        if record is None:
            raise NotFound(f"no data set {namespace}/{name} at member {self.scheduler.me}")
        return await summarize(self.scheduler.data_store, data_set_info(record))

    @grpc_method
    async def GetTaskLog(self, request: scheduler_pb2.GetTaskLogRequest,
                         context: grpc.aio.ServicerContext) -> scheduler_pb2.GetTaskLogResponse:
        from protos.weft.v1 import executor_pb2

        if not request.component_name:
            raise InvalidArgument("component_name: name the component whose log to read")
        tasks = await self._own_tasks(request.job_id, request.component_name, request.role)
        if len(tasks) > 1:
            roles = ", ".join(sorted(t.role for t in tasks))
            raise InvalidArgument(f"role: member {self.scheduler.me} holds several roles for "
                                  f"{request.component_name} ({roles}); name one")
        task = tasks[0]
        reply = scheduler_pb2.GetTaskLogResponse(task=task_key(task), status=TASK_STATUS[task.status],  # type: ignore[arg-type]
                                                 next_offset=request.offset)
        if not task.executor:
            return reply  # not dispatched yet: no log so far
        chunk = await self.scheduler.executors.tail_task_log(task.executor, executor_pb2.TailTaskLogRequest(
            job_id=task.job_id, task_id=task.task_id, attempt=task.attempt, offset=request.offset,
            max_bytes=request.max_bytes,
            stream=executor_pb2.LOG_STREAM_STDOUT if request.stdout else executor_pb2.LOG_STREAM_STDERR,
        ))
        reply.attempt, reply.text, reply.next_offset = chunk.attempt, chunk.text, chunk.next_offset
        reply.restarted, reply.complete = chunk.restarted, chunk.complete
        return reply

    @grpc_method
    async def GetMembers(self, request: scheduler_pb2.GetMembersRequest,
                         context: grpc.aio.ServicerContext) -> scheduler_pb2.GetMembersResponse:
        if self.members is None:
            return scheduler_pb2.GetMembersResponse(member_id=self.scheduler.me,
                                                    transfer_error="this scheduler was started without its config")
        return await self.members.describe()


class SchedulerPeerServicer(scheduler_pb2_grpc.SchedulerPeerServiceServicer):
    """What other members' schedulers call, only ever through this member's transfer service.

    Every call must carry the relay credential (see `relayed_caller`); what the caller may
    then do is checked per job by the scheduler (a party of the job, in its role).
    """

    def __init__(self, scheduler: Scheduler, key: bytes) -> None:
        self.scheduler = scheduler
        self.key = key
        self.replays = internal_auth.ReplayGuard()

    def _caller(self, context: grpc.aio.ServicerContext, method: str) -> str:
        return relayed_caller(self.key, context, method, self.scheduler.settings.known_members or frozenset(),
                              self.replays)

    @grpc_method
    async def CreateJob(self, request: scheduler_pb2.CreateJobRequest,
                        context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        return common_pb2.Ack(message=await self.scheduler.create_job(request, self._caller(context, "CreateJob")))

    @grpc_method
    async def ReportTaskStatus(self, request: scheduler_pb2.ReportTaskStatusRequest,
                               context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        await self.scheduler.report_task_status(request, self._caller(context, "ReportTaskStatus"))
        return common_pb2.Ack()

    @grpc_method
    async def PushJobStatus(self, request: scheduler_pb2.PushJobStatusRequest,
                            context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        await self.scheduler.push_job_status(request, self._caller(context, "PushJobStatus"))
        return common_pb2.Ack()

    @grpc_method
    async def StopJob(self, request: scheduler_pb2.PeerStopJobRequest,
                      context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        await self.scheduler.peer_stop_job(request, self._caller(context, "StopJob"))
        return common_pb2.Ack()

    @grpc_method
    async def RerunJob(self, request: scheduler_pb2.PeerRerunJobRequest,
                       context: grpc.aio.ServicerContext) -> common_pb2.Ack:
        await self.scheduler.peer_rerun_job(request, self._caller(context, "RerunJob"))
        return common_pb2.Ack()
