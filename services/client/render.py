"""How the command line shows jobs: a live task view, result tables, and curve plots."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from protos.weft.v1 import common_pb2, scheduler_pb2
from services.client.sdk import job_status_name, task_status_name

FINAL_JOB = (common_pb2.JOB_STATUS_SUCCESS, common_pb2.JOB_STATUS_FAILED, common_pb2.JOB_STATUS_STOPPED)


#: Roles in the order a job's tasks are listed (as the scheduler lists them).
ROLE_ORDER = ("promoter", "provider", "arbiter")
RUNNING_TASK = "running"
ENDED_TASKS = ("success", "failed", "stopped")


def dag_ranks(spec_json: str) -> dict[str, int]:
    """Each component's place in the job's DAG: after every component whose output it reads.

    Ready components keep their spec order (the scheduler's order). An unreadable spec
    gives no ranks (tasks then keep the order they arrived in).
    """
    try:
        components = json.loads(spec_json or "{}").get("components", {})
        upstream = {name: _sources(c.get("input") or {}) & set(components) for name, c in components.items()}
    except (ValueError, AttributeError, TypeError):
        return {}
    ranks: dict[str, int] = {}
    while upstream:
        ready = [name for name, ups in upstream.items() if not ups - set(ranks)]
        if not ready:  # a cycle (the scheduler refuses those): list the rest in spec order
            ready = list(upstream)
        for name in ready:
            ranks[name] = len(ranks)
            del upstream[name]
    return ranks


def _sources(inputs: dict[str, Any]) -> set[str]:
    """The components an input section reads: `data` maps keys to references, `model` lists them."""
    data = inputs.get("data") or {}
    refs = [ref for values in data.values() for ref in values] + list(inputs.get("model") or [])
    return {ref.split(".", 1)[0] for ref in refs if isinstance(ref, str)}


def elapsed_text(seconds: float) -> str:
    """A task's elapsed time: "8.2 s", "3m 05s", "2h 04m"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m {int(seconds % 60):02d}s"
    return f"{int(seconds // 3600)}h {int(seconds % 3600 // 60):02d}m"


class JobView:
    """A live table of a job's tasks in DAG order, with a progress bar and the elapsed time of each;
    plain lines when not on a terminal."""

    def __init__(self, job_id: str, console: Console | None = None, clock: Callable[[], float] = time.time) -> None:
        self.job_id = job_id
        self.console = console or Console()
        self.clock = clock
        self.tasks: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.ranks: dict[str, int] = {}
        self.job_status = "waiting"
        self.job_progress = 0.0
        self.finished = False
        self.interactive = self.console.is_terminal and sys.stdout.isatty()
        self._live: Live | None = None

    def __enter__(self) -> JobView:
        if self.interactive:
            # The table is rebuilt at each refresh, so running tasks' elapsed times move on.
            self._live = Live(console=self.console, refresh_per_second=8, get_renderable=self.table)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.__exit__(kind, exc, tb)

    def _task(self, key: common_pb2.TaskKey) -> dict[str, Any]:
        ident = (key.component_name, key.party.role, key.party.member_id)
        return self.tasks.setdefault(ident, {"status": "waiting", "progress": 0.0, "error": "",
                                             "started_ms": 0, "ended_ms": 0})

    def _status(self, entry: dict[str, Any], status: str, at_ms: int) -> None:
        """A task's new status at `at_ms`: running starts its clock, an end stops it, waiting resets it."""
        if status == "waiting":
            entry.update(started_ms=0, ended_ms=0)
        elif status == RUNNING_TASK:
            entry.update(started_ms=entry["started_ms"] or at_ms, ended_ms=0)
        elif status in ENDED_TASKS and entry["started_ms"]:
            entry["ended_ms"] = entry["ended_ms"] or at_ms
        entry["status"] = status

    def elapsed(self, entry: dict[str, Any]) -> float | None:
        """Seconds from a task's start to its end (or to now while it runs); None before it starts."""
        if not entry["started_ms"]:
            return None
        end = entry["ended_ms"] or self.clock() * 1000
        return max(0.0, (end - entry["started_ms"]) / 1000)

    def update(self, event: scheduler_pb2.JobEvent) -> None:
        kind = event.WhichOneof("event")
        line = ""
        if kind == "snapshot":
            job = event.snapshot
            self.job_status, self.job_progress = job_status_name(job.status), job.progress
            self.ranks = dag_ranks(job.spec_json) or self.ranks
            for task in job.tasks:
                entry = self._task(task.key)
                entry.update(status=task_status_name(task.status), progress=task.progress, error=task.error,
                             started_ms=task.started_at_ms, ended_ms=task.ended_at_ms)
            self.finished = job.status in FINAL_JOB
            line = f"job {self.job_id}: {self.job_status} ({len(job.tasks)} tasks)"
        elif kind == "job_status":
            self.job_status, self.job_progress = job_status_name(event.job_status.status), event.job_status.progress
            self.finished = event.job_status.status in FINAL_JOB
            line = f"job {self.job_id}: {self.job_status} {event.job_status.progress:.0f}% {event.job_status.message}"
        elif kind == "task_status":
            entry = self._task(event.task_status.task)
            self._status(entry, task_status_name(event.task_status.status), event.timestamp_ms)
            entry["error"] = event.task_status.error
            if entry["status"] == "success":
                entry["progress"] = 100.0
            key = event.task_status.task
            took = self.elapsed(entry) if entry["status"] in ENDED_TASKS else None
            line = f"  {key.component_name} [{key.party.role}] {entry['status']}" + (
                f" after {elapsed_text(took)}" if took is not None else "") + (
                f": {entry['error']}" if entry["error"] else "")
        elif kind == "task_progress":
            entry = self._task(event.task_progress.task)
            entry["progress"] = event.task_progress.percent
        if self._live is not None:
            self._live.refresh()
        elif line:
            self.console.print(line, highlight=False, markup=False)

    def ordered(self) -> list[tuple[tuple[str, str, str], dict[str, Any]]]:
        """The tasks in DAG order: a component after those it reads, then by role and member."""
        unknown = len(self.ranks)

        def key(item: tuple[tuple[str, str, str], dict[str, Any]]) -> tuple[int, int, str]:
            (component, role, member), _ = item
            return (self.ranks.get(component, unknown),
                    ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER), member)

        return sorted(self.tasks.items(), key=key)

    def table(self) -> Table:
        table = Table(title=f"job {self.job_id}: {self.job_status} {self.job_progress:.0f}%")
        for column in ("component", "role", "member", "status", "progress", "elapsed", ""):
            table.add_column(column)
        for (component, role, member), entry in self.ordered():
            took = self.elapsed(entry)
            table.add_row(component, role, member[:8], entry["status"],
                          ProgressBar(total=100.0, completed=entry["progress"], width=24),
                          elapsed_text(took) if took is not None else "", entry["error"][:60])
        return table


