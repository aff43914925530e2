"""Credentials inside one member: signed service tokens between its scheduler, executor and transfer service.

Every service of a member reads the same member-internal key (32 random bytes, hex, in a
file only its owner may read; `internal_key_file` in the member config). A caller signs a
token per call: HMAC-SHA256 over what the token claims (which service signed it, when,
until when, a nonce and, as the call requires, the peer member the transfer service
verified from a TLS certificate, the relayed method, the job and task). The token travels
as gRPC metadata (`weft-internal-credential`) or, on the data lane, in the opening record.
The callee checks the signature with a constant-time comparison, the expiry with a small
allowance for clock skew, and then what the claims allow.

Signers:

- `scheduler`: the member's scheduler calling its executor and transfer service (60 s).
- `relay`: the transfer service handing a peer call to its scheduler, stamped with the
  peer member id from the certificate and the method (60 s).
- `serving`: the member's serving service calling its transfer service's relay, for
  serving peer calls only (60 s).
- `task`: the executor giving a task process the right to use its job's sessions at the
  transfer service, bound to job and task (valid as long as a task may run).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import stat
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

import grpc

from kernel.errors import ConfError, PermissionDenied, Unauthenticated
from kernel.federation.wire.lane import CREDENTIAL_METADATA, TASK_CREDENTIAL_ENV

__all__ = ["CREDENTIAL_METADATA", "TASK_CREDENTIAL_ENV"]

KEY_BYTES: Final = 32

SCHEDULER: Final = "scheduler"
RELAY: Final = "relay"
TASK: Final = "task"
SERVING: Final = "serving"
SIGNERS: Final = frozenset({SCHEDULER, RELAY, TASK, SERVING})

#: Lifetime of a per-call credential.
CALL_TTL_S: Final = 60.0
#: Lifetime of a task credential (a task may run long; its job's sessions end before).
TASK_TTL_S: Final = 30 * 24 * 3600.0
#: Clock difference allowed between signer and verifier.
CLOCK_SKEW_S: Final = 30.0


@dataclass(frozen=True)
class Claims:
    """What a verified credential says."""

    signer: str
    issued_at: float
    expires_at: float
    nonce: str
    member: str = ""
    method: str = ""
    job: str = ""
    task: str = ""


def write_key(path: str | Path) -> Path:
    """Create a new key file (mode 0600); an existing one is kept. Returns its path."""
    target = Path(path)
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(KEY_BYTES) + "\n")
    return target


def read_key(path: str | Path) -> bytes:
    """The key in `path`; ConfError with what to do when it is missing, open to others or malformed."""
    target = Path(path)
    hint = "(`weft standalone up` and `weft deploy` write it; or run `python -m services.common.internal_auth PATH`)"
    try:
        mode = target.stat().st_mode
        text = target.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise ConfError(f"internal_key_file: {target} does not exist; every service of a member needs the "
                        f"member-internal key {hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfError(f"internal_key_file: cannot read {target}: {exc}") from None
    if mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP):
        raise ConfError(f"internal_key_file: {target} is open to others (mode {stat.S_IMODE(mode):o}); "
                        "chmod 600 it (0440 for a Kubernetes Secret is fine)")
    try:
        key = binascii.unhexlify(text)
    except (binascii.Error, ValueError):
        raise ConfError(f"internal_key_file: {target} does not hold a hex key {hint}") from None
    if len(key) < KEY_BYTES:
        raise ConfError(f"internal_key_file: {target} holds {len(key)} bytes, at least {KEY_BYTES} are needed")
    return key


def load_member_key(config: Any) -> bytes:
    """The key of a MemberConfig."""
    return read_key(config.resolved_internal_key_file())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, body: str) -> str:
    return _b64(hmac.new(key, body.encode("ascii"), hashlib.sha256).digest())


def sign(key: bytes, signer: str, *, member: str = "", method: str = "", job: str = "", task: str = "",
         ttl_s: float = CALL_TTL_S, now: float | None = None) -> str:
    """A credential of `signer` with these claims, valid `ttl_s` seconds."""
    if signer not in SIGNERS:
        raise ValueError(f"unknown signer {signer!r}")
    issued = time.time() if now is None else now
    claims = {"s": signer, "iat": round(issued, 3), "exp": round(issued + ttl_s, 3), "n": secrets.token_hex(8),
              "m": member, "rpc": method, "job": job, "task": task}
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{body}.{_mac(key, body)}"


def verify(key: bytes, token: str | None, signers: Collection[str], *, now: float | None = None,
           what: str = "this call") -> Claims:
    """The claims of a valid credential from one of `signers`; Unauthenticated otherwise."""
    accepted = " or ".join(sorted(signers))
    if not token:
        raise Unauthenticated(f"{what} needs the member-internal credential of the {accepted}; none was sent")
    body, dot, mac = token.partition(".")
    if not dot or not hmac.compare_digest(_mac(key, body), mac):
        raise Unauthenticated(f"{what}: the internal credential is not signed with this member's key")
    try:
        raw = json.loads(_unb64(body))
        claims = Claims(signer=str(raw["s"]), issued_at=float(raw["iat"]), expires_at=float(raw["exp"]),
                        nonce=str(raw["n"]), member=str(raw.get("m", "")), method=str(raw.get("rpc", "")),
                        job=str(raw.get("job", "")), task=str(raw.get("task", "")))
    except (ValueError, KeyError, TypeError):
        raise Unauthenticated(f"{what}: the internal credential does not parse") from None
    moment = time.time() if now is None else now
    if claims.expires_at + CLOCK_SKEW_S < moment:
        raise Unauthenticated(f"{what}: the internal credential expired")
    if claims.issued_at - CLOCK_SKEW_S > moment:
        raise Unauthenticated(f"{what}: the internal credential was issued in the future")
    if claims.signer not in signers:
        raise PermissionDenied(f"{what} is for the {accepted} only; the credential is the {claims.signer}'s")
    return claims


class ReplayGuard:
    """Refuses a per-call credential seen before (a call captured on the member's network and
    sent again); remembers nonces until their credential expires."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._next_prune = 0.0

    def check(self, claims: Claims, what: str = "this call", now: float | None = None) -> None:
        moment = time.time() if now is None else now
        if moment >= self._next_prune:
            self._seen = {nonce: until for nonce, until in self._seen.items() if until >= moment}
            self._next_prune = moment + CALL_TTL_S
        if claims.nonce in self._seen:
            raise Unauthenticated(f"{what}: the internal credential was used before (a replayed call)")
        self._seen[claims.nonce] = claims.expires_at + CLOCK_SKEW_S


