from protos.weft.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_FORMAT_UNSPECIFIED: _ClassVar[DataFormat]
    DATA_FORMAT_CSV: _ClassVar[DataFormat]
    DATA_FORMAT_PARQUET: _ClassVar[DataFormat]
DATA_FORMAT_UNSPECIFIED: DataFormat
DATA_FORMAT_CSV: DataFormat
DATA_FORMAT_PARQUET: DataFormat

class SubmitJobRequest(_message.Message):
    __slots__ = ("spec_json",)
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    spec_json: str
    def __init__(self, spec_json: _Optional[str] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id", "status")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _common_pb2.JobStatus
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ...) -> None: ...

class JobTask(_message.Message):
    __slots__ = ("key", "module", "status", "attempt", "progress", "executor", "pid", "created_at_ms", "started_at_ms", "ended_at_ms", "error", "waiting")
    KEY_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    key: _common_pb2.TaskKey
    module: str
    status: _common_pb2.TaskStatus
    attempt: int
    progress: float
    executor: str
    pid: int
    created_at_ms: int
    started_at_ms: int
    ended_at_ms: int
    error: str
    waiting: str
    def __init__(self, key: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., module: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., attempt: _Optional[int] = ..., progress: _Optional[float] = ..., executor: _Optional[str] = ..., pid: _Optional[int] = ..., created_at_ms: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., ended_at_ms: _Optional[int] = ..., error: _Optional[str] = ..., waiting: _Optional[str] = ...) -> None: ...

