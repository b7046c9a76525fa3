"""Tests of signer.pkcs11: keys generated on a throwaway SoftHSM2 token, signing and custody."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca.certasm import certificate_from_tbs
from shomei.errors import CustodyError, MalformedInput, Refused, VerificationFailed
from signer import cms
from signer.keys import SigningKey, verify_signature
from signer.pkcs11 import Pkcs11Key, generate_pkcs11_key
from tests import softhsm as _softhsm
from tests.softhsm import SoftHsmToken

# Fixtures of tests.softhsm, bound here so pytest finds them.
softhsm = _softhsm.softhsm
softhsm_token = _softhsm.softhsm_token

pytestmark = pytest.mark.softhsm


def _generate(token: SoftHsmToken, algorithm: str, label: str = "ca-key") -> Pkcs11Key:
    return generate_pkcs11_key(
        module=token.module,
        token_label=token.label,
        key_label=label,
        pin=token.pin,
        algorithm=algorithm,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("algorithm", ["rsa2048", "p256"])
def test_generate_sign_and_verify(softhsm_token: SoftHsmToken, algorithm: str) -> None:
    with _generate(softhsm_token, algorithm) as key:
        assert isinstance(key, SigningKey)
        expected_type = rsa.RSAPublicKey if algorithm == "rsa2048" else ec.EllipticCurvePublicKey
        assert isinstance(key.public_key, expected_type)
        assert key.key_type == ("rsa" if algorithm == "rsa2048" else "ec")
        data = "請求ファイル".encode() * 100
        signature = key.sign(data)
        verify_signature(key.public_key, signature, data)
        with pytest.raises(VerificationFailed):
            verify_signature(key.public_key, signature, data + b"!")
    # Reopening by labels finds the same key pair.
    with Pkcs11Key(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        key_label="ca-key",
        pin=softhsm_token.pin,
    ) as again:
        assert again.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ) == key.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        verify_signature(key.public_key, again.sign(b"abc"), b"abc")


def test_p256_signature_is_der_ecdsa_sig_value(softhsm_token: SoftHsmToken) -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    with _generate(softhsm_token, "p256") as key:
        signature = key.sign(b"data")
        assert signature[0] == 0x30  # a DER SEQUENCE, not the raw r || s of CKM_ECDSA
        r, s = decode_dss_signature(signature)
        assert 0 < r and 0 < s


def test_private_key_is_not_extractable(softhsm_token: SoftHsmToken) -> None:
    _generate(softhsm_token, "p256").close()
    # Checked independently through python-pkcs11, not through the code under test.
    lib = pkcs11.lib(str(softhsm_token.module.resolve()))
    token = lib.get_token(token_label=softhsm_token.label)
    with token.open(user_pin=softhsm_token.pin) as session:
        private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="ca-key")
        assert private[pkcs11.Attribute.EXTRACTABLE] is False
        assert private[pkcs11.Attribute.SENSITIVE] is True
        assert private[pkcs11.Attribute.DECRYPT] is False
        with pytest.raises(pkcs11.exceptions.PKCS11Error):
            private[pkcs11.Attribute.VALUE]  # reading it must be refused
    with Pkcs11Key(
        module=softhsm_token.module,
        token_label=softhsm_token.label,
        key_label="ca-key",
        pin=softhsm_token.pin,
    ) as key:
        assert key.extractable is False
        assert key.sensitive is True


def test_wrong_pin_is_refused(softhsm_token: SoftHsmToken) -> None:
    _generate(softhsm_token, "p256").close()
    with pytest.raises(CustodyError, match="wrong PIN") as info:
        Pkcs11Key(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            key_label="ca-key",
            pin="0000-wrong",
        )
    assert "PIN が違います" in info.value.message_ja


def test_empty_pin_is_refused(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(CustodyError, match="PIN is required"):
        Pkcs11Key(
            module=softhsm_token.module, token_label=softhsm_token.label, key_label="x", pin=""
        )


def test_missing_token_and_key_and_module(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(CustodyError, match="no PKCS#11 token labelled 'no-such-token'"):
        Pkcs11Key(
            module=softhsm_token.module,
            token_label="no-such-token",
            key_label="ca-key",
            pin=softhsm_token.pin,
        )
    with pytest.raises(CustodyError, match="no private key labelled 'missing'") as info:
        Pkcs11Key(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            key_label="missing",
            pin=softhsm_token.pin,
        )
    assert "秘密鍵がありません" in info.value.message_ja
    with pytest.raises(CustodyError, match="does not exist"):
        Pkcs11Key(
            module=Path("/nonexistent/libpkcs11.so"),
            token_label=softhsm_token.label,
            key_label="ca-key",
            pin=softhsm_token.pin,
        )


def test_generate_refuses_existing_label(softhsm_token: SoftHsmToken) -> None:
    first = _generate(softhsm_token, "p256")
    with pytest.raises(Refused, match="already holds an object labelled 'ca-key'"):
        _generate(softhsm_token, "rsa2048")
    # The first key is untouched and still the only one with that label.
    verify_signature(first.public_key, first.sign(b"x"), b"x")
    first.close()


def test_generate_refuses_unknown_algorithm(softhsm_token: SoftHsmToken) -> None:
    with pytest.raises(MalformedInput, match="unsupported PKCS#11 key algorithm"):
        _generate(softhsm_token, "dsa1024")


def test_closed_key_cannot_sign(softhsm_token: SoftHsmToken) -> None:
    key = _generate(softhsm_token, "p256")
    key.close()
    key.close()  # closing twice is harmless
    with pytest.raises(CustodyError, match="closed"):
        key.sign(b"x")


def _self_signed(key: Pkcs11Key) -> x509.Certificate:
    """A certificate for the token key, its TBS built with a throwaway key of the same type."""
    stand_in: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if key.key_type == "rsa":
        stand_in = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        stand_in = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shomei PKCS#11 test")])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    draft = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(stand_in, hashes.SHA256())
    )
    return certificate_from_tbs(draft.tbs_certificate_bytes, key)


@pytest.mark.parametrize("algorithm", ["rsa2048", "p256"])
def test_cms_signature_verifies_with_openssl(
    softhsm_token: SoftHsmToken, algorithm: str, tmp_path: Path
) -> None:
    if subprocess.run(["openssl", "version"], capture_output=True).returncode != 0:
        pytest.skip("openssl is not installed")
    content = "令和8年11月分 請求データ\n".encode()
    with _generate(softhsm_token, algorithm) as key:
        certificate = _self_signed(key)
        # The certificate's own signature was made on the token: check it independently.
        verify_signature(key.public_key, certificate.signature, certificate.tbs_certificate_bytes)
        signature = cms.sign(
            content,
            key=key,
            certificate=certificate,
            signing_time=dt.datetime.now(dt.UTC),
        )
    result = cms.verify(signature, content=content)
    assert result.signer == certificate
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "claim.txt").write_bytes(content)
    (tmp_path / "claim.p7s").write_bytes(signature)
    command = [
        "openssl", "cms", "-verify", "-binary", "-purpose", "any",
        "-inform", "DER", "-in", str(tmp_path / "claim.p7s"),
        "-content", str(tmp_path / "claim.txt"),
        "-CAfile", str(tmp_path / "cert.pem"), "-out", "/dev/null",
    ]  # fmt: skip
    ok = subprocess.run(command, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    # The same check fails on a tampered file, so the success above means something.
    (tmp_path / "claim.txt").write_bytes(content + b"x")
    bad = subprocess.run(command, capture_output=True, text=True)
    assert bad.returncode != 0


def test_second_session_still_checks_the_pin(softhsm_token: SoftHsmToken) -> None:
    # While one key is open the process is logged in to the token; a second open must still
    # be refused with a wrong PIN and accepted with the right one.
    with _generate(softhsm_token, "p256") as first:
        with pytest.raises(CustodyError, match="wrong PIN"):
            Pkcs11Key(
                module=softhsm_token.module,
                token_label=softhsm_token.label,
                key_label="ca-key",
                pin="9999-wrong",
            )
        with Pkcs11Key(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            key_label="ca-key",
            pin=softhsm_token.pin,
        ) as second:
            verify_signature(first.public_key, second.sign(b"y"), b"y")


def test_rsa_fallback_to_raw_pkcs1_mechanism(softhsm_token: SoftHsmToken) -> None:
    # A token without CKM_SHA256_RSA_PKCS (simulated) gets the DigestInfo signed with
    # CKM_RSA_PKCS; the result is the very same deterministic PKCS#1 v1.5 signature.
    class NoHashingToken:
        def __init__(self, inner: object) -> None:
            self.inner = inner
            self.mechanisms: list[object] = []

        def sign(self, data: bytes, *, mechanism: object) -> bytes:
            self.mechanisms.append(mechanism)
            if mechanism == pkcs11.Mechanism.SHA256_RSA_PKCS:
                raise pkcs11.exceptions.MechanismInvalid()
            return self.inner.sign(data, mechanism=mechanism)  # type: ignore[attr-defined, no-any-return]

    with _generate(softhsm_token, "rsa2048") as key:
        on_token = key.sign(b"claim")
        fake = NoHashingToken(key._private)
        key._private = fake
        assert key.sign(b"claim") == on_token
        assert key.sign(b"claim") == on_token
        # Tried once, then the fallback is used for good.
        assert fake.mechanisms == [
            pkcs11.Mechanism.SHA256_RSA_PKCS,
            pkcs11.Mechanism.RSA_PKCS,
            pkcs11.Mechanism.RSA_PKCS,
        ]


def test_ec_key_without_public_object_is_refused(softhsm_token: SoftHsmToken) -> None:
    _generate(softhsm_token, "p256", label="ec").close()
    _generate(softhsm_token, "rsa2048", label="rsa").close()
    lib = pkcs11.lib(str(softhsm_token.module.resolve()))
    token = lib.get_token(token_label=softhsm_token.label)
    with token.open(rw=True, user_pin=softhsm_token.pin) as session:
        for label in ("ec", "rsa"):
            session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label=label).destroy()

    def open_key(label: str) -> Pkcs11Key:
        return Pkcs11Key(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            key_label=label,
            pin=softhsm_token.pin,
        )

    # RSA: the modulus and exponent are read from the private key object instead.
    with open_key("rsa") as rsa_key:
        verify_signature(rsa_key.public_key, rsa_key.sign(b"z"), b"z")
    with pytest.raises(CustodyError, match="no public key labelled 'ec'"):
        open_key("ec")