def token_of(metadata: Sequence[tuple[str, Any]] | None) -> str | None:
    """The credential in a call's metadata."""
    for name, value in metadata or ():
        if name == CREDENTIAL_METADATA:
            return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
    return None


def metadata(token: str) -> tuple[tuple[str, str]]:
    """Call metadata carrying `token`."""
    return ((CREDENTIAL_METADATA, token),)


class _AioSigner:
    """Adds a fresh credential to every call of an asyncio channel.

    grpc.aio files each interceptor under the first call kind it implements, so there is
    one subclass per kind (`_aio_signers`)."""

    def __init__(self, key: bytes, signer: str) -> None:
        self.key = key
        self.signer = signer

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        pairs = [*(details.metadata or ()), (CREDENTIAL_METADATA, sign(self.key, self.signer))]
        return grpc.aio.ClientCallDetails(details.method, details.timeout, grpc.aio.Metadata(*pairs),
                                          details.credentials, details.wait_for_ready)


class _AioUnaryUnary(_AioSigner, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    async def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _AioUnaryStream(_AioSigner, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    async def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return await continuation(self._details(client_call_details), request)


class _AioStreamUnary(_AioSigner, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    async def intercept_stream_unary(self, continuation: Any, client_call_details: Any,
                                     request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


class _AioStreamStream(_AioSigner, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]  # grpc ships no type stubs
    async def intercept_stream_stream(self, continuation: Any, client_call_details: Any,
                                      request_iterator: Any) -> Any:
        return await continuation(self._details(client_call_details), request_iterator)


def signed_aio_channel(endpoint: str, key: bytes, signer: str = SCHEDULER,
                       options: Sequence[tuple[str, Any]] | None = None) -> grpc.aio.Channel:
    """An asyncio channel whose every call carries a fresh credential of `signer`."""
    interceptors: list[Any] = [kind(key, signer) for kind in (_AioUnaryUnary, _AioUnaryStream, _AioStreamUnary,
                                                               _AioStreamStream)]
    return grpc.aio.insecure_channel(endpoint, options=options, interceptors=interceptors)


class _CallDetails(NamedTuple):
    method: str
    timeout: float | None
    metadata: Any
    credentials: Any
    wait_for_ready: bool | None
    compression: Any


class _SignedSync(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]  # grpc ships no type stubs
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]  # grpc ships no type stubs
    grpc.StreamUnaryClientInterceptor,  # type: ignore[misc]  # grpc ships no type stubs
    grpc.StreamStreamClientInterceptor,  # type: ignore[misc]  # grpc ships no type stubs
):
    """Adds a credential to every call of a blocking channel (a fixed one, or a fresh one per call)."""

    def __init__(self, token: Callable[[], str]) -> None:
        self.token = token

    def _details(self, details: Any) -> Any:
        pairs = [*(details.metadata or ()), (CREDENTIAL_METADATA, self.token())]
        return _CallDetails(details.method, details.timeout, pairs, details.credentials,
                            getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_unary_stream(self, continuation: Any, client_call_details: Any, request: Any) -> Any:
        return continuation(self._details(client_call_details), request)

    def intercept_stream_unary(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation: Any, client_call_details: Any, request_iterator: Any) -> Any:
        return continuation(self._details(client_call_details), request_iterator)


def signed_channel(channel: grpc.Channel, token: Callable[[], str]) -> grpc.Channel:
    """`channel` with `token()` added to every call's metadata (blocking gRPC)."""
    return grpc.intercept_channel(channel, _SignedSync(token))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m services.common.internal_auth PATH`: write a new member-internal key (kept if present)."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python -m services.common.internal_auth PATH  (writes a member-internal key, mode 0600)",
              file=sys.stderr)
        return 2
    existed = Path(args[0]).exists()
    path = write_key(args[0])
    print(f"{path}: {'kept (exists)' if existed else 'written'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
