"""Helpers shared by the horizontal component tests (this module holds no tests).

`HorizontalJob` runs one component at every data member and the arbiter through the real
task path (`execute_task`) over an in-process federation whose hub can record every
message, so a test can look at exactly what the arbiter received. `breast_rows` splits
scikit-learn's breast cancer rows between members (fixed, stratified).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from kernel.computing import ComputingSession
from kernel.federation.base import Party, RoleTable
from kernel.federation.codec import decode
from kernel.federation.inprocess import InProcessFederation, InProcessHub, MessageKey
from kernel.inprocess_run import PartyFailed
from kernel.runtime_conf import output_namespace
from kernel.task_executor import TaskOptions, execute_task
from tests.componentkit import Job, Member, make_members

SPLIT_SEED = 0
TEST_FRACTION = 0.3


class RecordingHub(InProcessHub):
    """An in-process hub that keeps a copy of every message put into it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[MessageKey, bytes]] = []

    def put(self, key: MessageKey, payload: bytes) -> None:
        self.sent.append((key, payload))
        super().put(key, payload)

    def received(self, name: str, dst_role: str) -> dict[tuple[str, Party], Any]:
        """Decoded messages named `name` sent to `dst_role`, by (tag, sender)."""
        return {(tag, src): decode(payload) for (_, var, tag, src, dst), payload in self.sent
                if var == name and dst.role == dst_role}


