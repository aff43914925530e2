"""The task tracker: status, progress, metrics, output data and exported models of one task."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from kernel.federation.base import Waiting
from kernel.federation.codec import decode, encode

# How often a task process tells its executor it is alive, and the variable that overrides it.
ENV_HEARTBEAT_INTERVAL: Final = "WEFT_HEARTBEAT_INTERVAL_S"
DEFAULT_HEARTBEAT_INTERVAL_S: Final = 5.0
# How long a task goes on without its executor (restarting) before it ends itself.
ENV_EXECUTOR_WAIT: Final = "WEFT_EXECUTOR_WAIT_S"

STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
PROGRESS_FILE = "progress.json"
OUTPUTS_FILE = "outputs.json"
MODEL_FILE = "model.wft"
MODEL_META_FILE = "model.json"


def _atomic_write(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(text, encoding="utf-8")
    os.replace(temp, path)


@dataclass(frozen=True)
class ModelLocation:
    """Where one exported model version sits in a member's storage."""

    path: Path
    version: int


class EventChannel:
    """The live line to the executor: JSON lines over a unix socket, plus a heartbeat thread.

    Sending never raises: the task's files are the durable record. A broken connection is
    retried on the next send at most once per `retry_interval` seconds, so a task re-attaches
    to an executor that restarted and bound the same socket path again.
    """

    def __init__(self, path: str, retry_interval: float = 1.0, orphan_after_s: float | None = None) -> None:
        """`orphan_after_s`: with a heartbeat running, a task that cannot reach its executor
        for this long kills its own process group (its executor is gone for good and nothing
        else would stop it)."""
        self.path = path
        self.retry_interval = retry_interval
        self.orphan_after_s = orphan_after_s
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._last_attempt = float("-inf")
        self._last_ok = time.monotonic()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        with self._lock:
            self._connect()

    def _connect(self) -> None:
        self._last_attempt = time.monotonic()
        candidate = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            candidate.connect(self.path)
        except OSError:
            candidate.close()
            return
        # A stalled executor must not stall the task: a blocked send gives up and reconnects later.
        candidate.settimeout(self.retry_interval * 5)
        self._socket = candidate
        self._last_ok = time.monotonic()

    def send(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, separators=(",", ":")) + "\n").encode()
        with self._lock:
            if self._socket is None and time.monotonic() - self._last_attempt >= self.retry_interval:
                self._connect()
            if self._socket is None:
                return
            try:
                self._socket.sendall(line)
                self._last_ok = time.monotonic()
            except OSError:
                self._socket.close()
                self._socket = None

    def start_heartbeat(self, interval: float) -> None:
        """Send `{"event": "heartbeat"}` every `interval` seconds from a daemon thread."""
        if self._heartbeat is not None:
            return
        self.retry_interval = min(self.retry_interval, interval)

        def beat() -> None:
            while True:
                self.send({"event": "heartbeat", "time": time.time()})
                self._end_if_orphaned()
                if self._stop.wait(interval):
                    return

        self._heartbeat = threading.Thread(target=beat, name="weft-heartbeat", daemon=True)
        self._heartbeat.start()

    def _end_if_orphaned(self) -> None:
        if self.orphan_after_s is None or self._socket is not None:
            return
        away = time.monotonic() - self._last_ok
        if away < self.orphan_after_s:
            return
        sys.stderr.write(f"weft task: no executor at {self.path} for {away:.0f} s "
                         f"({ENV_EXECUTOR_WAIT}={self.orphan_after_s:g}); ending this task\n")
        sys.stderr.flush()
        os.killpg(os.getpgrp(), signal.SIGKILL)

    def close(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=1.0)
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None


