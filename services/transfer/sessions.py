"""Federation sessions: each one's role table, kept on disk, and the role authorisation of frames."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from kernel.errors import NotFound, PermissionDenied
from kernel.federation.base import Party
from kernel.federation.transfer_variable import VariableDefinition
from kernel.federation.wire.messages import MessageKey
from services.transfer.mailbox import safe_name

log = logging.getLogger("weft.transfer.sessions")

DefinitionSource = Callable[[], Mapping[str, VariableDefinition]]


def registry_definitions() -> dict[str, VariableDefinition]:
    """Every component's transfer variables by full name ("<Group>.<variable>")."""
    from kernel.registry import registry

    definitions: dict[str, VariableDefinition] = {}
    for spec in registry().values():
        for definition in spec.transfer_variables.values():
            definitions[definition.full_name] = definition
    return definitions


@dataclass(frozen=True)
class Session:
    """A job's federation session as this member knows it."""

    session_id: str
    job_id: str
    parties: frozenset[Party]
    ttl_s: float

    def to_json(self) -> str:
        return json.dumps({
            "session_id": self.session_id, "job_id": self.job_id, "ttl_s": self.ttl_s,
            "parties": [{"role": p.role, "member_id": p.member_id} for p in sorted(self.parties)],
        })

    @classmethod
    def from_json(cls, text: str) -> Session:
        raw = json.loads(text)
        parties = frozenset(Party(p["role"], p["member_id"]) for p in raw["parties"])
        return cls(raw["session_id"], raw["job_id"], parties, float(raw["ttl_s"]))


class SessionTable:
    """Registered sessions, persisted under `state_dir` so a restart keeps them."""

    def __init__(self, state_dir: Path, definitions: DefinitionSource = registry_definitions) -> None:
        self.state_dir = state_dir
        self._definitions_source = definitions
        self._definitions: Mapping[str, VariableDefinition] | None = None
        self._sessions: dict[str, Session] = {}

    def load(self) -> list[Session]:
        """Read the sessions a previous run registered."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                session = Session.from_json(path.read_text(encoding="utf-8"))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable session file %s: %s", path, exc)
                continue
            self._sessions[session.session_id] = session
        return list(self._sessions.values())

    def _path(self, session_id: str) -> Path:
        return self.state_dir / f"{safe_name(session_id)}.json"

    def register(self, session: Session) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self._path(session.session_id)
        temp = path.with_suffix(".tmp")
        temp.write_text(session.to_json(), encoding="utf-8")
        os.replace(temp, path)
        self._sessions[session.session_id] = session

    def remove(self, session_id: str) -> bool:
        self._path(session_id).unlink(missing_ok=True)
        return self._sessions.pop(session_id, None) is not None

    def get(self, session_id: str) -> Session | None:
        return self._sessions.get(session_id)

    def __len__(self) -> int:
        return len(self._sessions)

    def definitions(self) -> Mapping[str, VariableDefinition]:
        if self._definitions is None:
            self._definitions = self._definitions_source()
        return self._definitions

    def authorise(self, key: MessageKey, unknown_session: type[Exception] = NotFound) -> Session:
        """Allow (name, src role, dst role) only as the session and the definitions say."""
        session = self._sessions.get(key.session_id)
        if session is None:
            raise unknown_session(
                f"session {key.session_id!r} is not registered at this member "
                "(the scheduler registers it when the job starts)"
            )
        for side, party in (("source", key.src), ("destination", key.dst)):
            if party not in session.parties:
                raise PermissionDenied(f"{key.name}: {side} {party} is not a party of session {key.session_id}")
        definition = self.definitions().get(key.name)
        if definition is None:
            raise PermissionDenied(f"{key.name}: no component defines this transfer variable")
        if key.src.role not in definition.src:
            raise PermissionDenied(
                f"{key.name}: role {key.src.role} may not send it (senders: {', '.join(definition.src)})"
            )
        if key.dst.role not in definition.dst:
            raise PermissionDenied(
                f"{key.name}: role {key.dst.role} may not receive it (receivers: {', '.join(definition.dst)})"
            )
        return session
