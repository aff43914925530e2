"""The task runtime conf in the seed's format: parsing, validation, numeric codes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kernel.constants import (
    BACKEND_CODES,
    BACKEND_LOCAL,
    BACKEND_SPARK,
    DB_TYPE_PARQUET,
    ROLES,
    WORK_MODE_CLUSTER,
    WORK_MODE_CODES,
    WORK_MODE_STANDALONE,
)
from kernel.errors import ConfError
from kernel.federation.base import Party, RoleTable

REQUIRED_KEYS = ("initiator", "job_parameters", "role", "local", "module", "input")


def _party(value: Any, key: str) -> Party:
    if not isinstance(value, dict) or "member_id" not in value or "role" not in value:
        raise ConfError(f"{key}: expected {{'member_id': ..., 'role': ...}}")
    if value["role"] not in ROLES:
        raise ConfError(f"{key}.role: unknown role {value['role']!r}")
    if not isinstance(value["member_id"], str) or not value["member_id"]:
        raise ConfError(f"{key}.member_id: expected a non-empty string")
    return Party(value["role"], value["member_id"])


def _code(value: Any, codes: dict[int, str], names: tuple[str, ...], key: str) -> str:
    if isinstance(value, bool):
        raise ConfError(f"{key}: expected one of {', '.join(names)} or their numeric codes")
    if isinstance(value, int):
        if value not in codes:
            raise ConfError(f"{key}: unknown code {value} (expected {', '.join(f'{k}={v}' for k, v in codes.items())})")
        return codes[value]
    if isinstance(value, str) and value.upper() in names:
        return value.upper()
    raise ConfError(f"{key}: unknown value {value!r} (expected {', '.join(names)})")


@dataclass(frozen=True)
class RuntimeConf:
    """A validated task runtime conf."""

    raw: dict[str, Any]
    module: str
    initiator: Party
    local: Party
    roles: RoleTable
    backend: str
    work_mode: str
    db_type: str
    job_parameters: dict[str, Any]
    job_args: dict[str, Any]
    input: dict[str, Any]
    output: dict[str, list[str]]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def param_key(self) -> str:
        return f"{self.module}Param"


def parse_runtime_conf(raw: Any) -> RuntimeConf:
    """Validate a conf dict; every problem is a ConfError naming the key."""
    if not isinstance(raw, dict):
        raise ConfError("runtime conf: expected a JSON object")
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ConfError(f"runtime conf: missing required key {key!r}")
    module = raw["module"]
    if not isinstance(module, str) or not module:
        raise ConfError("module: expected a component module name")
    if not isinstance(raw["role"], dict):
        raise ConfError("role: expected an object of role -> member ids")
    roles = RoleTable.from_conf(raw["role"])
    local = _party(raw["local"], "local")
    if local.member_id not in roles.members.get(local.role, ()):
        raise ConfError(f"local: member {local.member_id} is not a {local.role} in role")
    job_parameters = raw["job_parameters"]
    if not isinstance(job_parameters, dict):
        raise ConfError("job_parameters: expected an object")
    backend = _code(job_parameters.get("backend", BACKEND_LOCAL), BACKEND_CODES,
                    (BACKEND_LOCAL, BACKEND_SPARK), "job_parameters.backend")
    work_mode = _code(job_parameters.get("work_mode", WORK_MODE_STANDALONE), WORK_MODE_CODES,
                      (WORK_MODE_STANDALONE, WORK_MODE_CLUSTER), "job_parameters.work_mode")
    db_type = str(job_parameters.get("db_type", DB_TYPE_PARQUET)).upper()
    if db_type != DB_TYPE_PARQUET:
        raise ConfError(f"job_parameters.db_type: {db_type} is not supported (use {DB_TYPE_PARQUET})")
    inputs = raw["input"]
    if not isinstance(inputs, dict):
        raise ConfError("input: expected an object with 'data' and/or 'model'")
    for key in inputs:
        if key not in ("data", "model"):
            raise ConfError(f"input.{key}: unknown input kind (expected data, model)")
    data_inputs = inputs.get("data", {})
    if not isinstance(data_inputs, dict):
        raise ConfError("input.data: expected an object of key -> list of references")
    for key, refs in data_inputs.items():
        _check_refs(refs, f"input.data.{key}")
    _check_refs(inputs.get("model", []), "input.model")
    output = raw.get("output", {}) or {}
    if not isinstance(output, dict):
        raise ConfError("output: expected an object with 'data' and/or 'model' lists")
    for key, names in output.items():
        if key not in ("data", "model") or not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfError(f"output.{key}: expected a list of names under 'data' or 'model'")
    job_args = raw.get("job_args", {}) or {}
    if not isinstance(job_args, dict):
        raise ConfError("job_args: expected an object")
    params = raw.get(f"{module}Param", {}) or {}
    if not isinstance(params, dict):
        raise ConfError(f"{module}Param: expected an object of parameters")
    return RuntimeConf(
        raw=raw, module=module, initiator=_party(raw["initiator"], "initiator"), local=local,
        roles=roles, backend=backend, work_mode=work_mode, db_type=db_type,
        job_parameters=job_parameters, job_args=job_args, input=inputs, output=output, params=params,
    )


def _check_refs(refs: Any, key: str) -> None:
    if not isinstance(refs, list) or not all(isinstance(r, str) and "." in r for r in refs):
        raise ConfError(f"{key}: expected a list of 'args.<name>' or '<component>.<output>' references")


def output_namespace(job_id: str, role: str, member_id: str) -> str:
    """Storage namespace of a job's outputs at one member and role."""
    return f"job-{job_id}-{role}-{member_id}"
