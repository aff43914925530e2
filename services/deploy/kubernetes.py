"""`weft deploy kubernetes init|render`: one member's kustomize overlay and secrets from its values file.

The overlay directory is self-contained: a copy of the release's manifests (base/, monitoring/),
the member's kustomization, config, patches and egress policies, and its secret material (tls/,
secrets/, never overwritten once written). `init` writes the secrets (certificate through
`weft certs`, generated database passwords); `render` rewrites the rest and runs `kubectl kustomize`.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import yaml

from kernel.errors import ConfError, FailedPrecondition, NotFound
from services.common import internal_auth
from services.common.certs import issue_member_cert
from services.common.config import MemberConfig
from services.deploy.values import Values

#: The release's manifests, beside the package in a checkout (`--manifests` names another copy).
DEFAULT_MANIFESTS: Final = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
COPIED_TREES: Final = ("base", "monitoring")
EXTERNAL_CONTAINER_PORT: Final = 9391
SERVING_PORT: Final = 9400
TLS_DIR: Final = "tls"
SECRETS_DIR: Final = "secrets"
TLS_MOUNT: Final = "/etc/weft/tls"
INTERNAL_KEY_MOUNT: Final = "/etc/weft/internal"
DNS_PORT: Final = 53
KUBERNETES_API_PORTS: Final = (443, 6443)
PASSWORD_BYTES: Final = 24


@dataclass(frozen=True)
class Component:
    """A Deployment of the base: which image it runs."""

    name: str
    image: str  # "core" or "spark": a key of Values.images


#: Every Weft workload of a member; a new service is one more entry (and its manifest in base/).
COMPONENTS: Final = (
    Component("scheduler", "core"),
    Component("executor", "spark"),
    Component("transfer", "core"),
)
#: Optional workloads of the base (a Deployment and a Service named weft-<name> each) and whether
#: the values file wants them; one left out is deleted from the overlay.
OPTIONAL_WORKLOADS: Final[tuple[tuple[str, Callable[[Values], bool]], ...]] = (
    ("board", lambda v: v.board.enabled),
    ("serving", lambda v: v.serving.enabled),
)
#: image name used in base/ -> the values key that replaces it
BASE_IMAGES: Final = {"weft": "core", "weft-spark": "spark"}


@dataclass(frozen=True)
class SecretSpec:
    """A Secret the overlay generates: its files, and the workloads that may mount or read it."""

    name: str
    files: Callable[[Values], dict[str, str]]  # secret key -> path inside the overlay
    consumers: frozenset[str]
    env_file: bool = False
    wanted: Callable[[Values], bool] = lambda values: True


#: Every Secret of a member; a new credential is one more entry (and its mount in base/).
SECRETS: Final = (
    SecretSpec("weft-tls", lambda v: {"ca.crt": f"{TLS_DIR}/ca.crt", "tls.crt": f"{TLS_DIR}/{v.member.id}.crt",
                                      "tls.key": f"{TLS_DIR}/{v.member.id}.key"}, frozenset({"transfer"})),
    SecretSpec("weft-internal", lambda v: {"internal.key": f"{SECRETS_DIR}/internal.key"},
               frozenset({"scheduler", "executor", "transfer", "serving"})),
    # serving checks its users' API tokens against the member's database
    SecretSpec("weft-database", lambda v: {"database-url": f"{SECRETS_DIR}/database-url"},
               frozenset({"scheduler", "executor", "serving"})),
    # The first admin's API token of the member's client API, stored hashed by the scheduler.
    SecretSpec("weft-admin-token", lambda v: {"admin-token": f"{SECRETS_DIR}/scheduler-admin-token"},
               frozenset({"scheduler"})),
    SecretSpec("weft-mariadb", lambda v: {"": f"{SECRETS_DIR}/mariadb.env"}, frozenset({"mariadb"}),
               env_file=True, wanted=lambda v: v.database.mode == "internal"),
)


def _dump(path: Path, documents: list[dict[str, Any]] | dict[str, Any], header: str = "") -> None:
    docs = documents if isinstance(documents, list) else [documents]
    text = "---\n".join(yaml.safe_dump(doc, sort_keys=False) for doc in docs)
    path.write_text((f"# {header}\n" if header else "") + text, encoding="utf-8")


def _split_image(image: str) -> dict[str, str]:
    """registry/weft:0.1.0 -> the kustomize images entry fields."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return {"newName": name, "digest": digest}
    name, tag = image.rsplit(":", 1)
    return {"newName": name, "newTag": tag}


