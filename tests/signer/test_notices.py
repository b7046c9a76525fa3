"""Sealed notices (CMS AuthEnvelopedData, AES-GCM): round trip, openssl both ways, and a
mutation scan proving that no changed byte opens."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms as acms
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from cli.errors import exit_code_of
from shomei.errors import MalformedInput, NotFound, Refused, ShomeiError, VerificationFailed
from signer.notices import open_notice, recipients, seal
from tests.pki import Pki
from tests.signer.conftest import credentials

PASSWORD_NOTICE = "証明書発行用パスワード: Kx7-2mQp-91Za\n".encode()


def _openssl(*args: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", "cms", *map(str, args)], capture_output=True, check=False)


def test_round_trip(pki: Pki) -> None:
    sealed = seal(PASSWORD_NOTICE, recipient=pki.certs["office"])
    assert PASSWORD_NOTICE not in sealed
    assert acms.ContentInfo.load(sealed)["content_type"].native == "authenticated_enveloped_data"
    assert len(recipients(sealed)) == 1
    assert open_notice(sealed, credentials=credentials(pki, "office")) == PASSWORD_NOTICE


def test_not_sealed_to_me(pki: Pki) -> None:
    sealed = seal(PASSWORD_NOTICE, recipient=pki.certs["office"])
    with pytest.raises(NotFound, match="not sealed to your certificate"):
        open_notice(sealed, credentials=credentials(pki, "revoked"))


def test_flipped_ciphertext_bit_is_refused_not_garbled(pki: Pki) -> None:
    # The finding: under AES-CBC a flipped bit opened as garbled text, without an error.
    sealed = bytearray(seal(PASSWORD_NOTICE, recipient=pki.certs["office"]))
    # 36 bytes from the end lies in the encrypted content of either format (before the GCM
    # tag; in CBC, a block before the padding): the old code opened it as a wrong password.
    sealed[-36] ^= 0x01
    with pytest.raises(VerificationFailed, match="altered"):
        open_notice(bytes(sealed), credentials=credentials(pki, "office"))
    with pytest.raises(MalformedInput, match="not a sealed notice"):
        open_notice(b"garbage", credentials=credentials(pki, "office"))


@pytest.mark.parametrize("mask", [0x01, 0xFF])
def test_every_changed_byte_is_refused(pki: Pki, mask: int) -> None:
    """Each byte of a sealed notice changed in turn (one bit, then all eight): never opens."""
    sealed = seal(PASSWORD_NOTICE, recipient=pki.certs["office"])
    office = credentials(pki, "office")
    opened = []
    for position in range(len(sealed)):
        changed = bytearray(sealed)
        changed[position] ^= mask
        try:
            opened.append((position, open_notice(bytes(changed), credentials=office)))
        except ShomeiError as exc:
            assert "\n" not in exc.message and "\n" not in exc.message_ja, position
            assert exit_code_of(exc) in (1, 2)
    assert opened == []


def test_truncated_or_extended_is_refused(pki: Pki) -> None:
    sealed = seal(PASSWORD_NOTICE, recipient=pki.certs["office"])
    office = credentials(pki, "office")
    for changed in (sealed[:-1], sealed + b"\x00", sealed[1:], b"\x30" + sealed):
        with pytest.raises(ShomeiError):
            open_notice(changed, credentials=office)


def test_old_enveloped_data_notice_is_refused_with_the_way_out(pki: Pki) -> None:
    old = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(PASSWORD_NOTICE)
        .set_content_encryption_algorithm(algorithms.AES256)
        .add_recipient(pki.certs["office"])
        .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(Refused, match="old format") as caught:
        open_notice(old, credentials=credentials(pki, "office"))
    assert "パスワードの再発行" in caught.value.message_ja


def test_ec_certificates_cannot_receive(pki: Pki) -> None:
    with pytest.raises(Refused, match="RSA"):
        seal(PASSWORD_NOTICE, recipient=pki.certs["office_ec"])


def test_openssl_opens_ours(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "n.p7m").write_bytes(seal(PASSWORD_NOTICE, recipient=pki.certs["office"]))
    proc = _openssl(
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
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == PASSWORD_NOTICE


def test_openssl_refuses_an_altered_one(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    sealed = bytearray(seal(PASSWORD_NOTICE, recipient=pki.certs["office"]))
    sealed[-20] ^= 0x01
    (tmp_path / "n.p7m").write_bytes(bytes(sealed))
    proc = _openssl(
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
    )
    assert proc.returncode != 0


@pytest.mark.parametrize(
    ("options", "form"),
    [
        (("-keyopt", "rsa_padding_mode:oaep"), "DER"),  # OAEP, openssl's SHA-1 defaults
        (("-keyopt", "rsa_padding_mode:oaep", "-keyopt", "rsa_oaep_md:sha256"), "DER"),
        ((), "PEM"),  # openssl's default key transport, RSA PKCS#1 v1.5
    ],
)
def test_we_open_openssls(
    pki: Pki, pki_dir: Path, tmp_path: Path, options: tuple[str, ...], form: str
) -> None:
    (tmp_path / "doc").write_bytes(PASSWORD_NOTICE)
    proc = _openssl(
        "-encrypt",
        "-binary",
        "-aes-256-gcm",
        "-in",
        tmp_path / "doc",
        "-outform",
        form,
        "-out",
        tmp_path / "n.p7m",
        "-recip",
        pki_dir / "office.pem",
        *options,
    )
    assert proc.returncode == 0, proc.stderr
    sealed = (tmp_path / "n.p7m").read_bytes()
    assert open_notice(sealed, credentials=credentials(pki, "office")) == PASSWORD_NOTICE


def test_a_notice_for_two_recipients_is_refused(pki: Pki, pki_dir: Path, tmp_path: Path) -> None:
    # The recipient list is not authenticated: a second recipient's entry could be changed
    # unnoticed, so a notice names exactly one.
    (tmp_path / "doc").write_bytes(PASSWORD_NOTICE)
    proc = _openssl(
        "-encrypt",
        "-binary",
        "-aes-256-gcm",
        "-in",
        tmp_path / "doc",
        "-outform",
        "DER",
        "-out",
        tmp_path / "n.p7m",
        pki_dir / "office.pem",
        pki_dir / "revoked.pem",
    )
    assert proc.returncode == 0, proc.stderr
    with pytest.raises(MalformedInput, match="exactly one"):
        open_notice((tmp_path / "n.p7m").read_bytes(), credentials=credentials(pki, "office"))
