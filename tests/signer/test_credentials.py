"""Loading signing credentials: PKCS#12, PEM (plain and encrypted) and their error paths."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from shomei.errors import CustodyError, MalformedInput
from signer.claims import sign_claim
from signer.credentials import load_certificates, load_pem, load_pkcs12
from tests.pki import NOW, Pki


def _p12(pki: Pki, name: str, password: bytes) -> bytes:
    return pkcs12.serialize_key_and_certificates(
        b"office",
        pki.keys[name],
        pki.certs[name],
        [pki.certs["issuing"]],
        serialization.BestAvailableEncryption(password),
    )


def test_pkcs12(pki: Pki) -> None:
    creds = load_pkcs12(_p12(pki, "office", "発行パス123".encode()), "発行パス123")
    assert creds.certificate == pki.certs["office"]
    assert creds.chain == (pki.certs["issuing"],)
    assert sign_claim(b"x", credentials=creds, signing_time=NOW)


def test_pkcs12_wrong_password(pki: Pki) -> None:
    with pytest.raises(CustodyError, match="wrong password") as err:
        load_pkcs12(_p12(pki, "office", b"right"), "wrong")
    assert "パスワード" in err.value.message_ja


def test_pkcs12_garbage() -> None:
    with pytest.raises(CustodyError, match="not a PKCS#12"):
        load_pkcs12(b"\x30\x03\x02\x01\x00", "x")


def test_pem_plain_and_encrypted(pki: Pki) -> None:
    creds = load_pem(pki.key_pem("office"), pki.cert_pem("office"), chain=[pki.cert_pem("issuing")])
    assert creds.chain == (pki.certs["issuing"],)
    encrypted = pki.keys["office_ec"].private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    assert load_pem(encrypted, pki.cert_pem("office_ec"), password="pw").key.key_type == "ec"
    with pytest.raises(CustodyError, match="give its password"):
        load_pem(encrypted, pki.cert_pem("office_ec"))
    with pytest.raises(CustodyError, match="wrong password"):
        load_pem(encrypted, pki.cert_pem("office_ec"), password="nope")


def test_pem_key_of_another_certificate(pki: Pki) -> None:
    with pytest.raises(MalformedInput, match="does not belong"):
        load_pem(pki.key_pem("office"), pki.cert_pem("revoked"))


def test_load_certificates(pki: Pki) -> None:
    both = load_certificates(pki.cert_pem("root") + pki.cert_pem("issuing"))
    assert both == [pki.certs["root"], pki.certs["issuing"]]
    der = pki.certs["root"].public_bytes(serialization.Encoding.DER)
    assert load_certificates(der) == [pki.certs["root"]]
    with pytest.raises(MalformedInput, match="not a readable certificate"):
        load_certificates(b"-----BEGIN CERTIFICATE-----\nxx\n-----END CERTIFICATE-----\n")
