"""The AdminService edge: users, API tokens and the audit log of this member's client API.

Only admins reach these methods (the client-access interceptor checks the role first);
every call that changes something is written to the audit log by that interceptor too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import FailedPrecondition, InvalidArgument
from protos.weft.v1 import admin_pb2, admin_pb2_grpc
from services.common.auth import ROLE_ADMIN, IssuedToken
from services.common.db import access as repo
from services.common.grpc_errors import grpc_method
from services.scheduler.access import current_principal
from services.scheduler.constants import MAX_AUDIT_ROWS

DAY_S = 86400.0


def _ms(seconds: float | None) -> int:
    return int(seconds * 1000) if seconds else 0


def _user(record: repo.UserRecord) -> admin_pb2.User:
    return admin_pb2.User(name=record.name, role=record.role, created_at_ms=_ms(record.created_at),
                          created_by=record.created_by, revoked_at_ms=_ms(record.revoked_at),
                          active_tokens=record.active_tokens)


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """What a member's admins call."""

    def __init__(self, engine: AsyncEngine, default_ttl_days: float,
                 on_revoked: Callable[[], None] | None = None) -> None:
        """`on_revoked` runs after each revocation (the authenticator forgets the tokens it trusted)."""
        self.engine = engine
        self.default_ttl_days = default_ttl_days
        self.on_revoked = on_revoked

    def _revoked(self) -> None:
        if self.on_revoked is not None:
            self.on_revoked()

    def _ttl_seconds(self, ttl_days: float, no_expiry: bool) -> float | None:
        if ttl_days < 0:
            raise InvalidArgument(f"ttl_days: {ttl_days} is negative")
        if no_expiry:
            return None
        days = ttl_days or self.default_ttl_days
        return days * DAY_S if days else None

    def _issued(self, token: IssuedToken, ttl_seconds: float | None) -> admin_pb2.IssuedToken:
        expires = time.time() + ttl_seconds if ttl_seconds is not None else None
        return admin_pb2.IssuedToken(token=token.text, token_id=token.token_id, expires_at_ms=_ms(expires))

    @staticmethod
    def _caller() -> str:
        principal = current_principal()
        return principal.user if principal is not None else ""

    @grpc_method
    async def AddUser(self, request: admin_pb2.AddUserRequest,
                      context: grpc.aio.ServicerContext) -> admin_pb2.AddUserResponse:
        ttl = self._ttl_seconds(request.ttl_days, request.no_expiry)
        record = await repo.add_user(self.engine, request.name, request.role, created_by=self._caller())
        token = await repo.issue_token(self.engine, record.name, ttl)
        return admin_pb2.AddUserResponse(user=_user(record), token=self._issued(token, ttl))

    @grpc_method
    async def ListUsers(self, request: admin_pb2.ListUsersRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.ListUsersResponse:
        return admin_pb2.ListUsersResponse(users=[_user(u) for u in await repo.list_users(self.engine)])

    @grpc_method
    async def IssueToken(self, request: admin_pb2.IssueTokenRequest,
                         context: grpc.aio.ServicerContext) -> admin_pb2.IssueTokenResponse:
        ttl = self._ttl_seconds(request.ttl_days, request.no_expiry)
        token = await repo.issue_token(self.engine, request.name, ttl)
        return admin_pb2.IssueTokenResponse(token=self._issued(token, ttl))

    @grpc_method
    async def RevokeToken(self, request: admin_pb2.RevokeTokenRequest,
                          context: grpc.aio.ServicerContext) -> admin_pb2.RevokeResponse:
        await repo.revoke_token(self.engine, request.token_id)
        self._revoked()
        return admin_pb2.RevokeResponse(token_ids=[request.token_id])

    @grpc_method
    async def RevokeUser(self, request: admin_pb2.RevokeUserRequest,
                         context: grpc.aio.ServicerContext) -> admin_pb2.RevokeResponse:
        users = await repo.list_users(self.engine)
        admins = [u.name for u in users if u.role == ROLE_ADMIN and u.revoked_at is None]
        if admins == [request.name]:
            raise FailedPrecondition(f"user {request.name!r} is the last active admin of this member; "
                                     "add another admin before revoking it")
        revoked = await repo.revoke_user(self.engine, request.name)
        self._revoked()
        return admin_pb2.RevokeResponse(token_ids=revoked)

    @grpc_method
    async def ListAudit(self, request: admin_pb2.ListAuditRequest,
                        context: grpc.aio.ServicerContext) -> admin_pb2.ListAuditResponse:
        limit = 100 if request.limit <= 0 else min(request.limit, MAX_AUDIT_ROWS)
        entries = [
            admin_pb2.AuditEntry(at_ms=_ms(e.at), user=e.user_name, via=e.via, credential_id=e.credential_id,
                                 method=e.method, target=e.target, outcome=e.outcome)
            for e in await repo.list_audit(self.engine, limit)
        ]
        return admin_pb2.ListAuditResponse(entries=entries)
