"""`weft deploy kubernetes init|render`: two members from two values files, pointing at each other.
The manifests validate strictly, expose only the transfer port, mount each secret only where it is
needed, deny egress but to the peers, DNS and the database, carry configs the services load, and
run the board and the serving service only when the values file turns them on."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID
from kubernetes_validate.utils import all_versions

from kernel.errors import ConfError, FailedPrecondition, NotFound
from services.client.cli import main as weft
from services.common.certs import create_ca
from services.common.config import load_config
from services.deploy.kubernetes import SECRETS, Overlay
from services.deploy.values import parse_values
from tests.test_monitoring import PROMETHEUS_RULE_SCHEMA, SERVICE_MONITOR_SCHEMA

A_ID, B_ID = "5f2d8c1e9b7a4e6d8c3f1a2b4d6e8f01", "9c4e7a2b1d3f4a5b8e6c0d2f4a6b8c13"
EXTERNAL_CONTAINER_PORT = 9391
#: secret -> the workloads that may read it; a new credential adds a line here and in SECRETS
SECRET_CONSUMERS = {"weft-tls": {"transfer"}, "weft-internal": {"scheduler", "executor", "transfer", "serving"},
                    "weft-database": {"scheduler", "executor", "serving"}, "weft-mariadb": {"mariadb"},
                    "weft-admin-token": {"scheduler"}}
VALUES = {
    "member-a": {
        "member": {"id": A_ID, "name": "member-a"},
        "images": {"core": "registry.example.org/weft:0.2.0", "spark": "registry.example.org/weft-spark:0.2.0"},
        "peers": [{"id": B_ID, "name": "member-b", "endpoint": "transfer.member-b.example.org:443",
                   "cidr": "198.51.100.20/32"}],
        "transfer": {"host": "transfer.member-a.example.org", "expose": "loadBalancer"},
        "database": {"mode": "internal", "internal": {"storageClass": "fast-ssd", "size": "20Gi"}},
        "storage": {"storageClass": "nfs", "size": "100Gi"},
        "spark": {"executorInstances": 3, "coresMax": 6, "masterCidr": "10.96.0.1/32"},
        "monitoring": {"enabled": True},
    },
    "member-b": {
        "member": {"id": B_ID, "name": "member-b"},
        "peers": [{"id": A_ID, "name": "member-a",
                   "endpoint": "weft-transfer-external.weft-member-a.svc.cluster.local:9391",
                   "namespace": "weft-member-a"}],
        "transfer": {"host": "transfer.member-b.example.org", "port": 443, "expose": "ingress"},
        "database": {"mode": "external", "external": {"url": "mysql+aiomysql://weft@db.member-b.internal:3306/weft",
                                                      "cidr": "10.20.0.0/24", "passwordFile": "PASSWORD_FILE"}},
        "spark": {"master": "spark://spark-master.member-b.internal:7077", "masterCidr": "10.30.0.0/24"},
        "board": {"enabled": False},
    },
}
Obj = dict[str, Any]


def by_kind(objects: list[Obj], kind: str) -> dict[str, Obj]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def workloads(objects: list[Obj]) -> dict[str, Obj]:
    """component -> pod spec of every Deployment and StatefulSet."""
    found = {}
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            found[obj["metadata"]["labels"]["app.kubernetes.io/component"]] = obj["spec"]["template"]["spec"]
    return found


def secret_value(objects: list[Obj], name: str, key: str) -> str:
    return base64.b64decode(by_kind(objects, "Secret")[name]["data"][key]).decode()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Obj]]]:
    """Both members initialised (one federation CA) and rendered through the `weft` command."""
    if shutil.which("kubectl") is None:
        pytest.fail("kubectl is not installed: run `bash scripts/install-deploy-tools.sh`")
    root = tmp_path_factory.mktemp("deploy")
    create_ca(root / "ca")
    (root / "b-password").write_text("p@ss/word\n")
    result: dict[str, tuple[Path, list[Obj]]] = {}
    for name, values in VALUES.items():
        text = yaml.safe_dump(values).replace("PASSWORD_FILE", str(root / "b-password"))
        (root / f"{name}.yaml").write_text(text)
        overlay, output = root / name, root / f"{name}.out.yaml"
        assert weft(["deploy", "kubernetes", "init", "--values", str(root / f"{name}.yaml"), "--out", str(overlay),
                     "--ca-dir", str(root / "ca")]) == 0
        assert weft(["deploy", "kubernetes", "render", "--values", str(root / f"{name}.yaml"), "--out", str(overlay),
                     "-o", str(output)]) == 0
        result[name] = (overlay, [o for o in yaml.safe_load_all(output.read_text()) if o])
    return result


def latest_minor_versions(count: int = 2) -> list[str]:
    """The newest `count` Kubernetes minor versions kubernetes-validate has schemas for."""
    newest: dict[tuple[int, int], str] = {}
    for version in all_versions():
        major, minor, *_ = (int(part) for part in version.split("."))
        newest[(major, minor)] = version
    return [newest[key] for key in sorted(newest)[-count:]]


def test_manifests_validate_strictly_on_the_two_latest_kubernetes_versions(
        rendered: dict[str, tuple[Path, list[Obj]]]) -> None:
    # Prepare
    versions = latest_minor_versions()
    crd_schemas = {"ServiceMonitor": SERVICE_MONITOR_SCHEMA, "PrometheusRule": PROMETHEUS_RULE_SCHEMA}
    # Execute + Assert
    assert len(versions) == 2
    for name, (_, objects) in rendered.items():
        assert len(objects) > 20, name
        for obj in objects:
            if obj["kind"] in crd_schemas:  # Prometheus Operator kinds: no Kubernetes schema, ours instead
                import jsonschema

                jsonschema.validate({k: v for k, v in obj.items()}, crd_schemas[obj["kind"]])
                continue
            for version in versions:
                kubernetes_validate.validate(obj, version, strict=True)


def _reachable_from_outside(objects: list[Obj], labels: dict[str, str], port: int | str) -> bool:
    """Ingress NetworkPolicy semantics: open if a policy selecting the pods admits other namespaces on `port`."""
    for policy in by_kind(objects, "NetworkPolicy").values():
        spec = policy["spec"]
        if "Ingress" not in spec["policyTypes"] or not \
                spec["podSelector"].get("matchLabels", {}).items() <= labels.items():
            continue
        for rule in spec.get("ingress", []):
            peers = rule.get("from")
            outside = peers is None or any("namespaceSelector" in p or "ipBlock" in p for p in peers)
            ports = [entry.get("port") for entry in rule.get("ports", [])]
            if outside and (not ports or port in ports):
                return True
    return False


@pytest.mark.parametrize("name", list(VALUES))
def test_only_the_transfer_port_is_exposed(rendered: dict[str, tuple[Path, list[Obj]]], name: str) -> None:
    # Prepare
    _, objects = rendered[name]
    port = VALUES[name]["transfer"].get("port", 9391)
    # Execute
    exposed = {s["metadata"]["name"]: [p["port"] for p in s["spec"]["ports"]]
               for s in by_kind(objects, "Service").values() if s["spec"].get("type", "ClusterIP") != "ClusterIP"}
    backends = [path["backend"]["service"] for ingress in by_kind(objects, "Ingress").values()
                for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]]
    # Assert: one way out, to the transfer's external port, by a load balancer or an ingress
    if VALUES[name]["transfer"]["expose"] == "loadBalancer":
        assert exposed == {"weft-transfer-external": [port]} and not backends
    else:
        assert exposed == {} and backends == [{"name": "weft-transfer-external", "port": {"number": port}}]
    external = by_kind(objects, "Service")["weft-transfer-external"]
    assert [p["targetPort"] for p in external["spec"]["ports"]] == ["external"]
    for component, pod in workloads(objects).items():
        labels = {"app.kubernetes.io/name": "weft", "app.kubernetes.io/component": component}
        for container in pod["containers"]:
            for container_port in container.get("ports", []):
                open_port = _reachable_from_outside(objects, labels, container_port["containerPort"])
                wanted = component == "transfer" and container_port["containerPort"] == EXTERNAL_CONTAINER_PORT
                assert open_port == wanted, f"{name} {component}:{container_port['containerPort']}"


@pytest.mark.parametrize("name", list(VALUES))
def test_every_secret_is_mounted_where_needed_and_nowhere_else(
        rendered: dict[str, tuple[Path, list[Obj]]], name: str) -> None:
    # Prepare
    _, objects = rendered[name]
    readers: dict[str, set[str]] = {secret: set() for secret in by_kind(objects, "Secret")}
    # Execute: every way a pod can read a Secret
    for component, pod in workloads(objects).items():
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                readers[volume["secret"]["secretName"]].add(component)
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    readers[source["secret"]["name"]].add(component)
        for container in pod["containers"] + pod.get("initContainers", []):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    readers[ref["name"]].add(component)
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    readers[source["secretRef"]["name"]].add(component)
    # Assert: by the Secret's base name (kustomize appends a content hash)
    actual = {secret.rsplit("-", 1)[0]: users for secret, users in readers.items()}
    expected = {s: c for s, c in SECRET_CONSUMERS.items()
                if s != "weft-mariadb" or VALUES[name]["database"]["mode"] == "internal"}
    assert actual == expected
    assert {spec.name: set(spec.consumers) for spec in SECRETS} == SECRET_CONSUMERS
    # the TLS secret lands where the config expects the files
    transfer = workloads(objects)["transfer"]
    volume = next(v["name"] for v in transfer["volumes"] if "secret" in v)
    mount = next(m for m in transfer["containers"][0]["volumeMounts"] if m["name"] == volume)
    assert mount["mountPath"] == "/etc/weft/tls" and mount["readOnly"] is True


def _config(objects: list[Obj], component: str, tmp_path: Path) -> Any:
    config_map = next(c for n, c in by_kind(objects, "ConfigMap").items() if n.startswith("weft-member-config"))
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / f"{component}.yaml"
    path.write_text(config_map["data"]["member.yaml"])
    container = workloads(objects)[component]["containers"][0]
    secrets = by_kind(objects, "Secret")
    environ = {}
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            environ[var["name"]] = base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode()
        elif "value" in var:
            environ[var["name"]] = var["value"]
    return load_config(path, environ={k: v for k, v in environ.items() if k.startswith("WEFT_")})


def test_members_point_at_each_other_with_real_certificates_and_databases(
        rendered: dict[str, tuple[Path, list[Obj]]], tmp_path: Path) -> None:
    # Prepare
    (_, a), (_, b) = rendered["member-a"], rendered["member-b"]
    # Execute
    a_config, b_config = _config(a, "scheduler", tmp_path / "a"), _config(b, "executor", tmp_path / "b")
    # Assert: peers, images, Spark caps, the databases' URLs
    assert a_config.member_id == A_ID and set(a_config.peers) == {B_ID}
    assert b_config.member_id == B_ID and set(b_config.peers) == {A_ID}
    assert a_config.peers[B_ID].endpoint == "transfer.member-b.example.org:443"
    a_spark = _config(a, "executor", tmp_path / "a2").executor.spark
    extra = a_spark.extra_conf
    assert extra["spark.kubernetes.container.image"] == "registry.example.org/weft-spark:0.2.0"
    assert extra["spark.kubernetes.namespace"] == "weft-member-a" and a_spark.cores_max == 6
    images = {c: pod["containers"][0]["image"] for c, pod in workloads(a).items()}
    assert images == {"scheduler": "registry.example.org/weft:0.2.0", "transfer": "registry.example.org/weft:0.2.0",
                      "board": "registry.example.org/weft:0.2.0", "serving": "registry.example.org/weft:0.2.0",
                      "executor": "registry.example.org/weft-spark:0.2.0", "mariadb": "mariadb:11.4"}
    password = secret_value(a, next(n for n in by_kind(a, "Secret") if n.startswith("weft-mariadb")),
                            "MARIADB_PASSWORD")
    assert len(password) >= 24
    assert a_config.database_url == f"mysql+aiomysql://weft:{password}@weft-mariadb:3306/weft"
    assert b_config.database_url == "mysql+aiomysql://weft:p%40ss%2Fword@db.member-b.internal:3306/weft"
    assert b_config.executor.spark.master == "spark://spark-master.member-b.internal:7077"
    for name, objects, member_id in (("member-a", a, A_ID), ("member-b", b, B_ID)):
        tls = next(n for n in by_kind(objects, "Secret") if n.startswith("weft-tls"))
        cert = x509.load_pem_x509_certificate(secret_value(objects, tls, "tls.crt").encode())
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == member_id
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
        assert VALUES[name]["transfer"]["host"] in names
    claims = by_kind(a, "PersistentVolumeClaim")
    assert claims["weft-storage"]["spec"]["storageClassName"] == "nfs"
    mariadb = by_kind(a, "StatefulSet")["weft-mariadb"]["spec"]["volumeClaimTemplates"][0]["spec"]
    assert mariadb["storageClassName"] == "fast-ssd" and mariadb["resources"]["requests"]["storage"] == "20Gi"


def _egress(objects: list[Obj], component: str) -> list[Obj]:
    labels = {"app.kubernetes.io/name": "weft", "app.kubernetes.io/component": component}
    return [rule for p in by_kind(objects, "NetworkPolicy").values() if "Egress" in p["spec"]["policyTypes"]
            and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
            for rule in p["spec"].get("egress", [])]


def test_egress_reaches_only_peers_dns_the_spark_master_and_the_database(
        rendered: dict[str, tuple[Path, list[Obj]]]) -> None:
    # Prepare
    (_, a), (_, b) = rendered["member-a"], rendered["member-b"]

    def outside(rules: list[Obj]) -> list[tuple[str, tuple[Any, ...]]]:
        """(cidr or namespace, ports) of every rule leaving the namespace, DNS left out."""
        found = []
        for rule in rules:
            for peer in rule.get("to", []):
                ports = tuple(sorted(p["port"] for p in rule.get("ports", [])))
                if "ipBlock" in peer:
                    found.append((peer["ipBlock"]["cidr"], ports))
                elif "namespaceSelector" in peer and ports != (53, 53):
                    found.append((peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"], ports))
        return sorted(found)

    # Execute + Assert: a default deny, then each component's way out
    for objects in (a, b):
        deny = by_kind(objects, "NetworkPolicy")["weft-default-deny-egress"]["spec"]
        assert deny["podSelector"] == {} and deny["policyTypes"] == ["Egress"] and deny["egress"] == []
    assert outside(_egress(a, "transfer")) == [("198.51.100.20/32", (443,))]
    assert outside(_egress(b, "transfer")) == [("weft-member-a", (EXTERNAL_CONTAINER_PORT,))]
    assert outside(_egress(a, "scheduler")) == []
    assert outside(_egress(a, "executor")) == [("10.96.0.1/32", (443, 6443))]
    assert outside(_egress(b, "scheduler")) == [("10.20.0.0/24", (3306,))]
    assert outside(_egress(b, "executor")) == sorted([("10.20.0.0/24", (3306,)), ("10.30.0.0/24", ())])
    assert outside(_egress(a, "serving")) == []
    assert outside(_egress(b, "serving")) == [("10.20.0.0/24", (3306,))]


def test_board_and_serving_are_rendered_as_the_values_file_says(
        rendered: dict[str, tuple[Path, list[Obj]]], tmp_path: Path) -> None:
    # Prepare: member-a with both (the default), member-b without its board, and member-b again
    # without its serving service either
    (_, a), (b_dir, b) = rendered["member-a"], rendered["member-b"]
    overlay = tmp_path / "member-b-off"
    shutil.copytree(b_dir, overlay)
    values = parse_values({**VALUES["member-b"], "serving": {"enabled": False}})
    # Execute
    off = [o for o in yaml.safe_load_all(Overlay(values, overlay).render()) if o]

    def named(objects: list[Obj]) -> set[tuple[str, str]]:
        return {(o["kind"], o["metadata"]["name"]) for o in objects if o["kind"] in ("Deployment", "Service")}

    board = {("Deployment", "weft-board"), ("Service", "weft-board")}
    serving = {("Deployment", "weft-serving"), ("Service", "weft-serving")}
    serving_egress = "weft-allow-serving-to-database"
    # Assert
    assert board | serving <= named(a)
    assert serving <= named(b) and not board & named(b)
    assert named(off) == named(b) - serving
    assert {"scheduler", "executor", "transfer"} <= set(workloads(off))
    assert serving_egress in by_kind(b, "NetworkPolicy") and serving_egress not in by_kind(off, "NetworkPolicy")
    for obj in off:
        kubernetes_validate.validate(obj, latest_minor_versions(1)[0], strict=True)


def test_init_keeps_secrets_render_needs_them_and_rotation_reissues(
        rendered: dict[str, tuple[Path, list[Obj]]], tmp_path: Path) -> None:
    # Prepare
    overlay_dir, _ = rendered["member-a"]
    values = parse_values(VALUES["member-a"])
    url = (overlay_dir / "secrets" / "database-url").read_text()
    cert = (overlay_dir / "tls" / f"{A_ID}.crt").read_bytes()
    ca_dir = overlay_dir.parent / "ca"
    # Execute + Assert: init again keeps the passwords and the certificate
    Overlay(values, overlay_dir).init(ca_dir)
    assert (overlay_dir / "secrets" / "database-url").read_text() == url
    assert (overlay_dir / "tls" / f"{A_ID}.crt").read_bytes() == cert
    # rotation issues a new certificate, the passwords stay
    Overlay(values, overlay_dir).init(ca_dir, reissue_certificate=True)
    assert (overlay_dir / "tls" / f"{A_ID}.crt").read_bytes() != cert
    assert (overlay_dir / "secrets" / "database-url").read_text() == url
    # a fresh directory cannot render before init, nor init without a CA or certificate
    with pytest.raises(FailedPrecondition, match="missing secrets/database-url"):
        Overlay(values, tmp_path / "fresh").render()
    with pytest.raises(NotFound, match="--ca-dir"):
        Overlay(values, tmp_path / "fresh").init()
    assert "tls/" in (overlay_dir / ".gitignore").read_text()


@pytest.mark.parametrize(("change", "message"), [
    ({"member": {"id": "XYZ", "name": "member-a"}}, "values.member.id: Value error, must be 32 lowercase hex"),
    ({"member": {"id": A_ID, "name": "Member A"}}, "values.member.name: Value error, must be a DNS label"),
    ({"images": {"core": "registry.example.org/weft"}}, "values.images.core: Value error, name a tag or digest"),
    ({"peers": [{"id": B_ID, "endpoint": "b:9391"}]}, "values.peers.0: Value error, give exactly one of cidr"),
    ({"peers": [{"id": B_ID, "endpoint": "b", "cidr": "10.0.0.1/32"}]}, "values.peers.0.endpoint"),
    ({"transfer": {"host": "a.example.org", "expose": "nodePort"}}, "values.transfer.expose"),
    ({"database": {"mode": "external"}}, "values.database: Value error, mode external needs an external section"),
    ({"spark": {"master": "yarn"}}, "values.spark.master: Value error, must be k8s://"),
    ({"spark": {"master": "spark://m:7077"}}, "spark.master_cidr: a spark:// master needs"),
    ({"storage": {"size": "lots"}}, "values.storage.size"),
    ({"transfer": {"host": "a.example.org", "colour": "red"}}, "values.transfer.colour: unknown parameter"),
    ({"serving": {"enabled": "maybe"}}, "values.serving.enabled"),
    ({"board": {"on": True}}, "values.board.on: unknown parameter"),
])
def test_bad_values_fail_naming_the_field(change: Obj, message: str) -> None:
    # Prepare
    values = {**VALUES["member-a"], **change}
    # Execute + Assert
    with pytest.raises(ConfError) as raised:
        parse_values(values)
    assert message in str(raised.value)
