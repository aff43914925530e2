"""Who may call the client API: API tokens, user roles and the role each RPC needs.

A token reads `weft_<id>.<secret>`. The id is public (it names the token in lists and in
the audit log); the secret is 32 random bytes, URL-safe base64, and only its SHA-256 is
stored, so a copy of the database does not hold a usable credential. A token is shown
once, when it is issued.

Roles are ordered: `viewer` reads, `operator` also uploads data, submits, stops and
reruns jobs, `admin` also manages users, tokens and certificates and reads the audit log.
`METHOD_ROLES` names the least role of every RPC of the client API; an RPC missing from
it is refused, so a new one cannot be served unguarded by accident.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final

from kernel.errors import InvalidArgument

ROLE_VIEWER: Final = "viewer"
ROLE_OPERATOR: Final = "operator"
ROLE_ADMIN: Final = "admin"
#: Roles from the least to the most allowed; each includes what the ones before it may do.
ROLES: Final = (ROLE_VIEWER, ROLE_OPERATOR, ROLE_ADMIN)
_RANK: Final = {role: rank for rank, role in enumerate(ROLES)}

TOKEN_PREFIX: Final = "weft_"
TOKEN_ID_BYTES: Final = 8
TOKEN_SECRET_BYTES: Final = 32
TOKEN_PATTERN: Final = re.compile(r"^weft_([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$")
#: Metadata key of the credential on a call (standard HTTP authorization, lower case in gRPC).
AUTHORIZATION_METADATA: Final = "authorization"
BEARER: Final = "Bearer "

#: A user name: what the audit log shows and what a client certificate's CN carries.
USER_NAME_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")
BOOTSTRAP_ADMIN: Final = "admin"

CLIENT_SERVICE: Final = "weft.v1.SchedulerService"
ADMIN_SERVICE: Final = "weft.v1.AdminService"
GUARDED_SERVICES: Final = (CLIENT_SERVICE, ADMIN_SERVICE)

#: The least role of every RPC of the client and admin APIs (full gRPC method names).
METHOD_ROLES: Final[dict[str, str]] = {
    f"/{CLIENT_SERVICE}/SubmitJob": ROLE_OPERATOR,
    f"/{CLIENT_SERVICE}/GetJob": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/ListJobs": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/StopJob": ROLE_OPERATOR,
    f"/{CLIENT_SERVICE}/RerunJob": ROLE_OPERATOR,
    f"/{CLIENT_SERVICE}/WatchJob": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/UploadDataSet": ROLE_OPERATOR,
    f"/{CLIENT_SERVICE}/ListDataSets": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/GetTaskResult": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/GetMetrics": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/WhoAmI": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/GetModel": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/GetMembers": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/GetDataSetSummary": ROLE_VIEWER,
    f"/{CLIENT_SERVICE}/GetTaskLog": ROLE_VIEWER,
    f"/{ADMIN_SERVICE}/AddUser": ROLE_ADMIN,
    f"/{ADMIN_SERVICE}/ListUsers": ROLE_ADMIN,
    f"/{ADMIN_SERVICE}/IssueToken": ROLE_ADMIN,
    f"/{ADMIN_SERVICE}/RevokeToken": ROLE_ADMIN,
    f"/{ADMIN_SERVICE}/RevokeUser": ROLE_ADMIN,
    f"/{ADMIN_SERVICE}/ListAudit": ROLE_ADMIN,
}

#: RPCs that change something: each call is written to the audit log, whatever its outcome.
MUTATING_METHODS: Final = frozenset({
    f"/{CLIENT_SERVICE}/SubmitJob",
    f"/{CLIENT_SERVICE}/StopJob",
    f"/{CLIENT_SERVICE}/RerunJob",
    f"/{CLIENT_SERVICE}/UploadDataSet",
    f"/{ADMIN_SERVICE}/AddUser",
    f"/{ADMIN_SERVICE}/IssueToken",
    f"/{ADMIN_SERVICE}/RevokeToken",
    f"/{ADMIN_SERVICE}/RevokeUser",
})

VIA_TOKEN: Final = "token"
VIA_CERTIFICATE: Final = "certificate"


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the scheduler verified it."""

    user: str
    role: str
    via: str
    #: The token's public id, or the certificate's serial number in hex.
    credential_id: str


@dataclass(frozen=True)
class IssuedToken:
    """A new token: `text` goes to its holder once; the rest is what the database keeps."""

    token_id: str
    secret_hash: str
    text: str


def role_allows(role: str, required: str) -> bool:
    """Whether `role` may do what `required` may."""
    return role in _RANK and _RANK[role] >= _RANK[required]


def check_role(role: str) -> str:
    if role not in _RANK:
        raise InvalidArgument(f"role: {role!r} is not a role (expected one of {', '.join(ROLES)})")
    return role


def check_user_name(name: str) -> str:
    if not USER_NAME_PATTERN.match(name):
        raise InvalidArgument(
            f"user name {name!r}: use a lowercase letter, then up to 63 lowercase letters, digits, '_', '.' or '-'"
        )
    return name


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def new_token() -> IssuedToken:
    token_id = secrets.token_hex(TOKEN_ID_BYTES)
    secret = secrets.token_urlsafe(TOKEN_SECRET_BYTES)
    return IssuedToken(token_id, hash_secret(secret), f"{TOKEN_PREFIX}{token_id}.{secret}")


def parse_token(text: str) -> tuple[str, str]:
    """(token id, secret) of a token's text; InvalidArgument when it is not shaped like one."""
    match = TOKEN_PATTERN.match(text.strip())
    if match is None:
        raise InvalidArgument("not a Weft API token (expected weft_<id>.<secret>)")
    return match.group(1), match.group(2)


def secret_matches(secret: str, stored_hash: str) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def token_from_metadata(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
    """The bearer token of a call's metadata, if any."""
    for key, value in metadata or ():
        if key == AUTHORIZATION_METADATA:
            text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            return text[len(BEARER):] if text.startswith(BEARER) else text
    return None
