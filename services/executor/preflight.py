"""Checks a task before any process starts, so bad input fails in milliseconds, not after a JVM boots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kernel.errors import ConfError, InvalidArgument, NotFound, RoleNotSupported
from kernel.federation.base import Party
from kernel.registry import get_component, registry
from kernel.runtime_conf import parse_runtime_conf
from protos.weft.v1 import executor_pb2

REQUIRED_FIELDS = ("job_id", "task_id", "component_name", "role", "member_id",
                   "federation_session_id", "runtime_conf_json")


def prepare() -> None:
    """Import what `check_task` needs and scan the components once, before the first RunTask."""
    import kernel.storage  # noqa: F401
    import kernel.task_executor  # noqa: F401

    registry()


def check_spec(spec: executor_pb2.TaskSpec) -> dict[str, Any]:
    """Required fields and a JSON object conf; returns the parsed conf (InvalidArgument otherwise)."""
    for name in REQUIRED_FIELDS:
        if not getattr(spec, name):
            raise InvalidArgument(f"spec.{name}: required")
    if spec.attempt < 0:
        raise InvalidArgument(f"spec.attempt: must be 1 or more, got {spec.attempt}")
    try:
        conf = json.loads(spec.runtime_conf_json)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"spec.runtime_conf_json: not valid JSON ({exc})") from None
    if not isinstance(conf, dict):
        raise InvalidArgument("spec.runtime_conf_json: expected a JSON object")
    return conf


def check_task(spec: executor_pb2.TaskSpec, raw_conf: dict[str, Any], storage_root: Path) -> None:
    """What the task would find out first, found out here: raises a WeftError naming the problem.

    The conf must parse and name this member and role, the module must exist and serve the
    role, its parameters must pass `check()`, and every `args.*` data set must be stored.
    """
    from kernel.storage import DataStore
    from kernel.task_executor import build_params

    conf = parse_runtime_conf(raw_conf)
    if conf.local != Party(spec.role, spec.member_id):
        raise ConfError(f"local: conf says {conf.local}, the spec says {spec.role}:{spec.member_id}")
    if spec.module and spec.module != conf.module:
        raise ConfError(f"module: the spec says {spec.module!r}, the conf says {conf.module!r}")
    component = get_component(conf.module)
    if spec.role not in component.role_programs:
        raise RoleNotSupported(
            f"component {component.module} does not support role {spec.role!r} "
            f"(supported: {', '.join(component.roles) or 'none'})")
    build_params(component, conf)
    if not component.program_class(spec.role).needs_data:
        return  # a role holding no rows (an arbiter) reads none of the inputs
    store = DataStore(str(storage_root / "data"))
    data_args = conf.job_args.get("data", {})
    data_args = data_args if isinstance(data_args, dict) else {}
    for key, refs in conf.input.get("data", {}).items():
        for ref in refs:
            source, _, name = ref.partition(".")
            if source != "args":
                continue
            entry = data_args.get(name)
            if not isinstance(entry, dict) or "namespace" not in entry or "name" not in entry:
                raise ConfError(f"input.data.{key}: {ref} is not in job_args.data as {{'namespace', 'name'}}")
            namespace, data_name = str(entry["namespace"]), str(entry["name"])
            if not store.exists(namespace, data_name):
                raise NotFound(f"input.data.{key}: data set {ref} ({namespace}/{data_name}) not found")
