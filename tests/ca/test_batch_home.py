"""A CA home built by hand for the batch tests (until the ceremony builds one), and ca.context.

:func:`build_ca_home` writes what a ceremony would: an issuing CA certificate signed by the
test PKI's root for a fresh key kept in an encrypted key file (custodian shares, 2-of-3), the
profiles of conf/profiles, a pinned RA link certificate and ``ca.toml``.  The tests below
check that :func:`ca.context.open_ca` opens it, and refuses what it must.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca.context import CA, load_certificates, open_ca, open_ca_with_key
from ca.custody.keyfile import create_key_file
from ca.custody.shares import Share
from ca.ledger import Ledger
from ca.settings import CASettings, load_ca_settings
from contract.batch import make_link_identity
from shomei.errors import ConfigError, CustodyError, NotFound
from signer.keys import SigningKey, SoftwareKey
from tests.pki import Pki

REPO = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@dataclass
class CaHome:
    folder: Path
    settings: CASettings
    key: SoftwareKey
    shares: list[Share]
    link_key: SoftwareKey
    link_cert: x509.Certificate

    def open(self, key: SigningKey | None = None) -> CA:
        """The CA with the key already open (or a wrapper around it, e.g. a counter)."""
        return open_ca_with_key(self.settings, key or self.key)


def _issuing_certificate(pki: Pki, key: SoftwareKey) -> x509.Certificate:
    root, root_key = pki.certs["root"], pki.keys["root"]
    public = key.public_key
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shomei Test Federation"),
                    x509.NameAttribute(NameOID.COMMON_NAME, "Shomei Batch Test Issuing CA"),
                ]
            )
        )
        .issuer_name(root.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(
                root_key.public_key()  # type: ignore[arg-type]
            ),
            critical=False,
        )
        .sign(root_key, hashes.SHA256())
    )


def build_ca_home(folder: Path, pki: Pki, *, algorithm: str = "p256") -> CaHome:
    """Write a complete CA home into ``folder`` (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "issuing").mkdir()
    (folder / "root").mkdir()
    key, shares = create_key_file(
        folder / "issuing" / "issuing.key.p8",
        algorithm=algorithm,
        m=2,
        n=3,
        now=NOW,  # type: ignore[arg-type]
    )
    cert = _issuing_certificate(pki, key)
    pem = serialization.Encoding.PEM
    (folder / "issuing" / "issuing.pem").write_bytes(cert.public_bytes(pem))
    (folder / "root" / "root.pem").write_bytes(pki.certs["root"].public_bytes(pem))
    shutil.copytree(REPO / "conf" / "profiles", folder / "profiles")
    link_key, link_cert = make_link_identity("Test RA", now=NOW - dt.timedelta(minutes=5))
    (folder / "trusted-ra").mkdir()
    (folder / "trusted-ra" / "ra.pem").write_bytes(link_cert.public_bytes(pem))
    (folder / "ca.toml").write_text(
        "[ca]\n"
        'name = "Test issuing CA"\n'
        'certificate = "issuing/issuing.pem"\n'
        'chain = ["root/root.pem"]\n'
        'key = { backend = "file", path = "issuing/issuing.key.p8" }\n'
        'ledger = "ledger.sqlite"\n'
        'profiles_dir = "profiles"\n'
        'crl_dir = "crl"\n'
        'trusted_ra = ["trusted-ra"]\n'
        "[ca.crl]\n"
        'validity = "7d"\n'
        'keep_after_expiry = "30d"\n',
        encoding="utf-8",
    )
    settings = load_ca_settings(folder / "ca.toml")
    Ledger.create(settings.ledger).close()  # as the ceremony that creates a CA does
    return CaHome(folder, settings, key, shares, link_key, link_cert)


def test_open_ca_with_custodian_shares(tmp_path: Path, pki: Pki) -> None:
    home = build_ca_home(tmp_path / "home", pki)
    with open_ca(home.settings, shares=home.shares[1:]) as ca:
        assert ca.certificate.public_key() == home.key.public_key
        assert ca.chain == (pki.certs["root"],)
        assert ca.full_chain[0] == ca.certificate
        assert ca.trusted_ra == (home.link_cert,)
        assert "office" in ca.profiles
        assert ca.crl_dir == tmp_path / "home" / "crl"
        assert ca.ledger.schema_version >= 1


def test_open_ca_refuses_too_few_shares_and_a_foreign_key(tmp_path: Path, pki: Pki) -> None:
    home = build_ca_home(tmp_path / "home", pki)
    with pytest.raises(CustodyError):
        open_ca(home.settings, shares=home.shares[:1])
    with pytest.raises(CustodyError, match="does not belong"):
        open_ca_with_key(home.settings, SoftwareKey(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CustodyError, match="does not belong"):
        open_ca_with_key(
            home.settings,
            SoftwareKey(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        )


def test_open_ca_refuses_missing_or_broken_certificates(tmp_path: Path, pki: Pki) -> None:
    home = build_ca_home(tmp_path / "home", pki)
    (home.folder / "root" / "root.pem").write_text("garbage")
    with pytest.raises(ConfigError, match="not a certificate"):
        open_ca(home.settings, shares=home.shares[:2])
    (home.folder / "root" / "root.pem").unlink()
    with pytest.raises(NotFound):
        open_ca_with_key(home.settings, home.key)


def test_load_certificates_reads_pem_der_and_folders(tmp_path: Path, pki: Pki) -> None:
    der = pki.certs["office"].public_bytes(serialization.Encoding.DER)
    (tmp_path / "one.der").write_bytes(der)
    (tmp_path / "two.pem").write_bytes(pki.cert_pem("root") + pki.cert_pem("issuing"))
    assert load_certificates(tmp_path / "one.der") == [pki.certs["office"]]
    assert load_certificates(tmp_path) == [pki.certs["root"], pki.certs["issuing"]]
