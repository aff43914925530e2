"""What one member's part of a published model is: its model output, its preprocessing chain, its feature table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from kernel.tracker import MODEL_FILE
from services.common.db.constants import STATUS_FAILED, STATUS_STOPPED, STATUS_SUCCESS
from services.common.db.records import JobRecord
from services.serving.constants import (
    PREPROCESSING_MODULES,
    ROW_SELECTING_MODULES,
    SERVABLE_MODULES,
    TRAINING_INPUTS,
)
from services.serving.registry import ChainStep, ModelPart

#: Roles that hold a part of a served model (an arbiter holds none).
MODEL_ROLES = ("promoter", "provider")


def model_role(job: JobRecord) -> str | None:
    """This member's role in the model: promoter, provider, or None (an arbiter only)."""
    for role in MODEL_ROLES:
        if role in job.my_roles:
            return role
    return None


def model_members(spec: dict[str, Any]) -> list[tuple[str, str]]:
    roles = spec.get("role", {})
    return [(role, str(member)) for role in MODEL_ROLES for member in roles.get(role, []) or []]


def latest_model_dir(storage_root: Path, job_id: str, component: str, role: str, member_id: str) -> Path:
    """The newest model version the component exported at this member (pinned at publish)."""
    base = storage_root / "models" / job_id / component / role / member_id
    versions = sorted((int(p.name[1:]), p) for p in base.glob("v*") if p.name[1:].isdigit())
    if not versions or not (versions[-1][1] / MODEL_FILE).exists():
        raise NotFound(f"job {job_id}: {component} exported no model for {role} {member_id} at this member")
    return versions[-1][1]


def _component(spec: dict[str, Any], name: str) -> dict[str, Any]:
    components = spec.get("components", {})
    if name not in components:
        raise NotFound(f"component {name!r} is not in the job (components: {', '.join(sorted(components))})")
    value = components[name]
    if not isinstance(value, dict):
        raise InvalidArgument(f"component {name!r} of the job is malformed")
    return value


def _training_ref(component: dict[str, Any], name: str) -> str:
    data = component.get("input", {}).get("data", {})
    for key in TRAINING_INPUTS:
        refs = data.get(key)
        if refs:
            if len(refs) != 1:
                raise InvalidArgument(f"{name}: input {key} has {len(refs)} sources; serving follows one")
            return str(refs[0])
    raise InvalidArgument(f"{name}: no {' or '.join(TRAINING_INPUTS)} input to follow upstream")


def _fitted_by(component: dict[str, Any], name: str) -> str:
    """The component whose exported model a preprocessing step applies.

    A component that exports a model applies that one (WOE exports its own tables, though
    it reads a VertFeatureBinning model); one that only reads a model (the test branch of a
    job, `input.model: ["fill_missing_0.model"]`) applies the model it reads."""
    if component.get("output", {}).get("model"):
        return name
    model_refs = component.get("input", {}).get("model", []) or []
    return str(model_refs[0]).partition(".")[0] if model_refs else name


def _params(component: dict[str, Any], role: str) -> dict[str, Any]:
    params = dict(component.get("params", {}) or {})
    params.update((component.get("role_params", {}) or {}).get(role, {}) or {})
    return params


def build_part(job: JobRecord, component_name: str, name: str, version: int, deadline_ms: int,
               storage_root: Path, initiator: bool = True) -> ModelPart | None:
    """This member's part of `component_name` of `job` (None when the member holds no part).

    The initiator's job status is authoritative: it must be success. Another member may not
    have heard the final status yet when the promoter publishes, so there the job must only
    not have failed or stopped, and the component's model output must exist.
    """
    if (job.status != STATUS_SUCCESS) if initiator else (job.status in (STATUS_FAILED, STATUS_STOPPED)):
        raise FailedPrecondition(f"job {job.job_id} is {job.status}; only a job that succeeded can be published")
    spec = job.spec
    component = _component(spec, component_name)
    module = str(component.get("module", ""))
    if module not in SERVABLE_MODULES:
        raise InvalidArgument(f"{component_name} is a {module}; serving publishes {', '.join(sorted(SERVABLE_MODULES))}")
    role = model_role(job)
    if role is None:
        return None
    member = job.member_id
    chain: list[ChainStep] = []
    ref = _training_ref(component, component_name)
    feature_table = ""
    while True:
        source, _, output = ref.partition(".")
        if source == "args":
            data = (spec.get("job_args", {}).get(member, {}) or {}).get("data", {}) or {}
            entry = data.get(output)
            if not isinstance(entry, dict) or "namespace" not in entry or "name" not in entry:
                raise InvalidArgument(f"job_args of member {member}: data {output!r} is not a data set reference")
            feature_table = f"{entry['namespace']}/{entry['name']}"
            break
        upstream = _component(spec, source)
        upstream_module = str(upstream.get("module", ""))
        if upstream_module in PREPROCESSING_MODULES:
            path = latest_model_dir(storage_root, job.job_id, _fitted_by(upstream, source), role, member)
            chain.append(ChainStep(source, upstream_module, str(path)))
        elif upstream_module not in ROW_SELECTING_MODULES:
            raise InvalidArgument(
                f"{component_name}: upstream component {source} ({upstream_module}) cannot be applied online; "
                f"serving applies {', '.join(sorted(PREPROCESSING_MODULES))} and passes "
                f"{', '.join(sorted(ROW_SELECTING_MODULES))}")
        ref = _training_ref(upstream, source)
    chain.reverse()
    model_path = latest_model_dir(storage_root, job.job_id, component_name, role, member)
    return ModelPart(
        name=name, version=version, job_id=job.job_id, component=component_name, module=module, role=role,
        member_id=member, members=model_members(spec), chain=chain, model_path=str(model_path),
        feature_table=feature_table if role == "provider" else "", deadline_ms=deadline_ms,
        params=_params(component, role))
