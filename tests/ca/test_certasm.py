"""certificate_from_tbs: the second step of two-step issuance."""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca.certasm import certificate_from_tbs
from shomei.errors import MalformedInput, VerificationFailed
from signer.keys import SoftwareKey, verify_signature
from tests.pki import Pki


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_throwaway_tbs_signed_by_real_key(pki: Pki, kind: str) -> None:
    real = pki.keys["issuing"] if kind == "rsa" else pki.keys["office_ec"]
    throwaway = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if kind == "rsa"
        else ec.generate_private_key(ec.SECP256R1())
    )
    template = pki.certs["office"]
    builder = (
        x509.CertificateBuilder()
        .subject_name(template.subject)
        .issuer_name(template.issuer)
        .public_key(template.public_key())
        .serial_number(12345)
        .not_valid_before(template.not_valid_before_utc)
        .not_valid_after(template.not_valid_after_utc)
    )
    tbs = builder.sign(throwaway, hashes.SHA256()).tbs_certificate_bytes
    cert = certificate_from_tbs(tbs, SoftwareKey(real))
    assert cert.tbs_certificate_bytes == tbs
    verify_signature(real.public_key(), cert.signature, tbs)
    with pytest.raises(VerificationFailed):
        verify_signature(throwaway.public_key(), cert.signature, tbs)


def test_key_type_mismatch_refused(pki: Pki) -> None:
    tbs = pki.certs["office"].tbs_certificate_bytes  # RSA-signed TBS
    with pytest.raises(MalformedInput):
        certificate_from_tbs(tbs, SoftwareKey(pki.keys["office_ec"]))


def test_garbage_refused(pki: Pki) -> None:
    with pytest.raises(MalformedInput):
        certificate_from_tbs(b"\x30\x01\x00", SoftwareKey(pki.keys["office"]))
