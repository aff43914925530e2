from protos.weft.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LogStream(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_STREAM_UNSPECIFIED: _ClassVar[LogStream]
    LOG_STREAM_STDOUT: _ClassVar[LogStream]
    LOG_STREAM_STDERR: _ClassVar[LogStream]
LOG_STREAM_UNSPECIFIED: LogStream
LOG_STREAM_STDOUT: LogStream
LOG_STREAM_STDERR: LogStream

class SparkOptions(_message.Message):
    __slots__ = ("master", "driver_memory", "executor_memory", "executor_cores", "num_executors", "conf")
    class ConfEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MASTER_FIELD_NUMBER: _ClassVar[int]
    DRIVER_MEMORY_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_MEMORY_FIELD_NUMBER: _ClassVar[int]
    EXECUTOR_CORES_FIELD_NUMBER: _ClassVar[int]
    NUM_EXECUTORS_FIELD_NUMBER: _ClassVar[int]
    CONF_FIELD_NUMBER: _ClassVar[int]
    master: str
    driver_memory: str
    executor_memory: str
    executor_cores: int
    num_executors: int
    conf: _containers.ScalarMap[str, str]
    def __init__(self, master: _Optional[str] = ..., driver_memory: _Optional[str] = ..., executor_memory: _Optional[str] = ..., executor_cores: _Optional[int] = ..., num_executors: _Optional[int] = ..., conf: _Optional[_Mapping[str, str]] = ...) -> None: ...

class TaskSpec(_message.Message):
    __slots__ = ("job_id", "task_id", "component_name", "module", "role", "member_id", "federation_session_id", "runtime_conf_json", "priority", "backend", "spark", "attempt")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    FEDERATION_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_CONF_JSON_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SPARK_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_id: str
    component_name: str
    module: str
    role: str
    member_id: str
    federation_session_id: str
    runtime_conf_json: str
    priority: int
    backend: _common_pb2.Backend
    spark: SparkOptions
    attempt: int
    def __init__(self, job_id: _Optional[str] = ..., task_id: _Optional[str] = ..., component_name: _Optional[str] = ..., module: _Optional[str] = ..., role: _Optional[str] = ..., member_id: _Optional[str] = ..., federation_session_id: _Optional[str] = ..., runtime_conf_json: _Optional[str] = ..., priority: _Optional[int] = ..., backend: _Optional[_Union[_common_pb2.Backend, str]] = ..., spark: _Optional[_Union[SparkOptions, _Mapping]] = ..., attempt: _Optional[int] = ...) -> None: ...

class RunTaskRequest(_message.Message):
    __slots__ = ("spec", "stream_logs")
    SPEC_FIELD_NUMBER: _ClassVar[int]
    STREAM_LOGS_FIELD_NUMBER: _ClassVar[int]
    spec: TaskSpec
    stream_logs: bool
    def __init__(self, spec: _Optional[_Union[TaskSpec, _Mapping]] = ..., stream_logs: _Optional[bool] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ("task_id", "stream_logs")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_LOGS_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    stream_logs: bool
    def __init__(self, task_id: _Optional[str] = ..., stream_logs: _Optional[bool] = ...) -> None: ...

class TaskEvent(_message.Message):
    __slots__ = ("task_id", "attempt", "timestamp_ms", "accepted", "started", "progress", "metric", "log", "finished", "heartbeat", "snapshot")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    attempt: int
    timestamp_ms: int
    accepted: TaskAccepted
    started: TaskStarted
    progress: TaskProgress
    metric: TaskMetric
    log: TaskLog
    finished: TaskFinished
    heartbeat: TaskHeartbeat
    snapshot: TaskInfo
    def __init__(self, task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., timestamp_ms: _Optional[int] = ..., accepted: _Optional[_Union[TaskAccepted, _Mapping]] = ..., started: _Optional[_Union[TaskStarted, _Mapping]] = ..., progress: _Optional[_Union[TaskProgress, _Mapping]] = ..., metric: _Optional[_Union[TaskMetric, _Mapping]] = ..., log: _Optional[_Union[TaskLog, _Mapping]] = ..., finished: _Optional[_Union[TaskFinished, _Mapping]] = ..., heartbeat: _Optional[_Union[TaskHeartbeat, _Mapping]] = ..., snapshot: _Optional[_Union[TaskInfo, _Mapping]] = ...) -> None: ...

class TaskAccepted(_message.Message):
    __slots__ = ("queue_position",)
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    queue_position: int
    def __init__(self, queue_position: _Optional[int] = ...) -> None: ...

class TaskStarted(_message.Message):
    __slots__ = ("pid", "spark_app_id", "warm")
    PID_FIELD_NUMBER: _ClassVar[int]
    SPARK_APP_ID_FIELD_NUMBER: _ClassVar[int]
    WARM_FIELD_NUMBER: _ClassVar[int]
    pid: int
    spark_app_id: str
    warm: bool
    def __init__(self, pid: _Optional[int] = ..., spark_app_id: _Optional[str] = ..., warm: _Optional[bool] = ...) -> None: ...

class TaskProgress(_message.Message):
    __slots__ = ("percent", "message", "waiting")
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    percent: float
    message: str
    waiting: TaskWaiting
    def __init__(self, percent: _Optional[float] = ..., message: _Optional[str] = ..., waiting: _Optional[_Union[TaskWaiting, _Mapping]] = ...) -> None: ...

class TaskWaiting(_message.Message):
    __slots__ = ("variable", "tag", "src", "since_ms")
    VARIABLE_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    SRC_FIELD_NUMBER: _ClassVar[int]
    SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    variable: str
    tag: str
    src: _common_pb2.Party
    since_ms: int
    def __init__(self, variable: _Optional[str] = ..., tag: _Optional[str] = ..., src: _Optional[_Union[_common_pb2.Party, _Mapping]] = ..., since_ms: _Optional[int] = ...) -> None: ...

class TaskMetric(_message.Message):
    __slots__ = ("name", "namespace", "metric_type", "json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    METRIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    namespace: str
    metric_type: str
    json: str
    def __init__(self, name: _Optional[str] = ..., namespace: _Optional[str] = ..., metric_type: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class TaskLog(_message.Message):
    __slots__ = ("line", "stream")
    LINE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    line: str
    stream: LogStream
    def __init__(self, line: _Optional[str] = ..., stream: _Optional[_Union[LogStream, str]] = ...) -> None: ...

class TaskFinished(_message.Message):
    __slots__ = ("status", "error", "exit_code")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.TaskStatus
    error: str
    exit_code: int
    def __init__(self, status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., error: _Optional[str] = ..., exit_code: _Optional[int] = ...) -> None: ...

class TaskHeartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TaskInfo(_message.Message):
    __slots__ = ("task_id", "job_id", "component_name", "role", "member_id", "attempt", "status", "backend", "pid", "spark_app_id", "progress", "priority", "accepted_at_ms", "started_at_ms", "ended_at_ms", "last_heartbeat_ms", "exit_code", "error", "log_path")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    SPARK_APP_ID_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LOG_PATH_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    job_id: str
    component_name: str
    role: str
    member_id: str
    attempt: int
    status: _common_pb2.TaskStatus
    backend: _common_pb2.Backend
    pid: int
    spark_app_id: str
    progress: float
    priority: int
    accepted_at_ms: int
    started_at_ms: int
    ended_at_ms: int
    last_heartbeat_ms: int
    exit_code: int
    error: str
    log_path: str
    def __init__(self, task_id: _Optional[str] = ..., job_id: _Optional[str] = ..., component_name: _Optional[str] = ..., role: _Optional[str] = ..., member_id: _Optional[str] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ..., backend: _Optional[_Union[_common_pb2.Backend, str]] = ..., pid: _Optional[int] = ..., spark_app_id: _Optional[str] = ..., progress: _Optional[float] = ..., priority: _Optional[int] = ..., accepted_at_ms: _Optional[int] = ..., started_at_ms: _Optional[int] = ..., ended_at_ms: _Optional[int] = ..., last_heartbeat_ms: _Optional[int] = ..., exit_code: _Optional[int] = ..., error: _Optional[str] = ..., log_path: _Optional[str] = ...) -> None: ...

class StopTaskRequest(_message.Message):
    __slots__ = ("task_id", "reason")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    reason: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class StopTaskResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.TaskStatus
    def __init__(self, status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ("job_id", "statuses")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    statuses: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskStatus]
    def __init__(self, job_id: _Optional[str] = ..., statuses: _Optional[_Iterable[_Union[_common_pb2.TaskStatus, str]]] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ("tasks", "slots_total", "running_count", "queued_count", "warm_workers")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    SLOTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RUNNING_COUNT_FIELD_NUMBER: _ClassVar[int]
    QUEUED_COUNT_FIELD_NUMBER: _ClassVar[int]
    WARM_WORKERS_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[TaskInfo]
    slots_total: int
    running_count: int
    queued_count: int
    warm_workers: int
    def __init__(self, tasks: _Optional[_Iterable[_Union[TaskInfo, _Mapping]]] = ..., slots_total: _Optional[int] = ..., running_count: _Optional[int] = ..., queued_count: _Optional[int] = ..., warm_workers: _Optional[int] = ...) -> None: ...

class TailTaskLogRequest(_message.Message):
    __slots__ = ("job_id", "task_id", "attempt", "stream", "offset", "max_bytes")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_id: str
    attempt: int
    stream: LogStream
    offset: int
    max_bytes: int
    def __init__(self, job_id: _Optional[str] = ..., task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., stream: _Optional[_Union[LogStream, str]] = ..., offset: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class TailTaskLogResponse(_message.Message):
    __slots__ = ("text", "next_offset", "size", "restarted", "complete", "attempt", "status")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    NEXT_OFFSET_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    RESTARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    text: str
    next_offset: int
    size: int
    restarted: bool
    complete: bool
    attempt: int
    status: _common_pb2.TaskStatus
    def __init__(self, text: _Optional[str] = ..., next_offset: _Optional[int] = ..., size: _Optional[int] = ..., restarted: _Optional[bool] = ..., complete: _Optional[bool] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[_common_pb2.TaskStatus, str]] = ...) -> None: ...
