"""The Python SDK: async and sync clients of a member's SchedulerService, and a client of its ServingService."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from protos.weft.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    scheduler_pb2,
    scheduler_pb2_grpc,
    serving_pb2,
    serving_pb2_grpc,
)

ENV_TOKEN = "WEFT_TOKEN"
UPLOAD_CHUNK_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_S = 60.0
JOB_FINAL_STATUSES = (
    common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_STOPPED,
)


class WeftClientError(Exception):
    """A call failed; `code` is the gRPC status name, `str(err)` the server's message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidArgumentError(WeftClientError):
    """The server refused the request as malformed (a bad spec, a bad parameter)."""


class NotFoundError(WeftClientError):
    """The job, data set or result does not exist at this member."""


class UnavailableError(WeftClientError):
    """The scheduler could not be reached."""


class FailedPreconditionError(WeftClientError):
    """The request is valid but the job is not in a state to serve it."""


class DeadlineExceededError(WeftClientError):
    """The call took longer than its timeout."""


class UnauthenticatedError(WeftClientError):
    """The call carried no credential, or one the member does not accept."""


class PermissionDeniedError(WeftClientError):
    """The caller's role does not allow this call."""


_ERRORS: dict[grpc.StatusCode, type[WeftClientError]] = {
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def _translate(exc: grpc.RpcError, endpoint: str, service: str = "scheduler") -> WeftClientError:
    code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        details = f"{service} at {endpoint} is unavailable ({details})"
    return _ERRORS.get(code, WeftClientError)(code.name, details or code.name)


def resolve_token(token: str | None) -> str | None:
    """The API token to send: the one given, else WEFT_TOKEN, else none."""
    text = token or os.environ.get(ENV_TOKEN, "")
    return text.strip() or None


def read_token_file(path: str | Path) -> str | None:
    """A token kept in a file (the bootstrap admin's, say); None while the file does not exist."""
    try:
        return Path(path).read_text(encoding="ascii").strip() or None
    except FileNotFoundError:
        return None


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),) if token else ()


class _BearerToken:
    """Adds `authorization: Bearer <token>` to the calls of an asyncio channel.

    `token` is asked at each call, so a channel made before the token exists (a member's
    bootstrap token is written when its scheduler first starts) picks it up once it does.
    """

    def __init__(self, token: Callable[[], str | None]) -> None:
        self._token = token

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        token = self._token()
        if not token:
            return details
        metadata = grpc.aio.Metadata(*(details.metadata or ()), *auth_metadata(token))
        return grpc.aio.ClientCallDetails(details.method, details.timeout, metadata, details.credentials,
                                          details.wait_for_ready)


