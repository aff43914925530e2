"""The member-internal credential: signing, verifying, the key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kernel.errors import ConfError, PermissionDenied, Unauthenticated
from services.common import internal_auth
from services.common.config import MemberConfig

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


def test_a_signed_credential_verifies_with_its_claims() -> None:
    token = internal_auth.sign(KEY, internal_auth.RELAY, member="a" * 32, method="/weft.v1.SchedulerPeerService/StopJob")

    claims = internal_auth.verify(KEY, token, {internal_auth.RELAY})

    assert (claims.signer, claims.member, claims.method) == (
        internal_auth.RELAY, "a" * 32, "/weft.v1.SchedulerPeerService/StopJob")


@pytest.mark.parametrize("token, message", [
    (None, "none was sent"),
    ("", "none was sent"),
    ("garbage", "not signed with this member's key"),
    (internal_auth.sign(OTHER, internal_auth.RELAY, member="a" * 32), "not signed with this member's key"),
])
def test_a_missing_or_foreign_credential_is_unauthenticated(token: str | None, message: str) -> None:
    with pytest.raises(Unauthenticated, match=message):
        internal_auth.verify(KEY, token, {internal_auth.RELAY})


def test_a_changed_claim_breaks_the_signature() -> None:
    body, _, mac = internal_auth.sign(KEY, internal_auth.RELAY, member="a" * 32).partition(".")
    forged = internal_auth._b64(internal_auth._unb64(body).replace(b"a" * 32, b"b" * 32)) + "." + mac

    with pytest.raises(Unauthenticated, match="not signed"):
        internal_auth.verify(KEY, forged, {internal_auth.RELAY})


def test_expiry_and_future_issue_are_refused_beyond_the_skew() -> None:
    token = internal_auth.sign(KEY, internal_auth.SCHEDULER, ttl_s=60, now=1_000_000.0)

    internal_auth.verify(KEY, token, {internal_auth.SCHEDULER}, now=1_000_000.0 + 60 + internal_auth.CLOCK_SKEW_S - 1)
    with pytest.raises(Unauthenticated, match="expired"):
        internal_auth.verify(KEY, token, {internal_auth.SCHEDULER}, now=1_000_000.0 + 60 + internal_auth.CLOCK_SKEW_S + 1)
    with pytest.raises(Unauthenticated, match="in the future"):
        internal_auth.verify(KEY, token, {internal_auth.SCHEDULER}, now=1_000_000.0 - internal_auth.CLOCK_SKEW_S - 1)


def test_a_credential_of_another_signer_is_denied() -> None:
    token = internal_auth.sign(KEY, internal_auth.TASK, job="j", task="t")

    with pytest.raises(PermissionDenied, match="scheduler only"):
        internal_auth.verify(KEY, token, {internal_auth.SCHEDULER})


def test_the_key_file_is_written_private_and_kept(tmp_path: Path) -> None:
    path = internal_auth.write_key(tmp_path / "k" / "internal.key")
    first = internal_auth.read_key(path)

    internal_auth.write_key(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert internal_auth.read_key(path) == first and len(first) == internal_auth.KEY_BYTES


def test_a_missing_or_shared_key_file_stops_a_service_with_a_clear_message(tmp_path: Path) -> None:
    config = MemberConfig.model_validate({"member_id": "a" * 32, "data_dir": str(tmp_path)})
    with pytest.raises(ConfError, match="internal.key does not exist"):
        internal_auth.load_member_key(config)

    path = internal_auth.write_key(tmp_path / "internal.key")
    os.chmod(path, 0o644)
    with pytest.raises(ConfError, match="open to others"):
        internal_auth.load_member_key(config)


def test_a_per_call_credential_is_accepted_once() -> None:
    guard = internal_auth.ReplayGuard()
    claims = internal_auth.verify(KEY, internal_auth.sign(KEY, internal_auth.RELAY, member="a" * 32), {internal_auth.RELAY})

    guard.check(claims)
    with pytest.raises(Unauthenticated, match="used before"):
        guard.check(claims)
    guard.check(internal_auth.verify(KEY, internal_auth.sign(KEY, internal_auth.RELAY), {internal_auth.RELAY}))
