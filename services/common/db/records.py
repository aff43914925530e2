"""The typed rows of the scheduler's database: jobs, tasks, progress, results, data sets, members."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from services.common.db.constants import STATUS_WAITING


@dataclass(frozen=True)
class JobRecord:
    """One job as this member sees it: its roles, the spec and the job's state."""

    job_id: str
    member_id: str
    my_roles: list[str]
    initiator_member_id: str
    initiator_role: str
    spec: dict[str, Any]
    name: str = ""
    status: str = STATUS_WAITING
    progress: float = 0.0
    message: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class TaskRecord:
    """One component of a job run by one member in one role."""

    task_id: str
    job_id: str
    component: str
    module: str
    role: str
    member_id: str
    status: str = STATUS_WAITING
    attempt: int = 0
    session_id: str | None = None
    retries: int = 0
    executor: str | None = None
    pid: int | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    started_at: float | None = None
    ended_at: float | None = None


@dataclass(frozen=True)
class TaskProgressRecord:
    """The latest progress (0.0 to 1.0) a task reported."""

    task_id: str
    job_id: str
    progress: float
    message: str | None = None
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class TaskResultRecord:
    """One output of a task: a data set, a model or a metric, described as JSON."""

    task_id: str
    job_id: str
    component: str
    role: str
    member_id: str
    kind: str
    name: str
    value: Any
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class DataSetRecord:
    """A registered data set: where its file lives and what it holds."""

    namespace: str
    name: str
    uri: str
    row_count: int
    column_count: int
    data_schema: list[dict[str, Any]]
    id_column: str | None = None
    label_column: str | None = None
    description: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass(frozen=True)
class MemberRecord:
    """A known member (this one included) and the endpoint of its transfer service."""

    member_id: str
    endpoint: str
    name: str = ""
    updated_at: float = field(default_factory=time.time)
