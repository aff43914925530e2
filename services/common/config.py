"""A member's configuration: one YAML file, every key documented, `WEFT_...` variables override (pydantic-settings)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

from kernel.base_param import deep_merge, format_validation_error
from kernel.errors import ConfError

ENV_PREFIX = "WEFT_"
ENV_NESTED_DELIMITER = "__"
MEMBER_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TlsConfig(_Section):
    """Mutual TLS material of this member (PEM files)."""

    ca_file: str = Field("", description="the federation CA certificate every member trusts")
    cert_file: str = Field("", description="this member's certificate (its CN is the member id)")
    key_file: str = Field("", description="this member's private key")
    task_cert_file: str = Field(
        "", description="the member's task certificate (CN <member_id>.task, from the federation CA; `weft certs "
                        "issue` writes it): the transfer service hands it to the member's tasks so they send large "
                        "messages straight to the peer with a delivery ticket (empty: tasks send through the "
                        "transfer service)")
    task_key_file: str = Field("", description="the task certificate's private key")

    @property
    def enabled(self) -> bool:
        return bool(self.ca_file and self.cert_file and self.key_file)


class PeerConfig(_Section):
    """Another member this one talks to."""

    endpoint: str = Field(..., description="host:port of the peer's external transfer listener")
    name: str = Field("", description="a readable name for logs")


class ClientAuthConfig(_Section):
    """Who may call the scheduler's client API (API tokens, client certificates, roles)."""

    enabled: bool = Field(True, description="check every client call's token or certificate and role; off lets "
                                            "anyone who reaches the port do anything (benchmarks only)")
    bootstrap_token: str = Field("", description="an admin API token (weft_<id>.<secret>) to store, hashed, for "
                                                 "the user admin at start: how a deployment hands over its first "
                                                 "admin from a secret")
    bootstrap_token_file: str = Field("", description="where a member with no user yet writes the first admin's "
                                                      "token, mode 0600 (default <data_dir>/admin.token)")
    token_ttl_days: float = Field(90.0, ge=0, description="lifetime of tokens issued by 'weft users add' and "
                                                         "IssueToken unless the call names one (0: until revoked)")
    token_cache_s: float = Field(2.0, ge=0, le=60, description="how long a verified API token is trusted without "
                                                            "reading its row again (0: read at every call); a "
                                                            "revocation through this scheduler applies at once, one "
                                                            "made at another replica within this time")
    tls_listen: str = Field("", description="host:port of a second, TLS listener of the scheduler where clients "
                                            "may also authenticate with a client certificate (empty: off)")
    tls_cert_file: str = Field("", description="the scheduler's server certificate on tls_listen (PEM)")
    tls_key_file: str = Field("", description="its private key (PEM)")
    client_ca_file: str = Field("", description="the CA whose user certificates ('weft certs issue-user') are "
                                                "accepted on tls_listen")


class SchedulerConfig(_Section):
    """The scheduler service."""

    listen: str = Field("127.0.0.1:9370", description="host:port of SchedulerService (clients)")
    executors: list[str] = Field(default_factory=lambda: ["127.0.0.1:9380"],
                                 description="executor endpoints; tasks go to the least loaded")
    consumers: int = Field(1, ge=1, le=64, description="queue consumer loops in this process")
    lease_seconds: float = Field(30.0, gt=0, description="how long a claimed action stays claimed")
    auto_retries: int = Field(0, ge=0, le=10, description="times a failed task is retried")
    metrics_listen: str = Field("", description="host:port of the Prometheus /metrics endpoint (empty: off)")
    peer_call_timeout_s: float = Field(
        30.0, gt=0, description="deadline of one call to a peer's scheduler (relayed by the transfer services) "
                                "and of session calls to this member's transfer service; failed calls are retried")
    executor_call_timeout_s: float = Field(
        10.0, gt=0, description="deadline of one ListTasks or StopTask call to an executor")
    auth: ClientAuthConfig = Field(default_factory=lambda: ClientAuthConfig())


