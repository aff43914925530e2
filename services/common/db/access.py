"""Reads and writes of client access: users, API tokens (hashed) and the audit log."""

from __future__ import annotations

import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from kernel.errors import AlreadyExists, NotFound
from services.common.auth import IssuedToken, check_role, check_user_name, new_token
from services.common.db.engine import retry_transient, write_transaction
from services.common.db.schema import api_tokens, audit_log, users


@dataclass(frozen=True)
class UserRecord:
    """A user of this member's client API."""

    name: str
    role: str
    created_at: float
    created_by: str = ""
    revoked_at: float | None = None
    active_tokens: int = 0


@dataclass(frozen=True)
class TokenRecord:
    """A stored token with its user's role and state (what a call's check needs)."""

    token_id: str
    user_name: str
    secret_hash: str
    expires_at: float | None
    revoked_at: float | None
    role: str
    user_revoked_at: float | None


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log."""

    at: float
    user_name: str
    via: str
    method: str
    outcome: str
    target: str = ""
    credential_id: str = ""


async def add_user(engine: AsyncEngine, name: str, role: str, created_by: str) -> UserRecord:
    """A new user; ALREADY_EXISTS when the name is taken (a revoked user's name stays taken)."""
    check_user_name(name)
    check_role(role)
    record = UserRecord(name=name, role=role, created_at=time.time(), created_by=created_by)

    async def insert() -> None:
        async with write_transaction(engine) as conn:
            await conn.execute(sa.insert(users).values(
                name=name, role=role, created_at=record.created_at, created_by=created_by))

    try:
        await retry_transient(insert)
    except IntegrityError:
        raise AlreadyExists(f"user {name!r} already exists") from None
    return record


async def get_user(engine: AsyncEngine, name: str) -> UserRecord | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.name == name))).mappings().first()
    return UserRecord(**dict(row)) if row is not None else None


async def count_users(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one())


async def list_users(engine: AsyncEngine) -> list[UserRecord]:
    """Every user, by name, with the number of its tokens still usable."""
    now = time.time()
    active = (
        sa.select(sa.func.count())
        .where(api_tokens.c.user_name == users.c.name, api_tokens.c.revoked_at.is_(None),
               sa.or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now))
        .scalar_subquery()
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(users, active.label("active_tokens")).order_by(users.c.name))).mappings()
        return [UserRecord(**dict(row)) for row in rows]


async def issue_token(engine: AsyncEngine, user_name: str, ttl_seconds: float | None) -> IssuedToken:
    """A new token of an active user, valid for `ttl_seconds` (None: until revoked)."""
    token = new_token()
    await store_token(engine, user_name, token, ttl_seconds)
    return token


async def store_token(engine: AsyncEngine, user_name: str, token: IssuedToken, ttl_seconds: float | None) -> None:
    now = time.time()

    async def insert() -> None:
        async with write_transaction(engine) as conn:
            user = (await conn.execute(sa.select(users.c.revoked_at).where(users.c.name == user_name))).first()
            if user is None:
                raise NotFound(f"no user {user_name!r}")
            if user.revoked_at is not None:
                raise NotFound(f"user {user_name!r} is revoked")
            await conn.execute(sa.insert(api_tokens).values(
                token_id=token.token_id, user_name=user_name, secret_hash=token.secret_hash, created_at=now,
                expires_at=None if ttl_seconds is None else now + ttl_seconds))

    await retry_transient(insert)


async def find_token(engine: AsyncEngine, token_id: str) -> TokenRecord | None:
    query = (
        sa.select(api_tokens.c.token_id, api_tokens.c.user_name, api_tokens.c.secret_hash,
                  api_tokens.c.expires_at, api_tokens.c.revoked_at, users.c.role,
                  users.c.revoked_at.label("user_revoked_at"))
        .join(users, users.c.name == api_tokens.c.user_name)
        .where(api_tokens.c.token_id == token_id)
    )
    async with engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    return TokenRecord(**dict(row)) if row is not None else None


async def revoke_token(engine: AsyncEngine, token_id: str) -> str:
    """Revoke one token; returns its user's name. NOT_FOUND for an unknown token id."""

    async def update() -> str:
        async with write_transaction(engine) as conn:
            row = (await conn.execute(
                sa.select(api_tokens.c.user_name).where(api_tokens.c.token_id == token_id))).first()
            if row is None:
                raise NotFound(f"no token {token_id!r}")
            await conn.execute(sa.update(api_tokens).where(
                api_tokens.c.token_id == token_id, api_tokens.c.revoked_at.is_(None)).values(revoked_at=time.time()))
            return str(row.user_name)

    return await retry_transient(update)


async def revoke_user(engine: AsyncEngine, name: str) -> list[str]:
    """Revoke a user and every token of it; returns the ids of the tokens revoked now."""

    async def update() -> list[str]:
        now = time.time()
        async with write_transaction(engine) as conn:
            if (await conn.execute(sa.select(users.c.name).where(users.c.name == name))).first() is None:
                raise NotFound(f"no user {name!r}")
            await conn.execute(sa.update(users).where(users.c.name == name, users.c.revoked_at.is_(None))
                               .values(revoked_at=now))
            ids = [str(r.token_id) for r in await conn.execute(
                sa.select(api_tokens.c.token_id).where(api_tokens.c.user_name == name,
                                                       api_tokens.c.revoked_at.is_(None)))]
            await conn.execute(sa.update(api_tokens).where(api_tokens.c.token_id.in_(ids)).values(revoked_at=now))
            return ids

    return await retry_transient(update)


async def write_audit(engine: AsyncEngine, entry: AuditEntry) -> None:
    async def insert() -> None:
        async with write_transaction(engine) as conn:
            await conn.execute(sa.insert(audit_log).values(
                at=entry.at, user_name=entry.user_name, via=entry.via, credential_id=entry.credential_id,
                method=entry.method, target=entry.target[:191], outcome=entry.outcome))

    await retry_transient(insert)


async def list_audit(engine: AsyncEngine, limit: int = 100) -> list[AuditEntry]:
    """The newest `limit` audit rows, newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [AuditEntry(**{k: v for k, v in dict(row).items() if k != "id"}) for row in rows]
