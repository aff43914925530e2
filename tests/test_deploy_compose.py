"""The docker-compose trial: it references only what it defines, keeps the two members apart
but for their transfer services, runs a serving service and a board per member, and every member
config loads with the real loader."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import MemberConfig, load_config

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
MEMBERS = ("a", "b")
WEFT_SERVICES = ("scheduler", "executor", "transfer")
EXTERNAL_PORT = 9391
SHARED_NETWORK = "federation"
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*))?\}")

Obj = dict[str, Any]


def interpolate(value: str) -> str:
    """Compose's `${NAME:-default}` with no variable set: the default, or an error if none."""
    def default(match: re.Match[str]) -> str:
        assert match.group(2) is not None, f"${{{match.group(1)}}} has no default: the trial would need it set"
        return match.group(2)
    return VARIABLE.sub(default, value)


@pytest.fixture(scope="module")
def compose() -> Obj:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def networks_of(service: Obj) -> dict[str, Any]:
    networks = service.get("networks", {})
    return dict.fromkeys(networks, {}) if isinstance(networks, list) else {k: v or {} for k, v in networks.items()}


def named_volumes_of(service: Obj) -> dict[str, str]:
    """named volume -> mount path (bind mounts left out)."""
    mounts: dict[str, str] = {}
    for entry in service.get("volumes", []):
        source, target = entry.split(":")[:2]
        if not source.startswith((".", "/")):
            mounts[source] = target
    return mounts


def member_config(compose: Obj, name: str) -> MemberConfig:
    service = compose["services"][name]
    bind = next(e for e in service["volumes"] if e.split(":")[1] == "/etc/weft/member.yaml")
    path = (COMPOSE.parent / bind.split(":")[0]).resolve()
    environ = {key: interpolate(str(value)) for key, value in service.get("environment", {}).items()}
    return load_config(path, environ=environ)


def test_compose_references_only_what_it_defines(compose: Obj) -> None:
    # Prepare
    services = compose["services"]
    defined_volumes = set(compose["volumes"])
    defined_networks = set(compose["networks"])
    used_volumes: set[str] = set()
    used_networks: set[str] = set()
    # Execute
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on undefined service {dependency}"
        used_volumes |= set(named_volumes_of(service))
        used_networks |= set(networks_of(service))
        for entry in service.get("volumes", []):
            source = entry.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
    # Assert: nothing undefined is used, nothing defined is left unused
    assert used_volumes == defined_volumes
    assert used_networks == defined_networks


def test_only_the_transfer_services_share_a_network(compose: Obj) -> None:
    # Prepare
    services = compose["services"]
    # Execute
    on_shared = {name for name, s in services.items() if SHARED_NETWORK in networks_of(s)}
    # Assert
    assert on_shared == {f"{m}-transfer" for m in MEMBERS}
    for name, service in services.items():
        if name == "certs":
            assert service["network_mode"] == "none"
            continue
        member = name.split("-")[0]
        assert set(networks_of(service)) - {SHARED_NETWORK} == {f"member-{member}"}, name
        assert all(v.startswith(f"member-{member}-") for v in named_volumes_of(service)), name


def test_no_port_faces_another_member_but_the_external_transfer_port(compose: Obj) -> None:
    for m in MEMBERS:
        transfer = compose["services"][f"{m}-transfer"]
        bind_address = transfer["networks"][f"member-{m}"]["ipv4_address"]
        subnet = compose["networks"][f"member-{m}"]["ipam"]["config"][0]["subnet"]
        config = member_config(compose, f"{m}-transfer")
        # the internal API and metrics bind only the member's own network address
        assert ipaddress.ip_address(bind_address) in ipaddress.ip_network(subnet)
        assert config.transfer.internal_listen == f"{bind_address}:9390"
        assert config.transfer.metrics_listen == f"{bind_address}:9392"
        # the external listener takes every interface, the federation network included
        assert config.transfer.external_listen == f"0.0.0.0:{EXTERNAL_PORT}"
    for name, service in compose["services"].items():
        for published in service.get("ports", []):
            # the local client reaches the schedulers and serving services, a browser the boards, on the
            # host's loopback; nothing else
            assert name.endswith(("-scheduler", "-serving", "-board")) and published.startswith("127.0.0.1:"), \
                f"{name}: {published}"