def member_config(values: Values) -> dict[str, Any]:
    """The member config every pod reads (services/common/config.py); pods override listen addresses."""
    spark = values.spark
    namespace = values.resolved_namespace
    extra_conf = {
        "spark.submit.deployMode": "client",
        "spark.executor.instances": str(spark.executor_instances),
        "spark.driver.port": "7078",
        "spark.driver.blockManager.port": "7079",
    }
    if spark.master.startswith("k8s://"):
        extra_conf |= {
            "spark.kubernetes.namespace": namespace,
            "spark.kubernetes.container.image": values.images.spark,
            "spark.kubernetes.container.image.pullPolicy": values.images.pull_policy,
            "spark.kubernetes.executor.podTemplateFile": "/etc/weft/spark-executor-pod.yaml",
            "spark.kubernetes.authenticate.driver.serviceAccountName": "weft-executor",
        }
    config = {
        "member_id": values.member.id,
        "name": values.member.name,
        "data_dir": "/var/lib/weft",
        "storage_root": "/var/lib/weft/storage",
        "tls": {"ca_file": f"{TLS_MOUNT}/ca.crt", "cert_file": f"{TLS_MOUNT}/tls.crt",
                "key_file": f"{TLS_MOUNT}/tls.key"},
        "internal_key_file": f"{INTERNAL_KEY_MOUNT}/internal.key",
        "scheduler": {"listen": "weft-scheduler:9370", "executors": ["weft-executor:9380"]},
        "executor": {"listen": "weft-executor:9380", "mode": "spark", "slots": spark.slots,
                     "spark": {"master": spark.master, "driver_memory": spark.driver_memory,
                               "executor_memory": spark.executor_memory, "executor_cores": spark.executor_cores,
                               "cores_max": spark.cores_max, "max_executors": spark.executor_instances,
                               "extra_conf": extra_conf}},
        "transfer": {"internal_listen": "weft-transfer:9390", "external_listen": f"0.0.0.0:{EXTERNAL_CONTAINER_PORT}",
                     "mailbox_memory_mb": values.transfer.mailbox_memory_mb, "spill_dir": "/var/lib/weft/spill"},
        "serving": {"listen": f"weft-serving:{SERVING_PORT}"},
        "peers": {peer.id: {"endpoint": peer.endpoint, "name": peer.name} for peer in values.peers},
    }
    MemberConfig.model_validate(config)  # what the pods will load must load
    return config


def _selector(component: str) -> dict[str, Any]:
    return {"matchLabels": {"app.kubernetes.io/name": "weft", "app.kubernetes.io/component": component}}


def _policy(name: str, pods: dict[str, Any], egress: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "weft"}},
            "spec": {"podSelector": pods, "policyTypes": ["Egress"], "egress": egress}}


