from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_WAITING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCESS: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_STOPPED: _ClassVar[JobStatus]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_WAITING: _ClassVar[TaskStatus]
    TASK_STATUS_RUNNING: _ClassVar[TaskStatus]
    TASK_STATUS_SUCCESS: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_STOPPED: _ClassVar[TaskStatus]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_LOCAL: _ClassVar[Backend]
    BACKEND_SPARK: _ClassVar[Backend]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_WAITING: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCESS: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_STOPPED: JobStatus
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_WAITING: TaskStatus
TASK_STATUS_RUNNING: TaskStatus
TASK_STATUS_SUCCESS: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_STOPPED: TaskStatus
BACKEND_UNSPECIFIED: Backend
BACKEND_LOCAL: Backend
BACKEND_SPARK: Backend

class Party(_message.Message):
    __slots__ = ("role", "member_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    member_id: str
    def __init__(self, role: _Optional[str] = ..., member_id: _Optional[str] = ...) -> None: ...

class DataSetRef(_message.Message):
    __slots__ = ("namespace", "name")
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    namespace: str
    name: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class TaskKey(_message.Message):
    __slots__ = ("job_id", "task_id", "component_name", "party")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTY_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    task_id: str
    component_name: str
    party: Party
    def __init__(self, job_id: _Optional[str] = ..., task_id: _Optional[str] = ..., component_name: _Optional[str] = ..., party: _Optional[_Union[Party, _Mapping]] = ...) -> None: ...

class Metric(_message.Message):
    __slots__ = ("name", "namespace", "metric_type", "points_json", "recorded_at_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    METRIC_TYPE_FIELD_NUMBER: _ClassVar[int]
    POINTS_JSON_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    namespace: str
    metric_type: str
    points_json: str
    recorded_at_ms: int
    def __init__(self, name: _Optional[str] = ..., namespace: _Optional[str] = ..., metric_type: _Optional[str] = ..., points_json: _Optional[str] = ..., recorded_at_ms: _Optional[int] = ...) -> None: ...

class OutputDataSet(_message.Message):
    __slots__ = ("output_name", "data_set", "uri", "row_count")
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    DATA_SET_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    output_name: str
    data_set: DataSetRef
    uri: str
    row_count: int
    def __init__(self, output_name: _Optional[str] = ..., data_set: _Optional[_Union[DataSetRef, _Mapping]] = ..., uri: _Optional[str] = ..., row_count: _Optional[int] = ...) -> None: ...

class OutputModel(_message.Message):
    __slots__ = ("output_name", "version", "uri")
    OUTPUT_NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    URI_FIELD_NUMBER: _ClassVar[int]
    output_name: str
    version: int
    uri: str
    def __init__(self, output_name: _Optional[str] = ..., version: _Optional[int] = ..., uri: _Optional[str] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