class Tracker:
    """Records what a task produces; the executor reads the files and the event socket.

    Every record goes to a file in the task directory (the durable copy) and, when the
    executor passed an event socket (a path or an open `EventChannel`), also as one JSON
    line to it (the live copy).
    """

    def __init__(
        self, task_dir: Path, model_root: Path, job_id: str, component: str, role: str,
        member_id: str, event_socket: str | EventChannel | None = None,
    ) -> None:
        from kernel.safe_text import check_path_name

        for value, field in ((job_id, "job_id"), (component, "component"), (role, "role"), (member_id, "member_id")):
            check_path_name(value, field)  # each becomes a folder under model_root
        self.task_dir = task_dir
        self.model_root = model_root
        self.job_id = job_id
        self.component = component
        self.role = role
        self.member_id = member_id
        self.task_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._last_progress: dict[str, Any] = {}
        if isinstance(event_socket, EventChannel):
            self._channel: EventChannel | None = event_socket
        else:
            self._channel = EventChannel(event_socket) if event_socket else None

    def _emit(self, event: dict[str, Any]) -> None:
        if self._channel is not None:
            self._channel.send(event)

    def set_status(self, status: str, error: str | None = None, **extra: Any) -> None:
        record = {"status": status, "error": error, "time": time.time(), **extra}
        _atomic_write(self.task_dir / STATUS_FILE, json.dumps(record))
        self._emit({"event": "status", **record})

    def set_progress(self, percent: float, message: str = "") -> None:
        record = {"percent": max(0.0, min(100.0, float(percent))), "message": message, "time": time.time()}
        self._last_progress = record
        _atomic_write(self.task_dir / PROGRESS_FILE, json.dumps(record))
        self._emit({"event": "progress", **record})

    def set_waiting(self, waiting: Waiting | None) -> None:
        """Report the blocking get the task is in (None: it is no longer waiting).

        Sent as a progress event carrying a `waiting` detail; only the live copy, no file.
        """
        last = self._last_progress
        self._emit({"event": "progress", "percent": last.get("percent", 0.0), "message": last.get("message", ""),
                    "time": time.time(), "waiting": waiting.to_dict() if waiting is not None else None})

    def log_metric(self, name: str, namespace: str, points: Any, metric_type: str = "") -> None:
        """Append one metric: `points` is a JSON-able value (a number, a dict, a list of points)."""
        record = {
            "name": name, "namespace": namespace, "type": metric_type,
            "points": points, "time": time.time(),
        }
        line = json.dumps(record, default=_jsonable)
        with self._lock, open(self.task_dir / METRICS_FILE, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")
        self._emit({"event": "metric", **json.loads(line)})

    def metrics(self) -> list[dict[str, Any]]:
        path = self.task_dir / METRICS_FILE
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def record_outputs(self, outputs: dict[str, Any]) -> None:
        _atomic_write(self.task_dir / OUTPUTS_FILE, json.dumps(outputs, default=_jsonable))
        self._emit({"event": "outputs", **outputs})

    def model_dir(self) -> Path:
        return self.model_root / self.job_id / self.component / self.role / self.member_id

    def save_model(self, model: dict[str, Any], name: str) -> ModelLocation:
        """Store a new version of this task's model, encoded with the typed codec."""
        base = self.model_dir()
        base.mkdir(parents=True, exist_ok=True)
        versions = [int(p.name[1:]) for p in base.glob("v*") if p.name[1:].isdigit()]
        version = max(versions, default=0) + 1
        staging = base / f".v{version}.{os.getpid()}.tmp"
        staging.mkdir()
        (staging / MODEL_FILE).write_bytes(encode(model))
        meta = {"name": name, "version": version, "job_id": self.job_id, "component": self.component,
                "role": self.role, "member_id": self.member_id, "time": time.time()}
        (staging / MODEL_META_FILE).write_text(json.dumps(meta), encoding="utf-8")
        final = base / f"v{version}"
        os.rename(staging, final)
        return ModelLocation(final, version)


def load_model(model_root: Path, job_id: str, component: str, role: str, member_id: str) -> dict[str, Any]:
    """The newest exported model of a component at this member and role."""
    from kernel.errors import NotFound

    base = model_root / job_id / component / role / member_id
    versions = sorted((int(p.name[1:]), p) for p in base.glob("v*") if p.name[1:].isdigit())
    if not versions:
        raise NotFound(f"no model exported by {component} of job {job_id} for {role} {member_id}")
    model = decode((versions[-1][1] / MODEL_FILE).read_bytes())
    if not isinstance(model, dict):
        raise NotFound(f"model of {component} in job {job_id} is not a model object")
    return model


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
