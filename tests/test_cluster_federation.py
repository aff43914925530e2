"""The CLUSTER federation client: table streaming helpers, same-member delivery, the seed conf over TLS."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from kernel.errors import FederationError, FederationTimeout, InvalidArgument
from kernel.federation.base import Party, RoleTable
from kernel.federation.cluster import ClusterFederation
from kernel.storage import DataStore
from services.transfer.loopback_services import LocalCluster

A, B, C = "a" * 32, "b" * 32, "c" * 32
PROMOTER, PROVIDER, ARBITER = Party("promoter", A), Party("provider", B), Party("arbiter", C)
ARBITER_AT_A = Party("arbiter", A)
ROLES = RoleTable({"promoter": (A,), "provider": (B,), "arbiter": (C, A)})
STATS_VAR = "DistributionTransferVariable.local_statistics"  # promoter|provider -> arbiter
EDGES_VAR = "DistributionTransferVariable.bin_edges"  # arbiter -> promoter|provider
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    # Every message of a size known in advance goes direct (the task to the peer's service, with a ticket).
    with LocalCluster(tmp_path_factory.mktemp("members"), [A, B, C], transfer={"direct_min_bytes": 1}) as members:
        yield members


@pytest.fixture()
def session(cluster: LocalCluster) -> str:
    session_id = f"s-{uuid.uuid4().hex[:8]}"
    cluster.register_session(session_id, [PROMOTER, PROVIDER, ARBITER, ARBITER_AT_A])
    return session_id


def federation(cluster: LocalCluster, session_id: str, party: Party) -> ClusterFederation:
    return cluster[party.member_id].federation(session_id, party, ROLES)


def sample_table(rows: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"id": np.arange(rows, dtype=np.int64), "x": rng.random(rows),
                     "name": [f"u{i}" for i in range(rows)]})


def test_a_one_pass_batch_stream_fans_out_to_every_party(cluster: LocalCluster, session: str) -> None:
    # Prepare: a generator can be read only once, yet two parties must get it.
    table = sample_table(300_000, seed=1)
    sender = federation(cluster, session, ARBITER)

    def batches() -> Iterator[pa.RecordBatch]:
        yield from table.to_batches(max_chunksize=50_000)

    # Execute
    with futures.ThreadPoolExecutor(2) as pool:
        received = [pool.submit(federation(cluster, session, party).get_table, EDGES_VAR, "fit", ARBITER, 30)
                    for party in (PROMOTER, PROVIDER)]
        sender.remote_table(EDGES_VAR, "fit", batches(), [PROMOTER, PROVIDER])
        tables = [future.result(timeout=60) for future in received]

    # Assert
    assert all(t.equals(table) for t in tables)


def test_batches_arrive_one_at_a_time_from_a_reader(cluster: LocalCluster, session: str) -> None:
    # Prepare
    table = sample_table(20_000, seed=2)
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(max_chunksize=5_000))

    # Execute
    federation(cluster, session, PROMOTER).remote_table(STATS_VAR, "fit", reader, [ARBITER])
    batches = list(federation(cluster, session, ARBITER).iter_table(STATS_VAR, "fit", PROMOTER, 20))

    # Assert
    assert [b.num_rows for b in batches] == [5_000] * 4
    assert pa.Table.from_batches(batches).equals(table)


def test_an_empty_table_keeps_its_schema(cluster: LocalCluster, session: str, tmp_path: Path) -> None:
    # Prepare
    empty = sample_table(0)

    # Execute
    federation(cluster, session, PROMOTER).remote_table(STATS_VAR, "fit.a", empty, [ARBITER])
    federation(cluster, session, PROMOTER).remote_table(STATS_VAR, "fit.b", empty, [ARBITER])
    receiver = federation(cluster, session, ARBITER)
    got = receiver.get_table(STATS_VAR, "fit.a", PROMOTER, 20)
    rows = receiver.save_table(STATS_VAR, "fit.b", PROMOTER, tmp_path / "empty.parquet", 20)

    # Assert
    assert got.num_rows == 0 and got.schema.equals(empty.schema)
    assert rows == 0 and (tmp_path / "empty.parquet").exists()


def test_a_message_to_another_role_of_the_same_member_stays_local(cluster: LocalCluster, session: str) -> None:
    # Prepare
    before = cluster[A].stats()

    # Execute
    federation(cluster, session, PROMOTER).remote(STATS_VAR, "fit", {"n": 3}, [ARBITER_AT_A])
    got = federation(cluster, session, ARBITER_AT_A).get(STATS_VAR, "fit", [PROMOTER], 20)

    # Assert
    assert got == [{"n": 3}]
    assert list(cluster[A].stats().peers) == list(before.peers)  # no traffic to a peer member


def test_misuse_of_the_table_helpers_is_refused(cluster: LocalCluster, session: str) -> None:
    # Prepare
    sender = federation(cluster, session, PROMOTER)
    receiver = federation(cluster, session, ARBITER)
    sender.remote(STATS_VAR, "fit.object", [1, 2], [ARBITER])
    sender.remote_table(STATS_VAR, "fit.twice", sample_table(3), [ARBITER])
    mixed = [sample_table(2).to_batches()[0], pa.record_batch({"other": [1]})]

    # Execute / Assert
    with pytest.raises(FederationError, match="not a table message"):
        receiver.get_table(STATS_VAR, "fit.object", PROMOTER, 20)
    with pytest.raises(FederationError, match="already sent"):
        sender.remote_table(STATS_VAR, "fit.twice", sample_table(3), [ARBITER])
    with pytest.raises(InvalidArgument, match="schema"):
        sender.remote_table(STATS_VAR, "fit.mixed", iter(mixed), [ARBITER])
    with pytest.raises(InvalidArgument, match="empty"):
        sender.remote_table(STATS_VAR, "fit.none", iter([]), [ARBITER])


# ---- the seed conf as task processes over two members ------------------------------------------

SEED_DATA = "data_set_8998201f93bd4420a8c8a8d56e024442"


def seed_conf(role: str, member: str) -> dict[str, Any]:
    return copy.deepcopy({
        "initiator": {"member_id": A, "role": "promoter"},
        "job_parameters": {"db_type": "PARQUET", "backend": 0, "work_mode": 1, "model_id": f"promoter-{A}#",
                           "model_version": "v1"},
        "role": {"arbiter": [C], "provider": [], "promoter": [A]},
        "local": {"member_id": member, "role": role},
        "job_args": {"data": {"train_data": {"name": SEED_DATA, "namespace": "wefe_data"}}},
        "input": {"data": {"data": ["args.train_data"]}},
        "output": {"data": ["data_name"], "model": ["model_name"]},
        "DistributionParam": {},
        "module": "Distribution",
    })


def upload(root: Path) -> None:
    rng = np.random.default_rng(7)
    lines = ["id,y,x0,x1"] + [f"u{i},{int(rng.integers(0, 2))},{rng.normal():.6f},{i}" for i in range(400)]
    csv = root / "upload.csv"
    root.mkdir(parents=True, exist_ok=True)
    csv.write_text("\n".join(lines) + "\n")
    DataStore(str(root / "data")).import_csv("wefe_data", SEED_DATA, str(csv), id_column="id", label_column="y")


def launch(cluster: LocalCluster, root: Path, role: str, member: str, session_id: str) -> subprocess.Popen[str]:
    conf_path = root / f"{role}.json"
    conf_path.write_text(json.dumps(seed_conf(role, member)))
    command = [
        sys.executable, "-m", "kernel.task_executor", "-j", "job1", "-n", "distribution_0",
        "-t", f"job1_distribution_0_{role}", "-r", role, "-m", member, "-s", session_id,
        "-c", str(conf_path), "--storage-root", str(root), "--transfer-endpoint", cluster[member].internal,
    ]
    # The task credential the executor would hand the task (for the job register_session names).
    env = {**os.environ, "WEFT_GET_TIMEOUT_S": "120", "WEFT_TASK_CREDENTIAL": cluster[member].task_credential(session_id)}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_seed_conf_runs_in_cluster_mode_between_two_members(cluster: LocalCluster, tmp_path: Path) -> None:
    # Prepare: promoter at member A, arbiter at member C, each with its own storage root.
    session_id = f"job1-{uuid.uuid4().hex[:6]}"
    cluster.register_session(session_id, [PROMOTER, ARBITER])
    roots = {A: tmp_path / "a", C: tmp_path / "c"}
    for root in roots.values():
        upload(root)

    # Execute
    processes = {role: launch(cluster, roots[member], role, member, session_id)
                 for role, member in (("promoter", A), ("arbiter", C))}
    outcomes = {role: (p.wait(timeout=300), p.stderr.read() if p.stderr else "") for role, p in processes.items()}

    # Assert
    for role, (code, stderr) in outcomes.items():
        assert code == 0, f"{role} failed: {stderr[-2000:]}"
    metrics_file = roots[C] / "tasks" / "job1" / "distribution_0" / "arbiter" / C / "metrics.jsonl"
    summary = [json.loads(line) for line in metrics_file.read_text().splitlines()][-1]["points"]
    assert summary["x1"]["count"] == 400 and summary["x1"]["max"] == 399
    at_a = {peer.member_id: peer for peer in cluster[A].stats().peers}
    at_c = {peer.member_id: peer for peer in cluster[C].stats().peers}
    assert at_a[C].messages_in >= 1 and at_c[A].messages_in >= 1


def test_a_failing_batch_source_stores_nothing_anywhere(cluster: LocalCluster, session: str) -> None:
    # Prepare: the source breaks after its first batch, while fanning out to two parties.
    def breaking() -> Iterator[pa.RecordBatch]:
        yield sample_table(1000).to_batches()[0]
        raise ValueError("disk read failed")

    # Execute
    with pytest.raises(ValueError, match="disk read failed"):
        federation(cluster, session, ARBITER).remote_table(EDGES_VAR, "fit", breaking(), [PROMOTER, PROVIDER])

    # Assert
    for party in (PROMOTER, PROVIDER):
        with pytest.raises(FederationTimeout):
            federation(cluster, session, party).get_table(EDGES_VAR, "fit", ARBITER, 0.3)
