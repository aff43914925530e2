"""The values file of one member's Kubernetes deployment: a typed schema whose errors name the field."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kernel.base_param import format_validation_error
from kernel.errors import ConfError
from services.common.config import MEMBER_ID_PATTERN

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
SPARK_MEMORY = re.compile(r"^[0-9]+[kmgt]$")
HOST_PORT = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")

Quantity = Annotated[str, Field(pattern=QUANTITY.pattern)]


class _Values(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not an address range such as 203.0.113.7/32") from None


class Member(_Values):
    """Who this member is."""

    id: str = Field(..., description="32 lowercase hex characters, also its certificate's CN")
    name: str = Field(..., description="a DNS label: names the namespace (weft-<name>) and the overlay")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not MEMBER_ID_PATTERN.match(value):
            raise ValueError("must be 32 lowercase hex characters")
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DNS_LABEL.match(value) or len(value) > 50:
            raise ValueError("must be a DNS label of at most 50 characters: lowercase letters, digits, '-'")
        return value


class Images(_Values):
    """The two images of a release (deploy/Dockerfile's targets)."""

    core: str = Field("weft:0.1.0", description="scheduler and transfer (target core)")
    spark: str = Field("weft-spark:0.1.0", description="executor and Spark executor pods (target spark)")
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"

    @field_validator("core", "spark")
    @classmethod
    def _pinned(cls, value: str) -> str:
        last = value.rsplit("/", 1)[-1]
        if ":" not in last and "@" not in last:
            raise ValueError("name a tag or digest (registry/weft:0.1.0): a moving 'latest' is not deployable twice")
        return value


class Peer(_Values):
    """Another member: where its transfer listener is, and where its traffic may go."""

    id: str = Field(..., description="its member id")
    name: str = Field("", description="a readable name")
    endpoint: str = Field(..., description="host:port of its external transfer listener")
    cidr: str = Field("", description="address range its endpoint resolves to: the transfer pods' egress rule")
    namespace: str = Field("", description="instead of cidr: its namespace, when it runs in this cluster")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not MEMBER_ID_PATTERN.match(value):
            raise ValueError("must be 32 lowercase hex characters")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not HOST_PORT.match(value) or not 0 < int(value.rsplit(":", 1)[1]) < 65536:
            raise ValueError("must be host:port, e.g. transfer.member-b.example.org:9391")
        return value

    @field_validator("cidr")
    @classmethod
    def _cidr_field(cls, value: str) -> str:
        return _cidr(value) if value else value

    @model_validator(mode="after")
    def _egress_target(self) -> Self:
        if bool(self.cidr) == bool(self.namespace):
            raise ValueError("give exactly one of cidr (an address range outside the cluster) or namespace "
                             "(a member in this cluster): the egress policy lets the transfer pods reach only that")
        return self

    @property
    def port(self) -> int:
        return int(self.endpoint.rsplit(":", 1)[1])


class Ingress(_Values):
    """Expose the transfer port through an ingress controller that passes TLS through (mTLS ends in the pod)."""

    class_name: str = Field("nginx", description="the IngressClass")
    annotations: dict[str, str] = Field(
        default_factory=lambda: {"nginx.ingress.kubernetes.io/ssl-passthrough": "true",
                                 "nginx.ingress.kubernetes.io/backend-protocol": "GRPCS"},
        description="annotations of the Ingress; the defaults make ingress-nginx pass TLS through")


class Transfer(_Values):
    """The one port other members reach."""

    host: str = Field(..., description="DNS name (or IP) other members dial: the certificate's subject name")
    port: int = Field(9391, ge=1, le=65535, description="the port other members dial")
    expose: Literal["loadBalancer", "ingress"] = Field("loadBalancer", description="how the port leaves the cluster")
    load_balancer_source_ranges: list[str] = Field(
        default_factory=list, description="loadBalancer: only these ranges may connect (default: the peers' cidrs)")
    ingress: Ingress = Field(default_factory=lambda: Ingress())
    mailbox_memory_mb: int = Field(256, ge=1)
    spill_size: Quantity = Field("20Gi", description="emptyDir limit of spilled messages")

    @field_validator("load_balancer_source_ranges")
    @classmethod
    def _ranges(cls, values: list[str]) -> list[str]:
        return [_cidr(v) for v in values]


class InternalDatabase(_Values):
    """A MariaDB StatefulSet in the member's namespace (trials, small members)."""

    storage_class: str = Field("", description="storage class of its volume (empty: the cluster default)")
    size: Quantity = "10Gi"
    image: str = "mariadb:11.4"


class ExternalDatabase(_Values):
    """A MySQL/MariaDB the member runs itself."""

    url: str = Field(..., description="mysql+aiomysql://user@host:3306/db; the password comes from password_file")
    cidr: str = Field(..., description="address range of the database: the scheduler's and executor's egress rule")
    password_file: str = Field("", description="file holding the password (read at init; empty: the URL has none)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^mysql\+aiomysql://[^:@/]+@[^/]+/[A-Za-z0-9_]+$", value):
            raise ValueError("must be mysql+aiomysql://user@host:port/database, without a password "
                             "(give password_file instead)")
        return value

    @field_validator("cidr")
    @classmethod
    def _cidr_field(cls, value: str) -> str:
        return _cidr(value)

    @property
    def port(self) -> int:
        host = self.url.split("@", 1)[1].split("/", 1)[0]
        return int(host.rsplit(":", 1)[1]) if ":" in host else 3306


class Database(_Values):
    """Where the member's database lives."""

    mode: Literal["internal", "external"] = "internal"
    internal: InternalDatabase = Field(default_factory=lambda: InternalDatabase())
    external: ExternalDatabase | None = None

    @model_validator(mode="after")
    def _external_given(self) -> Self:
        if self.mode == "external" and self.external is None:
            raise ValueError("mode external needs an external section (url, cidr)")
        return self


class Storage(_Values):
    """The volume of data sets, models and task files (ReadWriteMany: several pods mount it)."""

    storage_class: str = Field("", description="a class offering ReadWriteMany (NFS, CephFS, ...); empty: default")
    size: Quantity = "50Gi"


class Spark(_Values):
    """Where tasks run and how much of the cluster this member may take."""

    master: str = Field("k8s://https://kubernetes.default.svc", description="k8s://... or spark://host:port")
    master_cidr: str = Field("", description="spark:// masters and the Kubernetes API: the executor's egress range")
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    executor_cores: int = Field(1, ge=1, le=64)
    executor_instances: int = Field(2, ge=1, le=1000)
    cores_max: int = Field(0, ge=0, description="spark.cores.max: this member's cap on a shared cluster (0: none)")
    slots: int = Field(4, ge=1, le=256, description="tasks the executor runs at once")

    @field_validator("master")
    @classmethod
    def _master(cls, value: str) -> str:
        if not value.startswith(("k8s://", "spark://")):
            raise ValueError("must be k8s://https://... (Spark executor pods) or spark://host:port (a Spark cluster)")
        return value

    @field_validator("driver_memory", "executor_memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not SPARK_MEMORY.match(value):
            raise ValueError("must be a Spark size such as 512m or 2g")
        return value

    @field_validator("master_cidr")
    @classmethod
    def _cidr_field(cls, value: str) -> str:
        return _cidr(value) if value else value


class Scheduler(_Values):
    replicas: int = Field(2, ge=1, le=16)


class Board(_Values):
    """The member's board (web pages over the scheduler's client API), inside the namespace only."""

    enabled: bool = Field(True, description="run the weft-board Deployment and Service")


class Serving(_Values):
    """The member's serving service (live predictions of published models), inside the namespace only."""

    enabled: bool = Field(True, description="run the weft-serving Deployment and Service")


class Monitoring(_Values):
    enabled: bool = Field(False, description="ServiceMonitors, alert rules and the Grafana dashboard")
    prometheus_namespace: str = Field("monitoring", description="namespace whose Prometheus scrapes the metrics")


class Values(_Values):
    """One member's deployment."""

    member: Member
    namespace: str = Field("", description="default weft-<member name>")
    images: Images = Field(default_factory=lambda: Images())
    peers: list[Peer] = Field(default_factory=list)
    transfer: Transfer
    database: Database = Field(default_factory=lambda: Database())
    storage: Storage = Field(default_factory=lambda: Storage())
    spark: Spark = Field(default_factory=lambda: Spark())
    scheduler: Scheduler = Field(default_factory=lambda: Scheduler())
    board: Board = Field(default_factory=lambda: Board())
    serving: Serving = Field(default_factory=lambda: Serving())
    monitoring: Monitoring = Field(default_factory=lambda: Monitoring())

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str) -> str:
        if value and not DNS_LABEL.match(value):
            raise ValueError("must be a DNS label: lowercase letters, digits, '-'")
        return value

    @model_validator(mode="after")
    def _peers_distinct(self) -> Self:
        ids = [peer.id for peer in self.peers]
        if len(set(ids)) != len(ids):
            raise ValueError(f"peers: a member id appears twice ({', '.join(sorted(i for i in ids if ids.count(i) > 1))})")
        if self.member.id in ids:
            raise ValueError(f"peers: {self.member.id} is this member itself")
        if self.spark.master.startswith("spark://") and not self.spark.master_cidr:
            raise ValueError("spark.master_cidr: a spark:// master needs the address range the executor may reach")
        return self

    @property
    def resolved_namespace(self) -> str:
        return self.namespace or f"weft-{self.member.name}"


def _camel_to_snake(data: Any) -> Any:
    """Accept `storageClass` as well as `storage_class`: values files are written in either style."""
    if isinstance(data, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower() if isinstance(k, str) and k not in _VERBATIM else k:
                (v if k in _VERBATIM else _camel_to_snake(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [_camel_to_snake(item) for item in data]
    return data


#: keys whose values are free-form maps kept as written (annotation names)
_VERBATIM = frozenset({"annotations"})


def parse_values(data: Any, source: str = "values") -> Values:
    if not isinstance(data, dict):
        raise ConfError(f"{source}: expected a mapping at the top level")
    try:
        return Values.model_validate(_camel_to_snake(data))
    except ValidationError as exc:
        raise ConfError(format_validation_error(source, exc)) from None


def load_values(path: str | Path) -> Values:
    """Read and check a values file; a bad value fails naming its field."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfError(f"cannot read values file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfError(f"values file {path} is not valid YAML: {exc}") from None
    values = parse_values(data, str(path))
    external = values.database.external
    if external is not None and external.password_file and not Path(external.password_file).is_absolute():
        # relative to the values file, so a member's directory can be moved as a whole
        external.password_file = str(Path(path).resolve().parent / external.password_file)
    return values
