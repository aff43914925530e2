"""How the command line shows jobs: a live task view, result tables, and curve plots."""

from __future__ import annotations

import json
import sys
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


class JobView:
    """A live table of a job's tasks (a progress bar each); plain lines when not on a terminal."""

    def __init__(self, job_id: str, console: Console | None = None) -> None:
        self.job_id = job_id
        self.console = console or Console()
        self.tasks: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.job_status = "waiting"
        self.job_progress = 0.0
        self.finished = False
        self.interactive = self.console.is_terminal and sys.stdout.isatty()
        self._live: Live | None = None

    def __enter__(self) -> JobView:
        if self.interactive:
            self._live = Live(self._render(), console=self.console, refresh_per_second=8)
            self._live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(kind, exc, tb)

    def _task(self, key: common_pb2.TaskKey) -> dict[str, Any]:
        ident = (key.component_name, key.party.role, key.party.member_id)
        return self.tasks.setdefault(ident, {"status": "waiting", "progress": 0.0, "error": ""})

    def update(self, event: scheduler_pb2.JobEvent) -> None:
        kind = event.WhichOneof("event")
        line = ""
        if kind == "snapshot":
            job = event.snapshot
            self.job_status, self.job_progress = job_status_name(job.status), job.progress
            for task in job.tasks:
                entry = self._task(task.key)
                entry.update(status=task_status_name(task.status), progress=task.progress, error=task.error)
            self.finished = job.status in FINAL_JOB
            line = f"job {self.job_id}: {self.job_status} ({len(job.tasks)} tasks)"
        elif kind == "job_status":
            self.job_status, self.job_progress = job_status_name(event.job_status.status), event.job_status.progress
            self.finished = event.job_status.status in FINAL_JOB
            line = f"job {self.job_id}: {self.job_status} {event.job_status.progress:.0f}% {event.job_status.message}"
        elif kind == "task_status":
            entry = self._task(event.task_status.task)
            entry.update(status=task_status_name(event.task_status.status), error=event.task_status.error)
            if entry["status"] == "success":
                entry["progress"] = 100.0
            key = event.task_status.task
            line = f"  {key.component_name} [{key.party.role}] {entry['status']}" + (
                f": {entry['error']}" if entry["error"] else "")
        elif kind == "task_progress":
            entry = self._task(event.task_progress.task)
            entry["progress"] = event.task_progress.percent
        if self._live is not None:
            self._live.update(self._render())
        elif line:
            self.console.print(line, highlight=False, markup=False)

    def _render(self) -> Table:
        table = Table(title=f"job {self.job_id}: {self.job_status} {self.job_progress:.0f}%")
        for column in ("component", "role", "member", "status", "progress", ""):
            table.add_column(column)
        for (component, role, member), entry in sorted(self.tasks.items()):
            table.add_row(component, role, member[:8], entry["status"],
                          ProgressBar(total=100.0, completed=entry["progress"], width=24),
                          entry["error"][:60])
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
