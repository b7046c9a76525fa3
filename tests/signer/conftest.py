"""Fixtures of the signer tests: credentials by PKI name, CRLs made to order, a verifier."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from shomei.clock import utcnow
from signer.credentials import Credentials
from signer.keys import SoftwareKey
from signer.verifier import Verifier
from tests.pki import NOW, Pki

CLAIM = ("請求書 2026年11月分\n" + "明細,1310000001,12345\n" * 2000).encode()


def credentials(pki: Pki, name: str) -> Credentials:
    """The credentials of PKI member ``name``, chain = the issuing CA (or none for strangers)."""
    chain = () if name.startswith("stranger") else (pki.certs["issuing"],)
    key = pki.keys[name]
    return Credentials(SoftwareKey(key), pki.certs[name], chain, key)


def make_crl(
    pki: Pki,
    *,
    issuer: str = "issuing",
    key_of: str | None = None,
    this_update: dt.datetime | None = None,
    next_update: dt.datetime | None = None,
    revoked: Sequence[str] = (),
    number: int = 2,
) -> bytes:
    """A DER CRL in the name of ``issuer``, signed by ``key_of`` (default: the issuer)."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.certs[issuer].subject)
        .last_update(this_update or NOW - dt.timedelta(hours=1))
        .next_update(next_update or NOW + dt.timedelta(days=7))
        .add_extension(x509.CRLNumber(number), critical=False)
    )
    for name in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(pki.certs[name].serial_number)
            .revocation_date(NOW - dt.timedelta(hours=3))
            .build()
        )
    crl = builder.sign(pki.keys[key_of or issuer], hashes.SHA256())  # type: ignore[arg-type]
    return crl.public_bytes(serialization.Encoding.DER)


@pytest.fixture
def make_verifier(pki: Pki) -> Callable[..., Verifier]:
    """A verifier trusting the test root, with the PKI's CRL unless ``crls`` says otherwise."""

    def make(
        crls: Sequence[bytes] | None = None,
        *,
        anchors: Sequence[str] = ("root",),
        now: dt.datetime | None = None,
    ) -> Verifier:
        # Without ``now``, the real clock: PDF claims carry the real signing time (pyHanko
        # takes it at signing), and a session that runs longer than the clock skew allowed
        # would otherwise see them as signed in the future.  NOW is minutes in the past.
        return Verifier(
            trust_anchors=[pki.certs[a] for a in anchors],
            crls=[pki.crl_der] if crls is None else crls,
            clock=(lambda: now) if now is not None else utcnow,
        )

    return make
