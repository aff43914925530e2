"""Who may call the client and admin APIs: every call verified, role-checked and (if it changes anything) audited.

This module guards `weft.v1.SchedulerService` and `weft.v1.AdminService` on the
scheduler's port. A caller proves who it is with an API token (`authorization: Bearer
weft_<id>.<secret>`) or, on the TLS listener, with a client certificate issued by the
member's CA for a user. No credential, or one that does not verify, ends the call with
UNAUTHENTICATED; a role below what the method needs ends it with PERMISSION_DENIED.
Nothing of the method runs in either case. The peer API (`SchedulerPeerService`) and
the health service are not guarded here: the peer API has its own check of the relay.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import AlreadyExists, InvalidArgument, NotFound
from kernel.safe_text import unsafe_character
from services.common.auth import (
    BOOTSTRAP_ADMIN,
    GUARDED_SERVICES,
    METHOD_ROLES,
    MUTATING_METHODS,
    ROLE_ADMIN,
    VIA_CERTIFICATE,
    VIA_TOKEN,
    IssuedToken,
    Principal,
    hash_secret,
    parse_token,
    role_allows,
    secret_matches,
    token_from_metadata,
)
from services.common.config import MemberConfig
from services.common.db import access as repo
from services.scheduler.constants import BOOTSTRAP_TOKEN_FILE

log = logging.getLogger("weft.scheduler.access")

_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("weft_principal", default=None)

NO_CREDENTIAL = (
    "this call needs a credential: send an API token as 'authorization: Bearer weft_<id>.<secret>' "
    "(weft --token or WEFT_TOKEN) or connect with a client certificate"
)
BAD_TOKEN = "the API token is not valid at this member"
#: The most verified tokens one scheduler remembers (expired ones are dropped first).
MAX_REMEMBERED_TOKENS = 4096


class Unauthenticated(Exception):
    """The caller's credential is missing or does not verify."""


def current_principal() -> Principal | None:
    """The verified caller of the client-API call being served (None outside one)."""
    return _principal.get()


def _short(method: str) -> str:
    return method.rsplit("/", 1)[-1]


@dataclass
class Authenticator:
    """Checks tokens and certificate identities against this member's users.

    A token is verified against its row (one primary-key lookup: hash, revocation of the
    token and of its user, expiry). A token that verified is then trusted for
    `cache_seconds` without reading the row again, keyed by the SHA-256 of the whole
    token (so only the very same secret hits) and never past the token's expiry; failures
    are never remembered. A revocation through this scheduler's AdminService empties the
    cache at once (`forget`); one made at another replica sharing the database takes
    effect here within `cache_seconds`. 0 reads the row at every call.
    """

    engine: AsyncEngine
    cache_seconds: float = 0.0
    _verified: dict[str, tuple[Principal, float]] = field(default_factory=dict, repr=False)
    #: Bumped by `forget`: a verification that read its row before a revocation is not remembered.
    _generation: int = field(default=0, repr=False)

    def forget(self) -> None:
        """Drop every remembered token: the next call of each is verified against its row."""
        self._generation += 1
        self._verified.clear()

    async def from_token(self, text: str) -> Principal:
        try:
            token_id, secret = parse_token(text)
        except InvalidArgument:
            raise Unauthenticated(f"{BAD_TOKEN} (expected weft_<id>.<secret>)") from None
        key = hash_secret(f"{token_id}.{secret}")
        now = time.time()
        remembered = self._verified.get(key)
        if remembered is not None and now < remembered[1]:
            return remembered[0]
        generation = self._generation
        record = await repo.find_token(self.engine, token_id)
        if record is None or not secret_matches(secret, record.secret_hash):
            raise Unauthenticated(BAD_TOKEN)
        if record.revoked_at is not None or record.user_revoked_at is not None:
            raise Unauthenticated(f"API token {token_id} was revoked")
        if record.expires_at is not None and record.expires_at <= time.time():
            expired = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record.expires_at))
            raise Unauthenticated(f"API token {token_id} expired at {expired}")
        principal = Principal(record.user_name, record.role, VIA_TOKEN, token_id)
        if self.cache_seconds > 0 and generation == self._generation:
            until = now + self.cache_seconds
            if record.expires_at is not None:
                until = min(until, record.expires_at)
            if len(self._verified) >= MAX_REMEMBERED_TOKENS:
                self._verified = {k: v for k, v in self._verified.items() if now < v[1]}
                if len(self._verified) >= MAX_REMEMBERED_TOKENS:
                    self._verified.clear()
            self._verified[key] = (principal, until)
        return principal

    async def from_certificate(self, user: str, role: str, serial: str) -> Principal:
        """A user named by a client certificate the TLS handshake verified against the member CA.

        The user must exist here and not be revoked; the role is the lower of the
        certificate's and the user's, so neither can raise the other.
        """
        record = await repo.get_user(self.engine, user)
        if record is None:
            raise Unauthenticated(f"client certificate names user {user!r}, who is not a user of this member")
        if record.revoked_at is not None:
            raise Unauthenticated(f"user {user!r} of the client certificate was revoked")
        granted = role if role_allows(record.role, role) else record.role
        return Principal(user, granted, VIA_CERTIFICATE, serial)


