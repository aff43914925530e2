"""The federation interface every implementation (in-process, STANDALONE, CLUSTER) offers."""

from __future__ import annotations

import abc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kernel.constants import ROLES
from kernel.errors import ConfError, FederationError, FederationTimeout


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


@dataclass(frozen=True)
class Waiting:
    """One blocking get in progress: which variable and tag, from which party, since when."""

    name: str
    tag: str
    src: Party
    since: float

    def sentence(self, now: float | None = None) -> str:
        """"waiting on member B (provider) for `VertLR.x` tag fit.3 since 42 s"."""
        waited = max(0.0, (time.time() if now is None else now) - self.since)
        return (f"waiting on member {self.src.member_id} ({self.src.role}) for `{self.name}` "
                f"tag {self.tag} since {waited:.0f} s")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tag": self.tag, "role": self.src.role,
                "member_id": self.src.member_id, "since": self.since}


# Told of every blocking get as it starts (a Waiting) and as it ends (None).
WaitListener = Callable[[Waiting | None], None]


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
        self.wait_listener: WaitListener | None = None

    def _waiting(self, waiting: Waiting | None) -> None:
        if self.wait_listener is not None:
            self.wait_listener(waiting)

    def _receive_waiting(self, name: str, tag: str, party: Party, timeout: float) -> bytes:
        """`_receive_bytes`, told to the wait listener; a timeout says who was waited on."""
        waiting = Waiting(name, tag, party, time.time())
        self._waiting(waiting)
        try:
            return self._receive_bytes(name, tag, party, timeout)
        except FederationTimeout as exc:
            raise FederationTimeout(f"{waiting.sentence()} (get timeout {timeout:g} s): {exc}") from None
        finally:
            self._waiting(None)

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
        return [decode(self._receive_waiting(name, tag, party, timeout)) for party in parties]

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
