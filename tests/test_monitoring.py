"""Monitoring that ships: the ServiceMonitors, alert rules and Grafana dashboard are well formed, the
alerts fire when they should (promtool), and every metric they name is exported by the real services."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from services.client import standalone
from services.client.demo import EXAMPLES, demo_spec
from services.client.sdk import SchedulerClient, WeftClientError, job_status_name

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "deploy" / "k8s" / "monitoring"
DASHBOARD = MONITORING / "weft-dashboard.json"
METRIC_NAME = re.compile(r"\bweft_[a-z0-9_]+\b")
#: Grafana's variables, replaced by values PromQL accepts before an expression is parsed.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*"}

Obj = dict[str, Any]

# The fields of the Prometheus Operator CRDs (monitoring.coreos.com/v1) these manifests use;
# anything else is refused, so a misspelt key fails here rather than being dropped by the API.
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {"type": "object", "required": ["name"], "additionalProperties": False,
            "properties": {"name": {"type": "string", "pattern": "^[a-z0-9-]+$"}, "labels": LABELS,
                           "namespace": {"type": "string"}}}
SERVICE_MONITOR_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {"type": "object", "required": ["selector", "endpoints"], "additionalProperties": False,
                 "properties": {
                     "selector": {"type": "object", "additionalProperties": False,
                                  "properties": {"matchLabels": LABELS}},
                     "namespaceSelector": {"type": "object"},
                     "endpoints": {"type": "array", "minItems": 1, "items": {
                         "type": "object", "required": ["port"], "additionalProperties": False,
                         "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                        "interval": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                                        "honorLabels": {"type": "boolean"}}}}}},
    },
}
RULE = {"type": "object", "required": ["alert", "expr", "labels", "annotations"], "additionalProperties": False,
        "properties": {"alert": {"type": "string", "pattern": "^Weft[A-Za-z]+$"}, "expr": {"type": "string"},
                       "for": {"type": "string", "pattern": "^[0-9]+[smh]$"},
                       "labels": {"type": "object", "required": ["severity"],
                                  "properties": {"severity": {"enum": ["warning", "critical"]}}},
                       "annotations": {"type": "object", "required": ["summary"], "additionalProperties": False,
                                       "properties": {"summary": {"type": "string"},
                                                      "description": {"type": "string"}}}}}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"], "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"}, "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {"type": "object", "required": ["groups"], "additionalProperties": False, "properties": {
            "groups": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "rules"], "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "rules": {"type": "array", "minItems": 1, "items": RULE}}}}}},
    },
}
TARGET = {"type": "object", "required": ["refId", "expr", "datasource"],
          "properties": {"refId": {"type": "string"}, "expr": {"type": "string", "minLength": 1},
                         "legendFormat": {"type": "string"}, "datasource": {"type": "object"}}}
GRID = {"type": "object", "required": ["h", "w", "x", "y"], "additionalProperties": False,
        "properties": {k: {"type": "integer", "minimum": 0} for k in ("h", "w", "x", "y")}}
DASHBOARD_SCHEMA = {
    "type": "object", "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"}, "title": {"type": "string"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "templating": {"type": "object", "required": ["list"], "properties": {"list": {"type": "array", "items": {
            "type": "object", "required": ["name", "type"]}}}},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "type", "title", "gridPos"],
            "properties": {"id": {"type": "integer"}, "type": {"enum": ["row", "timeseries", "stat"]},
                           "title": {"type": "string", "minLength": 1}, "gridPos": GRID,
                           "targets": {"type": "array", "items": TARGET}},
            "if": {"properties": {"type": {"const": "row"}}},
            "else": {"required": ["targets", "datasource"], "properties": {"targets": {"minItems": 1}}}}},
    },
}


def monitoring_objects() -> list[Obj]:
    objects: list[Obj] = []
    for name in ("servicemonitors.yaml", "prometheusrule.yaml"):
        objects += [o for o in yaml.safe_load_all((MONITORING / name).read_text()) if o]
    return objects


def dashboard() -> Obj:
    data = json.loads(DASHBOARD.read_text())
    assert isinstance(data, dict)
    return data


def dashboard_expressions() -> list[str]:
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard()["templating"]["list"] if "definition" in v]
    return exprs


def rule_groups() -> list[Obj]:
    rule = next(o for o in monitoring_objects() if o["kind"] == "PrometheusRule")
    groups = rule["spec"]["groups"]
    assert isinstance(groups, list)
    return groups


def promql(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return re.sub(r"label_values\((\w+), \w+\)", r"\1", expr)  # Grafana's own function: the metric it reads


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `bash scripts/install-deploy-tools.sh` (Debian's prometheus)")
    return path


def test_monitoring_objects_match_the_prometheus_operator_schema() -> None:
    # Prepare
    schemas = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PrometheusRule": PROMETHEUS_RULE_SCHEMA}
    # Execute
    objects = monitoring_objects()
    # Assert: one ServiceMonitor per service, each valid
    monitors = sorted(o["metadata"]["name"] for o in objects if o["kind"] == "ServiceMonitor")
    assert monitors == ["weft-executor", "weft-scheduler", "weft-serving", "weft-transfer"]
    for obj in objects:
        jsonschema.validate(obj, schemas[obj["kind"]])


def test_dashboard_matches_its_schema_and_panels_do_not_overlap() -> None:
    # Prepare
    data = dashboard()
    # Execute
    jsonschema.validate(data, DASHBOARD_SCHEMA)
    cells: dict[tuple[int, int], str] = {}
    for panel in data["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                # Assert
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = panel["title"]
    ids = [p["id"] for p in data["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_shows_what_the_operators_asked_for() -> None:
    # Execute
    named = set(METRIC_NAME.findall(" ".join(dashboard_expressions())))
    # Assert: jobs by status, queue depth and age, task durations, transfer bytes/retries/refusals, mailbox
    assert {"weft_scheduler_jobs", "weft_scheduler_queue_actions", "weft_scheduler_queue_oldest_action_age_seconds",
            "weft_scheduler_task_duration_seconds_bucket", "weft_transfer_bytes_total", "weft_transfer_retries_total",
            "weft_transfer_refused_total", "weft_transfer_mailbox_bytes", "weft_transfer_mailbox_messages"} <= named


def test_rules_and_dashboard_queries_parse_with_promtool(promtool: str, tmp_path: Path) -> None:
    # Prepare: the alert rules as Prometheus reads them, and every dashboard query as a recording rule
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups()}))
    queries = tmp_path / "dashboard.yaml"
    queries.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
        {"record": f"weft:dashboard_query_{i}", "expr": promql(expr)} for i, expr in enumerate(dashboard_expressions())
    ]}]}))
    # Execute
    result = subprocess.run([promtool, "check", "rules", str(rules), str(queries)], capture_output=True,
                            text=True, timeout=60, check=False)
    # Assert
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_when_they_should_and_not_before(promtool: str, tmp_path: Path) -> None:
    # Prepare: series a member would export, and the alerts that must (and must not) follow; the
    # annotations (prose) are left out, since promtool would compare their text too
    groups = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]}
              for g in rule_groups()]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    day = 86400
    cases = {"rule_files": [str(rules)], "evaluation_interval": "1m", "tests": [{
        "interval": "1m",
        "input_series": [
            # member-a's queue is stuck from minute 0 (age grows 60 s a minute from 9 minutes);
            # member-b's queue moves
            {"series": 'weft_scheduler_queue_oldest_action_age_seconds{namespace="member-a"}',
             "values": "540+60x30"},
            {"series": 'weft_scheduler_queue_oldest_action_age_seconds{namespace="member-b"}', "values": "0x30"},
            # refusals from one peer climb by one a minute; another peer's stay flat
            {"series": 'weft_transfer_refused_total{namespace="member-a",peer="p1"}', "values": "0+1x30"},
            {"series": 'weft_transfer_refused_total{namespace="member-a",peer="p2"}', "values": "3x30"},
            # a certificate with 10 days left, one with 60 days left (time() starts at 0)
            {"series": 'weft_tls_certificate_expiry_timestamp_seconds{namespace="member-a",certificate="member"}',
             "values": f"{10 * day}x30"},
            {"series": 'weft_tls_certificate_expiry_timestamp_seconds{namespace="member-b",certificate="member"}',
             "values": f"{60 * day}x30"},
            {"series": 'weft_tls_certificate_readable{namespace="member-a",certificate="member"}', "values": "1x30"},
            {"series": 'weft_scheduler_database_up{namespace="member-a"}', "values": "1x30"},
            # member-a's task has waited on a peer since minute 0 (60 s more each minute, from 2 minutes);
            # member-b's waits come and go within a minute
            {"series": 'weft_scheduler_peer_wait_longest_seconds{namespace="member-a",pod="s-1"}',
             "values": "120+60x30"},
            {"series": 'weft_scheduler_peer_wait_longest_seconds{namespace="member-a",pod="s-2"}', "values": "0x30"},
            {"series": 'weft_scheduler_peer_wait_longest_seconds{namespace="member-b",pod="s-1"}',
             "values": "0 40 0 50 0 30 0 20 0 10 0x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "3m", "alertname": "WeftQueueActionStale", "exp_alerts": []},
            {"eval_time": "10m", "alertname": "WeftQueueActionStale",
             "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "member-a"}}]},
            {"eval_time": "4m", "alertname": "WeftTransferRefusalsRising", "exp_alerts": []},
            {"eval_time": "20m", "alertname": "WeftTransferRefusalsRising",
             "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "member-a", "peer": "p1"}}]},
            {"eval_time": "5m", "alertname": "WeftCertificateExpiresSoon", "exp_alerts": []},
            {"eval_time": "15m", "alertname": "WeftCertificateExpiresSoon",
             "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "member-a",
                                            "certificate": "member"}}]},
            {"eval_time": "15m", "alertname": "WeftCertificateUnreadable", "exp_alerts": []},
            {"eval_time": "15m", "alertname": "WeftDatabaseDown", "exp_alerts": []},
            # past 300 s at minute 4, firing once that held for 2 minutes: not at 5m, at 6m
            {"eval_time": "5m", "alertname": "WeftJobWaitingOnPeer", "exp_alerts": []},
            {"eval_time": "6m", "alertname": "WeftJobWaitingOnPeer",
             "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "member-a"}}]},
            {"eval_time": "25m", "alertname": "WeftJobWaitingOnPeer",
             "exp_alerts": [{"exp_labels": {"severity": "warning", "namespace": "member-a"}}]},
        ],
    }]}
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(cases))
    # Execute
    result = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True,
                            timeout=120, check=False)
    # Assert
    assert result.returncode == 0, result.stdout + result.stderr


def scrape(port: int) -> set[str]:
    """The sample names a real /metrics endpoint serves."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {sample.name for family in text_string_to_metric_families(text) for sample in family.samples}