def egress_policies(values: Values) -> list[dict[str, Any]]:
    """Egress is denied but for: the namespace's own pods and the cluster DNS (every pod); the peers'
    endpoints (transfer); the Kubernetes API or Spark master (executor); an external database."""
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]}
    policies = [
        _policy("weft-default-deny-egress", {}, []),
        _policy("weft-allow-egress-namespace-and-dns", {}, [{"to": [{"podSelector": {}}]}, dns]),
    ]
    peers = []
    for peer in values.peers:
        if peer.cidr:
            peers.append({"to": [{"ipBlock": {"cidr": peer.cidr}}], "ports": [{"protocol": "TCP", "port": peer.port}]})
        else:
            peers.append({"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": peer.namespace}},
                                  "podSelector": _selector("transfer")}],
                          "ports": [{"protocol": "TCP", "port": EXTERNAL_CONTAINER_PORT}]})
    if peers:
        policies.append(_policy("weft-allow-transfer-to-peers", _selector("transfer"), peers))
    spark = values.spark
    if spark.master.startswith("spark://"):
        # a Spark cluster: the driver talks to the master and the executors on ports Spark picks
        executor_rule: dict[str, Any] = {"to": [{"ipBlock": {"cidr": spark.master_cidr}}]}
    else:
        api = spark.master_cidr or "0.0.0.0/0"
        executor_rule = {"to": [{"ipBlock": {"cidr": api}}],
                         "ports": [{"protocol": "TCP", "port": p} for p in KUBERNETES_API_PORTS]}
    policies.append(_policy("weft-allow-executor-to-spark-master", _selector("executor"), [executor_rule]))
    external = values.database.external if values.database.mode == "external" else None
    if external is not None:
        rule = {"to": [{"ipBlock": {"cidr": external.cidr}}], "ports": [{"protocol": "TCP", "port": external.port}]}
        for component in ("scheduler", "executor", "serving"):
            if component == "serving" and not values.serving.enabled:
                continue
            policies.append(_policy(f"weft-allow-{component}-to-database", _selector(component), [rule]))
    return policies


def _patches(values: Values) -> list[dict[str, Any]]:
    """Strategic-merge patches of base objects: replicas, storage, the transfer port's exposure, and the
    deletion of the optional workloads the values file turns off."""
    patches: list[dict[str, Any]] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weft-scheduler"},
         "spec": {"replicas": values.scheduler.replicas}},
        {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "weft-storage"},
         "spec": {"resources": {"requests": {"storage": values.storage.size}},
                  **({"storageClassName": values.storage.storage_class} if values.storage.storage_class else {})}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "weft-transfer"},
         "spec": {"template": {"spec": {"volumes": [{"name": "spill",
                                                     "emptyDir": {"sizeLimit": values.transfer.spill_size}}]}}}},
    ]
    transfer = values.transfer
    service: dict[str, Any] = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "weft-transfer-external"},
                               # the port list is replaced: merged by `port`, a new value would add a second one
                               "spec": {"ports": [{"$patch": "replace"},
                                                  {"name": "external", "port": transfer.port,
                                                   "targetPort": "external"}]}}
    if transfer.expose == "loadBalancer":
        ranges = transfer.load_balancer_source_ranges or [p.cidr for p in values.peers if p.cidr]
        if ranges:
            service["spec"]["loadBalancerSourceRanges"] = ranges
    else:
        service["spec"]["type"] = "ClusterIP"
    patches.append(service)
    if values.database.mode == "internal":
        internal = values.database.internal
        claim: dict[str, Any] = {"metadata": {"name": "data"},
                                 "spec": {"resources": {"requests": {"storage": internal.size}}}}
        if internal.storage_class:
            claim["spec"]["storageClassName"] = internal.storage_class
        patches.append({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "weft-mariadb"},
                        "spec": {"volumeClaimTemplates": [claim], "template": {"spec": {"containers": [
                            {"name": "mariadb", "image": internal.image}]}}}})
    for name, wanted in OPTIONAL_WORKLOADS:
        if not wanted(values):
            patches += [{"apiVersion": api, "kind": kind, "metadata": {"name": f"weft-{name}"}, "$patch": "delete"}
                        for api, kind in (("apps/v1", "Deployment"), ("v1", "Service"))]
    return patches


def _ingress(values: Values) -> dict[str, Any]:
    transfer = values.transfer
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "weft-transfer-external", "labels": {"app.kubernetes.io/name": "weft",
                                                                      "app.kubernetes.io/component": "transfer"},
                         "annotations": dict(transfer.ingress.annotations)},
            "spec": {"ingressClassName": transfer.ingress.class_name,
                     "rules": [{"host": transfer.host, "http": {"paths": [{
                         "path": "/", "pathType": "Prefix",
                         "backend": {"service": {"name": "weft-transfer-external",
                                                 "port": {"number": transfer.port}}}}]}}]}}


