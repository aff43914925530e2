"""The federation interface every implementation (in-process, STANDALONE, CLUSTER) offers."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

from kernel.constants import ROLES
from kernel.errors import ConfError, FederationError


@dataclass(frozen=True, order=True)
class Party:
    """One member acting in one role of a job."""

    role: str
    member_id: str

    def __str__(self) -> str:
        return f"{self.role}:{self.member_id}"


@dataclass(frozen=True)
class RoleTable:
    """Which members hold which role in a job, in the job's order."""

    members: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_conf(cls, roles: dict[str, Any]) -> RoleTable:
        table: dict[str, tuple[str, ...]] = {}
        for role, members in roles.items():
            if role not in ROLES:
                raise ConfError(f"role.{role}: unknown role (expected one of {', '.join(ROLES)})")
            if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
                raise ConfError(f"role.{role}: expected a list of member ids")
            table[role] = tuple(members)
        return cls(table)

    def parties(self, role: str) -> list[Party]:
        return [Party(role, member) for member in self.members.get(role, ())]

    def all_parties(self) -> list[Party]:
        return [Party(role, m) for role in ROLES for m in self.members.get(role, ())]

    def to_dict(self) -> dict[str, list[str]]:
        return {role: list(members) for role, members in self.members.items()}


class Federation(abc.ABC):
    """Moves encoded objects between the parties of one federation session.

    `remote` and `get` work on already-resolved parties and a full tag; the
    role-directed API components use is `kernel.federation.transfer_variable`.
    Every object passes through the typed codec, whatever the implementation.
    """

    def __init__(self, session_id: str, local: Party, roles: RoleTable) -> None:
        self.session_id = session_id
        self.local = local
        self.roles = roles
        self._sent: set[tuple[str, str, Party]] = set()
        self._received: set[tuple[str, str, Party]] = set()

    def remote(self, name: str, tag: str, obj: Any, parties: list[Party]) -> None:
        """Send `obj` to each of `parties` under (name, tag)."""
        from kernel.federation.codec import encode

        for party in parties:
            key = (name, tag, party)
            if key in self._sent:
                raise FederationError(f"{name} with tag {tag!r} was already sent to {party}")
            self._sent.add(key)
        payload = encode(obj)
        for party in parties:
            self._send_bytes(name, tag, payload, party)

    def get(self, name: str, tag: str, parties: list[Party], timeout: float) -> list[Any]:
        """Receive one object from each of `parties`, in their order."""
        from kernel.federation.codec import decode

        for party in parties:
            key = (name, tag, party)
            if key in self._received:
                raise FederationError(f"{name} with tag {tag!r} was already received from {party}")
            self._received.add(key)
        return [decode(self._receive_bytes(name, tag, party, timeout)) for party in parties]

    @abc.abstractmethod
    def _send_bytes(self, name: str, tag: str, payload: bytes, dst: Party) -> None:
        """Deliver one encoded message to `dst`."""

    @abc.abstractmethod
    def _receive_bytes(self, name: str, tag: str, src: Party, timeout: float) -> bytes:
        """Wait for one encoded message from `src`; FederationTimeout past `timeout`."""

    def cleanup(self) -> None:  # noqa: B027 - most implementations hold nothing to free
        """Free whatever this session holds (messages, spool files)."""

    def close(self) -> None:  # noqa: B027 - only networked implementations hold connections
        """Release connections; the session's messages stay for the other parties."""
