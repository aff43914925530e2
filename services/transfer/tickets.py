"""Delivery tickets: how a member lets its tasks deliver one session's messages to a peer directly.

A task of member A that sends a large message to member B may skip A's transfer service:
it connects to B's external listener with A's *task certificate* (CN `<A>.task`, issued by
the federation CA; its key alone grants nothing but the TLS handshake) and calls `Deliver`
with a *delivery ticket* in the `weft-ticket-bin` metadata key. A's transfer service issues
the ticket (`IssueTicket`, task credential only, for a session of the task's own job): the
claims (source A, target B, session, job, issued and expiry times, a random nonce) as a
serialized `TicketClaims`, signed with A's own member key (the key of its member
certificate), and A's member certificate (DER) so B can check the signature.

B accepts the call only when (`verify_ticket`):

- the ticket's certificate was issued directly by the federation CA (`tls.ca_file`; the
  CA within its validity dates too), is within its validity dates, may serve as a server certificate (a member certificate, not a
  user or task certificate) and its CN is a member id;
- the signature over the claims verifies with that certificate's public key;
- the claims' source member is that CN and the member of the task certificate on the call;
- the claims' target is B itself, and the ticket has not expired (`CLOCK_SKEW_S` allowed
  either way for the issue time and the expiry) and claims a lifetime of at most
  `MAX_TICKET_LIFETIME_S`.

Then the message's header must name the ticket's session and source member, and B checks
everything else as for a member's own delivery (registered session, roles of the
transfer-variable definitions, frames, checksum, duplicates). A ticket may be used for any
number of messages of its session until it expires; the nonce only makes each ticket
distinct (a replayed ticket can deliver nothing its holder could not deliver anyway).
"""

from __future__ import annotations

import datetime
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf.message import DecodeError

from kernel.errors import ConfError, PermissionDenied
from kernel.federation.wire.lane import TICKET_METADATA
from protos.weft.v1 import transfer_pb2
from services.common.certs import task_common_name
from services.common.config import MEMBER_ID_PATTERN, MemberConfig

__all__ = ["TICKET_METADATA"]

#: What the signature covers before the claims (so no other signed blob passes as a ticket).
SIGNING_CONTEXT: Final = b"weft-delivery-ticket-v1\0"
#: Clock difference allowed between the member that signs and the member that checks.
CLOCK_SKEW_S: Final = 30.0
NONCE_BYTES: Final = 16
#: Longest lifetime a peer accepts (expiry minus issue time); `transfer.ticket_ttl_s` allows at most this.
MAX_TICKET_LIFETIME_S: Final = 3600.0
#: Largest ticket accepted in metadata (a certificate and a signature; a few KiB in practice).
MAX_TICKET_BYTES: Final = 16 * 1024


@dataclass(frozen=True)
class Ticket:
    """A verified ticket's claims."""

    source_member_id: str
    target_member_id: str
    session_id: str
    job_id: str
    expires_at_ms: int


def _private_key(pem: bytes, field: str) -> Any:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise ConfError(f"{field}: a delivery ticket is signed with an EC or RSA key, not {type(key).__name__}")
    return key


def sign_ticket(
    key_pem: bytes, cert_pem: bytes, *, source: str, target: str, session_id: str, job_id: str, ttl_s: float,
    now: float | None = None,
) -> tuple[bytes, int]:
    """(serialized DeliveryTicket, expiry in Unix ms) signed with the member key `key_pem`."""
    key = _private_key(key_pem, "tls.key_file")
    cert = x509.load_pem_x509_certificate(cert_pem)
    issued_ms = int((time.time() if now is None else now) * 1000)
    expires_ms = issued_ms + int(ttl_s * 1000)
    claims = transfer_pb2.TicketClaims(
        source_member_id=source, target_member_id=target, session_id=session_id, job_id=job_id,
        issued_at_ms=issued_ms, expires_at_ms=expires_ms, nonce=secrets.token_bytes(NONCE_BYTES),
    ).SerializeToString()
    data = SIGNING_CONTEXT + claims
    if isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(data, ec.ECDSA(hashes.SHA256()))
    else:
        signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    ticket = transfer_pb2.DeliveryTicket(
        claims=claims, signature=signature, member_certificate=cert.public_bytes(serialization.Encoding.DER))
    return ticket.SerializeToString(), expires_ms


def load_ca_certificates(path: str | Path) -> list[x509.Certificate]:
    """The certificates of the federation CA file (one or more PEM blocks)."""
    try:
        certs = x509.load_pem_x509_certificates(Path(path).read_bytes())
    except (OSError, ValueError) as exc:
        raise ConfError(f"tls.ca_file: cannot read the federation CA from {path}: {exc}") from None
    return certs


