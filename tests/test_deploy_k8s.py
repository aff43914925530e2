"""The Kubernetes manifests: the base (the three services, the serving service and the board)
renders with kubectl kustomize and validates against the API schemas; the example members
(deploy/k8s/values/, through `weft deploy kubernetes`) carry configs that load with the real
config loader and match their manifests."""

from __future__ import annotations

import base64
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from services.common.certs import create_ca
from services.common.config import MemberConfig, load_config
from services.common.observability import DEFAULT_METRICS_PORTS
from services.deploy.kubernetes import Overlay
from services.deploy.values import load_values

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
#: A schema version kubernetes-validate ships; native gRPC probes are GA since 1.27.
SCHEMA_VERSION = "1.30.0"
MEMBERS = {"member-a": "5f2d8c1e9b7a4e6d8c3f1a2b4d6e8f01", "member-b": "9c4e7a2b1d3f4a5b8e6c0d2f4a6b8c13"}
KUSTOMIZATIONS = ["base", "base/mariadb"]
SERVICE_PORTS = {"scheduler": 9370, "executor": 9380, "transfer": 9390}
EXTERNAL_PORT = 9391
BOARD = "board"
BOARD_PORT = 9360
SERVING = "serving"
SERVING_PORT = 9400
EXTERNAL_DB_PASSWORD = "an external password"

Obj = dict[str, Any]


@pytest.fixture(scope="session")
def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is not installed, so the Kubernetes manifests cannot be rendered: "
                    "run `bash scripts/install-deploy-tools.sh` (installs Debian's kubernetes-client)")
    return path


@pytest.fixture(scope="session")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of deploy/k8s, and each example member's overlay written by `weft deploy kubernetes init`
    (certificates from the real certificate code, generated passwords) under members/."""
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, tree)
    ca_dir = tree.parent / "federation-ca"
    create_ca(ca_dir)
    (tree / "values" / "member-b-db-password").write_text(EXTERNAL_DB_PASSWORD)
    for name in MEMBERS:
        Overlay(load_values(tree / "values" / f"{name}.yaml"), tree / "members" / name, K8S).init(ca_dir)
    return tree


_rendered: dict[str, list[Obj]] = {}


def render(kubectl: str, tree: Path, name: str) -> list[Obj]:
    if name not in _rendered:
        result = subprocess.run([kubectl, "kustomize", str(tree / name)], capture_output=True,
                                text=True, timeout=120, check=False)
        assert result.returncode == 0, f"kubectl kustomize {name} failed:\n{result.stderr}"
        _rendered[name] = [obj for obj in yaml.safe_load_all(result.stdout) if obj]
    return _rendered[name]


@pytest.fixture(params=list(MEMBERS))
def overlay(request: pytest.FixtureRequest, kubectl: str, k8s_tree: Path) -> Iterator[tuple[str, list[Obj]]]:
    yield request.param, render(kubectl, k8s_tree, f"members/{request.param}")


def by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {obj["metadata"]["name"]: obj for obj in objects if obj["kind"] == kind}


def component_of(obj: Obj) -> str:
    return str(obj["metadata"]["labels"]["app.kubernetes.io/component"])


def deployment(objects: list[Obj], component: str) -> Obj:
    return by_kind(objects, "Deployment")[f"weft-{component}"]


def container(deploy: Obj) -> Obj:
    containers = deploy["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


def generated(objects: list[Obj], kind: str, name: str) -> Obj:
    """The object kustomize generated as `name` (its name carries a content hash suffix)."""
    found = [obj for key, obj in by_kind(objects, kind).items() if key == name or key.rsplit("-", 1)[0] == name]
    assert len(found) == 1, f"expected one {kind} generated from {name}, found {len(found)}"
    return found[0]


def secret_value(objects: list[Obj], name: str, key: str) -> str:
    """A Secret's decoded value; `name` is the full name or the generator's name."""
    secrets = by_kind(objects, "Secret")
    secret = secrets[name] if name in secrets else generated(objects, "Secret", name)
    return base64.b64decode(secret["data"][key]).decode()


def config_of(objects: list[Obj], component: str, tmp_path: Path) -> MemberConfig:
    """The member config exactly as `component`'s pod sees it: the ConfigMap file plus the
    pod's WEFT_ variables (Secret references resolved from the rendered Secrets)."""
    pod = deployment(objects, component)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "config")
    config_map = by_kind(objects, "ConfigMap")[volume["configMap"]["name"]]
    path = tmp_path / f"{component}-member.yaml"
    path.write_text(config_map["data"]["member.yaml"])
    environ: dict[str, str] = {}
    for var in container(deployment(objects, component)).get("env", []):
        if "value" in var:
            environ[var["name"]] = var["value"]
        elif "secretKeyRef" in var["valueFrom"]:
            ref = var["valueFrom"]["secretKeyRef"]
            environ[var["name"]] = secret_value(objects, ref["name"], ref["key"])
    return load_config(path, environ=environ)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_rendered_object_validates_against_the_kubernetes_schema(
        kubectl: str, k8s_tree: Path, name: str) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, name)
    failures = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    # Assert
    assert objects, f"{name} rendered nothing"
    assert not failures, "\n".join(failures)


