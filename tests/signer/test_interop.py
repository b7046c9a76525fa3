"""Interoperability both ways: openssl and pyHanko judge our signatures, we judge openssl's."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from asn1crypto import cms as acms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign.validation import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext

from signer import fastcms
from signer.claims import sign_claim
from signer.verdict import Status
from signer.verifier import Verifier
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM, credentials, make_crl

MakeVerifier = Callable[..., Verifier]


def _openssl_verify(
    tmp: Path, pki_dir: Path, pki: Pki, name: str
) -> subprocess.CompletedProcess[str]:
    (tmp / "claim").write_bytes(CLAIM)
    sig = sign_claim(CLAIM, credentials=credentials(pki, name), signing_time=NOW)
    (tmp / "claim.p7s").write_bytes(sig)
    crl_pem = x509.load_der_x509_crl(pki.crl_der).public_bytes(Encoding.PEM)
    # OpenSSL 3.0 takes the CRL from the CA file.
    (tmp / "ca.pem").write_bytes(pki.cert_pem("root") + crl_pem)
    cmd = ["openssl", "cms", "-verify", "-binary", "-crl_check", "-inform", "DER"]
    cmd += ["-in", str(tmp / "claim.p7s"), "-content", str(tmp / "claim")]
    cmd += ["-CAfile", str(tmp / "ca.pem"), "-purpose", "any", "-out", "/dev/null"]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", ["office", "office_ec"])
def test_openssl_verifies_ours_with_crl_check(
    pki: Pki, pki_dir: Path, tmp_path: Path, name: str
) -> None:
    proc = _openssl_verify(tmp_path, pki_dir, pki, name)
    assert proc.returncode == 0, proc.stderr
    assert "Verification successful" in proc.stderr


def test_openssl_also_refuses_our_revoked_signer(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    proc = _openssl_verify(tmp_path, pki_dir, pki, "revoked")
    assert proc.returncode != 0
    assert "revoked" in proc.stderr


def _pyhanko_status(pki: Pki, content: bytes, sig: bytes) -> object:
    def a(name: str) -> ax509.Certificate:
        return ax509.Certificate.load(pki.certs[name].public_bytes(Encoding.DER))

    context = ValidationContext(
        trust_roots=[a("root")],
        crls=[pki.crl_der, make_crl(pki, issuer="root")],
        # "hard-fail" skips CRLs for certificates without a distribution point (as the test
        # PKI's); "require" insists on revocation data for every certificate of the path.
        revocation_mode="require",
        moment=NOW,
    )
    signed_data = acms.ContentInfo.load(sig)["content"]
    return asyncio.run(
        async_validate_detached_cms(content, signed_data, signer_validation_context=context)
    )


def test_pyhanko_validates_ours(pki: Pki) -> None:
    sig = sign_claim(CLAIM, credentials=credentials(pki, "office"), signing_time=NOW)
    status = _pyhanko_status(pki, CLAIM, sig)
    assert status.intact and status.valid and status.trusted  # type: ignore[attr-defined]
    assert not status.revoked  # type: ignore[attr-defined]
    tampered = _pyhanko_status(pki, CLAIM + b"!", sig)
    assert not tampered.intact  # type: ignore[attr-defined]


def test_pyhanko_sees_our_revoked_signer(pki: Pki) -> None:
    sig = sign_claim(CLAIM, credentials=credentials(pki, "revoked"), signing_time=NOW)
    status = _pyhanko_status(pki, CLAIM, sig)
    assert status.revoked and not status.bottom_line  # type: ignore[attr-defined]


def _openssl_sign(pki_dir: Path, tmp: Path, name: str, *extra: str) -> bytes:
    (tmp / "claim").write_bytes(CLAIM)
    cmd = ["openssl", "cms", "-sign", "-binary", "-in", str(tmp / "claim")]
    cmd += ["-signer", str(pki_dir / f"{name}.pem"), "-inkey", str(pki_dir / f"{name}.key")]
    cmd += ["-certfile", str(pki_dir / "issuing.pem"), "-outform", "DER", "-out", str(tmp / "s")]
    subprocess.run([*cmd, *extra], capture_output=True, check=True)
    return (tmp / "s").read_bytes()


@pytest.mark.parametrize("name", ["office", "office_ec"])
def test_we_verify_openssl_signatures(
    pki: Pki, pki_dir: Path, tmp_path: Path, make_verifier: MakeVerifier, name: str
) -> None:
    sig = _openssl_sign(pki_dir, tmp_path, name)
    # openssl's shape is the common one: the fast path takes it, not the generic fallback.
    info = fastcms.check(sig, hashlib.sha256(CLAIM).digest(), {})
    assert info.signer.certificate == pki.certs[name]
    verifier = make_verifier()
    verdict = verifier.verify(CLAIM, sig)
    assert verdict.status is Status.VALID, verdict.reasons
    assert verifier.verify(CLAIM[:-1], sig).reasons[0].code == "digest"


def test_we_verify_openssl_cades_and_revoked(
    pki: Pki, pki_dir: Path, tmp_path: Path, make_verifier: MakeVerifier
) -> None:
    cades = _openssl_sign(pki_dir, tmp_path, "office", "-cades")  # adds signing-certificate-v2
    assert make_verifier().verify(CLAIM, cades).ok
    revoked = _openssl_sign(pki_dir, tmp_path, "revoked")
    assert make_verifier().verify(CLAIM, revoked).reasons[0].code == "revoked"


def test_we_verify_openssl_subject_key_identifier_signatures(
    pki: Pki, pki_dir: Path, tmp_path: Path, make_verifier: MakeVerifier
) -> None:
    # -keyid names the signer by subjectKeyIdentifier: not the fast shape, same verdict.
    sig = _openssl_sign(pki_dir, tmp_path, "office", "-keyid")
    with pytest.raises(fastcms.NotFast):
        fastcms.check(sig, hashlib.sha256(CLAIM).digest(), {})
    assert make_verifier().verify(CLAIM, sig).ok
