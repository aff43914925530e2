"""Role-directed transfer variables built from a component's transfer_variable.json."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel.constants import ROLES
from kernel.errors import ConfError, FederationError, PermissionDenied
from kernel.federation.base import Federation, Party


@dataclass(frozen=True)
class VariableDefinition:
    """Who may send a variable and who may receive it."""

    group: str
    name: str
    src: tuple[str, ...]
    dst: tuple[str, ...]

    @property
    def full_name(self) -> str:
        return f"{self.group}.{self.name}"


def _roles(value: Any, where: str) -> tuple[str, ...]:
    roles = (value,) if isinstance(value, str) else value
    if not isinstance(roles, list | tuple) or not roles:
        raise ConfError(f"{where}: expected a role or a non-empty list of roles")
    for role in roles:
        if role not in ROLES:
            raise ConfError(f"{where}: unknown role {role!r}")
    return tuple(roles)


def parse_definitions(raw: dict[str, Any], source: str = "transfer_variable.json") -> dict[str, VariableDefinition]:
    """Parse ``{"Group": {"name": {"src": role|[roles], "dst": [roles]}}}`` into definitions."""
    definitions: dict[str, VariableDefinition] = {}
    if not isinstance(raw, dict):
        raise ConfError(f"{source}: expected an object of variable groups")
    for group, variables in raw.items():
        if not isinstance(variables, dict):
            raise ConfError(f"{source}: {group} must map variable names to definitions")
        for name, spec in variables.items():
            if not isinstance(spec, dict) or "src" not in spec or "dst" not in spec:
                raise ConfError(f"{source}: {group}.{name} needs 'src' and 'dst'")
            definitions[name] = VariableDefinition(
                group, name, _roles(spec["src"], f"{source}: {group}.{name}.src"),
                _roles(spec["dst"], f"{source}: {group}.{name}.dst"),
            )
    return definitions


def load_definitions(path: Path) -> dict[str, VariableDefinition]:
    with open(path, encoding="utf-8") as handle:
        return parse_definitions(json.load(handle), str(path))


class FlowContext:
    """The current flow id (`fit`, `predict`, ...) that prefixes every tag."""

    def __init__(self, flow_id: str = "fit") -> None:
        self.flow_id = flow_id


class Variable:
    """One named message kind a component exchanges with its peers."""

    def __init__(
        self, definition: VariableDefinition, federation: Federation, flow: FlowContext, timeout: float
    ) -> None:
        self.definition = definition
        self.federation = federation
        self.flow = flow
        self.timeout = timeout

    @property
    def name(self) -> str:
        return self.definition.full_name

    def _tag(self, suffix: Iterable[Any]) -> str:
        parts = [self.flow.flow_id, *(str(s) for s in suffix)]
        return ".".join(parts)

    def _select(self, roles: tuple[str, ...], role: str | None, idx: int, verb: str) -> list[Party]:
        if role is not None and role not in roles:
            raise PermissionDenied(
                f"{self.name}: cannot {verb} role {role!r}; the definition allows {', '.join(roles)}"
            )
        chosen = [role] if role is not None else list(roles)
        parties = [p for r in chosen for p in self.federation.roles.parties(r)]
        parties = [p for p in parties if p != self.federation.local]
        if idx >= 0:
            if role is None and len(chosen) > 1:
                raise FederationError(f"{self.name}: idx={idx} needs a role (several roles match)")
            if idx >= len(parties):
                raise FederationError(
                    f"{self.name}: idx={idx} but the job has {len(parties)} {chosen[0]} part"
                    f"{'y' if len(parties) == 1 else 'ies'}"
                )
            parties = [parties[idx]]
        return parties

    def remote(self, obj: Any, role: str | None = None, idx: int = -1, suffix: Iterable[Any] = ()) -> None:
        """Send `obj` to every party of the destination roles (or `role`, or its idx-th party)."""
        local = self.federation.local
        if local.role not in self.definition.src:
            raise PermissionDenied(
                f"{self.name}: role {local.role} may not send it (senders: {', '.join(self.definition.src)})"
            )
        parties = self._select(self.definition.dst, role, idx, "send to")
        if not parties:
            raise FederationError(f"{self.name}: no party to send to (role={role}, idx={idx})")
        self.federation.remote(self.name, self._tag(suffix), obj, parties)

    def get(
        self, idx: int = -1, suffix: Iterable[Any] = (), role: str | None = None, timeout: float | None = None
    ) -> Any:
        """Receive from every source party (a list) or, with idx >= 0, from that one party."""
        local = self.federation.local
        if local.role not in self.definition.dst:
            raise PermissionDenied(
                f"{self.name}: role {local.role} may not receive it (receivers: {', '.join(self.definition.dst)})"
            )
        parties = self._select(self.definition.src, role, idx, "receive from")
        if not parties:
            raise FederationError(f"{self.name}: no party to receive from (role={role}, idx={idx})")
        values = self.federation.get(
            self.name, self._tag(suffix), parties, self.timeout if timeout is None else timeout
        )
        return values[0] if idx >= 0 else values


class TransferVariables:
    """All variables of one component, by name: ``tv.pubkey.remote(key, role="provider")``."""

    def __init__(
        self, definitions: dict[str, VariableDefinition], federation: Federation,
        flow: FlowContext, timeout: float,
    ) -> None:
        self._variables = {
            name: Variable(definition, federation, flow, timeout) for name, definition in definitions.items()
        }

    def __getattr__(self, name: str) -> Variable:
        try:
            return self._variables[name]
        except KeyError:
            raise FederationError(f"no transfer variable named {name!r} in this component") from None

    def __iter__(self) -> Iterator[Variable]:
        return iter(self._variables.values())
