"""``shomei sign`` with the key on a PKCS#11 token (SoftHSM2), verified by us and by openssl."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from cli.sign_commands import COMMANDS
from shomei.errors import CustodyError
from signer.credentials import load_pkcs11
from signer.pkcs11 import generate_pkcs11_key
from tests import softhsm as _softhsm
from tests.pki import NOW, Pki
from tests.signer.conftest import CLAIM
from tests.softhsm import SoftHsmToken

softhsm = _softhsm.softhsm
softhsm_token = _softhsm.softhsm_token
pytestmark = pytest.mark.softhsm
main = click.Group("shomei", commands={c.name: c for c in COMMANDS if c.name})


def _token_office(pki: Pki, token: SoftHsmToken, folder: Path) -> Path:
    """An office certificate, issued by the test issuing CA, for a key made on the token."""
    key = generate_pkcs11_key(
        module=token.module,
        token_label=token.label,
        key_label="office",
        pin=token.pin,
        algorithm="rsa2048",  # type: ignore[arg-type]
    )
    public_key = key.public_key
    key.close()
    usage = x509.KeyUsage(True, True, False, False, False, False, False, False, False)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "トークン事業所")]))
        .issuer_name(pki.certs["issuing"].subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .sign(pki.keys["issuing"], hashes.SHA256())  # type: ignore[arg-type]
    )
    path = folder / "token-office.pem"
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return path


def test_sign_on_token(
    pki: Pki, pki_dir: Path, softhsm_token: SoftHsmToken, tmp_path: Path
) -> None:
    cert = _token_office(pki, softhsm_token, tmp_path)
    claim = tmp_path / "claim.csv"
    claim.write_bytes(CLAIM)
    pin = tmp_path / "pin"
    pin.write_text(softhsm_token.pin + "\n")
    args = [
        "sign",
        claim,
        "--pkcs11-module",
        softhsm_token.module,
        "--token-label",
        softhsm_token.label,
        "--key-label",
        "office",
        "--cert",
        cert,
        "--chain",
        pki_dir / "issuing.pem",
        "--pin-file",
        pin,
    ]
    runner = CliRunner(env={"SHOMEI_LANG": "en"})
    result = runner.invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main,
        [
            "verify",
            str(claim),
            "--trust",
            str(pki_dir / "root.pem"),
            "--crl",
            str(pki_dir / "issuing.crl"),
        ],
    )
    assert result.exit_code == 0, result.output
    proc = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-binary",
            "-inform",
            "DER",
            "-in",
            f"{claim}.p7s",
            "-content",
            claim,
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


def test_wrong_pin(pki: Pki, softhsm_token: SoftHsmToken, tmp_path: Path) -> None:
    cert = _token_office(pki, softhsm_token, tmp_path)
    with pytest.raises(CustodyError):
        load_pkcs11(
            module=softhsm_token.module,
            token_label=softhsm_token.label,
            key_label="office",
            pin="0000",
            cert_data=cert.read_bytes(),
        )
