"""A federation CA, member certificates (CN = member id) for mutual TLS between members, and
task certificates (CN = `<member id>.task`) that let a member's tasks open a TLS connection to
a peer's external listener, where they may only deliver a message with a ticket the member
signed (services/transfer/tickets.py)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.config import MEMBER_ID_PATTERN

CA_CERT_FILE: Final = "ca.crt"
CA_KEY_FILE: Final = "ca.key"
CA_DAYS: Final = 3650
MEMBER_DAYS: Final = 825
#: The CN suffix of a task certificate: `<member id>.task` is no member id (MEMBER_ID_PATTERN fails).
TASK_CN_SUFFIX: Final = ".task"
DEFAULT_HOSTS: Final = ("127.0.0.1", "localhost")
CA_NAME: Final = "Weft federation CA"


@dataclass(frozen=True)
class CaFiles:
    """Where a federation CA lives."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class MemberCertFiles:
    """What a member puts in its config's `tls` section."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    task_cert_file: Path
    task_key_file: Path


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def create_ca(ca_dir: str | Path, name: str = CA_NAME, days: int = CA_DAYS, overwrite: bool = False) -> CaFiles:
    """Create a federation CA (ca.crt, ca.key) in `ca_dir`; every member trusts its ca.crt."""
    directory = Path(ca_dir)
    directory.mkdir(parents=True, exist_ok=True)
    files = CaFiles(directory / CA_CERT_FILE, directory / CA_KEY_FILE)
    if not overwrite and (files.cert_file.exists() or files.key_file.exists()):
        raise FailedPrecondition(f"a CA already exists in {directory}; refusing to overwrite it")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(files.key_file, _key_pem(key))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def _load_ca(ca_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = ca_dir / CA_CERT_FILE, ca_dir / CA_KEY_FILE
    if not cert_path.is_file() or not key_path.is_file():
        raise NotFound(f"no CA in {ca_dir} (expected {CA_CERT_FILE} and {CA_KEY_FILE}); create one first")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidArgument(f"{key_path}: expected an EC private key")
    return cert, key


def _san_entry(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def issue_member_cert(
    ca_dir: str | Path,
    member_id: str,
    hosts: list[str] | tuple[str, ...] = DEFAULT_HOSTS,
    out_dir: str | Path | None = None,
    days: int = MEMBER_DAYS,
) -> MemberCertFiles:
    """Issue `<member_id>.crt` / `.key` signed by the CA in `ca_dir`, written to `out_dir`.

    The certificate's CN is the member id, which is how peers learn who is calling. Its
    subject alternative names hold the member id as a DNS name (peers check it when they
    connect, so an endpoint cannot be served by another member's certificate), the given
    `hosts` (IP addresses or DNS names) and, for loopback use, 127.0.0.1, ::1 and localhost.
    The certificate serves both as a server and a client certificate. The member's task
    certificate (`issue_task_cert`) is issued beside it.
    """
    if not MEMBER_ID_PATTERN.match(member_id):
        raise InvalidArgument(f"member_id {member_id!r} must be 32 lowercase hex characters")
    ca_path = Path(ca_dir)
    ca_cert, ca_key = _load_ca(ca_path)
    directory = Path(out_dir) if out_dir is not None else ca_path
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(member_id)]
    for host in [*hosts, "127.0.0.1", "::1", "localhost"]:
        entry = _san_entry(host)
        if entry not in names:
            names.append(entry)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, member_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    task_cert, task_key = issue_task_cert(ca_path, member_id, out_dir=directory, days=days)
    files = MemberCertFiles(ca_path / CA_CERT_FILE, directory / f"{member_id}.crt", directory / f"{member_id}.key",
                            task_cert, task_key)
    _write_private(files.key_file, _key_pem(key))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def task_common_name(member_id: str) -> str:
    """The CN of a member's task certificate."""
    return member_id + TASK_CN_SUFFIX


def task_member_id(common_name: str) -> str | None:
    """The member whose task certificate has this CN; None for any other CN."""
    if not common_name.endswith(TASK_CN_SUFFIX):
        return None
    member = common_name[: -len(TASK_CN_SUFFIX)]
    return member if MEMBER_ID_PATTERN.match(member) else None


def _client_certificate(
    subject: x509.Name, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A new key and a certificate for it, signed by the CA, for TLS client use only (no names, no server use)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def issue_task_cert(
    ca_dir: str | Path, member_id: str, out_dir: str | Path | None = None, days: int = MEMBER_DAYS,
) -> tuple[Path, Path]:
    """Issue `<member_id>.task.crt` / `.key`, the task certificate of a member; (cert, key) paths.

    A client certificate only (extended key usage clientAuth, no subject alternative names,
    so it can serve no endpoint), CN `<member_id>.task`, which is no member id: a peer's
    external listener lets its holder call nothing but `Deliver`, and that only with a
    delivery ticket signed with the member's own key. The member's transfer service hands
    it to the member's tasks so they can open a TLS connection to a peer themselves.
    """
    if not MEMBER_ID_PATTERN.match(member_id):
        raise InvalidArgument(f"member_id {member_id!r} must be 32 lowercase hex characters")
    ca_path = Path(ca_dir)
    ca_cert, ca_key = _load_ca(ca_path)
    directory = Path(out_dir) if out_dir is not None else ca_path
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = _client_certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, task_common_name(member_id))]), ca_cert, ca_key, days)
    cert_file, key_file = directory / f"{member_id}.task.crt", directory / f"{member_id}.task.key"
    _write_private(key_file, _key_pem(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_file, key_file


def certificate_member_id(pem: bytes) -> str:
    """The member id (CN) of a PEM certificate."""
    cert = x509.load_pem_x509_certificate(pem)
    values = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        raise InvalidArgument("the certificate has no common name (CN)")
    return str(values[0].value)


#: The subject field that binds a user certificate's role: OU = "weft-role=<role>".
USER_ROLE_PREFIX: Final = "weft-role="
USER_DAYS: Final = 365


@dataclass(frozen=True)
class UserCertFiles:
    """A client certificate of one user of a member, and the CA the scheduler checks it with."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def issue_user_cert(
    ca_dir: str | Path, user: str, role: str, out_dir: str | Path | None = None, days: int = USER_DAYS,
) -> UserCertFiles:
    """Issue `<user>.crt` / `.key`: a client certificate (CN = user, OU = weft-role=<role>).

    Only a client certificate (extended key usage clientAuth, no server use); the
    scheduler's TLS listener accepts it in place of an API token when the user exists at
    the member and is not revoked.
    """
    from services.common.auth import check_role, check_user_name

    check_user_name(user)
    check_role(role)
    ca_path = Path(ca_dir)
    ca_cert, ca_key = _load_ca(ca_path)
    directory = Path(out_dir) if out_dir is not None else ca_path
    directory.mkdir(parents=True, exist_ok=True)
    key, cert = _client_certificate(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, user),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, USER_ROLE_PREFIX + role),
    ]), ca_cert, ca_key, days)
    files = UserCertFiles(ca_path / CA_CERT_FILE, directory / f"{user}.crt", directory / f"{user}.key")
    _write_private(files.key_file, _key_pem(key))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return files


def user_certificate_identity(pem: bytes) -> tuple[str, str, str] | None:
    """(user, role, serial in hex) of a user certificate; None for any other certificate."""
    cert = x509.load_pem_x509_certificate(pem)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    units = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)]
    roles = [unit[len(USER_ROLE_PREFIX):] for unit in units if unit.startswith(USER_ROLE_PREFIX)]
    if len(names) != 1 or len(roles) != 1:
        return None
    return str(names[0].value), roles[0], format(cert.serial_number, "x")