def check_task_certificate(config: MemberConfig, ca_certs: Sequence[x509.Certificate]) -> None:
    """Refuse to start with a task certificate that is unreadable, not this member's, not from the
    federation CA, or whose key is not its key (ConfError naming the file)."""
    tls = config.tls
    if not (tls.task_cert_file and tls.task_key_file):
        raise ConfError("tls: task_cert_file and task_key_file go together (set both, or neither)")
    try:
        cert = x509.load_pem_x509_certificate(Path(tls.task_cert_file).read_bytes())
        key = serialization.load_pem_private_key(Path(tls.task_key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfError(f"tls.task_cert_file / task_key_file: cannot load {tls.task_cert_file} and "
                        f"{tls.task_key_file}: {exc}") from None
    expected = task_common_name(config.member_id)
    if _common_name(cert) != expected:
        raise ConfError(f"tls.task_cert_file: {tls.task_cert_file} has CN {_common_name(cert)!r}, a task "
                        f"certificate of this member has CN {expected!r} (`weft certs issue` writes one)")
    if ca_certs and not any(_issued_by(cert, ca) for ca in ca_certs):
        raise ConfError(f"tls.task_cert_file: {tls.task_cert_file} was not issued by the federation CA "
                        f"({tls.ca_file})")
    public = cert.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(serialization.Encoding.DER,
                                     serialization.PublicFormat.SubjectPublicKeyInfo) != public:
        raise ConfError(f"tls.task_key_file: {tls.task_key_file} is not the key of {tls.task_cert_file}")


def _common_name(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if len(names) == 1 else ""


def _is_server_certificate(cert: x509.Certificate) -> bool:
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return ExtendedKeyUsageOID.SERVER_AUTH in usage


def _check_signature(cert: x509.Certificate, signature: bytes, data: bytes) -> None:
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            raise PermissionDenied(f"delivery ticket: the member certificate's key type {type(key).__name__} "
                                   "cannot sign tickets")
    except InvalidSignature:
        raise PermissionDenied("delivery ticket: the signature does not verify with the member certificate "
                               "it carries") from None


def ticket_of(metadata: Sequence[tuple[str, Any]] | None) -> bytes | None:
    """The ticket in a call's metadata (None when there is none)."""
    for name, value in metadata or ():
        if name == TICKET_METADATA:
            return value if isinstance(value, bytes) else None
    return None


def verify_ticket(
    raw: bytes | None, ca_certs: Sequence[x509.Certificate], *, caller_member: str, this_member: str,
    now: float | None = None,
) -> Ticket:
    """The claims of a valid ticket presented with `caller_member`'s task certificate; PermissionDenied
    naming what is wrong otherwise."""
    if not raw:
        raise PermissionDenied(f"a task certificate of member {caller_member} may deliver only with a delivery "
                               f"ticket in the {TICKET_METADATA} metadata; none was sent")
    if len(raw) > MAX_TICKET_BYTES:
        raise PermissionDenied(f"delivery ticket: {len(raw)} bytes, at most {MAX_TICKET_BYTES}")
    try:
        ticket = transfer_pb2.DeliveryTicket.FromString(raw)
        claims = transfer_pb2.TicketClaims.FromString(ticket.claims)
        cert = x509.load_der_x509_certificate(ticket.member_certificate)
    except (DecodeError, ValueError) as exc:
        raise PermissionDenied(f"delivery ticket: does not parse: {exc}") from None
    moment = time.time() if now is None else now
    at = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    issuers = [ca for ca in ca_certs if _issued_by(cert, ca) and _valid_at(ca, at)]
    if not issuers:
        raise PermissionDenied("delivery ticket: its member certificate was not issued by the federation CA")
    if not _valid_at(cert, at):
        raise PermissionDenied("delivery ticket: its member certificate is outside its validity dates")
    signer = _common_name(cert)
    if not MEMBER_ID_PATTERN.match(signer) or not _is_server_certificate(cert):
        raise PermissionDenied(f"delivery ticket: its certificate (CN {signer!r}) is not a member certificate")
    _check_signature(cert, ticket.signature, SIGNING_CONTEXT + ticket.claims)
    if claims.source_member_id != signer:
        raise PermissionDenied(f"delivery ticket: source member {claims.source_member_id} is not the member "
                               f"{signer} whose certificate signed it")
    if claims.source_member_id != caller_member:
        raise PermissionDenied(f"delivery ticket: source member {claims.source_member_id} is not the member "
                               f"{caller_member} of the task certificate that presents it")
    if claims.target_member_id != this_member:
        raise PermissionDenied(f"delivery ticket: issued for member {claims.target_member_id}, this is {this_member}")
    skew_ms = CLOCK_SKEW_S * 1000
    moment_ms = moment * 1000
    if claims.expires_at_ms + skew_ms < moment_ms:
        raise PermissionDenied("delivery ticket: expired")
    if claims.issued_at_ms - skew_ms > moment_ms:
        raise PermissionDenied("delivery ticket: issued in the future")
    if claims.expires_at_ms - claims.issued_at_ms > MAX_TICKET_LIFETIME_S * 1000:
        raise PermissionDenied(f"delivery ticket: valid for {(claims.expires_at_ms - claims.issued_at_ms) / 1000:.0f} s, "
                               f"longer than the {MAX_TICKET_LIFETIME_S:.0f} s a peer accepts")
    if not claims.session_id:
        raise PermissionDenied("delivery ticket: names no session")
    return Ticket(claims.source_member_id, claims.target_member_id, claims.session_id, claims.job_id,
                  claims.expires_at_ms)


def _valid_at(cert: x509.Certificate, at: datetime.datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
