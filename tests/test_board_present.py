"""What the board draws from scheduler replies: the DAG from a spec, component colours, curves and models."""

from __future__ import annotations

import json

from protos.weft.v1 import common_pb2, scheduler_pb2, serving_pb2
from services.board import present
from services.client.demo import demo_spec


def _metrics(component: str, *metrics: tuple[str, object]) -> scheduler_pb2.TaskMetrics:
    key = common_pb2.TaskKey(component_name=component, party=common_pb2.Party(role="promoter", member_id="a" * 32))
    return scheduler_pb2.TaskMetrics(task=key, metrics=[
        common_pb2.Metric(name=name, namespace="train", points_json=json.dumps(points)) for name, points in metrics])


def test_the_dag_follows_the_specs_inputs() -> None:
    # Prepare
    spec = demo_spec("a" * 32, "b" * 32, "local")
    tasks = [{"component": "dataio_0", "status": "success"}, {"component": "dataio_0", "status": "running"},
             {"component": "vert_lr_0", "status": "failed"}]

    # Execute
    dag = present.dag(spec, tasks)

    # Assert
    edges = {(e["source"], e["target"]) for e in dag["edges"]}
    assert edges == {("dataio_0", "dataio_1"), ("dataio_0", "intersection_0"), ("dataio_1", "intersection_1"),
                     ("intersection_0", "vert_lr_0"), ("intersection_1", "vert_lr_0"), ("vert_lr_0", "evaluation_0")}
    states = {n["id"]: n["state"] for n in dag["nodes"]}
    assert states["dataio_0"] == "running" and states["vert_lr_0"] == "failed" and states["evaluation_0"] == "waiting"


def test_a_component_is_green_only_when_every_task_succeeded() -> None:
    assert present.component_state(["success", "success"]) == "success"
    assert present.component_state(["success", "waiting"]) == "waiting"
    assert present.component_state(["running", "failed"]) == "failed"
    assert present.component_state([]) == "waiting"


def test_curves_take_loss_roc_ks_and_lift_from_the_recorded_metrics() -> None:
    # Prepare
    evaluation = {"auc": 0.9, "ks": 0.5,
                  "roc_curve": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.9, 1.0], "thresholds": [1.9, 0.5, 0.1]},
                  "ks_curve": {"thresholds": [1.9, 0.5, 0.1], "tpr": [0.0, 0.9, 1.0], "fpr": [0.0, 0.4, 1.0]}}
    tables = {"gain_table": {"cumulative_rows_share": [0.5, 1.0], "cumulative_lift": [1.8, 1.0]}}
    metrics = [_metrics("vert_lr_0", ("loss", [[0, 0.69], [1, 0.4]])),
               _metrics("evaluation_0", ("validate", evaluation), ("validate_tables", tables))]

    # Execute
    curves = present.curves("job1", "demo", metrics)

    # Assert
    assert curves["loss"][0]["points"] == [{"x": 0, "y": 0.69}, {"x": 1, "y": 0.4}]
    assert curves["roc"][0]["points"][1] == {"x": 0.5, "y": 0.9} and "AUC 0.9000" in curves["roc"][0]["label"]
    assert [p["x"] for p in curves["ks"][0]["points"]] == [0.5, 0.1]  # the sentinel threshold above all scores is left out
    assert curves["ks"][0]["points"][0]["y"] == 0.9 - 0.4
    assert curves["lift"][0]["points"] == [{"x": 0.5, "y": 1.8}, {"x": 1.0, "y": 1.0}]


def test_a_models_weights_are_paired_with_this_members_features() -> None:
    # Prepare
    body = {"features": ["x0", "x1"], "weights": [0.5, -1.5], "intercept": 0.1,
            "feature_importance": {"x1": 3, "x0": 7}}
    key = common_pb2.TaskKey(component_name="vert_lr_0", party=common_pb2.Party(role="promoter"))
    model = scheduler_pb2.ExportedModel(task=key, module="VertLR", model_json=json.dumps(body))

    # Execute
    view = present.model_view(model)

    # Assert
    assert view["weights"] == [{"feature": "x0", "weight": 0.5}, {"feature": "x1", "weight": -1.5}]
    assert [item["feature"] for item in view["importance"]] == ["x0", "x1"]
    assert view["intercept"] == 0.1


def test_only_the_settings_that_differ_between_jobs_are_listed() -> None:
    # Prepare
    first = demo_spec("a" * 32, "b" * 32, "local")
    second = demo_spec("a" * 32, "b" * 32, "local")
    second["components"]["vert_lr_0"]["params"]["max_iter"] = 10

    # Execute
    rows = present.parameter_differences({"j1": first, "j2": second})

    # Assert
    assert rows == [{"setting": "components.vert_lr_0.params.max_iter", "values": {"j1": 30, "j2": 10}}]


def test_live_events_keep_the_tasks_of_one_component_and_the_jobs_end() -> None:
    # Prepare
    party = common_pb2.Party(role="promoter", member_id="a" * 32)
    progress = scheduler_pb2.JobEvent(timestamp_ms=5, task_progress=scheduler_pb2.TaskProgressEvent(
        task=common_pb2.TaskKey(component_name="vert_lr_0", party=party), percent=40, message="epoch 12: loss 0.1"))
    other = scheduler_pb2.JobEvent(task_progress=scheduler_pb2.TaskProgressEvent(
        task=common_pb2.TaskKey(component_name="dataio_0", party=party), percent=100))
    ended = scheduler_pb2.JobEvent(job_status=scheduler_pb2.JobStatusEvent(status=common_pb2.JOB_STATUS_SUCCESS))

    # Execute
    lines = [present.event_line(e, "vert_lr_0", {"a" * 32: "member-1"}) for e in (progress, other, ended)]

    # Assert
    assert lines[0] == {"time_ms": 5, "who": "member-1 (promoter)", "text": "40% epoch 12: loss 0.1"}
    assert lines[1] is None
    assert lines[2] is not None and lines[2]["text"] == "job success"


def test_published_models_are_grouped_by_name_newest_version_first_with_the_current_one() -> None:
    # Prepare
    promoter, provider = "a" * 32, "b" * 32
    members = [f"promoter:{promoter}", f"provider:{provider}"]
    models = [serving_pb2.ServingModel(name="lr", version=1, current=True, job_id="j1", component="vert_lr_0",
                                       module="VertLR", role="promoter", chain=["dataio_0"], members=members),
              serving_pb2.ServingModel(name="card", version=1, current=True, job_id="j2", component="score_card_0",
                                       module="ScoreCard", role="promoter", fallback_score=0.5),
              serving_pb2.ServingModel(name="lr", version=2, job_id="j3", component="vert_lr_0", module="VertLR",
                                       role="promoter", members=members)]

    # Execute
    rows = present.serving_view(models, {promoter: "bank"})

    # Assert
    assert [(r["name"], r["current_version"]) for r in rows] == [("card", 1), ("lr", 1)]
    lr = rows[1]["versions"]
    assert [(v["version"], v["current"], v["job_id"]) for v in lr] == [(2, False, "j3"), (1, True, "j1")]
    assert lr[1]["chain"] == ["dataio_0"] and lr[1]["members"] == ["promoter bank", f"provider {provider}"]
    assert rows[0]["versions"][0]["fallback_score"] == 0.5 and lr[0]["fallback_score"] is None
