"""Scheduler replies turned into what the pages show: a job's DAG, task rows, curves and models."""

from __future__ import annotations

import json
import time
from typing import Any

from protos.weft.v1 import scheduler_pb2, serving_pb2
from services.client.sdk import job_status_name, task_status_name

#: How a component's tasks add up to one colour in the DAG, first match wins.
_COMPONENT_STATES = ("failed", "running", "stopped", "waiting")


def _elapsed_s(started_ms: int, ended_ms: int) -> float | None:
    if not started_ms:
        return None
    end = ended_ms or int(time.time() * 1000)
    return max(0.0, (end - started_ms) / 1000.0)


def job_row(job: scheduler_pb2.JobInfo) -> dict[str, Any]:
    """One line of the jobs page."""
    return {
        "job_id": job.job_id, "name": job.name, "status": job_status_name(job.status),
        "progress": round(job.progress, 1), "initiator": job.initiator.member_id,
        "my_roles": list(job.my_roles), "created_at_ms": job.created_at_ms,
        "elapsed_s": _elapsed_s(job.started_at_ms, job.ended_at_ms), "message": job.message,
    }


def task_row(task: scheduler_pb2.JobTask, member_names: dict[str, str]) -> dict[str, Any]:
    member = task.key.party.member_id
    return {
        "component": task.key.component_name, "role": task.key.party.role, "member_id": member,
        "member": member_names.get(member, member[:8]), "module": task.module,
        "status": task_status_name(task.status), "attempt": task.attempt, "progress": round(task.progress, 1),
        "elapsed_s": _elapsed_s(task.started_at_ms, task.ended_at_ms), "error": task.error,
        "waiting": task.waiting,
    }


def _upstream(component: dict[str, Any]) -> list[str]:
    """Components this one reads from: every `<component>.<output>` of its inputs."""
    found: list[str] = []
    inputs = component.get("input") or {}
    for group in inputs.values():
        refs: list[Any] = []
        if isinstance(group, dict):
            for value in group.values():
                refs.extend(value if isinstance(value, list) else [value])
        elif isinstance(group, list):
            refs.extend(group)
        for ref in refs:
            source = str(ref).split(".", 1)[0]
            if source != "args" and source not in found:
                found.append(source)
    return found


def component_state(statuses: list[str]) -> str:
    if not statuses:
        return "waiting"
    if all(s == "success" for s in statuses):
        return "success"
    for state in _COMPONENT_STATES:
        if state in statuses:
            return state
    return statuses[0]


