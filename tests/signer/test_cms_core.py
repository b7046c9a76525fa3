"""The CMS SignedData core (signer.cms): round trips and outside judgement by openssl."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shomei.errors import MalformedInput, VerificationFailed
from signer import cms
from signer.keys import SoftwareKey
from tests.pki import NOW, Pki


@pytest.mark.parametrize("name", ["office", "office_ec"])
def test_detached_round_trip_and_openssl(
    pki: Pki, pki_dir: Path, tmp_path: Path, name: str
) -> None:
    content = "請求データ\n".encode() * 100
    sig = cms.sign(
        content,
        key=SoftwareKey(pki.keys[name]),
        certificate=pki.certs[name],
        chain=[pki.certs["issuing"]],
        signing_time=NOW,
    )
    result = cms.verify(sig, content=content)
    assert result.signer == pki.certs[name]
    assert result.signing_time == NOW
    assert len(result.certificates) == 2
    (tmp_path / "c").write_bytes(content)
    (tmp_path / "c.p7s").write_bytes(sig)
    proc = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            tmp_path / "c.p7s",
            "-content",
            tmp_path / "c",
            "-CAfile",
            pki_dir / "root.pem",
            "-purpose",
            "any",
            "-out",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_attached_round_trip(pki: Pki) -> None:
    sig = cms.sign(
        b"batch",
        key=SoftwareKey(pki.keys["office"]),
        certificate=pki.certs["office"],
        detached=False,
        signing_time=NOW,
    )
    assert cms.verify(sig).content == b"batch"


def test_tampered_content_is_invalid(pki: Pki) -> None:
    sig = cms.sign(
        b"abc",
        key=SoftwareKey(pki.keys["office"]),
        certificate=pki.certs["office"],
        signing_time=NOW,
    )
    with pytest.raises(VerificationFailed):
        cms.verify(sig, content=b"abd")


def test_tampered_signature_is_invalid(pki: Pki) -> None:
    sig = bytearray(
        cms.sign(
            b"abc",
            key=SoftwareKey(pki.keys["office"]),
            certificate=pki.certs["office"],
            signing_time=NOW,
        )
    )
    sig[-5] ^= 1
    with pytest.raises(VerificationFailed):
        cms.verify(bytes(sig), content=b"abc")


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03abc", b"not a signature", b"\x30" * 50])
def test_garbage_is_malformed(garbage: bytes) -> None:
    with pytest.raises(MalformedInput):
        cms.verify(garbage, content=b"x")


def test_truncated_is_malformed(pki: Pki) -> None:
    sig = cms.sign(
        b"abc",
        key=SoftwareKey(pki.keys["office"]),
        certificate=pki.certs["office"],
        signing_time=NOW,
    )
    with pytest.raises(MalformedInput):
        cms.verify(sig[: len(sig) // 2], content=b"abc")


def test_hostile_structure_is_malformed_not_a_crash(pki: Pki) -> None:
    # An ObjectDescriptor where an attribute value belongs made asn1crypto raise
    # AttributeError deep inside .native; it must surface as MalformedInput.
    sig = bytearray(
        cms.sign(
            b"abc",
            key=SoftwareKey(pki.keys["office"]),
            certificate=pki.certs["office"],
            signing_time=NOW,
        )
    )
    for i in range(len(sig)):
        if sig[i] == 0x04 and i > 40:  # an OCTET STRING tag inside the structure
            sig[i] = 0x07  # ObjectDescriptor
            break
    with pytest.raises((MalformedInput, VerificationFailed)):
        cms.verify(bytes(sig), content=b"abc")


def test_signing_time_from_2050_is_generalized_time(pki: Pki) -> None:
    # RFC 5652 §11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
    late = NOW.replace(year=2051)
    sig = cms.sign(
        b"abc",
        key=SoftwareKey(pki.keys["office"]),
        certificate=pki.certs["office"],
        signing_time=late,
    )
    assert cms.verify(sig, content=b"abc").signing_time == late


def test_failure_reasons_are_structured(pki: Pki) -> None:
    sig = cms.sign(
        b"abc",
        key=SoftwareKey(pki.keys["office"]),
        certificate=pki.certs["office"],
        signing_time=NOW,
    )
    with pytest.raises(VerificationFailed) as info:
        cms.verify(sig, content=b"abd")
    assert info.value.fields["reason"] == "digest"