@pytest.fixture(scope="module")
def federation_after_a_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[set[str]]]:
    """Two local members (every service with its metrics endpoint on) that ran the demo job."""
    root = tmp_path_factory.mktemp("monitored")
    state = standalone.create_federation(root, members=2, arbiter=False, db="sqlite", backend="local")
    metrics_ports: list[int] = []
    for member in state.members:
        config = yaml.safe_load(Path(member.config_path).read_text())
        for section in ("scheduler", "executor", "transfer"):
            port = standalone._free_port()
            config[section]["metrics_listen"] = f"127.0.0.1:{port}"
            metrics_ports.append(port)
        Path(member.config_path).write_text(yaml.safe_dump(config))
    standalone.start(state, log=lambda _: None)
    try:
        promoter_state, provider_state = state.members
        with SchedulerClient(promoter_state.scheduler_endpoint, 60, promoter_state.admin_token()) as promoter, \
                SchedulerClient(provider_state.scheduler_endpoint, 60, provider_state.admin_token()) as provider:
            for client, side in ((promoter, "promoter"), (provider, "provider")):
                for split in ("train", "test"):
                    client.upload(EXAMPLES / f"breast_{side}_{split}.csv", "demo", f"breast_{side}_{split}", "id",
                                  "y" if side == "promoter" else None, overwrite=True)
            job_id = promoter.submit(demo_spec(promoter_state.member_id, provider_state.member_id, "local"))
            final = promoter.wait(job_id)
            assert job_status_name(final.status) == "success", final.message
            with pytest.raises(WeftClientError):  # one failed call, so that the error counters have a sample
                promoter.get("no-such-job")
        # grpc's abort sends the status before the handler returns, so the server may count the failed
        # call a moment after the client saw it: read the scheduler's endpoint until it has
        for _ in range(100):
            if "weft_grpc_errors_total" in scrape(metrics_ports[0]):
                break
            time.sleep(0.1)
        yield [scrape(port) for port in metrics_ports]
    finally:
        standalone.stop(state)


@pytest.mark.slow
def test_every_metric_the_dashboard_and_rules_name_is_exported(federation_after_a_job: list[set[str]]) -> None:
    # Prepare
    exported = set().union(*federation_after_a_job)
    rule_exprs = [rule["expr"] for group in rule_groups() for rule in group["rules"]]
    # Execute
    named = set(METRIC_NAME.findall(" ".join(dashboard_expressions() + rule_exprs)))
    # Assert
    assert named, "the dashboard and rules name no metric"
    missing = sorted(named - exported)
    assert not missing, f"named by the dashboard or rules but exported by no service: {missing}"
