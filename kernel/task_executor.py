"""The task process: read a runtime conf, build the component, run it, persist its outputs.

    python -m kernel.task_executor -j JOB -n COMPONENT_NAME -t TASK_ID -r ROLE -m MEMBER_ID \
        -s FEDERATION_SESSION -c CONF.json [--storage-root DIR] [--spool-dir DIR] [--task-dir DIR]

Exit code 0 on success; otherwise non-zero, with the error written to the task's status
file and log as one line naming the problem.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.allocator import reuse_large_buffers
from kernel.base_param import BaseParam, build_param
from kernel.constants import (
    CONF_COMPONENT_ROLES,
    DEFAULT_GET_TIMEOUT_S,
    ENV_EVENT_SOCKET,
    ENV_GET_TIMEOUT,
    ENV_SPOOL_DIR,
    ENV_STORAGE_ROOT,
    ENV_TRANSFER_ENDPOINT,
    ROLES,
    WORK_MODE_CLUSTER,
)
from kernel.errors import ConfError, NotFound, WeftError
from kernel.federation.base import Federation, Party
from kernel.model_base import LabeledTable, TaskArgs, TaskContext, TaskOutputs, scratch_owner
from kernel.registry import ComponentSpec, get_component
from kernel.runtime_conf import RuntimeConf, output_namespace, parse_runtime_conf
from kernel.tracker import (
    DEFAULT_HEARTBEAT_INTERVAL_S,
    ENV_EXECUTOR_WAIT,
    ENV_HEARTBEAT_INTERVAL,
    EventChannel,
    Tracker,
    load_model,
)

log = logging.getLogger("weft.task")

STATUS_RUNNING = "running"
STATUS_SUCCESS = "success"
STATUS_FAILED = "failed"


@dataclass
class TaskOptions:
    """Where a task runs: ids from the command line, and this member's directories."""

    job_id: str
    component_name: str
    task_id: str
    role: str
    member_id: str
    session_id: str
    storage_root: Path
    spool_dir: Path | None = None
    task_dir: Path | None = None
    transfer_endpoint: str | None = None
    event_socket: str | None = None
    get_timeout: float = DEFAULT_GET_TIMEOUT_S
    event_channel: EventChannel | None = None

    def resolved_task_dir(self) -> Path:
        if self.task_dir is not None:
            return self.task_dir
        return self.storage_root / "tasks" / self.job_id / self.component_name / self.role / self.member_id


def build_params(spec: ComponentSpec, conf: RuntimeConf) -> BaseParam:
    """Param defaults <- default_runtime.json <- the conf's common params <- its role params."""
    role_params = conf.raw.get("role_params", {}) or {}
    if not isinstance(role_params, dict):
        raise ConfError("role_params: expected an object of role -> parameters")
    return build_param(spec.param_class(), spec.default_runtime, conf.params, role_params.get(conf.local.role))


def make_federation(conf: RuntimeConf, options: TaskOptions) -> Federation:
    local = Party(options.role, options.member_id)
    if conf.work_mode == WORK_MODE_CLUSTER:
        try:
            from kernel.federation.cluster import ClusterFederation
        except ImportError:
            raise ConfError("work_mode CLUSTER: the transfer-service federation is not installed") from None
        if not options.transfer_endpoint:
            raise ConfError(f"work_mode CLUSTER needs the transfer service endpoint ({ENV_TRANSFER_ENDPOINT})")
        return ClusterFederation(options.transfer_endpoint, options.session_id, local, conf.roles)
    from kernel.federation.standalone import StandaloneFederation

    spool = options.spool_dir or options.storage_root / "spool"
    return StandaloneFederation(spool, options.session_id, local, conf.roles)


def component_roles(conf: RuntimeConf) -> tuple[str, ...]:
    """The roles the component runs at in this job, as the scheduler wrote them (empty if absent)."""
    value = conf.raw.get(CONF_COMPONENT_ROLES)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(role in ROLES for role in value):
        raise ConfError(f"{CONF_COMPONENT_ROLES}: expected a list of roles ({', '.join(ROLES)}), got {value!r}")
    return tuple(value)


def resolve_inputs(conf: RuntimeConf, options: TaskOptions, ctx: TaskContext) -> TaskArgs:
    """Turn `args.<name>` and `<component>.<output>` references into tables and models."""
    args = TaskArgs()
    data_args = conf.job_args.get("data", {}) if isinstance(conf.job_args.get("data"), dict) else {}
    for key, refs in conf.input.get("data", {}).items():
        tables: list[LabeledTable] = []
        for ref in refs:
            source, _, name = ref.partition(".")
            if source == "args":
                if name not in data_args:
                    raise ConfError(f"input.data.{key}: {ref} is not in job_args.data")
                entry = data_args[name]
                if not isinstance(entry, dict) or "namespace" not in entry or "name" not in entry:
                    raise ConfError(f"job_args.data.{name}: expected {{'namespace': ..., 'name': ...}}")
                namespace, data_name = str(entry["namespace"]), str(entry["name"])
            else:
                namespace = output_namespace(options.job_id, options.role, options.member_id)
                data_name = ref
                produced = _upstream_outputs(options, source)
                if produced is not None and name not in produced.get("data", {}):
                    continue  # the upstream ran here and had no such data for this role: nothing to read
            if not ctx.storage.exists(namespace, data_name):
                where = "data set" if source == "args" else "upstream output"
                raise NotFound(f"input.data.{key}: {where} {ref} ({namespace}/{data_name}) not found")
            meta = ctx.storage.meta(namespace, data_name)
            table = ctx.storage.read(ctx.computing, namespace, data_name)
            tables.append(LabeledTable.infer(table, meta.label_column))
        args.data[key] = tables
    model_job = str(conf.job_parameters.get("model_job_id") or options.job_id)
    model_root = options.storage_root / "models"
    for ref in conf.input.get("model", []):
        component, _, _ = ref.partition(".")
        args.models[component] = load_model(model_root, model_job, component, options.role, options.member_id)
    return args