def dag(spec: dict[str, Any], tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Nodes (with the state of their tasks) and edges of the job's components, from the spec."""
    components: dict[str, Any] = spec.get("components") or {}
    nodes = []
    for name, component in components.items():
        statuses = [t["status"] for t in tasks if t["component"] == name]
        nodes.append({"id": name, "module": component.get("module", ""), "state": component_state(statuses)})
    edges = [{"source": source, "target": name}
             for name, component in components.items() for source in _upstream(component) if source in components]
    return {"nodes": nodes, "edges": edges}


def job_view(job: scheduler_pb2.JobInfo, member_names: dict[str, str]) -> dict[str, Any]:
    """The job page's data: the job, its tasks, its DAG."""
    spec = json.loads(job.spec_json or "{}")
    order = {name: index for index, name in enumerate(spec.get("components") or {})}
    tasks = sorted((task_row(t, member_names) for t in job.tasks),
                   key=lambda row: (order.get(row["component"], len(order)), row["role"], row["member"]))
    return {**job_row(job), "tasks": tasks, "dag": dag(spec, tasks),
            "parties": [{"role": p.role, "member_id": p.member_id,
                         "member": member_names.get(p.member_id, p.member_id[:8])} for p in job.parties]}


def component_params(spec: dict[str, Any], component: str, roles: list[str]) -> dict[str, Any]:
    """The component's parameters as the spec gives them, with each role's overrides."""
    entry = (spec.get("components") or {}).get(component) or {}
    role_params = entry.get("role_params") or {}
    return {"module": entry.get("module", ""), "params": entry.get("params") or {},
            "role_params": {role: role_params[role] for role in roles if role in role_params},
            "input": entry.get("input") or {}, "output": entry.get("output") or {}}


def metric_rows(tasks: list[scheduler_pb2.TaskMetrics]) -> list[dict[str, Any]]:
    rows = []
    for task in tasks:
        for metric in task.metrics:
            rows.append({"component": task.task.component_name, "role": task.task.party.role,
                         "namespace": metric.namespace, "name": metric.name, "type": metric.metric_type,
                         "points": json.loads(metric.points_json or "null")})
    return rows


def curves(job_id: str, job_name: str, tasks: list[scheduler_pb2.TaskMetrics]) -> dict[str, list[dict[str, Any]]]:
    """Loss per iteration, ROC, KS and lift of one job, each a series labelled for overlays."""
    found: dict[str, list[dict[str, Any]]] = {"loss": [], "roc": [], "ks": [], "lift": []}
    for row in metric_rows(tasks):
        label = f"{job_name or job_id} {row['component']}"
        points = row["points"]
        if row["name"] == "loss" and isinstance(points, list) and points:
            xy = [{"x": p[0], "y": p[1]} if isinstance(p, list) else {"x": i, "y": p} for i, p in enumerate(points)]
            found["loss"].append({"job_id": job_id, "component": row["component"], "label": label, "points": xy})
        if isinstance(points, dict) and isinstance(points.get("gain_table"), dict):
            gain = points["gain_table"]
            found["lift"].append({"job_id": job_id, "label": f"{label} {row['name']}", "points": [
                {"x": x, "y": y} for x, y in zip(gain.get("cumulative_rows_share") or [],
                                                 gain.get("cumulative_lift") or [], strict=False)]})
        if not isinstance(points, dict) or "roc_curve" not in points:
            continue
        label = f"{label} {row['name']}"
        roc = points["roc_curve"]
        found["roc"].append({"job_id": job_id, "label": f"{label} (AUC {points.get('auc', 0):.4f})",
                             "points": [{"x": x, "y": y} for x, y in zip(roc["fpr"], roc["tpr"], strict=False)]})
        ks = points.get("ks_curve")
        if isinstance(ks, dict):
            # the first threshold stands above every score (nothing predicted positive): not a score to plot
            ks_points = [{"x": t, "y": tp - fp} for t, tp, fp in zip(ks["thresholds"], ks["tpr"], ks["fpr"], strict=False)
                         if t is not None and t <= max(1.0, max((v for v in ks["thresholds"][1:] if v is not None),
                                                                 default=1.0))]
            found["ks"].append({"job_id": job_id, "label": f"{label} (KS {points.get('ks', 0):.4f})",
                                "points": ks_points})
    return found


def model_view(model: scheduler_pb2.ExportedModel) -> dict[str, Any]:
    """A model's weights per feature, its trees and feature importance, as far as it has them."""
    body = json.loads(model.model_json or "{}")
    features = [str(f) for f in body.get("features") or []]
    weights = body.get("weights")
    view: dict[str, Any] = {
        "component": model.task.component_name, "role": model.task.party.role, "module": model.module,
        "output_name": model.output_name, "version": model.version, "features": features,
        "weights": [], "importance": [], "trees": [], "splits": [], "intercept": body.get("intercept"),
    }
    if isinstance(weights, list) and len(weights) == len(features):
        view["weights"] = [{"feature": f, "weight": w} for f, w in zip(features, weights, strict=True)]
    importance = body.get("feature_importance")
    if isinstance(importance, dict):
        view["importance"] = sorted(({"feature": str(k), "value": v} for k, v in importance.items()),
                                    key=lambda item: -float(item["value"] or 0))
    trees = body.get("trees")
    if isinstance(trees, list):
        view["trees"] = trees
    if isinstance(body.get("split_ids"), list):
        view["splits"] = [{"id": i, "feature": f, "threshold": t} for i, f, t in zip(
            body["split_ids"], body.get("split_features") or [], body.get("split_thresholds") or [], strict=False)]
    view["raw"] = {k: v for k, v in body.items() if k not in ("trees",)}
    return view


def label_balance(summary: scheduler_pb2.DataSetSummary) -> list[dict[str, Any]]:
    """Rows per label value with their share, most frequent first."""
    total = sum(count.rows for count in summary.label_counts) or 1
    return [{"value": count.value or "(none)", "rows": count.rows, "share": count.rows / total}
            for count in summary.label_counts]


def data_set_row(info: scheduler_pb2.DataSetInfo) -> dict[str, Any]:
    return {"labels": [], "namespace": info.ref.namespace, "name": info.ref.name, "rows": info.row_count,
            "columns": [{"name": c.name, "type": c.type} for c in info.columns], "id_column": info.id_column,
            "label_column": info.label_column, "description": info.description, "created_at_ms": info.created_at_ms}


def link_health(link: scheduler_pb2.MemberLink) -> str:
    """One word on a link: refusals and retries first, then whether anything went over it yet."""
    if link.refused:
        return f"refused {link.refused} frame(s) or call(s)"
    if link.retries:
        return f"{link.retries} send(s) retried"
    if link.messages_in or link.messages_out:
        return "ok"
    return "no traffic yet"


def members_view(reply: scheduler_pb2.GetMembersResponse) -> dict[str, Any]:
    """The members page: this member, its certificate's expiry, its peers and their links."""
    expiry = ""
    if reply.certificate_not_after_ms:
        days = (reply.certificate_not_after_ms / 1000 - time.time()) / 86_400
        expiry = f"{time.strftime('%Y-%m-%d', time.gmtime(reply.certificate_not_after_ms / 1000))} ({days:.0f} days left)"
    return {
        "member_id": reply.member_id, "name": reply.name, "certificate": expiry or "no certificate",
        "transfer_error": reply.transfer_error,
        "peers": [{"member_id": p.member_id, "name": p.name, "endpoint": p.endpoint, "health": link_health(p),
                   "messages_out": p.messages_out, "messages_in": p.messages_in, "bytes_out": p.bytes_out,
                   "bytes_in": p.bytes_in, "retries": p.retries, "refused": p.refused} for p in reply.peers],
    }


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value


def job_summary(job: scheduler_pb2.JobInfo, tasks: list[scheduler_pb2.TaskMetrics]) -> dict[str, Any]:
    """One row of the comparison table: the job's outcome and its headline metrics."""
    scores: dict[str, Any] = {}
    for row in metric_rows(tasks):
        points = row["points"]
        if row["name"] == "loss" and isinstance(points, list) and points:
            last = points[-1]
            scores[f"{row['component']} final loss"] = last[1] if isinstance(last, list) else last
            scores[f"{row['component']} iterations"] = len(points)
        elif isinstance(points, dict):
            for key in ("auc", "ks", "accuracy", "precision", "recall", "f1", "psi"):
                if isinstance(points.get(key), int | float):
                    scores[f"{row['component']} {row['name']} {key}"] = points[key]
    return {**job_row(job), "scores": scores}


def parameter_differences(specs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The settings (job parameters, components, their params) that are not the same in every job."""
    flat: dict[str, dict[str, Any]] = {}
    for job_id, spec in specs.items():
        values: dict[str, Any] = {}
        _flatten({"job_parameters": spec.get("job_parameters") or {},
                  "components": {name: {k: c.get(k) for k in ("module", "params", "role_params") if c.get(k)}
                                 for name, c in (spec.get("components") or {}).items()}}, "", values)
        flat[job_id] = values
    keys = sorted({key for values in flat.values() for key in values})
    rows = []
    for key in keys:
        seen = {job_id: flat[job_id].get(key) for job_id in specs}
        if len({json.dumps(v, sort_keys=True) for v in seen.values()}) > 1:
            rows.append({"setting": key, "values": seen})
    return rows


def event_line(event: scheduler_pb2.JobEvent, component: str, member_names: dict[str, str]) -> dict[str, Any] | None:
    """A WatchJob event as one line of a task page's live events, or None when it is about another task."""
    kind = event.WhichOneof("event")
    if kind == "job_status":
        text = f"job {job_status_name(event.job_status.status)}"
        if event.job_status.message:
            text += f": {event.job_status.message}"
        return {"time_ms": event.timestamp_ms, "who": "job", "text": text}
    if kind not in ("task_progress", "task_status"):
        return None
    key = event.task_progress.task if kind == "task_progress" else event.task_status.task
    if key.component_name != component:
        return None
    who = f"{member_names.get(key.party.member_id, key.party.member_id[:8])} ({key.party.role})"
    if kind == "task_progress":
        progress = event.task_progress
        return {"time_ms": event.timestamp_ms, "who": who,
                "text": f"{progress.percent:.0f}%" + (f" {progress.message}" if progress.message else "")}
    status = event.task_status
    text = f"{task_status_name(status.status)} (attempt {status.attempt})" + (f": {status.error}" if status.error else "")
    return {"time_ms": event.timestamp_ms, "who": who, "text": text}


def serving_view(models: list[serving_pb2.ServingModel], member_names: dict[str, str]) -> list[dict[str, Any]]:
    """The published models by name, each with its versions (newest first) and the current one."""
    by_name: dict[str, list[serving_pb2.ServingModel]] = {}
    for model in models:
        by_name.setdefault(model.name, []).append(model)
    rows = []
    for name in sorted(by_name):
        versions = sorted(by_name[name], key=lambda m: -m.version)
        current = next((m.version for m in versions if m.current), 0)
        rows.append({"name": name, "current_version": current, "versions": [{
            "version": m.version, "current": m.current, "job_id": m.job_id, "component": m.component,
            "module": m.module, "role": m.role, "chain": list(m.chain),
            "members": [_member_label(entry, member_names) for entry in m.members],
            "feature_table": m.feature_table, "published_ms": m.published_ms, "deadline_ms": m.deadline_ms,
            "fallback_score": m.fallback_score if m.HasField("fallback_score") else None,
        } for m in versions]})
    return rows


def _member_label(entry: str, member_names: dict[str, str]) -> str:
    """"role:member_id" as "role name" (the id when the member is not a known peer)."""
    role, _, member_id = entry.partition(":")
    return f"{role} {member_names.get(member_id, member_id)}"
