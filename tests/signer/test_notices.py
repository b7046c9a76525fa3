"""Sealed notices (CMS EnvelopedData): round trip, and openssl both ways."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed
from signer.notices import open_notice, recipients, seal
from tests.pki import Pki
from tests.signer.conftest import credentials

PASSWORD_NOTICE = "証明書発行用パスワード: Kx7-2mQp-91Za\n".encode()


def test_round_trip(pki: Pki) -> None:
    sealed = seal(PASSWORD_NOTICE, recipient=pki.certs["office"])
    assert PASSWORD_NOTICE not in sealed
    assert len(recipients(sealed)) == 1
    assert open_notice(sealed, credentials=credentials(pki, "office")) == PASSWORD_NOTICE


def test_not_sealed_to_me(pki: Pki) -> None:
    sealed = seal(PASSWORD_NOTICE, recipient=pki.certs["office"])
    with pytest.raises(NotFound, match="not sealed to your certificate"):
        open_notice(sealed, credentials=credentials(pki, "revoked"))


def test_damaged_and_garbage(pki: Pki) -> None:
    sealed = bytearray(seal(PASSWORD_NOTICE, recipient=pki.certs["office"]))
    sealed[-5] ^= 0xFF  # inside the encrypted content: padding or data breaks
    with pytest.raises((VerificationFailed, MalformedInput)):
        open_notice(bytes(sealed), credentials=credentials(pki, "office"))
    with pytest.raises(MalformedInput, match="not a sealed notice"):
        open_notice(b"garbage", credentials=credentials(pki, "office"))


def test_ec_certificates_cannot_receive(pki: Pki) -> None:
    with pytest.raises(Refused, match="RSA"):
        seal(PASSWORD_NOTICE, recipient=pki.certs["office_ec"])


def test_openssl_opens_ours(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "n.p7m").write_bytes(seal(PASSWORD_NOTICE, recipient=pki.certs["office"]))
    proc = subprocess.run(
        [
            "openssl",
            "cms",
            "-decrypt",
            "-binary",
            "-inform",
            "DER",
            "-in",
            tmp_path / "n.p7m",
            "-recip",
            pki_dir / "office.pem",
            "-inkey",
            pki_dir / "office.key",
        ],
        capture_output=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == PASSWORD_NOTICE


def test_we_open_openssls(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "doc").write_bytes(PASSWORD_NOTICE)
    subprocess.run(
        [
            "openssl",
            "cms",
            "-encrypt",
            "-binary",
            "-aes256",
            "-in",
            tmp_path / "doc",
            "-outform",
            "DER",
            "-out",
            tmp_path / "n.p7m",
            pki_dir / "office.pem",
        ],
        capture_output=True,
        check=True,
    )
    sealed = (tmp_path / "n.p7m").read_bytes()
    assert open_notice(sealed, credentials=credentials(pki, "office")) == PASSWORD_NOTICE