def _outputs_index(options: TaskOptions, component: str) -> Path:
    return options.storage_root / "jobs" / options.job_id / options.role / options.member_id / f"{component}.outputs.json"


def _upstream_outputs(options: TaskOptions, component: str) -> dict[str, Any] | None:
    path = _outputs_index(options, component)
    if not path.exists():
        return None
    loaded = json.loads(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


def persist_outputs(conf: RuntimeConf, options: TaskOptions, ctx: TaskContext, outputs: TaskOutputs) -> dict[str, Any]:
    """Write the data output and the model; returns what was written, for outputs.json."""
    record: dict[str, Any] = {"data": {}, "model": {}}
    data_names = conf.output.get("data", [])
    namespace = output_namespace(options.job_id, options.role, options.member_id)
    for output_name, data in zip(data_names, [outputs.data, *outputs.more_data], strict=False):
        if data is None:
            continue
        name = f"{options.component_name}.{output_name}"
        meta = ctx.storage.write_table(namespace, name, data.table, data.id_column, data.label_column)
        record["data"][output_name] = {"namespace": namespace, "name": name, "rows": meta.rows}
    model_names = conf.output.get("model", [])
    if outputs.model is not None and model_names:
        location = ctx.tracker.save_model(outputs.model, model_names[0])
        record["model"][model_names[0]] = {"path": str(location.path), "version": location.version}
    index = _outputs_index(options, options.component_name)
    index.parent.mkdir(parents=True, exist_ok=True)
    temp = index.with_name(f".{index.name}.tmp")
    temp.write_text(json.dumps(record), encoding="utf-8")
    os.replace(temp, index)
    return record


def execute_task(
    raw_conf: dict[str, Any], options: TaskOptions, federation: Federation | None = None,
    computing: Any = None,
) -> dict[str, Any]:
    """Run one task to completion; raises a WeftError (or a bug's exception) on failure.

    `federation` and `computing` may be handed in (the in-process tests do); otherwise they
    are built from the conf's work_mode and backend.
    """
    from kernel.computing import session_for_backend
    from kernel.storage import DataStore

    conf = parse_runtime_conf(raw_conf)
    if conf.local != Party(options.role, options.member_id):
        raise ConfError(f"local: conf says {conf.local}, the command line says {options.role}:{options.member_id}")
    spec = get_component(conf.module)
    program = spec.program_class(options.role)
    params = build_params(spec, conf)
    tracker = Tracker(
        options.resolved_task_dir(), options.storage_root / "models", options.job_id,
        options.component_name, options.role, options.member_id,
        options.event_channel or options.event_socket,
    )
    own_federation = federation is None
    own_computing = computing is None
    federation = federation or make_federation(conf, options)
    # Every blocking get is reported as it starts and ends (what the scheduler's diagnosis reads).
    federation.wait_listener = tracker.set_waiting
    try:
        computing = computing or session_for_backend(conf.backend)
        # "running" is sent once the runtime is up: from here on the component's own code runs.
        tracker.set_status(STATUS_RUNNING, pid=os.getpid(), spark_app_id=_spark_app_id())
        ctx = TaskContext(
            job_id=options.job_id, task_id=options.task_id, component_name=options.component_name,
            module=conf.module, local=Party(options.role, options.member_id), roles=conf.roles,
            federation=federation, computing=computing, storage=DataStore(str(options.storage_root / "data")),
            tracker=tracker, get_timeout=options.get_timeout, component_roles=component_roles(conf),
        )
        args = resolve_inputs(conf, options, ctx) if program.needs_data else TaskArgs()
        component = program(ctx, spec.transfer_variables)
        outputs = component.run(params, args)
        record = persist_outputs(conf, options, ctx, outputs)
        tracker.record_outputs(record)
        tracker.set_progress(100.0, "done")
        tracker.set_status(STATUS_SUCCESS)
        return record
    except BaseException as exc:
        tracker.set_status(STATUS_FAILED, error=_spark_failure() or _one_line(exc))
        raise
    finally:
        DataStore(str(options.storage_root / "data")).scratch(
            scratch_owner(options.task_id, Party(options.role, options.member_id))).remove()
        if own_federation:
            federation.close()
        if own_computing and computing is not None:
            computing.stop()


def _spark_app_id() -> str | None:
    """The application id of this process's SparkContext, if Spark is in use."""
    if "pyspark" not in sys.modules:
        return None
    from pyspark import SparkContext

    active = SparkContext._active_spark_context
    return str(active.applicationId) if active is not None else None


def _spark_failure() -> str | None:
    """Why the Spark watch cancelled this task's work on a cluster, if it did."""
    if "pyspark" not in sys.modules:
        return None
    from kernel.computing.spark_watch import failure

    return failure()


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, WeftError):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, TaskOptions]:
    parser = argparse.ArgumentParser(prog="python -m kernel.task_executor", description=__doc__.splitlines()[0])
    parser.add_argument("-j", "--job-id", required=True)
    parser.add_argument("-n", "--component-name", required=True)
    parser.add_argument("-t", "--task-id", required=True)
    parser.add_argument("-r", "--role", required=True)
    parser.add_argument("-m", "--member-id", required=True)
    parser.add_argument("-s", "--session-id", required=True, help="federation session id")
    parser.add_argument("-c", "--conf", required=True, help="path of the task runtime conf (JSON)")
    parser.add_argument("--storage-root", default=os.environ.get(ENV_STORAGE_ROOT))
    parser.add_argument("--spool-dir", default=os.environ.get(ENV_SPOOL_DIR))
    parser.add_argument("--task-dir", default=None)
    parser.add_argument("--transfer-endpoint", default=os.environ.get(ENV_TRANSFER_ENDPOINT))
    ns = parser.parse_args(argv)
    if not ns.storage_root:
        parser.error(f"--storage-root (or {ENV_STORAGE_ROOT}) is required")
    options = TaskOptions(
        job_id=ns.job_id, component_name=ns.component_name, task_id=ns.task_id, role=ns.role,
        member_id=ns.member_id, session_id=ns.session_id, storage_root=Path(ns.storage_root),
        spool_dir=Path(ns.spool_dir) if ns.spool_dir else None,
        task_dir=Path(ns.task_dir) if ns.task_dir else None,
        transfer_endpoint=ns.transfer_endpoint, event_socket=os.environ.get(ENV_EVENT_SOCKET),
        get_timeout=float(os.environ.get(ENV_GET_TIMEOUT, DEFAULT_GET_TIMEOUT_S)),
    )
    return ns, options


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ns, options = parse_args(argv)
    reuse_large_buffers()  # federation chunks reuse freed buffers (kernel/allocator.py)
    task_dir = options.resolved_task_dir()
    if options.event_socket:
        # Heartbeats prove the process is alive to the executor until main returns.
        options.event_channel = EventChannel(options.event_socket, orphan_after_s=_executor_wait())
        options.event_channel.start_heartbeat(_heartbeat_interval())
    try:
        return _run(ns, options, task_dir)
    finally:
        if options.event_channel is not None:
            options.event_channel.close()