def print_results(results: list[scheduler_pb2.TaskResult], console: Console | None = None) -> None:
    out = console or Console(width=1000, soft_wrap=True)
    for result in results:
        key = result.task
        out.print(f"[bold]{key.component_name}[/bold] ({result.module}) {key.party.role} "
                  f"{key.party.member_id[:8]}: {task_status_name(result.status)}")
        for data in result.data:
            out.print(f"  data {data.output_name}: {data.data_set.namespace}/{data.data_set.name} ({data.row_count} rows)", markup=False)
        for model in result.models:
            out.print(f"  model {model.output_name} v{model.version}: {model.uri}", markup=False)
        for metric in result.metrics:
            out.print(f"  metric {metric.namespace}/{metric.name}: {_short(json.loads(metric.points_json or 'null'))}", markup=False)


def _short(points: Any) -> str:
    """Scalars of a metric (curves are left for --plot); per-feature tables as their size."""
    if isinstance(points, dict) and points and all(isinstance(v, dict) for v in points.values()):
        return f"{len(points)} entries ({', '.join(list(points)[:8])}{', ...' if len(points) > 8 else ''})"
    if isinstance(points, dict):
        shown = {k: round(v, 6) if isinstance(v, float) else v for k, v in points.items()
                 if isinstance(v, int | float | str) or v is None}
        return json.dumps(shown)
    text = json.dumps(points)
    return text if len(text) < 200 else text[:197] + "..."