class SparkConfig(_Section):
    """Defaults for tasks launched with spark-submit; a job's parameters override them."""

    master: str = Field("local[2]", description="local[N], spark://host:port or k8s://...")
    driver_memory: str = Field("2g", description="spark.driver.memory")
    executor_memory: str = Field("2g", description="spark.executor.memory")
    executor_cores: int = Field(1, ge=1, description="spark.executor.cores")
    cores_max: int = Field(
        2, ge=0, description="spark.cores.max: the most cores one task's application holds on a standalone "
                             "cluster, so members sharing it do not starve each other (0: no cap); a job may "
                             "ask for fewer, never more")
    max_executors: int = Field(
        2, ge=0, description="cap on --num-executors (spark.executor.instances) and "
                             "spark.dynamicAllocation.maxExecutors for Kubernetes and YARN (0: no cap)")
    executor_wait_s: float = Field(
        300.0, gt=0, description="a task whose Spark work waits this long with no executor (no free cores "
                                 "on the cluster, or its executors lost) fails, naming the master and the member")
    warm_on_cluster: bool = Field(
        False, description="with a non-local master, the executor's warm_pool workers are Spark applications "
                           "started at the master ahead of their tasks (task start in about a second); each "
                           "idle one holds up to cores_max cores of the cluster")
    extra_conf: dict[str, str] = Field(
        default_factory=dict, description="more --conf key=value pairs, set by the operator: they win over a "
                                          "job's conf and are not limited to the keys a job may set")


class ExecutorConfig(_Section):
    """The executor service."""

    listen: str = Field("127.0.0.1:9380", description="host:port of ExecutorService")
    mode: Literal["local", "spark"] = Field("local", description="launch tasks as local processes or spark-submit")
    slots: int = Field(2, ge=1, le=256, description="tasks running at once; more wait in a queue")
    warm_pool: int = Field(1, ge=0, le=32, description="pre-started workers that take a task at once")
    heartbeat_timeout_s: float = Field(30.0, gt=0, description="a task silent this long is failed")
    restart_wait_s: float = Field(
        90.0, ge=5, description="how long the scheduler waits for an executor that went away (a restart re-attaches "
                                "its running tasks) before it fails the executor's tasks; a task whose executor "
                                "stays away this long ends itself")
    log_max_bytes: int = Field(50 * 1024 * 1024, ge=1024, description="cap of each task log file")
    first_heartbeat_grace_s: float = Field(
        120.0, gt=0, description="until its first heartbeat a freshly started task gets at least this long (imports, "
                                 "JVM start-up) before it is failed as silent")
    stop_grace_s: float = Field(
        3.0, ge=0, description="a task being stopped gets this long after SIGTERM before its process group is killed")
    worker_ready_timeout_s: float = Field(
        180.0, gt=0, description="a warm pool worker has this long to import the kernel (and start its Spark "
                                 "session) and report ready; past it the worker is replaced")
    ended_task_retention_s: float = Field(
        24 * 3600.0, gt=0, description="ended tasks stay listed (and are loaded back after a restart) this long; "
                                       "their files stay on disk")
    metrics_listen: str = Field("", description="host:port of the Prometheus /metrics endpoint (empty: off)")
    spark: SparkConfig = Field(default_factory=lambda: SparkConfig())