def _executor_wait() -> float | None:
    """How long the task goes on without its executor (None: forever), from the executor."""
    raw = os.environ.get(ENV_EXECUTOR_WAIT, "")
    try:
        value = float(raw) if raw else 0.0
    except ValueError:
        return None
    return value if value > 0 else None


def _heartbeat_interval() -> float:
    raw = os.environ.get(ENV_HEARTBEAT_INTERVAL, "")
    try:
        interval = float(raw) if raw else DEFAULT_HEARTBEAT_INTERVAL_S
    except ValueError:
        interval = -1.0
    if interval <= 0:
        log.warning("%s=%r is not a positive number of seconds; using %s",
                    ENV_HEARTBEAT_INTERVAL, raw, DEFAULT_HEARTBEAT_INTERVAL_S)
        return DEFAULT_HEARTBEAT_INTERVAL_S
    return interval


def _run(ns: argparse.Namespace, options: TaskOptions, task_dir: Path) -> int:
    try:
        try:
            with open(ns.conf, encoding="utf-8") as handle:
                raw_conf = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfError(f"cannot read runtime conf {ns.conf}: {exc}") from None
        record = execute_task(raw_conf, options)
    except WeftError as exc:
        _write_failure(task_dir, exc)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: keep the traceback in the log, one line in the status
        _write_failure(task_dir, exc)
        traceback.print_exc()
        print(f"error: {_spark_failure() or _one_line(exc)}", file=sys.stderr)
        return 1
    log.info("task %s succeeded: %s", options.task_id, json.dumps(record))
    return 0


def _write_failure(task_dir: Path, exc: BaseException) -> None:
    """Record the failure even when it happened before the tracker existed."""
    status = task_dir / "status.json"
    try:
        current = json.loads(status.read_text()) if status.exists() else {}
    except (OSError, json.JSONDecodeError):
        current = {}
    if current.get("status") == STATUS_FAILED:
        return
    task_dir.mkdir(parents=True, exist_ok=True)
    import time

    temp = status.with_name(".status.json.tmp")
    temp.write_text(json.dumps({"status": STATUS_FAILED, "error": _one_line(exc), "time": time.time()}))
    os.replace(temp, status)


if __name__ == "__main__":
    sys.exit(main())