def _certificate_identity(context: grpc.aio.ServicerContext) -> tuple[str, str, str] | None:
    """(user, role, serial) of a verified client certificate on this call, if any."""
    auth = context.auth_context()
    pems = auth.get("x509_pem_cert")
    if not pems:
        return None
    from services.common.certs import user_certificate_identity

    return user_certificate_identity(pems[0])


def _target(request: Any) -> str:
    """What a call acts on, for the audit log."""
    for name, label in (("job_id", "job"), ("token_id", "token"), ("name", "user")):
        value = getattr(request, name, "")
        if isinstance(value, str) and value:
            return f"{label} {value}"
    return ""


def _status(code: Any) -> grpc.StatusCode | None:
    if isinstance(code, grpc.StatusCode):
        return code
    if isinstance(code, int):
        for status in grpc.StatusCode:
            if status.value[0] == code:
                return status
    return None


class ClientAccessInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates, authorizes and audits every call of the client and admin APIs."""

    def __init__(self, engine: AsyncEngine, authenticator: Authenticator) -> None:
        self.engine = engine
        self.authenticator = authenticator

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        service = method.lstrip("/").split("/", 1)[0]
        if handler is None or service not in GUARDED_SERVICES:
            return handler
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self._guard_unary(method, handler.unary_unary, streamed=False),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                self._guard_unary(method, handler.stream_unary, streamed=True),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self._guard_stream(method, handler.unary_stream),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(
            self._guard_stream(method, handler.stream_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer)

    async def _admit(self, method: str, context: grpc.aio.ServicerContext) -> Principal:
        """The verified caller, or the call aborted with UNAUTHENTICATED / PERMISSION_DENIED."""
        try:
            token = token_from_metadata(context.invocation_metadata())
            if token:
                principal = await self.authenticator.from_token(token)
            else:
                identity = _certificate_identity(context)
                if identity is None:
                    raise Unauthenticated(NO_CREDENTIAL)
                principal = await self.authenticator.from_certificate(*identity)
        except Unauthenticated as exc:
            log.warning("refused %s from %s: %s", _short(method), context.peer(), exc)
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(exc))
            raise AssertionError("unreachable: abort raises") from None
        required = METHOD_ROLES.get(method)
        if required is None or not role_allows(principal.role, required):
            need = f"role {required} or above" if required else "a method this member serves to clients"
            message = (f"user {principal.user!r} (role {principal.role}) may not call {_short(method)}; "
                       f"it needs {need}")
            if method in MUTATING_METHODS:
                await self._audit(principal, method, "", grpc.StatusCode.PERMISSION_DENIED)
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, message)
        return principal

    async def _audit(self, principal: Principal, method: str, target: str, code: grpc.StatusCode) -> None:
        # The target comes from the request: keep control and direction characters out of the log.
        target = "".join("?" if unsafe_character(char) else char for char in target)
        try:
            await repo.write_audit(self.engine, repo.AuditEntry(
                at=time.time(), user_name=principal.user, via=principal.via, method=_short(method),
                outcome=code.name, target=target, credential_id=principal.credential_id))
        except Exception:
            # The call's outcome stands; a lost audit row is logged loudly, never silently.
            log.exception("could not write the audit row of %s by %s", method, principal.user)

    def _guard_unary(self, method: str, behavior: Callable[..., Any], *, streamed: bool) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal = await self._admit(method, context)
            reset = _principal.set(principal)
            record = _AuditRecord(self, principal, method, "" if streamed else _target(request))
            if streamed:
                request = _capture_header(request, record)
            failure: BaseException | None = None
            try:
                response = await behavior(request, _AuditingContext(context, record) if record.wanted else context)
                if not record.target:
                    record.target = _target(response)
                return response
            except BaseException as exc:
                failure = exc
                raise
            finally:
                _principal.reset(reset)
                await record.write(_final_code(context, failure))

        return guarded

    def _guard_stream(self, method: str, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            principal = await self._admit(method, context)
            reset = _principal.set(principal)
            try:
                result = behavior(request, context)
                if hasattr(result, "__aiter__"):
                    async for response in result:
                        yield response
                else:
                    await result
            finally:
                _principal.reset(reset)

        return guarded


def _final_code(context: grpc.aio.ServicerContext, failure: BaseException | None) -> grpc.StatusCode:
    code = _status(context.code())
    if code is not None:
        return code
    return grpc.StatusCode.OK if failure is None else grpc.StatusCode.UNKNOWN


async def _capture_header(requests: AsyncIterator[Any], record: _AuditRecord) -> AsyncIterator[Any]:
    """Pass an upload's messages through, noting the data set its header names."""
    async for message in requests:
        if not record.target and message.HasField("header"):
            record.target = f"data_set {message.header.namespace}/{message.header.name}"
        yield message


