"""Fixtures and helpers of the CRL tests: the issuing CA as a SigningKey, and ways to make
CRLs that our builder never would (odd extensions, broken structure), signed for real."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from crl import der
from crl.builder import SIGNATURE_ALGORITHMS
from shomei.keys import SoftwareKey
from tests.pki import NOW, Pki


@pytest.fixture(scope="session")
def issuing(pki: Pki) -> x509.Certificate:
    return pki.certs["issuing"]


@pytest.fixture(scope="session")
def issuing_key(pki: Pki) -> SoftwareKey:
    return SoftwareKey(pki.keys["issuing"])


def resign(tbs: bytes, key: SoftwareKey) -> bytes:
    """A CertificateList around any TBSCertList bytes, really signed with ``key``."""
    algorithm = SIGNATURE_ALGORITHMS[key.key_type]
    return der.sequence(tbs, algorithm, der.tlv(der.TAG_BIT_STRING, b"\x00" + key.sign(tbs)))


def tbs_of(crl_der: bytes) -> bytes:
    """The TBSCertList bytes of a CRL."""
    return x509.load_der_x509_crl(crl_der).tbs_certlist_bytes


CrlMaker = Callable[..., bytes]


@pytest.fixture(scope="session")
def crypto_crl(pki: Pki) -> CrlMaker:
    """Make a CRL with cryptography's own builder (an independent construction)."""

    def make(
        *,
        entries: list[x509.RevokedCertificate] = (),  # type: ignore[assignment]
        extensions: list[tuple[x509.ExtensionType, bool]] | None = None,
        signer: str = "issuing",
        issuer: str = "issuing",
        this_update: dt.datetime = NOW - dt.timedelta(hours=1),
        next_update: dt.datetime | None = NOW + dt.timedelta(days=1),
    ) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(pki.certs[issuer].subject)
            .last_update(this_update)
        )
        if next_update is not None:
            builder = builder.next_update(next_update)
        if extensions is None:
            extensions = [
                (x509.CRLNumber(5), False),
                (
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(
                        pki.keys[signer].public_key()  # type: ignore[arg-type]
                    ),
                    False,
                ),
            ]
        for ext, critical in extensions:
            builder = builder.add_extension(ext, critical=critical)
        for entry in entries:
            builder = builder.add_revoked_certificate(entry)
        if next_update is None:
            # cryptography insists on a nextUpdate; sign with a placeholder, then cut it out.
            builder = builder.next_update(this_update + dt.timedelta(days=1))
            crl = builder.sign(pki.keys[signer], hashes.SHA256())
            tbs = crl.tbs_certlist_bytes
            start, end = der.expect(tbs, 0, len(tbs), der.TAG_SEQUENCE, "tbs")
            body = tbs[start:end]
            stamp = der.encode_time(this_update + dt.timedelta(days=1))
            cut = body.index(stamp)
            body = body[:cut] + body[cut + len(stamp) :]
            return resign(der.tlv(der.TAG_SEQUENCE, body), SoftwareKey(pki.keys[signer]))
        return builder.sign(pki.keys[signer], hashes.SHA256()).public_bytes(
            serialization.Encoding.DER
        )

    return make


def revoked(
    serial: int,
    when: dt.datetime = NOW - dt.timedelta(days=1),
    *extensions: tuple[x509.ExtensionType, bool],
) -> x509.RevokedCertificate:
    """One entry for :func:`crypto_crl`."""
    builder = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when)
    for ext, critical in extensions:
        builder = builder.add_extension(ext, critical=critical)
    return builder.build()