def _prometheus_ingress(values: Values) -> dict[str, Any]:
    """Let the Prometheus namespace scrape the metrics ports (the base admits no other namespace)."""
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": "weft-allow-prometheus", "labels": {"app.kubernetes.io/name": "weft"}},
            "spec": {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "weft"}}, "policyTypes": ["Ingress"],
                     "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {
                         "kubernetes.io/metadata.name": values.monitoring.prometheus_namespace}}}],
                                  "ports": [{"protocol": "TCP", "port": "metrics"}]}]}}


def kustomization(values: Values, secret_files: dict[str, dict[str, str]]) -> dict[str, Any]:
    # directories under `bases`, files under `resources`, `env` for env files and strategic-merge
    # patches: the kustomize of kubectl 1.20 (Debian's kubernetes-client) reads it, as newer ones do
    bases = ["base"]
    if values.database.mode == "internal":
        bases.append("base/mariadb")
    if values.monitoring.enabled:
        bases.append("monitoring")
    resources = ["namespace.yaml", "egress.yaml"]
    if values.transfer.expose == "ingress":
        resources.append("ingress.yaml")
    if values.monitoring.enabled:
        resources.append("prometheus-ingress.yaml")
    generators = []
    for spec in SECRETS:
        if not spec.wanted(values):
            continue
        files = secret_files[spec.name]
        entry: dict[str, Any] = {"name": spec.name, "behavior": "replace"}
        if spec.env_file:
            entry["env"] = files[""]
        else:
            entry["files"] = [f"{key}={path}" for key, path in files.items()]
        generators.append(entry)
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": values.resolved_namespace,
        "bases": bases,
        "resources": resources,
        "images": [{"name": name, **_split_image(getattr(values.images, key))} for name, key in BASE_IMAGES.items()],
        "configMapGenerator": [{"name": "weft-member-config", "behavior": "merge", "files": ["member.yaml"]}],
        "secretGenerator": generators,
        "patchesStrategicMerge": ["patches.yaml"],
    }


