"""The job spec: its validated form (parties, components, DAG) and what it asks of a member."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kernel.constants import ROLES
from kernel.errors import InvalidArgument
from kernel.registry import get_component
from services.scheduler.constants import ARGS_SOURCE


class SpecError(InvalidArgument):
    """A job spec is malformed; the message names the field (e.g. `components.lr_0.module`)."""


@dataclass(frozen=True)
class Party:
    """A member acting in one role."""

    role: str
    member_id: str


@dataclass(frozen=True)
class DataRef:
    """A data set a member must bring: `job_args.<member>.data.<arg>` -> namespace/name."""

    member_id: str
    arg: str
    namespace: str
    name: str

    @property
    def field(self) -> str:
        return f"job_args.{self.member_id}.data.{self.arg}"


@dataclass(frozen=True)
class ComponentDef:
    """One validated component of the DAG."""

    name: str
    module: str
    input: dict[str, Any]
    output: dict[str, list[str]]
    params: dict[str, Any]
    role_params: dict[str, dict[str, Any]]
    #: Roles of the job this component runs at (each supported by the module).
    roles: tuple[str, ...]
    #: Components whose outputs this one reads, in first-reference order.
    upstream: tuple[str, ...]

    def data_refs(self) -> list[tuple[str, str]]:
        """(input key, reference) of every data input."""
        return [(key, ref) for key, refs in self.input.get("data", {}).items() for ref in refs]


@dataclass(frozen=True)
class JobSpec:
    """A validated job spec; `raw` is the normalized JSON every member stores."""

    raw: dict[str, Any]
    name: str
    initiator: Party
    roles: dict[str, list[str]]
    job_parameters: dict[str, Any]
    job_args: dict[str, dict[str, Any]]
    #: Components in a topological order (every component after its upstream).
    components: dict[str, ComponentDef] = field(default_factory=dict)

    def parties(self) -> list[Party]:
        """Every (role, member) of the job in role order."""
        return [Party(role, member) for role in ROLES for member in self.roles.get(role, [])]

    def members(self) -> list[str]:
        """Every member taking part, once each, in role order."""
        seen: dict[str, None] = {}
        for party in self.parties():
            seen.setdefault(party.member_id, None)
        return list(seen)

    def roles_of(self, member_id: str) -> list[str]:
        return [role for role in ROLES if member_id in self.roles.get(role, [])]

    def task_parties(self, component: str) -> list[Party]:
        """The parties that run one component (one task each)."""
        runs_at = self.components[component].roles
        return [party for party in self.parties() if party.role in runs_at]

    def downstream(self, names: Iterable[str]) -> list[str]:
        """`names` and every component that reads from them, directly or not, in DAG order."""
        selected = set(names)
        for name, component in self.components.items():
            if any(up in selected for up in component.upstream):
                selected.add(name)
        return [name for name in self.components if name in selected]

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True, separators=(",", ":"))


def required_data_sets(spec: JobSpec, member_id: str) -> list[DataRef]:
    """The raw data sets `member_id` must hold for its tasks (once each)."""
    needed: dict[str, DataRef] = {}
    data = spec.job_args.get(member_id, {}).get("data", {})
    for component in spec.components.values():
        for party in spec.task_parties(component.name):
            if party.member_id != member_id:
                continue
            if not get_component(component.module).program_class(party.role).needs_data:
                continue
            for _, ref in component.data_refs():
                source, _, arg = ref.partition(".")
                if source == ARGS_SOURCE and arg in data and arg not in needed:
                    entry = data[arg]
                    needed[arg] = DataRef(member_id, arg, str(entry["namespace"]), str(entry["name"]))
    return list(needed.values())
