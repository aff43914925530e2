"""Helpers for component tests: members' data sets, seed-format confs, in-process runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kernel.computing import ComputingSession
from kernel.federation.base import Party
from kernel.inprocess_run import run_parties
from kernel.storage import DataStore
from kernel.task_executor import TaskOptions


@dataclass
class Member:
    """One member on this machine: its storage root and the data sets it holds."""

    member_id: str
    root: Path

    @property
    def store(self) -> DataStore:
        return DataStore(str(self.root / "data"))

    def upload(self, name: str, frame: pd.DataFrame, id_column: str = "id", label: str | None = None) -> dict[str, str]:
        self.store.write_table("test", name, _arrow(frame), id_column, label)
        return {"namespace": "test", "name": name}


def _arrow(frame: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(frame, preserve_index=False)


def make_members(tmp_path: Path, count: int) -> list[Member]:
    return [Member(uuid.uuid4().hex, tmp_path / f"member{i}") for i in range(count)]


@dataclass
class Job:
    """A job run in-process: roles, the parties' data args, and the outputs so far."""

    roles: dict[str, list[Member]]
    job_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    backend: str = "LOCAL"

    def role_table(self) -> dict[str, list[str]]:
        return {role: [m.member_id for m in members] for role, members in self.roles.items()}

    def conf(self, module: str, party: Party, inputs: dict[str, Any], outputs: dict[str, list[str]],
             params: dict[str, Any] | None = None, role_params: dict[str, Any] | None = None,
             job_args: dict[str, Any] | None = None) -> dict[str, Any]:
        initiator = self.roles["promoter"][0] if "promoter" in self.roles else next(iter(self.roles.values()))[0]
        return {
            "initiator": {"member_id": initiator.member_id, "role": "promoter"},
            "job_parameters": {"backend": self.backend, "work_mode": "STANDALONE", "db_type": "PARQUET"},
            "role": self.role_table(), "local": {"member_id": party.member_id, "role": party.role},
            "job_args": {"data": job_args or {}}, "input": inputs, "output": outputs,
            f"{module}Param": params or {}, "role_params": role_params or {}, "module": module,
        }

    def run(self, component: str, module: str, computing: ComputingSession,
            per_party: dict[Party, dict[str, Any]], timeout: float = 120.0) -> dict[Party, dict[str, Any]]:
        """Run one component at every party given; `per_party` holds each party's conf."""
        tasks = []
        for party, conf in per_party.items():
            member = next(m for ms in self.roles.values() for m in ms if m.member_id == party.member_id)
            options = TaskOptions(
                job_id=self.job_id, component_name=component, task_id=f"{component}_{party.role}",
                role=party.role, member_id=party.member_id, session_id=f"{self.job_id}_{component}",
                storage_root=member.root, get_timeout=timeout,
            )
            tasks.append((conf, options))
        return run_parties(tasks, computing)
