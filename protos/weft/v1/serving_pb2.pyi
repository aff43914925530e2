from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PredictRow(_message.Message):
    __slots__ = ("id", "features")
    class FeaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    FEATURES_FIELD_NUMBER: _ClassVar[int]
    id: str
    features: _containers.ScalarMap[str, float]
    def __init__(self, id: _Optional[str] = ..., features: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "row")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROW_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: int
    row: PredictRow
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., row: _Optional[_Union[PredictRow, _Mapping]] = ...) -> None: ...

class BatchPredictRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "rows")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: int
    rows: _containers.RepeatedCompositeFieldContainer[PredictRow]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., rows: _Optional[_Iterable[_Union[PredictRow, _Mapping]]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_name", "model_version", "id", "score", "label", "points", "fallback", "fallback_reason", "card_score", "base_points", "provider_points")
    class PointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ProviderPointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_REASON_FIELD_NUMBER: _ClassVar[int]
    CARD_SCORE_FIELD_NUMBER: _ClassVar[int]
    BASE_POINTS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_POINTS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: int
    id: str
    score: float
    label: int
    points: _containers.ScalarMap[str, float]
    fallback: bool
    fallback_reason: str
    card_score: float
    base_points: float
    provider_points: _containers.ScalarMap[str, float]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., id: _Optional[str] = ..., score: _Optional[float] = ..., label: _Optional[int] = ..., points: _Optional[_Mapping[str, float]] = ..., fallback: _Optional[bool] = ..., fallback_reason: _Optional[str] = ..., card_score: _Optional[float] = ..., base_points: _Optional[float] = ..., provider_points: _Optional[_Mapping[str, float]] = ...) -> None: ...

class PublishModelRequest(_message.Message):
    __slots__ = ("job_id", "component", "name", "deadline_ms", "fallback_score")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_SCORE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    component: str
    name: str
    deadline_ms: int
    fallback_score: float
    def __init__(self, job_id: _Optional[str] = ..., component: _Optional[str] = ..., name: _Optional[str] = ..., deadline_ms: _Optional[int] = ..., fallback_score: _Optional[float] = ...) -> None: ...

class ServingModel(_message.Message):
    __slots__ = ("name", "version", "current", "job_id", "component", "module", "role", "chain", "members", "feature_table", "published_ms", "deadline_ms", "fallback_score")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    MODULE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CHAIN_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TABLE_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_MS_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_SCORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    current: bool
    job_id: str
    component: str
    module: str
    role: str
    chain: _containers.RepeatedScalarFieldContainer[str]
    members: _containers.RepeatedScalarFieldContainer[str]
    feature_table: str
    published_ms: int
    deadline_ms: int
    fallback_score: float
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., current: _Optional[bool] = ..., job_id: _Optional[str] = ..., component: _Optional[str] = ..., module: _Optional[str] = ..., role: _Optional[str] = ..., chain: _Optional[_Iterable[str]] = ..., members: _Optional[_Iterable[str]] = ..., feature_table: _Optional[str] = ..., published_ms: _Optional[int] = ..., deadline_ms: _Optional[int] = ..., fallback_score: _Optional[float] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ServingModel]
    def __init__(self, models: _Optional[_Iterable[_Union[ServingModel, _Mapping]]] = ...) -> None: ...

class RollbackModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class UnpublishModelRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class UnpublishModelResponse(_message.Message):
    __slots__ = ("removed",)
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    removed: int
    def __init__(self, removed: _Optional[int] = ...) -> None: ...

class SetFeatureTableRequest(_message.Message):
    __slots__ = ("name", "feature_table")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FEATURE_TABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    feature_table: str
    def __init__(self, name: _Optional[str] = ..., feature_table: _Optional[str] = ...) -> None: ...

class PartialPredictRequest(_message.Message):
    __slots__ = ("model_name", "model_version", "job_id", "ids")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    IDS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    model_version: int
    job_id: str
    ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model_name: _Optional[str] = ..., model_version: _Optional[int] = ..., job_id: _Optional[str] = ..., ids: _Optional[_Iterable[str]] = ...) -> None: ...

class PartialPredictResponse(_message.Message):
    __slots__ = ("partial_scores", "decisions")
    PARTIAL_SCORES_FIELD_NUMBER: _ClassVar[int]
    DECISIONS_FIELD_NUMBER: _ClassVar[int]
    partial_scores: _containers.RepeatedScalarFieldContainer[float]
    decisions: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, partial_scores: _Optional[_Iterable[float]] = ..., decisions: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PublishPartRequest(_message.Message):
    __slots__ = ("name", "version", "job_id", "component", "deadline_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COMPONENT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    job_id: str
    component: str
    deadline_ms: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., job_id: _Optional[str] = ..., component: _Optional[str] = ..., deadline_ms: _Optional[int] = ...) -> None: ...
