"""Parsing a job spec: every check against the component registry, each failure naming its field."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Collection
from typing import Any

from kernel.base_param import BaseParam, build_param
from kernel.constants import ROLES
from kernel.errors import InvalidArgument, ParamError, WeftError
from kernel.model_base import DATA_KEYS, select_rule
from kernel.registry import ComponentSpec, get_component
from kernel.runtime_conf import parse_runtime_conf
from kernel.safe_text import check_text, unsafe_character
from kernel.storage import check_name
from services.common.spark_conf import job_spark_options
from services.scheduler.constants import (
    ARGS_SOURCE,
    COMPONENT_KEYS,
    COMPONENT_NAME_PATTERN,
    MAX_COMPONENTS,
    MAX_JOB_NAME_LENGTH,
    MAX_SPEC_CHARS,
    MAX_SPEC_DEPTH,
    MAX_SPEC_INTEGER,
    MEMBER_ID_PATTERN,
    OUTPUT_NAME_PATTERN,
    SPEC_KEYS,
)
from services.scheduler.spec import ComponentDef, JobSpec, Party, SpecError
from services.scheduler.task_conf import build_runtime_conf


def _fail(message: str) -> SpecError:
    return SpecError(message)


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(f"{where}: expected an object, got {_kind(value)}")
    return value


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _fail(f"{where}: expected a list of strings, got {_kind(value)}")
    return list(value)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), type(value).__name__)


def _no_constant(name: str) -> Any:
    raise _fail(f"spec_json: {name} is not a JSON number; use a finite number")


def load_spec_json(text: str) -> dict[str, Any]:
    """The spec object of a SubmitJob request's `spec_json`."""
    if not text.strip():
        raise _fail("spec_json: empty; send the job spec as a JSON object")
    if len(text) > MAX_SPEC_CHARS:
        raise _fail(f"spec_json: {len(text)} characters; at most {MAX_SPEC_CHARS} are allowed")
    try:
        raw = json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise _fail(f"spec_json: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise _fail(f"spec_json: nested too deeply (at most {MAX_SPEC_DEPTH} levels)") from None
    except ValueError as exc:  # an integer literal longer than Python converts (sys.int_info)
        raise _fail(f"spec_json: a number is out of range ({str(exc).split(';')[0]}); integers must fit "
                    "64 bits") from None
    check_json_shape(raw)
    return _object(raw, "spec")


def check_json_shape(raw: Any, where: str = "spec") -> None:
    """Refuse nesting deeper than MAX_SPEC_DEPTH, integers beyond 64 bits and non-finite floats.

    Iterative, so a hostile document cannot exhaust the stack here either.
    """
    stack: list[tuple[Any, str, int]] = [(raw, where, 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_SPEC_DEPTH:
                raise _fail(f"{path}: nested too deeply (at most {MAX_SPEC_DEPTH} levels)")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and unsafe_character(key) is not None:
                    raise _fail(f"{path}: a key holds a control or text-direction character")
                stack.append((item, f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]", depth + 1))
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if not -MAX_SPEC_INTEGER - 1 <= value <= MAX_SPEC_INTEGER:
                raise _fail(f"{path}: integer out of range (integers must fit 64 bits)")
        elif isinstance(value, float) and not math.isfinite(value):
            raise _fail(f"{path}: {value} is not a finite number")


def parse_job_spec(
    raw: dict[str, Any],
    *,
    local_member_id: str,
    known_members: Collection[str] | None = None,
    require_local_initiator: bool = True,
) -> JobSpec:
    """Validate a job spec; every problem is a SpecError naming the field.

    `known_members` (this member and its configured peers) limits the members a spec may
    name; None accepts any well-formed id. `require_local_initiator` is set at SubmitJob
    (the submitting member initiates); a member receiving CreateJob checks instead that
    the spec names it.
    """
    check_json_shape(raw)
    spec = copy.deepcopy(_object(raw, "spec"))
    unknown = sorted(set(spec) - SPEC_KEYS)
    if unknown:
        raise _fail(f"spec: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(SPEC_KEYS))})")
    name = spec.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_JOB_NAME_LENGTH:
        raise _fail(f"name: expected a string of at most {MAX_JOB_NAME_LENGTH} characters")
    try:
        check_text(name, "name", MAX_JOB_NAME_LENGTH)
    except InvalidArgument as exc:
        raise _fail(str(exc)) from None
    roles = _parse_roles(spec.get("role"), known_members)
    initiator = _parse_initiator(spec.get("initiator"), roles)
    if require_local_initiator and initiator.member_id != local_member_id:
        raise _fail(
            f"initiator.member_id: {initiator.member_id} is not this member ({local_member_id}); "
            "submit the job at the initiator's scheduler"
        )
    if not require_local_initiator and not any(local_member_id in ms for ms in roles.values()):
        raise _fail(f"role: the job does not name this member ({local_member_id})")
    job_parameters = _object(spec.get("job_parameters", {}), "job_parameters")
    try:
        job_spark_options(job_parameters)  # only Spark settings a job may set (services/common/spark_conf.py)
    except InvalidArgument as exc:
        raise _fail(str(exc)) from None
    job_args = _parse_job_args(spec.get("job_args", {}), roles)
    components = _parse_components(spec.get("components"), roles)
    ordered = _topological_order(components)
    parsed = JobSpec(
        raw={}, name=name, initiator=initiator, roles=roles, job_parameters=job_parameters,
        job_args=job_args, components={n: components[n] for n in ordered},
    )
    _check_outputs_and_args(parsed)
    _check_params_and_rules(parsed)
    _check_runtime_confs(parsed)
    normalized = {
        "name": name,
        "initiator": {"member_id": initiator.member_id, "role": initiator.role},
        "role": roles,
        "job_parameters": job_parameters,
        "job_args": job_args,
        "components": {n: _component_json(parsed.components[n]) for n in ordered},
    }
    return JobSpec(
        raw=normalized, name=name, initiator=initiator, roles=roles, job_parameters=job_parameters,
        job_args=job_args, components=parsed.components,
    )


def _component_json(component: ComponentDef) -> dict[str, Any]:
    return {
        "module": component.module,
        "input": component.input,
        "output": component.output,
        "params": component.params,
        "role_params": component.role_params,
        "roles": list(component.roles),
    }


def _parse_roles(value: Any, known_members: Collection[str] | None) -> dict[str, list[str]]:
    if value is None:
        raise _fail("role: missing; name the members per role, e.g. {\"promoter\": [\"<member id>\"]}")
    table = _object(value, "role")
    roles: dict[str, list[str]] = {role: [] for role in ROLES}
    for role, members in table.items():
        if role not in ROLES:
            raise _fail(f"role.{role}: unknown role (expected {', '.join(ROLES)})")
        ids = _string_list(members, f"role.{role}")
        for index, member in enumerate(ids):
            where = f"role.{role}[{index}]"
            if not MEMBER_ID_PATTERN.match(member):
                raise _fail(f"{where}: {member!r} is not a member id (32 lowercase hex characters)")
            if known_members is not None and member not in known_members:
                raise _fail(f"{where}: member {member} is unknown here (not this member and not a configured peer)")
        repeated = sorted({m for m in ids if ids.count(m) > 1})
        if repeated:
            raise _fail(f"role.{role}: member {repeated[0]} is listed twice")
        roles[role] = ids
    if not roles["promoter"]:
        raise _fail("role.promoter: a job needs at least one promoter")
    return roles


def _parse_initiator(value: Any, roles: dict[str, list[str]]) -> Party:
    if value is None:
        raise _fail("initiator: missing; give {\"member_id\": \"<this member>\", \"role\": \"promoter\"}")
    initiator = _object(value, "initiator")
    member_id, role = initiator.get("member_id"), initiator.get("role")
    if not isinstance(member_id, str) or not MEMBER_ID_PATTERN.match(member_id):
        raise _fail(f"initiator.member_id: expected a member id (32 lowercase hex characters), got {member_id!r}")
    if role not in ROLES:
        raise _fail(f"initiator.role: expected one of {', '.join(ROLES)}, got {role!r}")
    if member_id not in roles.get(str(role), []):
        raise _fail(f"initiator: member {member_id} is not a {role} in role.{role}")
    return Party(str(role), member_id)


def _parse_job_args(value: Any, roles: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    members = {m for ids in roles.values() for m in ids}
    parsed: dict[str, dict[str, Any]] = {}
    for member, args in _object(value, "job_args").items():
        where = f"job_args.{member}"
        if member not in members:
            raise _fail(
                f"role: member {member} is missing; job_args.{member} gives it data, but role names it under "
                f"no role (add it to role.provider, or to the role it plays)"
            )
        args = _object(args, where)
        extra = sorted(set(args) - {"data"})
        if extra:
            raise _fail(f"{where}: unknown key(s) {', '.join(map(repr, extra))} (allowed: 'data')")
        data = _object(args.get("data", {}), f"{where}.data")
        for arg, ref in data.items():
            entry = _object(ref, f"{where}.data.{arg}")
            for key in ("namespace", "name"):
                if key not in entry:
                    raise _fail(f"{where}.data.{arg}.{key}: missing")
                try:
                    check_name(entry[key], f"{where}.data.{arg}.{key}")
                except InvalidArgument as exc:
                    raise _fail(str(exc)) from None
        parsed[member] = {"data": data}
    return parsed


def _parse_components(value: Any, roles: dict[str, list[str]]) -> dict[str, ComponentDef]:
    if value is None:
        raise _fail("components: missing; a job needs at least one component")
    table = _object(value, "components")
    if not table:
        raise _fail("components: empty; a job needs at least one component")
    if len(table) > MAX_COMPONENTS:
        raise _fail(f"components: {len(table)} components; at most {MAX_COMPONENTS} are allowed")
    job_roles = [role for role in ROLES if roles.get(role)]
    return {name: _parse_component(name, body, table, job_roles) for name, body in table.items()}


def _parse_component(name: str, body: Any, table: dict[str, Any], job_roles: list[str]) -> ComponentDef:
    where = f"components.{name}"
    if not COMPONENT_NAME_PATTERN.match(name):
        raise _fail(f"{where}: bad component name; use a letter then letters, digits or '_' (at most 64)")
    body = _object(body, where)
    unknown = sorted(set(body) - COMPONENT_KEYS)
    if unknown:
        raise _fail(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {', '.join(sorted(COMPONENT_KEYS))})")
    module = body.get("module")
    if not isinstance(module, str) or not module:
        raise _fail(f"{where}.module: missing; name the component's module, e.g. \"DataIO\"")
    try:
        registered = get_component(module)
    except WeftError as exc:
        raise _fail(f"{where}.module: {exc}") from None
    inputs = _parse_input(body.get("input", {}), where, name, table)
    output = _parse_output(body.get("output", {}), where, registered.data_outputs)
    params = _object(body.get("params", {}), f"{where}.params")
    runs_at = _parse_run_roles(body.get("roles"), where, registered, job_roles)
    role_params: dict[str, dict[str, Any]] = {}
    for role, values in _object(body.get("role_params", {}), f"{where}.role_params").items():
        rwhere = f"{where}.role_params.{role}"
        if role not in ROLES:
            raise _fail(f"{rwhere}: unknown role (expected {', '.join(ROLES)})")
        if role not in registered.roles:
            raise _fail(f"{rwhere}: module {module} does not support role {role} (supported: {', '.join(registered.roles)})")
        if role not in job_roles:
            raise _fail(f"role.{role}: missing; {rwhere} sets parameters for the {role}, but the job names no "
                        f"{role} (add its member id to role.{role})")
        if role not in runs_at:
            raise _fail(f"{rwhere}: {name} does not run at role {role} in this job (runs at: {', '.join(runs_at)})")
        role_params[role] = _object(values, rwhere)
    upstream: dict[str, None] = {}
    for _, ref in [(k, r) for k, refs in inputs.get("data", {}).items() for r in refs]:
        source = ref.split(".", 1)[0]
        if source != ARGS_SOURCE:
            upstream.setdefault(source, None)
    for ref in inputs.get("model", []):
        upstream.setdefault(ref.split(".", 1)[0], None)
    return ComponentDef(name, module, inputs, output, params, role_params, runs_at, tuple(upstream))


def _parse_input(value: Any, where: str, name: str, table: dict[str, Any]) -> dict[str, Any]:
    inputs = _object(value, f"{where}.input")
    extra = sorted(set(inputs) - {"data", "model"})
    if extra:
        raise _fail(f"{where}.input: unknown input kind(s) {', '.join(map(repr, extra))} (expected data, model)")
    parsed: dict[str, Any] = {}
    if "data" in inputs:
        data = _object(inputs["data"], f"{where}.input.data")
        for key, refs in data.items():
            kwhere = f"{where}.input.data.{key}"
            if key not in DATA_KEYS:
                raise _fail(f"{kwhere}: unknown data input (expected one of {', '.join(DATA_KEYS)})")
            refs = _string_list(refs, kwhere)
            for index, ref in enumerate(refs):
                _check_ref(ref, f"{kwhere}[{index}]", name, table, allow_args=True)
        parsed["data"] = {key: list(refs) for key, refs in data.items()}
    if "model" in inputs:
        refs = _string_list(inputs["model"], f"{where}.input.model")
        for index, ref in enumerate(refs):
            _check_ref(ref, f"{where}.input.model[{index}]", name, table, allow_args=False)
        parsed["model"] = refs
    return parsed


def _check_ref(ref: str, where: str, name: str, table: dict[str, Any], *, allow_args: bool) -> None:
    source, dot, output = ref.partition(".")
    if not dot or not source or not output:
        expected = "'args.<name>' or '<component>.<output>'" if allow_args else "'<component>.<model output>'"
        raise _fail(f"{where}: {ref!r} is not a reference; expected {expected}")
    if source == ARGS_SOURCE:
        if not allow_args:
            raise _fail(f"{where}: {ref!r}: a model input must come from a component, not args")
        return
    if source == name:
        raise _fail(f"{where}: {ref!r}: component {name} cannot read its own output")
    if source not in table:
        raise _fail(f"{where}: {ref!r}: upstream component {source!r} is not in components")


def _parse_output(value: Any, where: str, data_outputs: int = 1) -> dict[str, list[str]]:
    output = _object(value, f"{where}.output")
    parsed: dict[str, list[str]] = {}
    for kind, names in output.items():
        kwhere = f"{where}.output.{kind}"
        if kind not in ("data", "model"):
            raise _fail(f"{kwhere}: unknown output kind (expected data, model)")
        names = _string_list(names, kwhere)
        limit = data_outputs if kind == "data" else 1
        if len(names) > limit:
            most = "one" if limit == 1 else f"at most {limit}"
            raise _fail(f"{kwhere}: this component writes {most} {kind} output(s); got {len(names)} names")
        for out in names:
            if not OUTPUT_NAME_PATTERN.match(out):
                raise _fail(f"{kwhere}: bad output name {out!r}; use letters, digits, '_' or '-'")
        parsed[kind] = names
    return parsed


def _parse_run_roles(value: Any, where: str, registered: ComponentSpec, job_roles: list[str]) -> tuple[str, ...]:
    if value is None:
        runs_at = tuple(role for role in job_roles if role in registered.roles)
        if not runs_at:
            raise _fail(
                f"role: missing a role for {where}; module {registered.module} runs at "
                f"{', '.join(registered.roles)} and the job has only {', '.join(job_roles)}"
            )
        return runs_at
    requested = _string_list(value, f"{where}.roles")
    if not requested:
        raise _fail(f"{where}.roles: empty; leave it out to run at every supported role")
    for role in requested:
        if role not in ROLES:
            raise _fail(f"{where}.roles: unknown role {role!r} (expected {', '.join(ROLES)})")
        if role not in registered.roles:
            raise _fail(
                f"{where}.roles: module {registered.module} does not support role {role} "
                f"(supported: {', '.join(registered.roles)})"
            )
        if role not in job_roles:
            raise _fail(f"role.{role}: missing; {where}.roles runs the component at the {role}, but the job names "
                        f"no {role} (add its member id to role.{role})")
    return tuple(role for role in ROLES if role in requested)


def _topological_order(components: dict[str, ComponentDef]) -> list[str]:
    """Kahn's order (stable: spec order among ready components); a cycle is refused."""
    remaining = {name: set(c.upstream) for name, c in components.items()}
    order: list[str] = []
    while remaining:
        ready = [name for name, ups in remaining.items() if not ups]
        if not ready:
            raise _fail(f"components: cycle {' -> '.join(_find_cycle(remaining))}")
        for name in ready:
            order.append(name)
            del remaining[name]
        for ups in remaining.values():
            ups.difference_update(ready)
    return order


def _find_cycle(graph: dict[str, set[str]]) -> list[str]:
    start = next(iter(graph))
    path: list[str] = [start]
    seen = {start: 0}
    node = start
    while True:
        node = sorted(graph[node])[0]
        if node in seen:
            cycle = path[seen[node]:] + [node]
            return list(reversed(cycle))  # upstream first: a -> b means b reads a
        seen[node] = len(path)
        path.append(node)


def _check_outputs_and_args(spec: JobSpec) -> None:
    for component in spec.components.values():
        where = f"components.{component.name}"
        for key, ref in component.data_refs():
            source, _, name = ref.partition(".")
            if source == ARGS_SOURCE:
                _check_args_ref(spec, component, key, name)
                continue
            declared = spec.components[source].output.get("data", [])
            if name not in declared:
                raise _fail(
                    f"{where}.input.data.{key}: {ref!r}: {source} has no data output {name!r} "
                    f"(its output.data: {declared or 'none'})"
                )
        for index, ref in enumerate(component.input.get("model", [])):
            source, _, name = ref.partition(".")
            declared = spec.components[source].output.get("model", [])
            if name not in declared:
                raise _fail(
                    f"{where}.input.model[{index}]: {ref!r}: {source} has no model output {name!r} "
                    f"(its output.model: {declared or 'none'})"
                )


def _check_args_ref(spec: JobSpec, component: ComponentDef, key: str, arg: str) -> None:
    for party in spec.task_parties(component.name):
        program = get_component(component.module).program_class(party.role)
        if not program.needs_data:
            continue
        data = spec.job_args.get(party.member_id, {}).get("data", {})
        if arg not in data:
            raise _fail(
                f"job_args.{party.member_id}.data.{arg}: missing; components.{component.name}."
                f"input.data.{key} reads args.{arg} at {party.role} {party.member_id}"
            )


def component_params(spec: JobSpec, component: ComponentDef, role: str) -> BaseParam:
    """The component's parameters at one role, built and checked as the task will."""
    registered = get_component(component.module)
    try:
        return build_param(registered.param_class(), registered.default_runtime, component.params,
                           component.role_params.get(role))
    except ParamError as exc:
        layer = "role_params." + role if role in component.role_params else "params"
        raise _fail(f"components.{component.name}.{layer}: {exc}") from None


def _check_params_and_rules(spec: JobSpec) -> None:
    for component in spec.components.values():
        registered = get_component(component.module)
        try:
            build_param(registered.param_class(), registered.default_runtime, component.params)
        except ParamError as exc:
            raise _fail(f"components.{component.name}.params: {exc}") from None
        kinds = {key for key, refs in component.input.get("data", {}).items() if refs}
        has_model = bool(component.input.get("model"))
        for role in component.roles:
            params = component_params(spec, component, role)
            program = registered.program_class(role)
            if not program.needs_data:
                continue
            cv = getattr(params, "cv_param", None)
            try:
                select_rule(kinds, has_model, bool(getattr(cv, "need_cv", False)), program.is_estimator)
            except WeftError as exc:
                raise _fail(f"components.{component.name}.input: {exc} (module {component.module}, role {role})") from None


def _check_runtime_confs(spec: JobSpec) -> None:
    """Every task's conf must pass the task's own parser: catches bad job_parameters early."""
    for component in spec.components.values():
        for party in spec.task_parties(component.name):
            conf = build_runtime_conf(spec, component.name, party, job_id="check", session_id="check")
            try:
                parse_runtime_conf(conf)
            except WeftError as exc:
                raise _fail(f"{exc}") from None
            return  # job-level keys are the same for every task; one check covers them


def spec_from_stored(raw: dict[str, Any], local_member_id: str) -> JobSpec:
    """Rebuild a JobSpec from the normalized JSON a member stored (already validated)."""
    return parse_job_spec(raw, local_member_id=local_member_id, require_local_initiator=False)