class TransferConfig(_Section):
    """The transfer service."""

    internal_listen: str = Field("127.0.0.1:9390", description="task processes and the scheduler")
    external_listen: str = Field("0.0.0.0:9391", description="other members (mutual TLS)")
    mailbox_memory_mb: int = Field(256, ge=1, description="message bytes kept in memory before spilling")
    spill_dir: str = Field("", description="where spilled messages go (default <data_dir>/spill)")
    message_ttl_s: float = Field(24 * 3600.0, gt=0, description="unread messages expire after this")
    mailbox_session_max_mb: int = Field(
        2048, ge=1, description="unread message bytes one federation session may hold in the mailbox; a delivery "
                                "past it is refused with RESOURCE_EXHAUSTED")
    mailbox_session_max_messages: int = Field(
        10_000, ge=1, description="unread messages one federation session may hold in the mailbox")
    mailbox_peer_max_mb: int = Field(
        4096, ge=1, description="unread message bytes one sending member may hold in the mailbox, all sessions "
                                "together")
    mailbox_peer_max_messages: int = Field(
        50_000, ge=1, description="unread messages one sending member may hold in the mailbox, all sessions together")
    window_mb: int = Field(8, ge=1, description="bytes in flight per stream")
    data_lane_port: int = Field(
        0, ge=-1, le=65535,
        description="the data lane, a plain-socket path for tasks' frame streams that costs far less CPU than "
                    "gRPC: 0 puts it on an abstract Unix socket when internal_listen is on loopback (Linux) and "
                    "leaves it off otherwise; a port puts it on TCP at internal_listen's host; -1 turns it off "
                    "(tasks then use gRPC)")
    lane_record_timeout_s: float = Field(
        30.0, gt=0, description="the data lane closes a connection whose opening record, or a record whose length "
                                "arrived, is not complete within this many seconds")
    lane_idle_timeout_s: float = Field(
        300.0, gt=0, description="the data lane closes a send connection that sends no next record for this long")
    receive_timeout_s: float = Field(
        600.0, gt=0, description="a Receive whose request names no timeout waits this long for its message")
    control_timeout_s: float = Field(
        60.0, gt=0, description="a relayed control call whose request names no timeout may take this long")
    deliver_deadline_s: float = Field(
        120.0, gt=0, description="forwarding a message to a peer is retried while the peer is unavailable (a "
                                 "restart, say) for this long before the send fails")
    lane_max_connections: int = Field(
        1024, ge=1, description="data lane connections open at once; more are answered RESOURCE_EXHAUSTED")
    metrics_listen: str = Field("", description="host:port of the Prometheus /metrics endpoint (empty: off)")
    direct_min_bytes: int = Field(
        8 * 1024 * 1024, ge=0,
        description="a task sends a message of at least this many bytes straight to the destination member's "
                    "external listener, with its member's task certificate and a delivery ticket, instead of "
                    "through this service (needs tls.task_cert_file); 0 turns the direct path off")
    ticket_ttl_s: float = Field(
        300.0, ge=120, le=3600,
        description="lifetime of a delivery ticket this service signs for a task's direct path (a task asks for "
                    "a new one a minute before its ticket expires; peers refuse a ticket valid for longer than an hour)")
    allocator_keep_mb: int = Field(
        128, ge=0, description="free heap the process keeps for reuse by chunk buffers instead of returning "
                               "it to the kernel (glibc; 0 leaves the allocator at its defaults)")


class ServingConfig(_Section):
    """The serving service: live predictions of published models."""

    listen: str = Field("127.0.0.1:9400", description="host:port of ServingService (this member's users) and "
                                                      "ServingPeerService (peer calls its transfer service relays)")
    provider_deadline_ms: int = Field(
        1000, ge=1, description="how long the promoter waits for a provider's part of a prediction unless the "
                                "model was published with its own deadline; past it the request fails naming "
                                "the provider")
    batch_size: int = Field(512, ge=1, le=100_000, description="ids per provider call in BatchPredict")
    feature_refresh_s: float = Field(
        5.0, ge=0, description="how often a provider checks whether its feature table was uploaded again "
                               "(0: at every request)")
    token_cache_s: float = Field(
        2.0, ge=0, description="a user's API token that verified is trusted again for this many seconds without a "
                               "database read (a revocation reaches the serving service within it; 0: every call "
                               "reads the database)")
    metrics_listen: str = Field("", description="host:port of the Prometheus /metrics endpoint (empty: off)")


class BoardConfig(_Section):
    """The member's board: web pages over its scheduler's client API (`python -m services.board`)."""

    listen: str = Field("127.0.0.1:9360", description="host:port of the board's HTTP listener")
    scheduler: str = Field("", description="host:port of the scheduler's client API the board calls "
                                           "(default: scheduler.listen, a wildcard host read as 127.0.0.1)")
    serving: str = Field("", description="host:port of the serving service the board publishes, rolls back and "
                                         "unpublishes models through (default: serving.listen, a wildcard host "
                                         "read as 127.0.0.1)")
    session_key_file: str = Field("", description="key that signs and encrypts the session cookie (created "
                                                  "mode 0600 when missing; default <data_dir>/board.key)")
    session_ttl_s: int = Field(8 * 3600, ge=60, description="a login lasts this long, then the login form again")
    secure_cookie: bool = Field(False, description="mark the session cookie Secure (set it when the board is "
                                                   "reached over HTTPS, through a proxy that terminates TLS)")


