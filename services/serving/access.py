"""Who may call the serving service, and the audit log of every call.

`ServingService` (this member's users) is verified like the scheduler's client API: an
API token of this member (`authorization: Bearer weft_<id>.<secret>`) checked against the
member's database at every call, and the user's role (viewer scores and lists; operator
publishes, rolls back, unpublishes, sets feature tables). No credential or a bad one is
UNAUTHENTICATED, a role too low PERMISSION_DENIED; nothing of the method runs. A token
that verified is trusted again without a database read for `serving.token_cache_s`
seconds (default 2), so a revoked token stops working at the serving service within that
time; 0 reads the database at every call, as the scheduler does.

`ServingPeerService` is reached only through this member's transfer service: the call
must carry a relay credential signed with the member-internal key, for this method, that
names the member id the transfer service took from the peer's TLS certificate. The
serving service then checks that member's role in the model itself.

Every call, admitted or refused, is one JSON line in `<data_dir>/serving/audit.log`
with the model and the model version it used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import PermissionDenied, Unauthenticated
from kernel.safe_text import unsafe_character
from services.common import internal_auth
from services.common.auth import (
    ROLE_OPERATOR,
    ROLE_VIEWER,
    Principal,
    role_allows,
    token_from_metadata,
)
from services.scheduler.access import NO_CREDENTIAL, Authenticator
from services.scheduler.access import Unauthenticated as TokenRefused
from services.serving.constants import CLIENT_SERVICE, PEER_SERVICE

log = logging.getLogger("weft.serving.access")

#: Verified tokens remembered at most (a flood of distinct tokens does not grow the cache past it).
TOKEN_CACHE_ENTRIES: Final = 10_000

#: The least role of every ServingService method; a method missing here is refused.
METHOD_ROLES: Final[dict[str, str]] = {
    "Predict": ROLE_VIEWER,
    "BatchPredict": ROLE_VIEWER,
    "ListModels": ROLE_VIEWER,
    "PublishModel": ROLE_OPERATOR,
    "RollbackModel": ROLE_OPERATOR,
    "UnpublishModel": ROLE_OPERATOR,
    "SetFeatureTable": ROLE_OPERATOR,
}


@dataclass
class AuditEntry:
    """One line of the serving audit log."""

    method: str
    caller: str
    model: str = ""
    version: int = 0
    ids: int = 0
    outcome: str = "OK"
    detail: dict[str, Any] = field(default_factory=dict)


class AuditLog:
    """Append-only JSON lines; one writer per process."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the service's life)
        self._lock = asyncio.Lock()

    async def write(self, entry: AuditEntry) -> None:
        record = {"at": round(time.time(), 3), "method": entry.method, "caller": _clean(entry.caller),
                  "model": _clean(entry.model), "version": entry.version, "ids": entry.ids,
                  "outcome": entry.outcome, **entry.detail}
        async with self._lock:
            try:
                self._handle.write(json.dumps(record) + "\n")
                self._handle.flush()
            except OSError:
                log.exception("could not write the serving audit line of %s", entry.method)

    def close(self) -> None:
        self._handle.close()


def _clean(text: str) -> str:
    return "".join("?" if unsafe_character(char) else char for char in text)


class ServingAccess:
    """Verifies callers of both serving APIs."""

    def __init__(self, engine: AsyncEngine, key: bytes, enabled: bool = True, token_cache_s: float = 0.0) -> None:
        self.authenticator = Authenticator(engine)
        self.key = key
        self.enabled = enabled
        self.replays = internal_auth.ReplayGuard()
        self.token_cache_s = token_cache_s
        # sha256 of a token that verified -> (its user, until when the verification is reused)
        self._verified: dict[str, tuple[Principal, float]] = {}

    async def _principal(self, token: str) -> Principal:
        """The token's user; a verification is reused for `token_cache_s` (a revocation waits that long)."""
        if self.token_cache_s <= 0:
            return await self.authenticator.from_token(token)
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        now = time.monotonic()
        cached = self._verified.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        principal = await self.authenticator.from_token(token)
        if len(self._verified) >= TOKEN_CACHE_ENTRIES:
            self._verified = {k: v for k, v in self._verified.items() if v[1] > now}
        self._verified[digest] = (principal, now + self.token_cache_s)
        return principal

    async def user(self, context: grpc.aio.ServicerContext, method: str) -> Principal:
        """The verified user of a ServingService call allowed to call `method`."""
        if not self.enabled:
            return Principal("anonymous", "admin", "none", "")
        token = token_from_metadata(context.invocation_metadata())
        if not token:
            raise Unauthenticated(NO_CREDENTIAL)
        try:
            principal = await self._principal(token)
        except TokenRefused as exc:
            raise Unauthenticated(str(exc)) from None
        required = METHOD_ROLES.get(method)
        if required is None or not role_allows(principal.role, required):
            raise PermissionDenied(f"user {principal.user!r} (role {principal.role}) may not call {method}; "
                                   f"it needs role {required or 'admin'} or above")
        return principal

    def peer(self, context: grpc.aio.ServicerContext, method: str) -> str:
        """The member a relayed ServingPeerService call comes from."""
        path = f"/{PEER_SERVICE}/{method}"
        claims = internal_auth.verify(self.key, internal_auth.token_of(context.invocation_metadata()),
                                      {internal_auth.RELAY}, what=f"serving peer call {method}")
        if claims.method != path:
            raise Unauthenticated(f"serving peer call {method}: the relay credential was issued for "
                                  f"{claims.method or 'no method'}")
        self.replays.check(claims, f"serving peer call {method}")
        if not claims.member:
            raise PermissionDenied(f"serving peer call {method}: the relay credential names no member")
        return claims.member


__all__ = ["CLIENT_SERVICE", "METHOD_ROLES", "AuditEntry", "AuditLog", "ServingAccess"]