@dataclass
class BreastRows:
    """Breast cancer: a fixed stratified train/test split; the train rows dealt to members."""

    members: list[pd.DataFrame]
    test: list[pd.DataFrame]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def breast_rows(shares: list[int]) -> BreastRows:
    """Member i gets `shares[i]` parts of the training rows (stratified), and a slice of the test rows."""
    data = load_breast_cancer()
    x, y = data.data, data.target
    ids = np.array([f"p{i:04d}" for i in range(len(y))])
    train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=TEST_FRACTION,
                                           random_state=SPLIT_SEED, stratify=y)
    if len(shares) == 1:
        member_rows = [np.sort(train_idx)]
    else:
        folds = [part for _, part in StratifiedKFold(sum(shares), shuffle=True, random_state=SPLIT_SEED)
                 .split(train_idx, y[train_idx])]
        member_rows, start = [], 0
        for share in shares:
            member_rows.append(np.sort(np.concatenate([train_idx[f] for f in folds[start:start + share]])))
            start += share
    test_parts = np.array_split(test_idx, len(shares))

    def frame(rows: np.ndarray) -> pd.DataFrame:
        out = pd.DataFrame({"id": ids[rows], "y": y[rows]})
        for c in range(x.shape[1]):
            out[f"x{c}"] = x[rows, c]
        return out

    return BreastRows([frame(r) for r in member_rows], [frame(r) for r in test_parts],
                      x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def uniformity_p_values(words: np.ndarray) -> tuple[float, float]:
    """How uniform uint64 words look: KS p-value of words / 2**64 against U(0, 1), and the
    chi-square p-value of their 4-bit nibbles against 16 equally likely values."""
    from scipy.stats import chisquare, kstest

    values = np.asarray(words, dtype=np.uint64)
    ks = kstest(np.ldexp(values.astype(np.float64), -64), "uniform").pvalue
    nibbles = np.concatenate([(values >> np.uint64(4 * k)) & np.uint64(0xF) for k in range(16)])
    chi = chisquare(np.bincount(nibbles.astype(np.int64), minlength=16)).pvalue
    return float(ks), float(chi)


def sklearn_auc(rows: BreastRows, alpha: float) -> float:
    """LogisticRegression on the pooled, standardised rows with the same L2 objective."""
    scaler = StandardScaler().fit(rows.x_train)
    model = LogisticRegression(C=1.0 / (alpha * len(rows.y_train)), max_iter=10_000)
    model.fit(scaler.transform(rows.x_train), rows.y_train)
    return float(roc_auc_score(rows.y_test, model.predict_proba(scaler.transform(rows.x_test))[:, 1]))


@dataclass
class HorizontalJob:
    """Data members (the first is the promoter) and an arbiter, running components of one job."""

    tmp_path: Path
    data_members: int = 2
    backend: str = "LOCAL"
    job_id: str | None = None
    hub: RecordingHub = field(default_factory=RecordingHub)
    members: list[Member] = field(init=False)
    job: Job = field(init=False)

    def __post_init__(self) -> None:
        self.members = make_members(self.tmp_path, self.data_members + 1)
        roles = {"promoter": self.members[:1], "provider": self.members[1:-1], "arbiter": self.members[-1:]}
        self.job = Job(roles, backend=self.backend) if self.job_id is None else \
            Job(roles, job_id=self.job_id, backend=self.backend)

    @property
    def arbiter(self) -> Member:
        return self.members[-1]

    @property
    def data(self) -> list[Member]:
        return self.members[:-1]

    def party(self, member: Member) -> Party:
        if member is self.arbiter:
            return Party("arbiter", member.member_id)
        return Party("promoter" if member is self.members[0] else "provider", member.member_id)

    def upload(self, name: str, frames: list[pd.DataFrame]) -> None:
        for member, frame in zip(self.data, frames, strict=True):
            member.upload(name, frame, label="y")

    def run(
        self, component: str, module: str, computing: ComputingSession, inputs: dict[str, Any],
        outputs: dict[str, list[str]], params: dict[str, Any] | None = None, data_args: tuple[str, ...] = (),
        model_job_id: str | None = None, timeout: float = 60.0, absent: tuple[Member, ...] = (),
        component_roles: list[str] | None = None,
    ) -> dict[Party, dict[str, Any]]:
        """Run one component at every party but the `absent`, each a thread on the recording hub."""
        results: dict[Party, dict[str, Any]] = {}
        errors: dict[Party, BaseException] = {}
        roles = RoleTable.from_conf(self.job.role_table())

        def work(member: Member) -> None:
            party = self.party(member)
            job_args = {} if member is self.arbiter else {n: {"namespace": "test", "name": n} for n in data_args}
            conf = self.job.conf(module, party, inputs, outputs, params, None, job_args)
            if model_job_id is not None:
                conf["job_parameters"]["model_job_id"] = model_job_id
            if component_roles is not None:
                conf["component_roles"] = component_roles  # as the scheduler writes it
            options = TaskOptions(
                job_id=self.job.job_id, component_name=component, task_id=f"{component}_{party.role}",
                role=party.role, member_id=party.member_id, session_id=f"{self.job.job_id}_{component}",
                storage_root=member.root, get_timeout=timeout,
            )
            federation = InProcessFederation(self.hub, options.session_id, party, roles)
            try:
                results[party] = execute_task(conf, options, federation=federation, computing=computing)
            except BaseException as exc:  # reported below, per party
                errors[party] = exc

        threads = [threading.Thread(target=work, args=(m,)) for m in self.members if m not in absent]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout * 4)
        if errors:
            raise PartyFailed("; ".join(f"{p}: {type(e).__name__}: {e}" for p, e in errors.items()))
        return results

    def output(self, member: Member, computing: ComputingSession, component: str, name: str) -> pd.DataFrame:
        """A component's data output at one member, as pandas sorted by id."""
        party = self.party(member)
        namespace = output_namespace(self.job.job_id, party.role, party.member_id)
        table = member.store.read(computing, namespace, f"{component}.{name}")
        return table.to_pandas().sort_values("id").reset_index(drop=True)

    def metrics(self, member: Member, component: str) -> dict[str, Any]:
        """The metrics a component logged at one party, by name (the last of each name)."""
        party = self.party(member)
        path = member.root / "tasks" / self.job.job_id / component / party.role / party.member_id / "metrics.jsonl"
        return {m["name"]: m["points"] for m in map(json.loads, path.read_text().splitlines())}

    def with_job_id(self, job_id: str) -> HorizontalJob:
        """The same members in a new job (a predict job that reads this job's models)."""
        other = HorizontalJob.__new__(HorizontalJob)
        other.tmp_path, other.data_members, other.backend, other.job_id = (
            self.tmp_path, self.data_members, self.backend, job_id)
        other.hub, other.members = RecordingHub(), self.members
        other.job = Job(self.job.roles, job_id=job_id, backend=self.backend)
        return other