def plot_curves(results: list[scheduler_pb2.TaskResult], out_dir: Path) -> list[Path]:
    """ROC and KS curves of binary evaluations, their gain, lift, KS and precision/recall
    charts, and loss per iteration, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for result in results:
        component = result.task.component_name
        for metric in result.metrics:
            points = json.loads(metric.points_json or "null")
            if isinstance(points, dict) and "roc_curve" in points:
                figure, axes = plt.subplots(1, 2, figsize=(10, 4))
                roc, ks = points["roc_curve"], points["ks_curve"]
                axes[0].plot(roc["fpr"], roc["tpr"], label=f"AUC {points['auc']:.4f}")
                axes[0].plot([0, 1], [0, 1], linestyle="--", color="grey")
                axes[0].set(title=f"ROC ({metric.name})", xlabel="false positive rate", ylabel="true positive rate")
                axes[0].legend()
                axes[1].plot(ks["thresholds"], ks["tpr"], label="TPR")
                axes[1].plot(ks["thresholds"], ks["fpr"], label="FPR")
                axes[1].set(title=f"KS {points['ks']:.4f} ({metric.name})", xlabel="threshold", xlim=(0.0, 1.0))
                axes[1].legend()
                path = out_dir / f"{component}_{metric.name}_roc_ks.png"
            elif isinstance(points, dict) and "gain_table" in points:
                figure = plot_credit_tables(plt, points, f"{component} {metric.name}")
                path = out_dir / f"{component}_{metric.name}.png"
            elif metric.name == "loss" and isinstance(points, list) and points:
                figure, axis = plt.subplots(figsize=(6, 4))
                xs = [p[0] if isinstance(p, list) else i for i, p in enumerate(points)]
                ys = [p[1] if isinstance(p, list) else p for p in points]
                axis.plot(xs, ys, marker="o")
                axis.set(title=f"loss ({component})", xlabel="iteration", ylabel="loss")
                path = out_dir / f"{component}_loss.png"
            else:
                continue
            figure.tight_layout()
            figure.savefig(path, dpi=100)
            plt.close(figure)
            written.append(path)
    return written


def plot_credit_tables(plt: Any, points: dict[str, Any], title: str) -> Any:
    """Cumulative gain, lift and KS by score group, and the precision/recall curve, in one figure."""
    gain, pr = points["gain_table"], points["pr_curve"]
    shares = [0.0, *gain["cumulative_rows_share"]]
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(shares, [0.0, *gain["gain"]], marker="o", label="gain (events captured)")
    axes[0].plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    axes[0].plot(gain["cumulative_rows_share"], gain["ks"], marker=".", label=f"KS (max {max(gain['ks'], default=0):.3f})")
    axes[0].set(title=f"gain and KS ({title})", xlabel="share of rows, highest scores first", ylim=(0, 1.05))
    axes[0].legend()
    axes[1].bar(gain["group"], gain["lift"], label="lift")
    axes[1].plot(gain["group"], gain["cumulative_lift"], marker="o", color="black", label="cumulative lift")
    axes[1].axhline(1.0, linestyle="--", color="grey")
    axes[1].set(title="lift by score group", xlabel="group (1 = highest scores)")
    axes[1].legend()
    axes[2].plot(pr["recall"], pr["precision"], marker=".")
    matrix = points.get("confusion_matrix", {})
    axes[2].set(title=f"precision / recall (at {matrix.get('threshold', '?')}: tp {matrix.get('tp')}, "
                      f"fp {matrix.get('fp')})", xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.05))
    return figure
