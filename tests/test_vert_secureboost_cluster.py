"""VertSecureBoost over the CLUSTER federation: each member's messages go through its transfer service (TLS)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from kernel.computing import ComputingSession, local_session
from kernel.federation.base import Party, RoleTable
from kernel.security.paillier import WeakKeyWarning
from kernel.task_executor import TaskOptions, execute_task
from services.transfer.loopback_services import LocalCluster
from tests.test_vert_kit import VerticalJob, breast_split

COMPONENT = "vert_secureboost_0"
PARAMS = {"key_bits": 1024, "num_trees": 3, "max_depth": 3, "learning_rate": 0.3, "reg_lambda": 1.0,
          "max_bin": 32, "min_child_weight": 1e-3}


@pytest.fixture()
def computing() -> Iterator[ComputingSession]:
    session = local_session(num_partitions=2)
    yield session
    session.stop()


def test_training_and_prediction_over_transfer_services(tmp_path: Path, computing: ComputingSession) -> None:
    # Prepare: a promoter and a provider, each member with its own transfer service.
    split = breast_split([range(0, 10), range(10, 30)])
    job = VerticalJob(tmp_path / "job", providers=1)
    job.upload("train", split.train)
    job.upload("test", split.test)
    session_id = f"{job.job.job_id}_{COMPONENT}"
    results: dict[Party, dict[str, Any]] = {}
    errors: dict[Party, BaseException] = {}

    # Every message between the members goes direct (the task to the peer's service, with a ticket).
    with LocalCluster(tmp_path / "cluster", [m.member_id for m in job.members],
                      transfer={"direct_min_bytes": 1}) as cluster, warnings.catch_warnings():
        warnings.simplefilter("ignore", WeakKeyWarning)
        cluster.register_session(session_id, [party for party, _ in job.parties()])

        def work(party: Party, root: Path) -> None:
            data = {name: {"namespace": "test", "name": name} for name in ("train", "test")}
            conf = job.job.conf("VertSecureBoost", party,
                                {"data": {"train_data": ["args.train"], "validate_data": ["args.test"]}},
                                {"data": ["train"], "model": ["model"]}, PARAMS, None, data)
            conf["job_parameters"]["work_mode"] = "CLUSTER"
            options = TaskOptions(job_id=job.job.job_id, component_name=COMPONENT, task_id=f"{COMPONENT}_{party.role}",
                                  role=party.role, member_id=party.member_id, session_id=session_id,
                                  storage_root=root, get_timeout=120.0)
            federation = cluster[party.member_id].federation(session_id, party,
                                           RoleTable.from_conf(conf["role"]))
            try:
                results[party] = execute_task(conf, options, federation=federation, computing=computing)
            except BaseException as exc:  # reported below, per party
                errors[party] = exc

        # Execute
        threads = [threading.Thread(target=work, args=(party, member.root)) for party, member in job.parties()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(300)

        # Assert
        assert not errors, errors
        promoter, provider = job.promoter.member_id, job.members[1].member_id
        sent = {peer.member_id: peer for peer in cluster[promoter].stats().peers}
        received = {peer.member_id: peer for peer in cluster[provider].stats().peers}
        assert received[promoter].messages_in >= 1  # stored at the provider's service ...
        assert provider not in sent or sent[provider].messages_out == 0  # ... never forwarded by the promoter's
    predictions = job.output(job.promoter, computing, COMPONENT, "train")
    rows = predictions[predictions["type"] == "validate"].sort_values("id")
    reference = HistGradientBoostingClassifier(max_iter=3, max_depth=3, learning_rate=0.3, max_leaf_nodes=None,
                                               min_samples_leaf=1, l2_regularization=1.0, max_bins=32,
                                               early_stopping=False).fit(split.x_train, split.y_train)
    order = np.argsort(split.test[0]["id"].to_numpy())
    np.testing.assert_allclose(rows["predict_score"].to_numpy(), reference.predict_proba(split.x_test)[order, 1],
                               atol=1e-4)
