"""In-process federation: members as threads of one process, for unit tests and the demo's checks."""

from __future__ import annotations

import threading

from kernel.errors import FederationTimeout
from kernel.federation.base import Federation, Party, RoleTable

MessageKey = tuple[str, str, str, Party, Party]


class InProcessHub:
    """The shared mailbox of every member thread; one per test or run."""

    def __init__(self) -> None:
        self._messages: dict[MessageKey, bytes] = {}
        self._changed = threading.Condition()

    def put(self, key: MessageKey, payload: bytes) -> None:
        with self._changed:
            self._messages[key] = payload
            self._changed.notify_all()

    def take(self, key: MessageKey, timeout: float) -> bytes | None:
        with self._changed:
            if not self._changed.wait_for(lambda: key in self._messages, timeout=timeout):
                return None
            return self._messages.pop(key)

    def pending(self, session_id: str) -> int:
        with self._changed:
            return sum(1 for key in self._messages if key[0] == session_id)

    def clean(self, session_id: str) -> None:
        with self._changed:
            for key in [k for k in self._messages if k[0] == session_id]:
                del self._messages[key]


class InProcessFederation(Federation):
    """One party's view of an `InProcessHub`."""

    def __init__(self, hub: InProcessHub, session_id: str, local: Party, roles: RoleTable) -> None:
        super().__init__(session_id, local, roles)
        self.hub = hub

    def _send_bytes(self, name: str, tag: str, payload: bytes, dst: Party) -> None:
        self.hub.put((self.session_id, name, tag, self.local, dst), payload)

    def _receive_bytes(self, name: str, tag: str, src: Party, timeout: float) -> bytes:
        payload = self.hub.take((self.session_id, name, tag, src, self.local), timeout)
        if payload is None:
            raise FederationTimeout(
                f"timed out after {timeout:g}s waiting for {name} (tag {tag!r}) from {src}"
            )
        return payload

    def cleanup(self) -> None:
        self.hub.clean(self.session_id)
