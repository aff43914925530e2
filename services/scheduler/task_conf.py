"""Per task and member: its id, its federation session and its runtime conf in the seed's format."""

from __future__ import annotations

import copy
import secrets
import time
from typing import Any

from kernel.constants import CONF_COMPONENT_ROLES, ROLES
from services.scheduler.constants import (
    CONF_COMPONENT_NAME,
    CONF_JOB_ID,
    CONF_SESSION_ID,
    CONF_TASK_ID,
)
from services.scheduler.spec import JobSpec, Party


def new_job_id() -> str:
    """A job id that sorts by creation time and is unique across the federation."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(6)


def task_id_of(job_id: str, component: str, party: Party) -> str:
    """The id of the task running `component` at `party` (the same at every member)."""
    return f"{job_id}_{component}_{party.role}_{party.member_id}"


def component_session_id(session_prefix: str, component: str) -> str:
    """The federation session one component's tasks share at every member.

    Each component gets its own session: transfer variable names and tags repeat across
    components of the same module, and a rerun uses a new prefix so that no message of an
    earlier run is read.
    """
    return f"{session_prefix}.{component}"


def build_runtime_conf(
    spec: JobSpec,
    component: str,
    party: Party,
    *,
    job_id: str,
    session_id: str,
    task_id: str | None = None,
) -> dict[str, Any]:
    """The runtime conf of `component` at `party`: the seed's keys plus the task's identity.

    `job_args` holds only this member's entry (another member's data set names never
    reach a task), `<Module>Param` the common parameters and `role_params` the per-role
    overrides, which the task merges over them.
    """
    definition = spec.components[component]
    conf: dict[str, Any] = {
        "initiator": {"member_id": spec.initiator.member_id, "role": spec.initiator.role},
        "job_parameters": copy.deepcopy(spec.job_parameters),
        "role": {role: list(spec.roles.get(role, [])) for role in ROLES},
        "local": {"member_id": party.member_id, "role": party.role},
        "job_args": copy.deepcopy(spec.job_args.get(party.member_id, {"data": {}})),
        "input": copy.deepcopy(definition.input),
        "output": copy.deepcopy(definition.output),
        f"{definition.module}Param": copy.deepcopy(definition.params),
        "role_params": copy.deepcopy(definition.role_params),
        "module": definition.module,
        CONF_COMPONENT_ROLES: list(definition.roles),
        CONF_JOB_ID: job_id,
        CONF_TASK_ID: task_id or task_id_of(job_id, component, party),
        CONF_COMPONENT_NAME: component,
        CONF_SESSION_ID: session_id,
    }
    return conf
