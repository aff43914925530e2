"""The data a job's tasks will read at this member, checked at submit against the stored data sets.

A feature column that holds text, or a label that a binary learner cannot take, would
otherwise be found only when DataIO or the learner runs, minutes into the job. Each
member checks its own data sets when the job is submitted or created there and names
the data set, the column and a few of the offending values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from kernel.base_param import BaseParam
from kernel.storage import DataSetMeta, DataStore
from services.scheduler.constants import ARGS_SOURCE
from services.scheduler.spec import ComponentDef, JobSpec, SpecError
from services.scheduler.spec_parser import component_params

#: How many offending values a message quotes.
EXAMPLES = 5
#: The module that turns a raw data set into features (its params pick the label and the columns).
DATAIO_MODULE = "DataIO"


def check_job_data(spec: JobSpec, me: str, store: DataStore) -> None:
    """Raise SpecError when a task at member `me` would read a column it cannot use."""
    for component in spec.components.values():
        for party in spec.task_parties(component.name):
            if party.member_id != me:
                continue
            for key, ref in component.data_refs():
                source, _, arg = ref.partition(".")
                entry = spec.job_args.get(me, {}).get("data", {}).get(arg) if source == ARGS_SOURCE else None
                if entry is None or not store.exists(entry["namespace"], entry["name"]):
                    continue  # not a data set of this member (or missing: reported elsewhere)
                meta = store.meta(entry["namespace"], entry["name"])
                where = f"components.{component.name}.input.data.{key} ({ref} = data set {meta.namespace}/{meta.name} " \
                        f"at {party.role} {me})"
                _check_component(spec, component, party.role, meta, store, where)


def _check_component(spec: JobSpec, component: ComponentDef, role: str, meta: DataSetMeta, store: DataStore,
                     where: str) -> None:
    params = component_params(spec, component, role)
    if component.module == DATAIO_MODULE:
        params = _fitted_by(spec, component, role) or params
        label, features = _dataio_columns(params, meta, where)
    elif params.label_values() is not None:
        label, features = meta.label_column, meta.feature_names  # a learner reading the data set as stored
    else:
        return
    _check_numeric(meta, features, store, where)
    wanted = _label_values_downstream(spec, component, role)
    if label is not None and wanted is not None:
        _check_labels(meta, label, wanted, store, where)


def _fitted_by(spec: JobSpec, component: ComponentDef, role: str) -> BaseParam | None:
    """A DataIO given a model applies the layout its upstream DataIO learned: that one's parameters."""
    for ref in component.input.get("model", []):
        upstream = spec.components[ref.partition(".")[0]]
        if upstream.module == DATAIO_MODULE and role in upstream.roles:
            return _fitted_by(spec, upstream, role) or component_params(spec, upstream, role)
    return None


def _dataio_columns(params: BaseParam, meta: DataSetMeta, where: str) -> tuple[str | None, list[str]]:
    values: dict[str, Any] = params.model_dump()
    names = meta.column_names
    label = str(values["label_name"]) if values.get("with_label") else None
    if label is not None and label not in names:
        label = None  # DataIO itself says the column is missing, naming the member, when it runs
    features = [c for c in names if c not in (meta.id_column, meta.label_column, label)]
    included = values.get("include_features")
    if included is not None:
        features = [c for c in included if c in features]
    excluded = set(values.get("exclude_features") or [])
    return label, [c for c in features if c not in excluded]


def _label_values_downstream(spec: JobSpec, component: ComponentDef, role: str) -> tuple[int, ...] | None:
    """The label values the component or any component reading from it (at `role`) insists on."""
    for name in spec.downstream([component.name]):
        downstream = spec.components[name]
        if role not in downstream.roles:
            continue
        wanted = component_params(spec, downstream, role).label_values()
        if wanted is not None:
            return wanted
    return None


def _column(store: DataStore, meta: DataSetMeta, column: str) -> pa.ChunkedArray:
    return store.read_columns(meta.namespace, meta.name, [column]).column(column)


def _quote(counts: Iterable[tuple[Any, int]]) -> str:
    return ", ".join(f"{value!r} ({count} row{'s' if count != 1 else ''})" for value, count in counts)


def _is_numeric(kind: pa.DataType) -> bool:
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
                or pa.types.is_null(kind))


def _check_numeric(meta: DataSetMeta, features: list[str], store: DataStore, where: str) -> None:
    types = {field["name"]: field["type"] for field in meta.schema}
    for name in features:
        try:
            kind = pa.type_for_alias(types[name])
        except (KeyError, ValueError):
            kind = pa.string()
        if _is_numeric(kind):
            continue
        values = _column(store, meta, name)
        counts = pc.value_counts(values.cast(pa.string()) if not pa.types.is_string(values.type) else values)
        bad = [(v, c) for v, c in zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(),
                                      strict=True) if v is not None and not _parses_as_number(v)]
        bad.sort(key=lambda pair: -pair[1])
        raise SpecError(
            f"{where}: feature column {name!r} is not numeric ({len(bad)} distinct non-numeric value(s), e.g. "
            f"{_quote(bad[:EXAMPLES])}); fix the file and upload it again, or leave the column out with "
            "DataIO's exclude_features"
        )


def _parses_as_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _check_labels(meta: DataSetMeta, label: str, wanted: tuple[int, ...], store: DataStore, where: str) -> None:
    values = _column(store, meta, label)
    counts = pc.value_counts(values)
    pairs = list(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True))
    allowed = set(wanted)
    bad = [(v, c) for v, c in pairs if v is None or isinstance(v, str) or v not in allowed]
    if bad:
        bad.sort(key=lambda pair: -pair[1])
        raise SpecError(
            f"{where}: label column {label!r} must hold only {' and '.join(map(str, wanted))} for this job's "
            f"binary learner; it also holds {_quote(bad[:EXAMPLES])}"
            + (f" and {len(bad) - EXAMPLES} more value(s)" if len(bad) > EXAMPLES else "")
        )