def test_base_runs_three_services_with_grpc_probes_limits_and_budgets(kubectl: str, k8s_tree: Path) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, "base")
    deployments = by_kind(objects, "Deployment")
    budgets = by_kind(objects, "PodDisruptionBudget")
    # Assert
    assert {component_of(d) for d in deployments.values()} == {*SERVICE_PORTS, BOARD, SERVING}
    for component, port in SERVICE_PORTS.items():
        main = container(deployment(objects, component))
        assert main["args"][:2] == ["serve", component]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert main[probe]["grpc"]["port"] == port, f"{component} {probe}"
        assert {"cpu", "memory"} <= set(main["resources"]["requests"]), component
        assert {"cpu", "memory"} <= set(main["resources"]["limits"]), component
        assert main["securityContext"]["allowPrivilegeEscalation"] is False
        pod_labels = deployment(objects, component)["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets.values()
                    if b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()]
        assert len(covering) == 1, f"{component} needs exactly one PodDisruptionBudget"
        assert deployment(objects, component)["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]


def test_the_board_calls_its_scheduler_and_serving_and_faces_only_the_namespace(kubectl: str, k8s_tree: Path) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, "base")
    board = deployment(objects, BOARD)
    main = container(board)
    env = {entry["name"]: entry.get("value") for entry in main["env"]}
    # Assert: HTTP probes on /healthz, the scheduler's and serving Services as its APIs, no Kubernetes token,
    # no Secret mounted (it holds no credential of its own), and no way in from outside.
    assert main["args"][:2] == ["serve", BOARD]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["httpGet"] == {"path": "/healthz", "port": BOARD_PORT}, probe
    assert env["WEFT_BOARD__SCHEDULER"] == f"weft-scheduler:{SERVICE_PORTS['scheduler']}"
    assert env["WEFT_BOARD__SERVING"] == f"weft-serving:{SERVING_PORT}"
    assert env["WEFT_BOARD__LISTEN"] == f"0.0.0.0:{BOARD_PORT}"
    assert board["spec"]["replicas"] == 1  # logins live in the process
    spec = board["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False and spec["securityContext"]["runAsNonRoot"]
    assert not [v for v in spec["volumes"] if "secret" in v]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert not _reachable_from_other_namespaces(objects, BOARD, BOARD_PORT)


def test_the_serving_service_answers_grpc_probes_and_faces_only_the_namespace(
        kubectl: str, k8s_tree: Path) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, "base")
    serving = deployment(objects, SERVING)
    main = container(serving)
    env = {entry["name"]: entry.get("value") for entry in main["env"]}
    service = by_kind(objects, "Service")[f"weft-{SERVING}"]
    spec = serving["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    # Assert: gRPC health probes on its port, a ClusterIP Service, no Kubernetes token, its registry
    # on the storage volume beside the models it reads, and no way in from outside the namespace
    assert main["args"][:2] == ["serve", SERVING]
    assert env["WEFT_SERVING__LISTEN"] == f"0.0.0.0:{SERVING_PORT}"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["grpc"]["port"] == SERVING_PORT, probe
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert [p["port"] for p in service["spec"]["ports"]] == [SERVING_PORT, DEFAULT_METRICS_PORTS[SERVING]]
    assert env["WEFT_SERVING__METRICS_LISTEN"] == f"0.0.0.0:{DEFAULT_METRICS_PORTS[SERVING]}"
    assert serving["spec"]["replicas"] == 1 and serving["spec"]["strategy"]["type"] == "Recreate"
    assert spec["automountServiceAccountToken"] is False and spec["securityContext"]["runAsNonRoot"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    for path in ("/var/lib/weft/storage", "/var/lib/weft/serving"):
        assert volumes[mounts[path]["name"]]["persistentVolumeClaim"]["claimName"] == "weft-storage", path
    assert not _reachable_from_other_namespaces(objects, SERVING, SERVING_PORT)


def test_only_the_executor_may_start_spark_pods(kubectl: str, k8s_tree: Path) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, "base")
    roles = by_kind(objects, "Role")
    bindings = by_kind(objects, "RoleBinding")
    # Assert
    executor_account = deployment(objects, "executor")["spec"]["template"]["spec"]["serviceAccountName"]
    granted = {(subject["name"], binding["roleRef"]["name"])
               for binding in bindings.values() for subject in binding["subjects"]}
    assert {account for account, _ in granted} == {executor_account}
    pod_rules = [rule for _, role in granted for rule in roles[role]["rules"] if "pods" in rule["resources"]]
    assert any({"create", "delete", "watch"} <= set(rule["verbs"]) for rule in pod_rules)
    for component in ("scheduler", "transfer"):
        spec = deployment(objects, component)["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] != executor_account
        assert spec["automountServiceAccountToken"] is False


def _reachable_from_other_namespaces(objects: list[Obj], component: str, port: int) -> bool:
    """NetworkPolicy semantics for ingress: allowed if any policy selecting the pod has a rule
    whose peers include other namespaces (no `from`, a namespaceSelector or an ipBlock) and
    whose ports include `port` (or are absent)."""
    pod_labels = deployment(objects, component)["spec"]["template"]["metadata"]["labels"]
    selecting = [p for p in by_kind(objects, "NetworkPolicy").values()
                 if p["spec"]["podSelector"].get("matchLabels", {}).items() <= pod_labels.items()
                 and "Ingress" in p["spec"]["policyTypes"]]
    assert selecting, f"no NetworkPolicy selects the {component} pods: all ingress would be open"
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            outside = peers is None or any("namespaceSelector" in peer or "ipBlock" in peer for peer in peers)
            ports = [entry.get("port") for entry in rule.get("ports", [])]
            if outside and (not ports or port in ports):
                return True
    return False


def test_only_the_external_transfer_port_is_reachable_from_outside(kubectl: str, k8s_tree: Path) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, "base")
    # Assert
    assert _reachable_from_other_namespaces(objects, "transfer", EXTERNAL_PORT)
    for component, port in SERVICE_PORTS.items():
        assert not _reachable_from_other_namespaces(objects, component, port), component
        metrics_port = DEFAULT_METRICS_PORTS[component]
        assert not _reachable_from_other_namespaces(objects, component, metrics_port), f"{component} metrics"
    assert not _reachable_from_other_namespaces(objects, SERVING, SERVING_PORT)
    assert not _reachable_from_other_namespaces(objects, SERVING, DEFAULT_METRICS_PORTS[SERVING])
    assert not _reachable_from_other_namespaces(objects, BOARD, BOARD_PORT)
    exposed = [s for s in by_kind(objects, "Service").values() if s["spec"].get("type", "ClusterIP") != "ClusterIP"]
    assert [[p["port"] for p in s["spec"]["ports"]] for s in exposed] == [[EXTERNAL_PORT]]


def test_overlay_config_loads_and_matches_the_manifests(overlay: tuple[str, list[Obj]], tmp_path: Path) -> None:
    # Prepare
    name, objects = overlay
    services = by_kind(objects, "Service")
    # Execute
    configs = {component: config_of(objects, component, tmp_path) for component in [*SERVICE_PORTS, SERVING]}
    # Assert: one member, the other member as its peer, the database from the Secret
    assert {c.member_id for c in configs.values()} == {MEMBERS[name]}
    other = next(m for m in MEMBERS if m != name)
    assert set(configs["scheduler"].peers) == {MEMBERS[other]}
    assert configs["scheduler"].peers[MEMBERS[other]].endpoint.endswith(f"weft-{other}.svc.cluster.local:{EXTERNAL_PORT}")
    assert configs["scheduler"].database_url == secret_value(objects, "weft-database", "database-url")
    assert configs["executor"].database_url == configs["scheduler"].database_url
    # each service binds all interfaces in its own pod; the others dial its Service by name
    assert configs["scheduler"].scheduler.listen == f"0.0.0.0:{SERVICE_PORTS['scheduler']}"
    assert configs["executor"].executor.listen == f"0.0.0.0:{SERVICE_PORTS['executor']}"
    assert configs["transfer"].transfer.internal_listen == f"0.0.0.0:{SERVICE_PORTS['transfer']}"
    assert configs[SERVING].serving.listen == f"0.0.0.0:{SERVING_PORT}"
    assert configs[SERVING].database_url == configs["scheduler"].database_url
    # the transfer service relays peers' serving calls to the serving Service, serving calls peers through it
    dialled = [*configs["scheduler"].scheduler.executors, configs["executor"].transfer.internal_listen,
               configs["scheduler"].transfer.internal_listen, configs["transfer"].serving.listen,
               configs[SERVING].transfer.internal_listen]
    for address in dialled:
        host, port = address.rsplit(":", 1)
        assert int(port) in [p["port"] for p in services[host]["spec"]["ports"]], address
    # the TLS files the config names are the keys of the Secret mounted in the transfer pod
    transfer_pod = deployment(objects, "transfer")["spec"]["template"]["spec"]
    tls_volume = next(v for v in transfer_pod["volumes"] if "secret" in v)
    mount = next(m for m in container(deployment(objects, "transfer"))["volumeMounts"]
                 if m["name"] == tls_volume["name"])
    keys = set(by_kind(objects, "Secret")[tls_volume["secret"]["secretName"]]["data"])
    tls = configs["transfer"].tls
    for path in (tls.ca_file, tls.cert_file, tls.key_file):
        assert Path(path).parent == Path(mount["mountPath"]) and Path(path).name in keys, path
    assert "BEGIN CERTIFICATE" in secret_value(objects, tls_volume["secret"]["secretName"], "tls.crt")
    # Spark executors start in this member's namespace from the image the pods run
    extra = configs["executor"].executor.spark.extra_conf
    assert extra["spark.kubernetes.namespace"] == f"weft-{name}"
    assert extra["spark.kubernetes.container.image"] == container(deployment(objects, "executor"))["image"]


def test_trial_member_database_url_matches_its_mariadb(kubectl: str, k8s_tree: Path) -> None:
    # Execute
    objects = render(kubectl, k8s_tree, "members/member-a")
    # Assert
    assert "weft-mariadb" in by_kind(objects, "StatefulSet")
    url = secret_value(objects, "weft-database", "database-url")
    password = secret_value(objects, "weft-mariadb", "MARIADB_PASSWORD")
    assert url == f"mysql+aiomysql://weft:{password}@weft-mariadb:3306/weft"


def test_overlay_objects_are_namespaced_and_references_resolve(overlay: tuple[str, list[Obj]]) -> None:
    # Prepare
    name, objects = overlay
    cluster_scoped = {"Namespace"}
    config_maps = set(by_kind(objects, "ConfigMap"))
    secrets = set(by_kind(objects, "Secret"))
    claims = set(by_kind(objects, "PersistentVolumeClaim"))
    # Assert
    assert set(by_kind(objects, "Namespace")) == {f"weft-{name}"}
    for obj in objects:
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == f"weft-{name}", f"{obj['kind']}/{obj['metadata']['name']}"
    for workload in [*by_kind(objects, "Deployment").values(), *by_kind(objects, "StatefulSet").values()]:
        pod = workload["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps
            if "secret" in volume:
                assert volume["secret"]["secretName"] in secrets
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        for main in pod["containers"]:
            assert main["image"] != "weft", "the overlay must pin the image"
            for var in main.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["key"] in by_kind(objects, "Secret")[ref["name"]]["data"]
            for source in main.get("envFrom", []):
                assert source["secretRef"]["name"] in secrets


def test_base_config_loads_with_the_real_loader(tmp_path: Path) -> None:
    # Execute
    config = load_config(K8S / "base" / "member.yaml", environ={})
    template = yaml.safe_load((K8S / "base" / "spark-executor-pod.yaml").read_text())
    # Assert
    assert config.executor.spark.master.startswith("k8s://")
    assert config.executor.spark.extra_conf["spark.kubernetes.executor.podTemplateFile"] == \
        "/etc/weft/spark-executor-pod.yaml"
    kubernetes_validate.validate(template, SCHEMA_VERSION, strict=True)