class JobInfo(_message.Message):
    __slots__ = ("job_id", "name", "initiator", "parties", "my_roles", "status", "progress", "spec_json", "message", "created_at_ms", "started_at_ms", "ended_at_ms", "tasks")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    PARTIES_FIELD_NUMBER: _ClassVar[int]
    MY_ROLES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    name: str
    initiator: _common_pb2.Party
    parties: _containers.RepeatedCompositeFieldContainer[_common_pb2.Party]
    my_roles: _containers.RepeatedScalarFieldContainer[str]
    status: _common_pb2.JobStatus
    progress: float
    spec_json: str
    message: str
    created_at_ms: int
    started_at_ms: int
    ended_at_ms: int
    tasks: _containers.RepeatedCompositeFieldContainer[JobTask]
    def __init__(self, job_id: _Optional[str] = ..., name: _Optional[str] = ..., initiator: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., parties: _Optional[_Iterable[_Union[_common_pb2.Party, _Mapping]]] = ..., my_roles: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ..., progress: _Optional[float] = ..., spec_json: _Optional[str] = ..., message: _Optional[str] = ..., created_at_ms: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., ended_at_ms: _Optional[int] = ..., tasks: _Optional[_Iterable[_Union[JobTask, _Mapping]]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetJobResponse(_message.Message):
    __slots__ = ("job",)
    JOB_FIELD_NUMBER: _ClassVar[int]
    job: JobInfo
    def __init__(self, job: _Optional[_Union[JobInfo, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("statuses", "name_contains", "role", "initiator_member_id", "created_after_ms", "created_before_ms", "page_size", "page_token")
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_MS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.JobStatus]
    name_contains: str
    role: str
    initiator_member_id: str
    created_after_ms: int
    created_before_ms: int
    page_size: int
    page_token: str
    def __init__(self, statuses: _Optional[_Iterable[_Union[_common_pb2.JobStatus, str]]] = ..., name_contains: _Optional[str] = ..., role: _Optional[str] = ..., initiator_member_id: _Optional[str] = ..., created_after_ms: _Optional[int] = ..., created_before_ms: _Optional[int] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[JobInfo]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[JobInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StopJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StopJobResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.JobStatus
    def __init__(self, status: _Optional[_Union[_common_pb2.JobStatus, str]] = ...) -> None: ...

class RerunJobRequest(_message.Message):
    __slots__ = ("job_id", "component_names")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    component_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., component_names: _Optional[_Iterable[str]] = ...) -> None: ...

class RerunJobResponse(_message.Message):
    __slots__ = ("component_names", "status")
    COMPONENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    component_names: _containers.RepeatedScalarFieldContainer[str]
    status: _common_pb2.JobStatus
    def __init__(self, component_names: _Optional[_Iterable[str]] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "include_metrics")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_METRICS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    include_metrics: bool
    def __init__(self, job_id: _Optional[str] = ..., include_metrics: _Optional[bool] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job_id", "seq", "timestamp_ms", "snapshot", "job_status", "task_status", "task_progress", "metric")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    JOB_STATUS_FIELD_NUMBER: _ClassVar[int]
    TASK_STATUS_FIELD_NUMBER: _ClassVar[int]
    TASK_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seq: int
    timestamp_ms: int
    snapshot: JobInfo
    job_status: JobStatusEvent
    task_status: TaskStatusEvent
    task_progress: TaskProgressEvent
    metric: MetricEvent
    def __init__(self, job_id: _Optional[str] = ..., seq: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., snapshot: _Optional[_Union[JobInfo, _Mapping]] = ..., job_status: _Optional[_Union[JobStatusEvent, _Mapping]] = ..., task_status: _Optional[_Union[TaskStatusEvent, _Mapping]] = ..., task_progress: _Optional[_Union[TaskProgressEvent, _Mapping]] = ..., metric: _Optional[_Union[MetricEvent, _Mapping]] = ...) -> None: ...

class JobStatusEvent(_message.Message):
    __slots__ = ("status", "progress", "message")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.JobStatus
    progress: float
    message: str
    def __init__(self, status: _Optional[_Union[_common_pb2.JobStatus, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class TaskStatusEvent(_message.Message):
    __slots__ = ("task", "status", "attempt", "error")
    TASK_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    status: _common_pb2.TaskStatus
    attempt: int
    error: str
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., attempt: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class TaskProgressEvent(_message.Message):
    __slots__ = ("task", "percent", "message")
    TASK_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    percent: float
    message: str
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., percent: _Optional[float] = ..., message: _Optional[str] = ...) -> None: ...

class MetricEvent(_message.Message):
    __slots__ = ("task", "metric")
    TASK_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    metric: _common_pb2.Metric
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., metric: _Optional[_Union[_common_pb2.Metric, _Mapping]] = ...) -> None: ...

class UploadDataSetRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadDataSetHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadDataSetHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadDataSetHeader(_message.Message):
    __slots__ = ("namespace", "name", "format", "id_column", "label_column", "csv_delimiter", "overwrite", "description", "total_size", "sha256")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    CSV_DELIMITER_FIELD_NUMBER: _ClassVar[int]
    OVERWRITE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    format: DataFormat
    id_column: str
    label_column: str
    csv_delimiter: str
    overwrite: bool
    description: str
    total_size: int
    sha256: bytes
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., format: _Optional[_Union[DataFormat, str]] = ..., id_column: _Optional[str] = ..., label_column: _Optional[str] = ..., csv_delimiter: _Optional[str] = ..., overwrite: _Optional[bool] = ..., description: _Optional[str] = ..., total_size: _Optional[int] = ..., sha256: _Optional[bytes] = ...) -> None: ...

class ColumnSchema(_message.Message):
    __slots__ = ("name", "type")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ...) -> None: ...

class DataSetInfo(_message.Message):
    __slots__ = ("ref", "uri", "row_count", "column_count", "columns", "id_column", "label_column", "description", "created_at_ms")
    REF_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    COLUMN_COUNT_FIELD_NUMBER: _ClassVar[int]
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    ID_COLUMN_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.DataSetRef
    uri: str
    row_count: int
    column_count: int
    columns: _containers.RepeatedCompositeFieldContainer[ColumnSchema]
    id_column: str
    label_column: str
    description: str
    created_at_ms: int
    def __init__(self, ref: _Optional[_Union[_common_pb2.DataSetRef, _Mapping]] = ..., uri: _Optional[str] = ..., row_count: _Optional[int] = ..., column_count: _Optional[int] = ..., columns: _Optional[_Iterable[_Union[ColumnSchema, _Mapping]]] = ..., id_column: _Optional[str] = ..., label_column: _Optional[str] = ..., description: _Optional[str] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class ListDataSetsRequest(_message.Message):
    __slots__ = ("namespace", "name_contains", "page_size", "page_token")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name_contains: str
    page_size: int
    page_token: str
    def __init__(self, namespace: _Optional[str] = ..., name_contains: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDataSetsResponse(_message.Message):
    __slots__ = ("data_sets", "next_page_token")
    DATA_SETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    data_sets: _containers.RepeatedCompositeFieldContainer[DataSetInfo]
    next_page_token: str
    def __init__(self, data_sets: _Optional[_Iterable[_Union[DataSetInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetTaskResultRequest(_message.Message):
    __slots__ = ("job_id", "component_name", "role")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    component_name: str
    role: str
    def __init__(self, job_id: _Optional[str] = ..., component_name: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class TaskResult(_message.Message):
    __slots__ = ("task", "module", "status", "data", "models", "metrics")
    TASK_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    module: str
    status: _common_pb2.TaskStatus
    data: _containers.RepeatedCompositeFieldContainer[_common_pb2.OutputDataSet]
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.OutputModel]
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., module: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., data: _Optional[_Iterable[_Union[_common_pb2.OutputDataSet, _Mapping]]] = ..., models: _Optional[_Iterable[_Union[_common_pb2.OutputModel, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ...) -> None: ...

class GetTaskResultResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[TaskResult]
    def __init__(self, results: _Optional[_Iterable[_Union[TaskResult, _Mapping]]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("job_id", "component_name", "namespace", "name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    component_name: str
    namespace: str
    name: str
    def __init__(self, job_id: _Optional[str] = ..., component_name: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class TaskMetrics(_message.Message):
    __slots__ = ("task", "metrics")
    TASK_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    metrics: _containers.RepeatedCompositeFieldContainer[_common_pb2.Metric]
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[_common_pb2.Metric, _Mapping]]] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("tasks",)
    TASKS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskMetrics]
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskMetrics, _Mapping]]] = ...) -> None: ...

class WhoAmIRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WhoAmIResponse(_message.Message):
    __slots__ = ("user", "role", "via")
    USER_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    VIA_FIELD_NUMBER: _ClassVar[int]
    user: str
    role: str
    via: str
    def __init__(self, user: _Optional[str] = ..., role: _Optional[str] = ..., via: _Optional[str] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("job_id", "component_name", "role")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    component_name: str
    role: str
    def __init__(self, job_id: _Optional[str] = ..., component_name: _Optional[str] = ..., role: _Optional[str] = ...) -> None: ...

class ExportedModel(_message.Message):
    __slots__ = ("task", "module", "output_name", "version", "model_json")
    TASK_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_JSON_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    module: str
    output_name: str
    version: int
    model_json: str
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., module: _Optional[str] = ..., output_name: _Optional[str] = ..., version: _Optional[int] = ..., model_json: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ExportedModel]
    def __init__(self, models: _Optional[_Iterable[_Union[ExportedModel, _Mapping]]] = ...) -> None: ...

class GetMembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberLink(_message.Message):
    __slots__ = ("member_id", "name", "endpoint", "messages_out", "messages_in", "bytes_out", "bytes_in", "retries", "refused")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_OUT_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_IN_FIELD_NUMBER: _ClassVar[int]
    BYTES_OUT_FIELD_NUMBER: _ClassVar[int]
    BYTES_IN_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    REFUSED_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    name: str
    endpoint: str
    messages_out: int
    messages_in: int
    bytes_out: int
    bytes_in: int
    retries: int
    refused: int
    def __init__(self, member_id: _Optional[str] = ..., name: _Optional[str] = ..., endpoint: _Optional[str] = ..., messages_out: _Optional[int] = ..., messages_in: _Optional[int] = ..., bytes_out: _Optional[int] = ..., bytes_in: _Optional[int] = ..., retries: _Optional[int] = ..., refused: _Optional[int] = ...) -> None: ...

class GetMembersResponse(_message.Message):
    __slots__ = ("member_id", "name", "certificate_not_after_ms", "peers", "transfer_error")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_NOT_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_ERROR_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    name: str
    certificate_not_after_ms: int
    peers: _containers.RepeatedCompositeFieldContainer[MemberLink]
    transfer_error: str
    def __init__(self, member_id: _Optional[str] = ..., name: _Optional[str] = ..., certificate_not_after_ms: _Optional[int] = ..., peers: _Optional[_Iterable[_Union[MemberLink, _Mapping]]] = ..., transfer_error: _Optional[str] = ...) -> None: ...

class GetDataSetSummaryRequest(_message.Message):
    __slots__ = ("namespace", "name")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class LabelCount(_message.Message):
    __slots__ = ("value", "rows")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    value: str
    rows: int
    def __init__(self, value: _Optional[str] = ..., rows: _Optional[int] = ...) -> None: ...

class DataSetSummary(_message.Message):
    __slots__ = ("info", "label_counts")
    INFO_FIELD_NUMBER: _ClassVar[int]
    LABEL_COUNTS_FIELD_NUMBER: _ClassVar[int]
    info: DataSetInfo
    label_counts: _containers.RepeatedCompositeFieldContainer[LabelCount]
    def __init__(self, info: _Optional[_Union[DataSetInfo, _Mapping]] = ..., label_counts: _Optional[_Iterable[_Union[LabelCount, _Mapping]]] = ...) -> None: ...

class GetTaskLogRequest(_message.Message):
    __slots__ = ("job_id", "component_name", "role", "offset", "max_bytes", "stdout")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    STDOUT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    component_name: str
    role: str
    offset: int
    max_bytes: int
    stdout: bool
    def __init__(self, job_id: _Optional[str] = ..., component_name: _Optional[str] = ..., role: _Optional[str] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ..., stdout: _Optional[bool] = ...) -> None: ...

class GetTaskLogResponse(_message.Message):
    __slots__ = ("task", "attempt", "text", "next_offset", "restarted", "complete", "status")
    TASK_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    RESTARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.TaskKey
    attempt: int
    text: str
    next_offset: int
    restarted: bool
    complete: bool
    status: _common_pb2.TaskStatus
    def __init__(self, task: _Optional[_Union[_common_pb2.TaskKey, _Mapping]] = ..., attempt: _Optional[int] = ..., text: _Optional[str] = ..., next_offset: _Optional[int] = ..., restarted: _Optional[bool] = ..., complete: _Optional[bool] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ...) -> None: ...

class CreateJobRequest(_message.Message):
    __slots__ = ("job_id", "spec_json", "initiator", "sender_member_id", "federation_session_id", "validate_only")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_JSON_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    SENDER_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    FEDERATION_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    spec_json: str
    initiator: _common_pb2.Party
    sender_member_id: str
    federation_session_id: str
    validate_only: bool
    def __init__(self, job_id: _Optional[str] = ..., spec_json: _Optional[str] = ..., initiator: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., sender_member_id: _Optional[str] = ..., federation_session_id: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class ReportTaskStatusRequest(_message.Message):
    __slots__ = ("job_id", "sender_member_id", "role", "component_name", "task_id", "status", "attempt", "progress", "error", "timestamp_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sender_member_id: str
    role: str
    component_name: str
    task_id: str
    status: _common_pb2.TaskStatus
    attempt: int
    progress: float
    error: str
    timestamp_ms: int
    def __init__(self, job_id: _Optional[str] = ..., sender_member_id: _Optional[str] = ..., role: _Optional[str] = ..., component_name: _Optional[str] = ..., task_id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., attempt: _Optional[int] = ..., progress: _Optional[float] = ..., error: _Optional[str] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class PushJobStatusRequest(_message.Message):
    __slots__ = ("job_id", "sender_member_id", "status", "progress", "message", "failed_party", "failed_component", "tasks", "timestamp_ms")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FAILED_PARTY_FIELD_NUMBER: _ClassVar[int]
    FAILED_COMPONENT_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sender_member_id: str
    status: _common_pb2.JobStatus
    progress: float
    message: str
    failed_party: _common_pb2.Party
    failed_component: str
    tasks: _containers.RepeatedCompositeFieldContainer[JobTask]
    timestamp_ms: int
    def __init__(self, job_id: _Optional[str] = ..., sender_member_id: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.JobStatus, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., failed_party: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., failed_component: _Optional[str] = ..., tasks: _Optional[_Iterable[_Union[JobTask, _Mapping]]] = ..., timestamp_ms: _Optional[int] = ...) -> None: ...

class PeerStopJobRequest(_message.Message):
    __slots__ = ("job_id", "sender_member_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sender_member_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., sender_member_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class PeerRerunJobRequest(_message.Message):
    __slots__ = ("job_id", "sender_member_id", "component_names", "federation_session_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAMES_FIELD_NUMBER: _ClassVar[int]
    FEDERATION_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    sender_member_id: str
    component_names: _containers.RepeatedScalarFieldContainer[str]
    federation_session_id: str
    def __init__(self, job_id: _Optional[str] = ..., sender_member_id: _Optional[str] = ..., component_names: _Optional[_Iterable[str]] = ..., federation_session_id: _Optional[str] = ...) -> None: ...
