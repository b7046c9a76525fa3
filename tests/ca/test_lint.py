"""ca.lint: pkilint's RFC 5280 validators, in-process."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from ca.lint import (
    Finding,
    blocking_codes,
    lint_certificate,
    lint_crl,
    require_clean,
    warm_up,
)
from shomei.errors import MalformedInput, VerificationFailed
from tests.pki import Pki

DER = serialization.Encoding.DER


def _ee_with_keycertsign(pki: Pki) -> bytes:
    """An end-entity certificate asserting keyCertSign: RFC 5280 §4.2.1.3 forbids it."""
    key = pki.keys["office"]
    issuing = pki.certs["issuing"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bad")]))
        .issuer_name(issuing.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                pki.keys["issuing"].public_key()  # type: ignore[arg-type]
            ),
            False,
        )
        .sign(pki.keys["issuing"], hashes.SHA256())
    )
    return cert.public_bytes(DER)


def test_clean_certificates_have_no_blocking_findings(pki: Pki) -> None:
    for name in ("root", "issuing", "office", "office_ec"):
        findings = lint_certificate(pki.certs[name].public_bytes(DER))
        assert all(isinstance(f, Finding) for f in findings)
        assert blocking_codes(findings) == []
        require_clean(findings)


def test_bad_certificate_is_flagged(pki: Pki) -> None:
    findings = lint_certificate(_ee_with_keycertsign(pki))
    assert "pkix.ee_certificate_keycertsign_keyusage_set" in blocking_codes(findings)
    with pytest.raises(VerificationFailed) as info:
        require_clean(findings)
    assert "pkix.ee_certificate_keycertsign_keyusage_set" in info.value.message
    assert "pkilint" in info.value.message_ja
    assert all(f.blocking for f in info.value.fields["findings"])


def test_clean_crl(pki: Pki) -> None:
    assert blocking_codes(lint_crl(pki.crl_der)) == []


def test_crl_without_number_or_aki_is_flagged(pki: Pki) -> None:
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.certs["issuing"].subject)
        .last_update(dt.datetime.now(dt.UTC))
        .next_update(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
        .sign(pki.keys["issuing"], hashes.SHA256())
    )
    # No CRLNumber and no AKI: both are MUSTs of RFC 5280 §5.2.
    codes = blocking_codes(lint_crl(crl.public_bytes(DER)))
    assert codes
    with pytest.raises(VerificationFailed):
        require_clean(lint_crl(crl.public_bytes(DER)))


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01\x01", b"hello"])
def test_garbage_is_malformed(garbage: bytes) -> None:
    with pytest.raises(MalformedInput):
        lint_certificate(garbage)
    with pytest.raises(MalformedInput):
        lint_crl(garbage)


def test_informative_findings_do_not_block() -> None:
    info = Finding("INFO", "x.info", "")
    notice = Finding("NOTICE", "x.notice", "")
    warning = Finding("WARNING", "x.warning", "")
    require_clean([info, notice])
    assert blocking_codes([info, notice, warning, warning]) == ["x.warning"]
    with pytest.raises(VerificationFailed):
        require_clean([warning])


def test_warm_up_builds_the_cached_validators(pki: Pki) -> None:
    from ca import lint

    warm_up()
    built = lint._certificate_validator(), lint._crl_validator()
    assert all(v is not None for v in built)
    assert lint._certificate_validator.cache_info().currsize == 1
    assert lint._crl_validator.cache_info().currsize == 1
    # Linting afterwards uses the very same validator objects.
    assert blocking_codes(lint_certificate(pki.certs["office"].public_bytes(DER))) == []
    assert lint._certificate_validator() is built[0]
