"""The federation CA and member certificates: names, usages, refusal to overwrite, file modes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.certs import (
    certificate_member_id,
    create_ca,
    issue_member_cert,
    task_member_id,
)
from services.common.config import MEMBER_ID_PATTERN

MEMBER = "0123456789abcdef0123456789abcdef"


def test_member_certificate_names_the_member_and_is_signed_by_the_ca(tmp_path: Path) -> None:
    # Prepare
    ca = create_ca(tmp_path / "ca")

    # Execute
    files = issue_member_cert(tmp_path / "ca", MEMBER, hosts=["10.0.0.7", "weft.example.org"], out_dir=tmp_path / "m")

    # Assert
    cert = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    ca_cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    cert.verify_directly_issued_by(ca_cert)
    assert certificate_member_id(files.cert_file.read_bytes()) == MEMBER
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {MEMBER, "weft.example.org", "localhost"}
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("10.0.0.7"), ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")
    }
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    assert files.ca_file == ca.cert_file
    assert files.key_file.stat().st_mode & 0o777 == 0o600
    assert ca.key_file.stat().st_mode & 0o777 == 0o600


def test_the_task_certificate_is_a_client_certificate_naming_no_member(tmp_path: Path) -> None:
    # Prepare
    ca = create_ca(tmp_path / "ca")

    # Execute
    files = issue_member_cert(tmp_path / "ca", MEMBER, out_dir=tmp_path / "m")

    # Assert: issued by the CA beside the member certificate, CN <member>.task, client use only, no names to serve
    cert = x509.load_pem_x509_certificate(files.task_cert_file.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca.cert_file.read_bytes()))
    common_name = certificate_member_id(files.task_cert_file.read_bytes())
    assert common_name == f"{MEMBER}.task" and not MEMBER_ID_PATTERN.match(common_name)
    assert task_member_id(common_name) == MEMBER and task_member_id(MEMBER) is None
    assert task_member_id("not-a-member.task") is None
    usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(usages) == {ExtendedKeyUsageOID.CLIENT_AUTH}
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert files.task_key_file.stat().st_mode & 0o777 == 0o600
    assert cert.public_key() != x509.load_pem_x509_certificate(files.cert_file.read_bytes()).public_key()


def test_refusals_name_the_problem(tmp_path: Path) -> None:
    # Prepare
    create_ca(tmp_path / "ca")

    # Execute / Assert
    with pytest.raises(FailedPrecondition, match="already exists"):
        create_ca(tmp_path / "ca")
    with pytest.raises(InvalidArgument, match="member_id"):
        issue_member_cert(tmp_path / "ca", "Not-A-Member")
    with pytest.raises(NotFound, match="no CA"):
        issue_member_cert(tmp_path / "nowhere", MEMBER)
