"""`weft demo`: two local members train a vertical logistic regression on bundled data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from services.client import standalone
from services.client.render import JobView
from services.client.sdk import SchedulerClient, job_status_name

EXAMPLES = Path(__file__).resolve().parent / "examples"
DEMO_DIR = "demo"
NAMESPACE = "demo"


def demo_spec(promoter: str, provider: str, backend: str) -> dict[str, Any]:
    """The demo job: DataIO -> Intersection -> VertLR (train + validate) -> Evaluation."""
    spec = json.loads((EXAMPLES / "demo_job.json").read_text(encoding="utf-8"))
    text = json.dumps(spec).replace("PROMOTER_ID", promoter).replace("PROVIDER_ID", provider)
    spec = json.loads(text)
    spec["job_parameters"]["backend"] = backend.upper()
    return dict(spec)


def _upload_all(promoter: SchedulerClient, provider: SchedulerClient, console: Console) -> None:
    for client, side in ((promoter, "promoter"), (provider, "provider")):
        for split in ("train", "test"):
            path = EXAMPLES / f"breast_{side}_{split}.csv"
            info = client.upload(path, NAMESPACE, f"breast_{side}_{split}", "id",
                                 "y" if side == "promoter" else None, overwrite=True)
            console.print(f"uploaded {path.name} to the {side}: {info.row_count} rows")


def validation_auc(client: SchedulerClient, job_id: str) -> float | None:
    for result in client.results(job_id, "evaluation_0"):
        for metric in result.metrics:
            if metric.name == "validate":
                points = json.loads(metric.points_json)
                return float(points["auc"])
    return None


def run_demo(data_dir: Path, keep: bool = False, backend: str = "local", timeout: float = 60.0) -> int:
    console = Console(soft_wrap=True)
    root = data_dir / DEMO_DIR
    state = standalone.load_state(root)
    if state is None:
        state = standalone.create_federation(root, members=2, arbiter=False, db="sqlite", backend=backend)
    console.print(f"starting two members under {root} ...")
    standalone.start(state, log=console.print)
    promoter_state, provider_state = state.members[0], state.members[1]
    try:
        with SchedulerClient(promoter_state.scheduler_endpoint, timeout, promoter_state.admin_token()) as promoter, \
                SchedulerClient(provider_state.scheduler_endpoint, timeout, provider_state.admin_token()) as provider:
            _upload_all(promoter, provider, console)
            job_id = promoter.submit(demo_spec(promoter_state.member_id, provider_state.member_id, backend))
            console.print(f"submitted job {job_id}: DataIO -> Intersection -> VertLR -> Evaluation")
            view = JobView(job_id, console)
            with view:
                for event in promoter.watch(job_id):
                    view.update(event)
                    if view.finished:
                        break
            job = promoter.get(job_id)
            status = job_status_name(job.status)
            if status != "success":
                console.print(f"job {job_id} ended {status}: {job.message}")
                return 1
            auc = validation_auc(promoter, job_id)
            models = [m.uri for r in promoter.results(job_id, "vert_lr_0") for m in r.models]
            console.print(f"AUC: {auc:.4f}" if auc is not None else "AUC: not reported")
            console.print(f"model: {', '.join(models) or 'none'}")
            console.print(f"metrics: weft --data-dir {root} result {job_id}"
                          + (" (the members are still up)" if keep else " (after 'weft standalone up')"))
            return 0 if auc is not None else 1
    finally:
        if keep:
            console.print(f"members left running ('weft --data-dir {root} standalone down' stops them)")
        else:
            standalone.stop(state)
            console.print("members stopped")
