"""A throwaway PKI for tests, built from a small declarative spec.

Built once per test session with ``cryptography`` alone (not with the code under test, so the
tests judge our code against an independent construction): an offline root, an issuing CA,
office certificates (good, revoked, expired), a stranger CA that we do not trust, and a CRL
of the issuing CA listing the revoked office.  Everything is exposed by name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

# The declarative spec: name -> (issuer, kind, validity offsets in days from NOW).
SPEC: dict[str, dict[str, object]] = {
    "root": {"issuer": None, "ca": True, "subject": "Shomei Test Root CA", "days": (-30, 3650)},
    "issuing": {
        "issuer": "root",
        "ca": True,
        "subject": "Shomei Test Issuing CA",
        "days": (-30, 1825),
    },
    "office": {
        "issuer": "issuing",
        "ca": False,
        "subject": "テスト事業所",
        "office": "1310000001",
        "days": (-1, 1095),
    },
    "revoked": {
        "issuer": "issuing",
        "ca": False,
        "subject": "失効事業所",
        "office": "1310000002",
        "days": (-1, 1095),
        "revoke": "keyCompromise",
    },
    "expired": {
        "issuer": "issuing",
        "ca": False,
        "subject": "期限切れ事業所",
        "office": "1310000003",
        "days": (-800, -10),
    },
    "office_ec": {
        "issuer": "issuing",
        "ca": False,
        "subject": "楕円事業所",
        "office": "1310000004",
        "days": (-1, 1095),
        "key": "ec",
    },
    "stranger": {"issuer": None, "ca": True, "subject": "Stranger CA", "days": (-30, 3650)},
    "stranger_office": {
        "issuer": "stranger",
        "ca": False,
        "subject": "偽事業所",
        "office": "1310000001",
        "days": (-1, 1095),
    },
}


@dataclass
class Pki:
    certs: dict[str, x509.Certificate] = field(default_factory=dict)
    keys: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    crl: x509.CertificateRevocationList | None = None
    crl_der: bytes = b""

    def cert_pem(self, name: str) -> bytes:
        return self.certs[name].public_bytes(serialization.Encoding.PEM)

    def key_pem(self, name: str) -> bytes:
        return self.keys[name].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write(self, folder: Path) -> None:
        """Write every certificate and key as PEM and the CRL as DER into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.certs:
            (folder / f"{name}.pem").write_bytes(self.cert_pem(name))
            (folder / f"{name}.key").write_bytes(self.key_pem(name))
        (folder / "issuing.crl").write_bytes(self.crl_der)


def _name(subject: str, office: str | None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shomei Test Federation"),
    ]
    if office:
        attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, office))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, subject))
    return x509.Name(attrs)


def build_pki() -> Pki:
    pki = Pki()
    revoked: list[tuple[int, str]] = []
    for name, spec in SPEC.items():
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if spec.get("key") == "ec":
            key = ec.generate_private_key(ec.SECP256R1())
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pki.keys[name] = key
        subject = _name(str(spec["subject"]), spec.get("office"))  # type: ignore[arg-type]
        issuer_name = spec["issuer"]
        if issuer_name is None:
            issuer_cert_subject, issuer_key = subject, key
        else:
            issuer_cert_subject = pki.certs[str(issuer_name)].subject
            issuer_key = pki.keys[str(issuer_name)]
        start, end = spec["days"]  # type: ignore[misc]
        is_ca = bool(spec["ca"])
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert_subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW + dt.timedelta(days=start))
            .not_valid_after(NOW + dt.timedelta(days=end))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
                critical=False,
            )
        )
        if is_ca:
            builder = builder.add_extension(
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
        else:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=True,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
        cert = builder.sign(issuer_key, hashes.SHA256())
        pki.certs[name] = cert
        if spec.get("revoke"):
            revoked.append((cert.serial_number, str(spec["revoke"])))
    issuing = pki.certs["issuing"]
    crl_builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuing.subject)
        .last_update(NOW - dt.timedelta(hours=1))
        .next_update(NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.keys["issuing"].public_key()),
            critical=False,
        )
    )
    for serial, reason in revoked:
        crl_builder = crl_builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(NOW - dt.timedelta(hours=2))
            .add_extension(x509.CRLReason(x509.ReasonFlags(reason)), critical=False)
            .build()
        )
    pki.crl = crl_builder.sign(pki.keys["issuing"], hashes.SHA256())
    pki.crl_der = pki.crl.public_bytes(serialization.Encoding.DER)
    return pki