def test_member_configs_load_and_point_at_each_other(compose: Obj) -> None:
    # Execute
    configs = {(m, s): member_config(compose, f"{m}-{s}") for m in MEMBERS for s in WEFT_SERVICES}
    ids = {m: configs[(m, "scheduler")].member_id for m in MEMBERS}
    certs_script = compose["services"]["certs"]["command"][0]
    certs_mounts = named_volumes_of(compose["services"]["certs"])
    # Assert
    assert ids["a"] != ids["b"]
    for m in MEMBERS:
        other = next(x for x in MEMBERS if x != m)
        assert {configs[(m, s)].member_id for s in WEFT_SERVICES} == {ids[m]}
        scheduler = configs[(m, "scheduler")]
        assert scheduler.peers[ids[other]].endpoint == f"{other}-transfer:{EXTERNAL_PORT}"
        assert scheduler.database_url.startswith("mysql+aiomysql://") and f"@{m}-db:3306/" in scheduler.database_url
        assert scheduler.scheduler.executors == [f"{m}-executor:9380"]
        # the certs service issues this member's certificate into the volume its transfer mounts
        tls_volume = next(v for v, path in named_volumes_of(compose["services"][f"{m}-transfer"]).items()
                          if path == "/etc/weft/tls")
        assert f"--member-id {ids[m]}" in certs_script
        assert f"--out {certs_mounts[tls_volume]}" in certs_script
        tls = configs[(m, "transfer")].tls
        assert {Path(tls.ca_file).name, Path(tls.cert_file).name, Path(tls.key_file).name} == \
            {"ca.crt", f"{ids[m]}.crt", f"{ids[m]}.key"}
        assert all(Path(p).parent == Path("/etc/weft/tls") for p in (tls.ca_file, tls.cert_file, tls.key_file))


def test_services_wait_for_certificates_and_their_database(compose: Obj) -> None:
    for m in MEMBERS:
        for s in WEFT_SERVICES:
            depends = compose["services"][f"{m}-{s}"]["depends_on"]
            assert depends["certs"]["condition"] == "service_completed_successfully"
            if s != "transfer":
                assert depends[f"{m}-db"]["condition"] == "service_healthy"
            assert compose["services"][f"{m}-{s}"]["command"][:2] == ["serve", s]


def test_each_board_calls_its_own_members_scheduler_and_serving_service(compose: Obj) -> None:
    for m in MEMBERS:
        # Execute
        board = member_config(compose, f"{m}-board")
        service = compose["services"][f"{m}-board"]
        # Assert
        assert board.member_id == member_config(compose, f"{m}-scheduler").member_id
        assert board.board.scheduler == f"{m}-scheduler:9370" and board.board.listen == "0.0.0.0:9360"
        serving_port = member_config(compose, f"{m}-serving").serving.listen.rpartition(":")[2]
        assert board.board.serving == f"{m}-serving:{serving_port}"
        assert service["command"][:2] == ["serve", "board"]
        assert service["depends_on"][f"{m}-scheduler"]["condition"] == "service_healthy"


def test_each_serving_service_is_reached_through_its_own_transfer(compose: Obj) -> None:
    for m in MEMBERS:
        # Execute
        serving = member_config(compose, f"{m}-serving")
        transfer = member_config(compose, f"{m}-transfer")
        service = compose["services"][f"{m}-serving"]
        executor_volumes = named_volumes_of(compose["services"][f"{m}-executor"])
        # Assert: it binds its member's network, the transfer relays peers' calls to it by name and it
        # calls peers through that transfer; it reads the models the executor wrote and the member's users
        assert service["command"][:2] == ["serve", "serving"]
        assert serving.member_id == transfer.member_id
        assert serving.serving.listen == "0.0.0.0:9400" and transfer.serving.listen == f"{m}-serving:9400"
        assert serving.transfer.internal_listen == f"{m}-transfer:9390"
        assert f"@{m}-db:3306/" in serving.database_url
        assert Path(serving.internal_key_file).parent == Path("/etc/weft/internal")
        data = next(v for v, path in executor_volumes.items() if path == "/var/lib/weft")
        assert named_volumes_of(service)[data] == serving.data_dir
        assert service["depends_on"][f"{m}-scheduler"]["condition"] == "service_healthy"
        assert set(networks_of(service)) == {f"member-{m}"}


def test_executors_run_the_spark_image_and_the_rest_the_core_image(compose: Obj) -> None:
    # Prepare: the image each service runs, and the Dockerfile target that builds it
    targets = {interpolate(s["image"]): s["build"]["target"] for s in compose["services"].values() if "build" in s}
    # Execute
    images = {name: interpolate(s["image"]) for name, s in compose["services"].items()
              if s["image"].startswith("${WEFT")}
    # Assert
    for name, image in images.items():
        wanted = "spark" if name.endswith("-executor") else "core"
        assert targets[image] == wanted, f"{name} runs {image}, built from target {targets[image]}"