@dataclass
class _AuditRecord:
    """The audit row of one mutating call, written once, before the caller hears the outcome."""

    interceptor: ClientAccessInterceptor
    principal: Principal
    method: str
    target: str
    written: bool = False

    @property
    def wanted(self) -> bool:
        return self.method in MUTATING_METHODS

    async def write(self, code: grpc.StatusCode) -> None:
        if self.wanted and not self.written:
            self.written = True
            await self.interceptor._audit(self.principal, self.method, self.target, code)


class _AuditingContext:
    """The call's context, except that an abort first writes the audit row.

    grpc answers the client as soon as a handler aborts, so a row written after the
    handler returned could land after the caller already saw the refusal.
    """

    def __init__(self, context: grpc.aio.ServicerContext, record: _AuditRecord) -> None:
        self._context = context
        self._record = record

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata: Any = ()) -> None:
        await self._record.write(code)
        await self._context.abort(code, details, trailing_metadata)


# -- bootstrap ------------------------------------------------------------------------------
def bootstrap_token_file(config: MemberConfig) -> Path:
    auth = config.scheduler.auth
    return Path(auth.bootstrap_token_file) if auth.bootstrap_token_file else Path(config.data_dir) / BOOTSTRAP_TOKEN_FILE


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    os.replace(temp, path)


async def ensure_bootstrap_admin(engine: AsyncEngine, config: MemberConfig) -> Path | None:
    """Give a new member its first admin, so nobody is ever admin by default.

    With `scheduler.auth.bootstrap_token` set (from a deployment secret) that token is
    stored, hashed, for the user `admin`. Otherwise, when the member has no user at all, the
    user `admin` is created with a fresh token written to the bootstrap token file (mode
    0600, readable by the service's own user only). A member that already has users is left
    alone. Returns the token file written, if any.
    """
    auth = config.scheduler.auth
    if auth.bootstrap_token:
        try:
            token_id, secret = parse_token(auth.bootstrap_token)
        except InvalidArgument:
            raise InvalidArgument("scheduler.auth.bootstrap_token: not a Weft API token "
                                  "(expected weft_<id>.<secret>; 'weft users token' makes one)") from None
        try:
            await repo.add_user(engine, BOOTSTRAP_ADMIN, ROLE_ADMIN, created_by="bootstrap")
        except AlreadyExists:
            pass
        if await repo.find_token(engine, token_id) is None:
            token = IssuedToken(token_id, hash_secret(secret), auth.bootstrap_token)
            try:
                await repo.store_token(engine, BOOTSTRAP_ADMIN, token, None)
            except NotFound as exc:
                log.warning("bootstrap token not stored: %s", exc)
        return None
    if await repo.count_users(engine) > 0:
        return None
    try:
        await repo.add_user(engine, BOOTSTRAP_ADMIN, ROLE_ADMIN, created_by="bootstrap")
    except AlreadyExists:
        return None  # another replica bootstrapped first
    token = await repo.issue_token(engine, BOOTSTRAP_ADMIN, None)
    path = bootstrap_token_file(config)
    _write_private(path, token.text)
    log.info("created user %r; its API token is in %s", BOOTSTRAP_ADMIN, path)
    return path
