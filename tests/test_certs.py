"""The federation CA and member certificates: names, usages, refusal to overwrite, file modes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from services.common.certs import certificate_member_id, create_ca, issue_member_cert

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