class MemberConfig(_Section):
    """Everything one member's three services need."""

    member_id: str = Field(..., description="32 lowercase hex characters, also the certificate CN")
    name: str = Field("", description="a readable name")
    data_dir: str = Field("weft-data", description="root of this member's files")
    storage_root: str = Field("", description="data sets, models and task files (default <data_dir>/storage)")
    database_url: str = Field("", description="sqlite+aiosqlite:///... or mysql+aiomysql://... "
                                              "(default SQLite under data_dir)")
    spool_dir: str = Field("", description="where tasks of work_mode STANDALONE jobs exchange messages; members "
                                           "on one machine that name the same directory can run such jobs "
                                           "together (default <storage_root>/spool)")
    internal_key_file: str = Field(
        "", description="the member-internal key its scheduler, executor and transfer service sign their calls "
                        "to each other with (hex, mode 0600; default <data_dir>/internal.key); services refuse "
                        "to start without it")
    tls: TlsConfig = Field(default_factory=lambda: TlsConfig())
    scheduler: SchedulerConfig = Field(default_factory=lambda: SchedulerConfig())
    executor: ExecutorConfig = Field(default_factory=lambda: ExecutorConfig())
    transfer: TransferConfig = Field(default_factory=lambda: TransferConfig())
    serving: ServingConfig = Field(default_factory=lambda: ServingConfig())
    board: BoardConfig = Field(default_factory=lambda: BoardConfig())
    peers: dict[str, PeerConfig] = Field(default_factory=dict, description="member id -> peer")

    @field_validator("member_id")
    @classmethod
    def _member_id_format(cls, value: str) -> str:
        if not MEMBER_ID_PATTERN.match(value):
            raise ValueError("must be 32 lowercase hex characters")
        return value

    @field_validator("peers")
    @classmethod
    def _peer_ids(cls, peers: dict[str, PeerConfig]) -> dict[str, PeerConfig]:
        for member_id in peers:
            if not MEMBER_ID_PATTERN.match(member_id):
                raise ValueError(f"peer id {member_id!r} must be 32 lowercase hex characters")
        return peers

    def resolved_storage_root(self) -> Path:
        return Path(self.storage_root) if self.storage_root else Path(self.data_dir) / "storage"

    def resolved_spool_dir(self) -> Path:
        return Path(self.spool_dir) if self.spool_dir else self.resolved_storage_root() / "spool"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{Path(self.data_dir).resolve() / 'weft.db'}"

    def resolved_internal_key_file(self) -> Path:
        return Path(self.internal_key_file) if self.internal_key_file else Path(self.data_dir) / "internal.key"

    def resolved_spill_dir(self) -> Path:
        return Path(self.transfer.spill_dir) if self.transfer.spill_dir else Path(self.data_dir) / "spill"


class _MemberEnvironment(MemberConfig, BaseSettings):
    """MemberConfig's fields as pydantic-settings reads them from `WEFT_...` variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, case_sensitive=False, extra="forbid",
    )


class _EnvironmentSource(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping of variables.

    A list or mapping value is read as YAML (JSON is YAML too), as members wrote them before:
    `WEFT_SCHEDULER__EXECUTORS='[10.0.0.5:9380, 10.0.0.6:9380]'`.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(_MemberEnvironment)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._environ, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        return yaml.safe_load(value) if isinstance(value, str) else value


def environment_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """The configuration keys `environ` sets: `WEFT_SCHEDULER__LISTEN=...` sets scheduler.listen
    (`__` separates levels; the prefix is in capitals, the rest in either case; other `WEFT_`
    variables are left alone)."""
    return _EnvironmentSource({k: v for k, v in environ.items() if k.startswith(ENV_PREFIX)})()


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None,
                overrides: dict[str, Any] | None = None) -> MemberConfig:
    """Read a member's YAML (or none), apply `WEFT_...` variables, then `overrides`."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfError(f"cannot read config {path}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfError(f"config {path} is not valid YAML: {exc}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfError(f"config {path}: expected a mapping at the top level")
        values = loaded or {}
    values = deep_merge(values, environment_values(os.environ if environ is None else environ))
    if overrides:
        values = deep_merge(values, overrides)
    try:
        return MemberConfig.model_validate(values)
    except ValidationError as exc:
        raise ConfError(format_validation_error("config", exc)) from None


def dump_config(config: MemberConfig) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
