"""Spark on Kubernetes takes the cluster code path: the spark-submit a k8s:// member runs, rendered and checked.

No Kubernetes cluster is available here, so the test renders what the executor of a member
deployed with `weft deploy kubernetes` would run for a SPARK task: the member config from
the deploy values, a job's Spark options through the allowlist and the member's caps, the
spark-submit command line (the kernel shipped with --py-files), the driver's pod (the
executor pod, client mode) and the executor pods' template.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kernel.errors import InvalidArgument
from services.common.config import MemberConfig
from services.common.spark_conf import job_spark_options
from services.deploy.kubernetes import member_config
from services.deploy.values import parse_values
from services.executor.launchers import SparkSettings, spark_command
from tests.test_deploy_values import VALUES

BASE = Path(__file__).resolve().parent.parent / "deploy" / "k8s" / "base"
PY_FILES = Path("/var/lib/weft/executor/py-files/weft-kernel-0123456789abcdef.zip")


def _flags(command: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """spark-submit's --flag value pairs and its --conf key=value pairs."""
    flags: dict[str, str] = {}
    conf: dict[str, str] = {}
    for flag, value in zip(command, command[1:], strict=False):
        if flag == "--conf":
            key, _, setting = value.partition("=")
            conf[key] = setting
        elif flag.startswith("--"):
            flags[flag] = value
    return flags, conf


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_a_k8s_member_submits_the_task_with_its_pods_settings_and_the_shipped_kernel() -> None:
    # Prepare: member-a's deploy values (executorInstances 3, coresMax 6) and a job asking for more.
    values = parse_values(VALUES["member-a"])
    config = MemberConfig.model_validate(member_config(values))
    options = job_spark_options({"backend": "SPARK", "spark": {
        "executor_memory": "4g", "num_executors": 10, "conf": {"spark.sql.shuffle.partitions": "32"}}})

    # Execute
    settings = SparkSettings.resolve(options, config.executor.spark)
    command = spark_command(settings, "weft-task-1", ["-j", "job"], PY_FILES)
    flags, conf = _flags(command)

    # Assert: the Kubernetes master in client mode (the driver is this executor pod), the
    # executor pods' image, namespace, template and service account from the member's
    # deploy, the job's memory and tuning, the member's cap on executors, the kernel shipped.
    assert flags["--master"] == "k8s://https://kubernetes.default.svc" and not settings.is_local
    assert flags["--deploy-mode"] == "client"
    assert flags["--executor-memory"] == "4g" and flags["--num-executors"] == "3"
    assert flags["--py-files"] == str(PY_FILES)
    assert conf["spark.kubernetes.namespace"] == "weft-member-a"
    assert conf["spark.kubernetes.container.image"] == "registry.example.org/weft-spark:0.2.0"
    assert conf["spark.kubernetes.executor.podTemplateFile"] == "/etc/weft/spark-executor-pod.yaml"
    assert conf["spark.kubernetes.authenticate.driver.serviceAccountName"] == "weft-executor"
    assert (conf["spark.driver.port"], conf["spark.driver.blockManager.port"]) == ("7078", "7079")
    assert conf["spark.sql.shuffle.partitions"] == "32" and conf["spark.cores.max"] == "6"
    assert command[-3].endswith("kernel/task_executor.py")


def test_a_job_cannot_change_the_pods_a_k8s_member_starts() -> None:
    values = parse_values(VALUES["member-a"])
    config = MemberConfig.model_validate(member_config(values))
    for key in ("spark.kubernetes.container.image", "spark.kubernetes.executor.podTemplateFile",
                "spark.kubernetes.namespace", "spark.kubernetes.driver.pod.name"):
        with pytest.raises(InvalidArgument, match=key.replace(".", r"\.")):
            job_spark_options({"spark": {"conf": {key: "x"}}})
    # The operator's settings stand even where a job's options are merged in.
    settings = SparkSettings.resolve(job_spark_options({"spark": {"executor_cores": 2}}), config.executor.spark)
    assert dict(settings.conf)["spark.kubernetes.container.image"] == "registry.example.org/weft-spark:0.2.0"


def test_driver_and_executor_pod_specs_match_the_submit_settings() -> None:
    # Prepare: the driver pod (the weft-executor Deployment) and the executor pods' template.
    values = parse_values(VALUES["member-a"])
    config = MemberConfig.model_validate(member_config(values))
    driver = next(doc for doc in _documents(BASE / "executor.yaml") if doc["kind"] == "Deployment")
    pod = driver["spec"]["template"]["spec"]
    container = pod["containers"][0]
    template = _documents(BASE / "spark-executor-pod.yaml")[0]
    executor = template["spec"]["containers"][0]

    # Assert: the driver runs as the service account spark-submit names, listens on the
    # driver ports, advertises its pod IP and mounts the template where the conf points.
    spark = config.executor.spark.extra_conf
    assert pod["serviceAccountName"] == spark["spark.kubernetes.authenticate.driver.serviceAccountName"]
    ports = {p["containerPort"] for p in container["ports"]}
    assert {int(spark["spark.driver.port"]), int(spark["spark.driver.blockManager.port"])} <= ports
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["SPARK_LOCAL_IP"]["value"] == "$(POD_IP)"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert spark["spark.kubernetes.executor.podTemplateFile"] in mounts
    # The executor pods: Spark's executor container (first in the template), non-root, no
    # API token, the member's storage at the same path the tasks read and write.
    assert executor["name"] == "spark-kubernetes-executor"
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True
    assert template["spec"]["automountServiceAccountToken"] is False
    assert executor["securityContext"]["allowPrivilegeEscalation"] is False
    assert {m["mountPath"] for m in executor["volumeMounts"]} == {config.storage_root}
    assert config.storage_root in mounts
