"""Who is logged in: each login's API token kept in this process, the browser holding only a session id.

The cookie (signed and encrypted by aiohttp-session, HttpOnly, SameSite=Strict) carries a
random session id; the token itself never leaves the board. Every page and JSON call of
a login goes to the scheduler with that login's token, so the scheduler decides what the
user may see and do, exactly as for `weft` and the SDK.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from services.client.sdk import AsyncSchedulerClient, AsyncServingClient


@dataclass
class Login:
    """One signed-in browser: the user's token (as a scheduler and a serving client), name, role and CSRF secret.

    `notices` holds what the next page shows once (the outcome of a publish, rollback or unpublish)."""

    client: AsyncSchedulerClient
    serving: AsyncServingClient
    user: str
    role: str
    expires_at: float
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    notices: list[tuple[str, str]] = field(default_factory=list)

    @property
    def may_operate(self) -> bool:
        """Whether to offer stop, rerun, publish, rollback and unpublish (the services check the role on the call)."""
        return self.role in ("operator", "admin")


class LoginStore:
    """Session id -> login, in memory: a restarted board asks everyone to log in again."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._logins: dict[str, Login] = {}

    def add(self, client: AsyncSchedulerClient, serving: AsyncServingClient, user: str, role: str) -> str:
        session_id = secrets.token_urlsafe(32)
        self._logins[session_id] = Login(client, serving, user, role, time.time() + self.ttl_s)
        return session_id

    def get(self, session_id: str | None) -> Login | None:
        login = self._logins.get(session_id or "")
        if login is None or login.expires_at > time.time():
            return login
        return None

    async def drop(self, session_id: str | None) -> None:
        login = self._logins.pop(session_id or "", None)
        if login is not None:
            await login.client.close()
            await login.serving.close()

    async def drop_expired(self) -> None:
        now = time.time()
        for session_id in [s for s, login in self._logins.items() if login.expires_at <= now]:
            await self.drop(session_id)

    async def close(self) -> None:
        for session_id in list(self._logins):
            await self.drop(session_id)
