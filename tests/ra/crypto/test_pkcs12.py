"""PKCS#12 downloads open with openssl and with NSS's pk12util (Firefox, Chromium), both ways.

Each encryption (AES-256/PBKDF2 by default, legacy 3DES) is imported by ``openssl pkcs12``
and by ``pk12util`` into a fresh NSS database; the wrong password is refused by both.
pk12util comes with Debian's libnss3-tools; without it those tests are skipped and say so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from ra.crypto import pkcs12
from shomei.errors import MalformedInput, Refused
from tests.pki import Pki

PASSWORD = "ABCD-EFGH-JKMN"
NAME = "証明ケアサービス 中央事業所"


def _build(pki: Pki, encryption: pkcs12.Encryption, name: str = NAME) -> bytes:
    return pkcs12.build(
        key=pki.keys["office"],
        certificate=pki.certs["office"],
        chain=[pki.certs["issuing"], pki.certs["root"]],
        password=PASSWORD,
        friendly_name=name,
        encryption=encryption,
    )


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, errors="replace", check=False
    )


@pytest.mark.parametrize(
    ("encryption", "expect"),
    [("aes", "PBKDF2, AES-256-CBC"), ("legacy", "pbeWithSHA1And3-KeyTripleDES-CBC")],
)
def test_openssl_opens_both_encryptions(
    pki: Pki, tmp_path: Path, encryption: pkcs12.Encryption, expect: str
) -> None:
    path = tmp_path / "office.p12"
    path.write_bytes(_build(pki, encryption))
    # openssl 3 reads 3DES without -legacy (only RC2-40 needs the legacy provider).
    out = _run("openssl", "pkcs12", "-in", path, "-passin", f"pass:{PASSWORD}", "-nodes", "-info")
    assert out.returncode == 0, out.stderr
    assert expect in out.stderr
    certs = x509.load_pem_x509_certificates(out.stdout.encode())
    assert certs[0] == pki.certs["office"]
    assert set(certs[1:]) == {pki.certs["issuing"], pki.certs["root"]}
    assert "BEGIN PRIVATE KEY" in out.stdout
    wrong = _run("openssl", "pkcs12", "-in", path, "-passin", "pass:WRONG", "-nodes")
    assert wrong.returncode != 0 and "mac verify" in wrong.stderr.lower()


@pytest.mark.parametrize("encryption", pkcs12.ENCRYPTIONS)
def test_nss_pk12util_imports_both_encryptions(
    pki: Pki, tmp_path: Path, encryption: pkcs12.Encryption
) -> None:
    if not shutil.which("pk12util") or not shutil.which("certutil"):
        pytest.skip("pk12util/certutil missing: apt-get install libnss3-tools")
    path = tmp_path / "office.p12"
    path.write_bytes(_build(pki, encryption))  # the Japanese office name as nickname
    for attempt, password, ok in (("wrong", "WRONG", False), ("right", PASSWORD, True)):
        db = tmp_path / f"nss-{attempt}"
        db.mkdir()
        made = _run("certutil", "-N", "-d", f"sql:{db}", "--empty-password")
        assert made.returncode == 0, made.stderr
        out = _run("pk12util", "-i", path, "-d", f"sql:{db}", "-W", password)
        assert (out.returncode == 0) is ok, out.stdout + out.stderr
        listed = _run("certutil", "-L", "-d", f"sql:{db}")
        assert (NAME in listed.stdout) is ok
        if ok:
            keys = _run("certutil", "-K", "-d", f"sql:{db}")
            assert keys.returncode == 0 and NAME in keys.stdout


def test_friendly_name_and_contents_round_trip(pki: Pki) -> None:
    opened = pkcs12.read(_build(pki, "aes"), PASSWORD)
    assert opened.cert is not None and opened.cert.certificate == pki.certs["office"]
    assert opened.cert.friendly_name == NAME.encode()
    assert opened.key is not None and opened.key.public_key() == pki.keys["office"].public_key()
    assert [c.certificate for c in opened.additional_certs] == [
        pki.certs["issuing"],
        pki.certs["root"],
    ]


def test_refusals(pki: Pki) -> None:
    with pytest.raises(MalformedInput) as info:
        pkcs12.read(_build(pki, "aes"), "WRONG")
    assert info.value.message_ja
    with pytest.raises(MalformedInput):
        pkcs12.read(b"not a pkcs12", PASSWORD)
    with pytest.raises(Refused, match="does not belong"):
        pkcs12.build(
            key=ec.generate_private_key(ec.SECP256R1()),
            certificate=pki.certs["office"],
            chain=[],
            password=PASSWORD,
            friendly_name=NAME,
        )
    with pytest.raises(Refused, match="unknown PKCS#12 encryption"):
        pkcs12.build(
            key=pki.keys["office"],
            certificate=pki.certs["office"],
            chain=[],
            password=PASSWORD,
            friendly_name=NAME,
            encryption="rc2",  # type: ignore[arg-type]
        )
    with pytest.raises(Refused, match="needs a password"):
        pkcs12.build(
            key=pki.keys["office"],
            certificate=pki.certs["office"],
            chain=[],
            password="",
            friendly_name=NAME,
        )


TYPED = ("abcd-efgh-jkmn", "ABCDEFGHJKMN", "abcd efgh jkmn", "ＡＢＣＤ－ＥＦＧＨ－ＪＫＭＮ")


@pytest.mark.parametrize("encryption", pkcs12.ENCRYPTIONS)
def test_what_the_office_guide_says_to_type_opens_the_download(
    pki: Pki, tmp_path: Path, encryption: pkcs12.Encryption
) -> None:
    """docs/office-guide.md: installers (Windows, macOS, Firefox, openssl) need the password
    exactly as printed, upper case with hyphens; Shomei's own tools accept it typed any way."""
    from signer.credentials import load_pkcs12

    guide = (Path(__file__).resolve().parents[3] / "docs" / "office-guide.md").read_text()
    assert "印字どおり" in guide and "大文字" in guide  # the guide says how to type it
    path = tmp_path / "office.p12"
    data = _build(pki, encryption)
    path.write_bytes(data)
    exact = _run("openssl", "pkcs12", "-in", path, "-passin", f"pass:{PASSWORD}", "-noout")
    assert exact.returncode == 0, exact.stderr
    for typed in TYPED[:3]:  # why the guide insists on the printed form
        other = _run("openssl", "pkcs12", "-in", path, "-passin", f"pass:{typed}", "-noout")
        assert other.returncode != 0, typed
    for typed in TYPED:
        assert load_pkcs12(data, typed).certificate == pki.certs["office"]


def test_shomei_sign_accepts_the_issuance_password_typed_loosely(pki: Pki, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    (tmp_path / "office.p12").write_bytes(_build(pki, "aes"))
    (tmp_path / "claim.csv").write_text("請求,1\n", encoding="utf-8")
    (tmp_path / "pw").write_text("abcd efgh jkmn\n", encoding="utf-8")
    args = ["sign", str(tmp_path / "claim.csv"), "--p12", str(tmp_path / "office.p12")]
    result = CliRunner().invoke(main, [*args, "--password-file", str(tmp_path / "pw")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "claim.csv.p7s").is_file()
    (tmp_path / "claim.csv.p7s").unlink()
    (tmp_path / "pw").write_text("abcd-efgh-jkmm\n", encoding="utf-8")  # one letter wrong
    result = CliRunner().invoke(main, [*args, "--password-file", str(tmp_path / "pw")])
    assert result.exit_code == 2 and "wrong password" in result.output