@dataclass
class Overlay:
    """One member's overlay directory."""

    values: Values
    directory: Path
    manifests: Path = DEFAULT_MANIFESTS

    def secret_files(self) -> dict[str, dict[str, str]]:
        return {spec.name: spec.files(self.values) for spec in SECRETS if spec.wanted(self.values)}

    def missing_secrets(self) -> list[str]:
        return sorted(path for files in self.secret_files().values() for path in files.values()
                      if not (self.directory / path).is_file())

    def init(self, ca_dir: Path | None = None, reissue_certificate: bool = False) -> list[str]:
        """Write what is secret (kept if present), then the rest. Returns what was created."""
        created: list[str] = []
        tls = self.directory / TLS_DIR
        cert_file = tls / f"{self.values.member.id}.crt"
        if ca_dir is not None and (reissue_certificate or not cert_file.exists()):
            issue_member_cert(ca_dir, self.values.member.id, [self.values.transfer.host], tls)
            shutil.copy(Path(ca_dir) / "ca.crt", tls / "ca.crt")
            created.append(f"{TLS_DIR}/ (certificate for {self.values.member.id}, host {self.values.transfer.host})")
        elif not cert_file.exists():
            raise NotFound(f"{cert_file}: no certificate yet; pass --ca-dir (the federation CA, `weft certs init`) "
                           f"or place {TLS_DIR}/ca.crt, {self.values.member.id}.crt and .key issued by it")
        created += self._database_secrets()
        key_file = self.directory / SECRETS_DIR / "internal.key"
        if not key_file.exists():
            internal_auth.write_key(key_file)
            created.append(f"{SECRETS_DIR}/internal.key (the member-internal key)")
        created += self._admin_token()
        self.write()
        return created

    def _admin_token(self) -> list[str]:
        """The member's first admin token (weft_<id>.<secret>); the scheduler stores only its hash."""
        from services.common.auth import new_token

        path = self.directory / SECRETS_DIR / "scheduler-admin-token"
        if path.exists():
            return []
        _write_secret(path, new_token().text)
        return [f"{SECRETS_DIR}/scheduler-admin-token (the admin API token: weft --token \"$(cat {path})\")"]

    def _database_secrets(self) -> list[str]:
        secrets_dir = self.directory / SECRETS_DIR
        secrets_dir.mkdir(parents=True, exist_ok=True)
        url_file = secrets_dir / "database-url"
        if url_file.exists():
            return []
        database = self.values.database
        if database.mode == "internal":
            password = secrets.token_urlsafe(PASSWORD_BYTES)
            _write_secret(secrets_dir / "mariadb.env",
                          f"MARIADB_ROOT_PASSWORD={secrets.token_urlsafe(PASSWORD_BYTES)}\n"
                          f"MARIADB_PASSWORD={password}\nMARIADB_USER=weft\nMARIADB_DATABASE=weft\n")
            _write_secret(url_file, f"mysql+aiomysql://weft:{password}@weft-mariadb:3306/weft")
            return [f"{SECRETS_DIR}/mariadb.env, {SECRETS_DIR}/database-url (generated passwords)"]
        assert database.external is not None
        url = database.external.url
        if database.external.password_file:
            try:
                password = Path(database.external.password_file).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfError(f"database.external.password_file: cannot read it: {exc.strerror or exc}") from None
            user, rest = url.removeprefix("mysql+aiomysql://").split("@", 1)
            url = f"mysql+aiomysql://{user}:{quote(password, safe='')}@{rest}"
        _write_secret(url_file, url)
        return [f"{SECRETS_DIR}/database-url"]

    def write(self) -> None:
        """(Re)write everything but the secrets: the manifests copy, config, policies, kustomization."""
        if not (self.manifests / "base" / "kustomization.yaml").is_file():
            raise NotFound(f"{self.manifests}: no Weft manifests (base/kustomization.yaml); run weft deploy from a "
                           "checkout of the release you deploy, or pass --manifests DIR (its deploy/k8s)")
        missing = self.missing_secrets()
        if missing:
            raise FailedPrecondition(f"{self.directory}: missing {', '.join(missing)}; run "
                                     "`weft deploy kubernetes init` first")
        out = self.directory
        for tree in COPIED_TREES:
            shutil.rmtree(out / tree, ignore_errors=True)
            shutil.copytree(self.manifests / tree, out / tree)
        values = self.values
        _dump(out / "member.yaml", member_config(values), "written by `weft deploy kubernetes`: edit the values file")
        _dump(out / "namespace.yaml", {"apiVersion": "v1", "kind": "Namespace",
                                       "metadata": {"name": values.resolved_namespace,
                                                    "labels": {"app.kubernetes.io/name": "weft"}}})
        _dump(out / "egress.yaml", egress_policies(values))
        _dump(out / "patches.yaml", _patches(values))
        for optional, wanted, build in (("ingress.yaml", values.transfer.expose == "ingress", _ingress),
                                        ("prometheus-ingress.yaml", values.monitoring.enabled, _prometheus_ingress)):
            if wanted:
                _dump(out / optional, build(values))
            else:
                (out / optional).unlink(missing_ok=True)
        _dump(out / "kustomization.yaml", kustomization(values, self.secret_files()),
              "written by `weft deploy kubernetes`: edit the values file, then render again")
        (out / ".gitignore").write_text(f"# secret material: keep it out of git\n{TLS_DIR}/\n{SECRETS_DIR}/\n")

    def render(self, kubectl: str = "kubectl") -> str:
        """The member's manifests: `kubectl kustomize` of the overlay."""
        self.write()
        if shutil.which(kubectl) is None:
            raise NotFound(f"{kubectl} is not installed (scripts/install-deploy-tools.sh installs it)")
        result = subprocess.run([kubectl, "kustomize", str(self.directory)], capture_output=True, text=True,
                                check=False, timeout=300)
        if result.returncode != 0:
            raise FailedPrecondition(f"kubectl kustomize {self.directory} failed: {result.stderr.strip()}")
        return result.stdout


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text, encoding="utf-8")