class _UnaryUnaryBearer(_BearerToken, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _UnaryStreamBearer(_BearerToken, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _StreamUnaryBearer(_BearerToken, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _StreamStreamBearer(_BearerToken, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def bearer_interceptors(token: Callable[[], str | None]) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that put the token `token()` returns on every kind of call of an asyncio channel."""
    return [kind(token) for kind in (_UnaryUnaryBearer, _UnaryStreamBearer, _StreamUnaryBearer, _StreamStreamBearer)]


def authenticated_channel(endpoint: str, token: Callable[[], str | None], **kwargs: Any) -> grpc.aio.Channel:
    """An asyncio channel to a scheduler whose every call carries the token `token()` returns."""
    return grpc.aio.insecure_channel(endpoint, interceptors=bearer_interceptors(token), **kwargs)


class ClientCertificate:
    """A user's client certificate for a scheduler's TLS listener (`weft certs issue-user`)."""

    def __init__(self, ca_file: str | Path, cert_file: str | Path, key_file: str | Path) -> None:
        self.ca_file, self.cert_file, self.key_file = Path(ca_file), Path(cert_file), Path(key_file)

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self.ca_file.read_bytes(), private_key=self.key_file.read_bytes(),
            certificate_chain=self.cert_file.read_bytes())


def job_status_name(status: int) -> str:
    return common_pb2.JobStatus.Name(status).removeprefix("JOB_STATUS_").lower()


def task_status_name(status: int) -> str:
    return common_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_").lower()


def to_dict(message: Any) -> dict[str, Any]:
    """A response message as a plain dict (field names as in the .proto)."""
    return MessageToDict(message, preserving_proto_field_name=True)


def _spec_json(spec: dict[str, Any] | str) -> str:
    return spec if isinstance(spec, str) else json.dumps(spec)


def _upload_requests(
    data: bytes, namespace: str, name: str, data_format: str, id_column: str,
    label_column: str | None, overwrite: bool,
) -> Iterator[scheduler_pb2.UploadDataSetRequest]:
    formats = {"csv": scheduler_pb2.DATA_FORMAT_CSV, "parquet": scheduler_pb2.DATA_FORMAT_PARQUET}
    if data_format.lower() not in formats:
        raise InvalidArgumentError("INVALID_ARGUMENT", f"format must be csv or parquet, got {data_format!r}")
    header = scheduler_pb2.UploadDataSetHeader(
        namespace=namespace, name=name, format=formats[data_format.lower()], id_column=id_column,
        label_column=label_column or "", overwrite=overwrite, total_size=len(data),
        sha256=hashlib.sha256(data).digest(),
    )
    yield scheduler_pb2.UploadDataSetRequest(header=header)
    for start in range(0, len(data), UPLOAD_CHUNK_BYTES):
        yield scheduler_pb2.UploadDataSetRequest(chunk=data[start : start + UPLOAD_CHUNK_BYTES])


def _read_upload(source: str | Path | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise InvalidArgumentError("INVALID_ARGUMENT", f"cannot read {source}: {exc.strerror or exc}") from None


class SchedulerClient:
    """Blocking client: `SchedulerClient("127.0.0.1:9370", token="weft_...").submit(spec)`.

    The token is the one given, else the WEFT_TOKEN variable.
    """

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT_S, token: str | None = None,
                 client_cert: ClientCertificate | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._metadata = auth_metadata(resolve_token(token))
        self._channel = (grpc.secure_channel(endpoint, client_cert.credentials()) if client_cert is not None
                         else grpc.insecure_channel(endpoint))
        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)

    def __enter__(self) -> SchedulerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any, timeout: float | None = None, stub: Any = None) -> Any:
        try:
            return getattr(stub or self._stub, method)(request, timeout=timeout or self.timeout,
                                                       metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint) from None

    # -- administration (role admin) --------------------------------------------------------
    def add_user(self, name: str, role: str, ttl_days: float = 0.0, no_expiry: bool = False) -> admin_pb2.AddUserResponse:
        """A new user and its first token (the reply is the only place the token's text appears)."""
        request = admin_pb2.AddUserRequest(name=name, role=role, ttl_days=ttl_days, no_expiry=no_expiry)
        return self._call("AddUser", request, stub=self._admin)

    def users(self) -> list[admin_pb2.User]:
        return list(self._call("ListUsers", admin_pb2.ListUsersRequest(), stub=self._admin).users)

    def issue_token(self, name: str, ttl_days: float = 0.0, no_expiry: bool = False) -> admin_pb2.IssuedToken:
        request = admin_pb2.IssueTokenRequest(name=name, ttl_days=ttl_days, no_expiry=no_expiry)
        return self._call("IssueToken", request, stub=self._admin).token

    def revoke_user(self, name: str) -> list[str]:
        return list(self._call("RevokeUser", admin_pb2.RevokeUserRequest(name=name), stub=self._admin).token_ids)

    def revoke_token(self, token_id: str) -> list[str]:
        request = admin_pb2.RevokeTokenRequest(token_id=token_id)
        return list(self._call("RevokeToken", request, stub=self._admin).token_ids)

    def audit(self, limit: int = 100) -> list[admin_pb2.AuditEntry]:
        return list(self._call("ListAudit", admin_pb2.ListAuditRequest(limit=limit), stub=self._admin).entries)

    def submit(self, spec: dict[str, Any] | str) -> str:
        response = self._call("SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=_spec_json(spec)))
        return str(response.job_id)

    def get(self, job_id: str) -> scheduler_pb2.JobInfo:
        return self._call("GetJob", scheduler_pb2.GetJobRequest(job_id=job_id)).job

    def list_jobs(self, page_size: int = 50, page_token: str = "", **filters: Any) -> scheduler_pb2.ListJobsResponse:
        request = scheduler_pb2.ListJobsRequest(page_size=page_size, page_token=page_token, **filters)
        return self._call("ListJobs", request)

    def stop(self, job_id: str, reason: str = "") -> int:
        return int(self._call("StopJob", scheduler_pb2.StopJobRequest(job_id=job_id, reason=reason)).status)

    def rerun(self, job_id: str, components: list[str] | None = None) -> list[str]:
        request = scheduler_pb2.RerunJobRequest(job_id=job_id, component_names=components or [])
        return list(self._call("RerunJob", request).component_names)

    def watch(self, job_id: str, include_metrics: bool = False) -> Iterator[scheduler_pb2.JobEvent]:
        """Events until the job ends (the first is a snapshot of the job as it is now)."""
        request = scheduler_pb2.WatchJobRequest(job_id=job_id, include_metrics=include_metrics)
        try:
            yield from self._stub.WatchJob(request, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint) from None

    def wait(self, job_id: str) -> scheduler_pb2.JobInfo:
        """Block until the job succeeds, fails or stops; returns its final state."""
        for event in self.watch(job_id):
            kind = event.WhichOneof("event")
            if kind == "job_status" and event.job_status.status in JOB_FINAL_STATUSES:
                break
            if kind == "snapshot" and event.snapshot.status in JOB_FINAL_STATUSES:
                break
        return self.get(job_id)

    def upload(
        self, source: str | Path | bytes, namespace: str, name: str, id_column: str,
        label_column: str | None = None, data_format: str = "csv", overwrite: bool = False,
    ) -> scheduler_pb2.DataSetInfo:
        data = _read_upload(source)
        requests = _upload_requests(data, namespace, name, data_format, id_column, label_column, overwrite)
        return self._call("UploadDataSet", requests)

    def data_sets(self, namespace: str = "", page_size: int = 100) -> list[scheduler_pb2.DataSetInfo]:
        request = scheduler_pb2.ListDataSetsRequest(namespace=namespace, page_size=page_size)
        return list(self._call("ListDataSets", request).data_sets)

    def results(self, job_id: str, component: str = "", role: str = "") -> list[scheduler_pb2.TaskResult]:
        request = scheduler_pb2.GetTaskResultRequest(job_id=job_id, component_name=component, role=role)
        return list(self._call("GetTaskResult", request).results)

    def metrics(self, job_id: str, component: str = "", namespace: str = "", name: str = "") -> list[scheduler_pb2.TaskMetrics]:
        request = scheduler_pb2.GetMetricsRequest(
            job_id=job_id, component_name=component, namespace=namespace, name=name
        )
        return list(self._call("GetMetrics", request).tasks)

    def who_am_i(self) -> scheduler_pb2.WhoAmIResponse:
        """The user and role this client's credential names at the member."""
        return self._call("WhoAmI", scheduler_pb2.WhoAmIRequest())

    def models(self, job_id: str, component: str = "", role: str = "") -> list[scheduler_pb2.ExportedModel]:
        """The newest exported models of the job's tasks at this member, each with its JSON."""
        request = scheduler_pb2.GetModelRequest(job_id=job_id, component_name=component, role=role)
        return list(self._call("GetModel", request).models)

    def members(self) -> scheduler_pb2.GetMembersResponse:
        """This member, its certificate's expiry and its peers with the traffic on each link."""
        return self._call("GetMembers", scheduler_pb2.GetMembersRequest())

    def data_set_summary(self, namespace: str, name: str) -> scheduler_pb2.DataSetSummary:
        """A data set with its label balance (rows per label value)."""
        request = scheduler_pb2.GetDataSetSummaryRequest(namespace=namespace, name=name)
        return self._call("GetDataSetSummary", request)

    def task_log(self, job_id: str, component: str, offset: int = 0, role: str = "", max_bytes: int = 0,
                 stdout: bool = False) -> scheduler_pb2.GetTaskLogResponse:
        """A chunk of a task's log at this member from `offset`; call again with `next_offset` to follow it."""
        request = scheduler_pb2.GetTaskLogRequest(job_id=job_id, component_name=component, role=role,
                                                  offset=offset, max_bytes=max_bytes, stdout=stdout)
        return self._call("GetTaskLog", request)


class _AsyncClient:
    """What the asyncio clients share: the channel, the token, one call with errors translated."""

    #: How errors name the service ("scheduler at ...", "serving service at ...").
    service = "scheduler"
    _stub: Any

    def __init__(self, endpoint: str, timeout: float, token: str | None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._metadata = auth_metadata(resolve_token(token))
        self._channel = grpc.aio.insecure_channel(endpoint)

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, method: str, request: Any) -> Any:
        try:
            return await getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint, self.service) from None


class AsyncSchedulerClient(_AsyncClient):
    """asyncio client: `await AsyncSchedulerClient(endpoint, token="weft_...").submit(spec)`."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT_S, token: str | None = None) -> None:
        super().__init__(endpoint, timeout, token)
        self._stub = scheduler_pb2_grpc.SchedulerServiceStub(self._channel)

    async def __aenter__(self) -> AsyncSchedulerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def submit(self, spec: dict[str, Any] | str) -> str:
        response = await self._call("SubmitJob", scheduler_pb2.SubmitJobRequest(spec_json=_spec_json(spec)))
        return str(response.job_id)

    async def get(self, job_id: str) -> scheduler_pb2.JobInfo:
        return (await self._call("GetJob", scheduler_pb2.GetJobRequest(job_id=job_id))).job

    async def list_jobs(self, page_size: int = 50, page_token: str = "", **filters: Any) -> scheduler_pb2.ListJobsResponse:
        request = scheduler_pb2.ListJobsRequest(page_size=page_size, page_token=page_token, **filters)
        return await self._call("ListJobs", request)

    async def stop(self, job_id: str, reason: str = "") -> int:
        return int((await self._call("StopJob", scheduler_pb2.StopJobRequest(job_id=job_id, reason=reason))).status)

    async def rerun(self, job_id: str, components: list[str] | None = None) -> list[str]:
        request = scheduler_pb2.RerunJobRequest(job_id=job_id, component_names=components or [])
        return list((await self._call("RerunJob", request)).component_names)

    async def watch(self, job_id: str, include_metrics: bool = False) -> AsyncIterator[scheduler_pb2.JobEvent]:
        request = scheduler_pb2.WatchJobRequest(job_id=job_id, include_metrics=include_metrics)
        try:
            async for event in self._stub.WatchJob(request, metadata=self._metadata):
                yield event
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint) from None

    async def upload(
        self, source: str | Path | bytes, namespace: str, name: str, id_column: str,
        label_column: str | None = None, data_format: str = "csv", overwrite: bool = False,
    ) -> scheduler_pb2.DataSetInfo:
        data = _read_upload(source)
        requests = _upload_requests(data, namespace, name, data_format, id_column, label_column, overwrite)
        try:
            return await self._stub.UploadDataSet(requests, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint) from None

    async def data_sets(self, namespace: str = "", page_size: int = 100) -> list[scheduler_pb2.DataSetInfo]:
        request = scheduler_pb2.ListDataSetsRequest(namespace=namespace, page_size=page_size)
        return list((await self._call("ListDataSets", request)).data_sets)

    async def results(self, job_id: str, component: str = "", role: str = "") -> list[scheduler_pb2.TaskResult]:
        request = scheduler_pb2.GetTaskResultRequest(job_id=job_id, component_name=component, role=role)
        return list((await self._call("GetTaskResult", request)).results)

    async def metrics(self, job_id: str, component: str = "", namespace: str = "", name: str = "") -> list[scheduler_pb2.TaskMetrics]:
        request = scheduler_pb2.GetMetricsRequest(
            job_id=job_id, component_name=component, namespace=namespace, name=name
        )
        return list((await self._call("GetMetrics", request)).tasks)

    async def who_am_i(self) -> scheduler_pb2.WhoAmIResponse:
        """The user and role this client's credential names at the member."""
        return await self._call("WhoAmI", scheduler_pb2.WhoAmIRequest())

    async def models(self, job_id: str, component: str = "", role: str = "") -> list[scheduler_pb2.ExportedModel]:
        """The newest exported models of the job's tasks at this member, each with its JSON."""
        request = scheduler_pb2.GetModelRequest(job_id=job_id, component_name=component, role=role)
        return list((await self._call("GetModel", request)).models)

    async def members(self) -> scheduler_pb2.GetMembersResponse:
        """This member, its certificate's expiry and its peers with the traffic on each link."""
        return await self._call("GetMembers", scheduler_pb2.GetMembersRequest())

    async def data_set_summary(self, namespace: str, name: str) -> scheduler_pb2.DataSetSummary:
        """A data set with its label balance (rows per label value)."""
        request = scheduler_pb2.GetDataSetSummaryRequest(namespace=namespace, name=name)
        return await self._call("GetDataSetSummary", request)

    async def task_log(self, job_id: str, component: str, offset: int = 0, role: str = "", max_bytes: int = 0,
                       stdout: bool = False) -> scheduler_pb2.GetTaskLogResponse:
        """A chunk of a task's log at this member from `offset`; call again with `next_offset` to follow it."""
        request = scheduler_pb2.GetTaskLogRequest(job_id=job_id, component_name=component, role=role,
                                                  offset=offset, max_bytes=max_bytes, stdout=stdout)
        return await self._call("GetTaskLog", request)


def _row(row_id: str, features: dict[str, float] | None) -> serving_pb2.PredictRow:
    return serving_pb2.PredictRow(id=str(row_id), features={k: float(v) for k, v in (features or {}).items()})


class ServingClient:
    """Blocking client of a member's serving service (`serving.listen`).

    `ServingClient("127.0.0.1:9400", token="weft_...").predict("credit", "42", {"x0": 1.5})`
    scores one id with the current version of a published model; the token is one of this
    member's API tokens (else WEFT_TOKEN).
    """

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT_S, token: str | None = None) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._metadata = auth_metadata(resolve_token(token))
        self._channel = grpc.insecure_channel(endpoint)
        self._stub = serving_pb2_grpc.ServingServiceStub(self._channel)

    def __enter__(self) -> ServingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint, "serving service") from None

    def predict(self, name: str, row_id: str, features: dict[str, float] | None = None,
                version: int = 0) -> serving_pb2.PredictResponse:
        """One id's score (features: the promoter's raw features of that id; left out = missing).

        For a scorecard the answer also carries `card_score` (points), `base_points`, `points`
        (per promoter feature) and `provider_points` (per provider member)."""
        request = serving_pb2.PredictRequest(model_name=name, model_version=version, row=_row(row_id, features))
        return self._call("Predict", request)

    def batch_predict(self, name: str, rows: list[tuple[str, dict[str, float]]],
                      version: int = 0) -> list[serving_pb2.PredictResponse]:
        """Many ids at once, answers in the order of `rows`."""
        request = serving_pb2.BatchPredictRequest(model_name=name, model_version=version,
                                                  rows=[_row(row_id, features) for row_id, features in rows])
        try:
            return list(self._stub.BatchPredict(request, timeout=self.timeout, metadata=self._metadata))
        except grpc.RpcError as exc:
            raise _translate(exc, self.endpoint, "serving service") from None

    def publish(self, job_id: str, component: str, name: str = "", deadline_ms: int = 0,
                fallback_score: float | None = None) -> serving_pb2.ServingModel:
        """Publish a finished job's model (at its promoter) as the next version of `name`, at every member.

        With `fallback_score`, a prediction whose provider is down or late answers that score
        (marked `fallback`) instead of failing."""
        request = serving_pb2.PublishModelRequest(job_id=job_id, component=component, name=name,
                                                  deadline_ms=deadline_ms)
        if fallback_score is not None:
            request.fallback_score = fallback_score
        return self._call("PublishModel", request)

    def list_models(self, name: str = "") -> list[serving_pb2.ServingModel]:
        return list(self._call("ListModels", serving_pb2.ListModelsRequest(name=name)).models)

    def rollback(self, name: str, version: int = 0) -> serving_pb2.ServingModel:
        """Make an earlier version current (default: the one before the current), at every member."""
        return self._call("RollbackModel", serving_pb2.RollbackModelRequest(name=name, version=version))

    def unpublish(self, name: str, version: int = 0) -> int:
        """Remove one version (not the current) or the whole model, at every member; versions removed here."""
        return int(self._call("UnpublishModel", serving_pb2.UnpublishModelRequest(name=name, version=version)).removed)

    def set_feature_table(self, name: str, feature_table: str) -> serving_pb2.ServingModel:
        """At a provider: the data set ("namespace/name") its part of `name` looks ids up in."""
        return self._call("SetFeatureTable", serving_pb2.SetFeatureTableRequest(name=name, feature_table=feature_table))


class AsyncServingClient(_AsyncClient):
    """asyncio client of a member's serving service for managing published models (the board's).

    `await AsyncServingClient("127.0.0.1:9400", token="weft_...").publish(job_id, "vert_lr_0")`;
    the same calls, with the same checks at the service, as `ServingClient`'s.
    """

    service = "serving service"

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT_S, token: str | None = None) -> None:
        super().__init__(endpoint, timeout, token)
        self._stub = serving_pb2_grpc.ServingServiceStub(self._channel)

    async def __aenter__(self) -> AsyncServingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def publish(self, job_id: str, component: str, name: str = "", deadline_ms: int = 0,
                      fallback_score: float | None = None) -> serving_pb2.ServingModel:
        """Publish a finished job's model (at its promoter) as the next version of `name`, at every member."""
        request = serving_pb2.PublishModelRequest(job_id=job_id, component=component, name=name,
                                                  deadline_ms=deadline_ms)
        if fallback_score is not None:
            request.fallback_score = fallback_score
        return await self._call("PublishModel", request)

    async def list_models(self, name: str = "") -> list[serving_pb2.ServingModel]:
        return list((await self._call("ListModels", serving_pb2.ListModelsRequest(name=name))).models)

    async def rollback(self, name: str, version: int = 0) -> serving_pb2.ServingModel:
        """Make an earlier version current (default: the one before the current), at every member."""
        return await self._call("RollbackModel", serving_pb2.RollbackModelRequest(name=name, version=version))

    async def unpublish(self, name: str, version: int = 0) -> int:
        """Remove one version (not the current) or the whole model, at every member; versions removed here."""
        reply = await self._call("UnpublishModel", serving_pb2.UnpublishModelRequest(name=name, version=version))
        return int(reply.removed)
