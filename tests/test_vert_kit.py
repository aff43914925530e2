"""Helpers shared by the vertical component tests (this module holds no tests).

`VerticalJob` runs one component at the promoter and every provider through the real task
path (`execute_task`): over the in-process federation (`run_parties`), or over the
STANDALONE spool-directory federation with each party in its own thread. The breast-cancer
helpers split scikit-learn's data set by columns with a fixed 70/30 row split.
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
from sklearn.model_selection import train_test_split

from kernel.computing import ComputingSession
from kernel.federation.base import Party
from kernel.inprocess_run import PartyFailed
from kernel.task_executor import TaskOptions, execute_task
from tests.componentkit import Job, Member, make_members

PROMOTER_FEATURES = 10
SPLIT_SEED = 0
TEST_FRACTION = 0.3


@dataclass
class BreastSplit:
    """Breast cancer split by rows (train/test) and by columns (promoter, providers)."""

    train: list[pd.DataFrame]
    test: list[pd.DataFrame]
    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray


def breast_split(column_groups: list[range]) -> BreastSplit:
    """Member i holds the columns of `column_groups[i]`; member 0 (the promoter) the label too."""
    data = load_breast_cancer()
    x, y = data.data, data.target
    ids = np.array([f"p{i:04d}" for i in range(len(y))])
    train_idx, test_idx = train_test_split(
        np.arange(len(y)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y
    )

    def frames(rows: np.ndarray) -> list[pd.DataFrame]:
        out = []
        for member, columns in enumerate(column_groups):
            frame = pd.DataFrame({"id": ids[rows]})
            if member == 0:
                frame["y"] = y[rows]
            for c in columns:
                frame[f"x{c}"] = x[rows, c]
            out.append(frame)
        return out

    return BreastSplit(frames(train_idx), frames(test_idx), x[train_idx], x[test_idx], y[train_idx], y[test_idx])


@dataclass
class VerticalJob:
    """A promoter and providers running components of one job, in-process or STANDALONE."""

    tmp_path: Path
    providers: int = 1
    work_mode: str = "INPROCESS"
    backend: str = "LOCAL"
    job: Job = field(init=False)
    members: list[Member] = field(init=False)

    def __post_init__(self) -> None:
        self.members = make_members(self.tmp_path, 1 + self.providers)
        self.job = Job({"promoter": self.members[:1], "provider": self.members[1:]}, backend=self.backend)

    @property
    def promoter(self) -> Member:
        return self.members[0]

    def parties(self) -> list[tuple[Party, Member]]:
        out = [(Party("promoter", self.members[0].member_id), self.members[0])]
        out += [(Party("provider", m.member_id), m) for m in self.members[1:]]
        return out

    def upload(self, name: str, frames: list[pd.DataFrame]) -> None:
        """Member i stores frames[i] as test/<name> (the promoter's with label y)."""
        for i, (member, frame) in enumerate(zip(self.members, frames, strict=True)):
            member.upload(name, frame, label="y" if i == 0 else None)

    def run(
        self, component: str, module: str, computing: ComputingSession, inputs: dict[str, Any],
        outputs: dict[str, list[str]], params: dict[str, Any] | None = None,
        role_params: dict[str, Any] | None = None, data_args: tuple[str, ...] = (),
        model_job_id: str | None = None, timeout: float = 120.0,
    ) -> dict[Party, dict[str, Any]]:
        """Run one component at every party; `data_args` names the uploaded sets it reads."""
        confs = {}
        for party, _member in self.parties():
            job_args = {name: {"namespace": "test", "name": name} for name in data_args}
            conf = self.job.conf(module, party, inputs, outputs, params, role_params, job_args)
            if model_job_id is not None:
                conf["job_parameters"]["model_job_id"] = model_job_id
            confs[party] = conf
        if self.work_mode == "INPROCESS":
            return self.job.run(component, module, computing, confs, timeout=timeout)
        return self._run_standalone(component, computing, confs, timeout)

    def _run_standalone(
        self, component: str, computing: ComputingSession, confs: dict[Party, dict[str, Any]], timeout: float,
    ) -> dict[Party, dict[str, Any]]:
        spool = self.tmp_path / "spool"
        results: dict[Party, dict[str, Any]] = {}
        errors: dict[Party, BaseException] = {}

        def work(party: Party, member: Member) -> None:
            options = TaskOptions(
                job_id=self.job.job_id, component_name=component, task_id=f"{component}_{party.role}",
                role=party.role, member_id=party.member_id, session_id=f"{self.job.job_id}_{component}",
                storage_root=member.root, spool_dir=spool, get_timeout=timeout,
            )
            try:
                results[party] = execute_task(confs[party], options, computing=computing)
            except BaseException as exc:  # reported below, per party
                errors[party] = exc

        threads = [threading.Thread(target=work, args=pm) for pm in self.parties()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout * 4)
        if errors:
            raise PartyFailed("; ".join(f"{p}: {type(e).__name__}: {e}" for p, e in errors.items()))
        return results

    def output(self, member: Member, computing: ComputingSession, component: str, name: str) -> pd.DataFrame:
        """A component's data output at one member, as pandas sorted by id."""
        from kernel.runtime_conf import output_namespace

        role = "promoter" if member is self.members[0] else "provider"
        namespace = output_namespace(self.job.job_id, role, member.member_id)
        table = member.store.read(computing, namespace, f"{component}.{name}")
        return table.to_pandas().sort_values("id").reset_index(drop=True)

    def metrics(self, member: Member, component: str) -> dict[str, Any]:
        """The metrics a component logged at one member, by name (the last one of each name)."""
        role = "promoter" if member is self.members[0] else "provider"
        path = member.root / "tasks" / self.job.job_id / component / role / member.member_id / "metrics.jsonl"
        return {m["name"]: m["points"] for m in map(json.loads, path.read_text().splitlines())}

    def with_job_id(self, job_id: str) -> VerticalJob:
        """The same members in a new job (a predict job that reads this job's models)."""
        other = VerticalJob.__new__(VerticalJob)
        other.tmp_path, other.providers, other.work_mode, other.backend = (
            self.tmp_path, self.providers, self.work_mode, self.backend
        )
        other.members = self.members
        other.job = Job(self.job.roles, job_id=job_id, backend=self.backend)
        return other
