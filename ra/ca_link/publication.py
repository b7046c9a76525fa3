"""What relying parties fetch at the URLs written in every certificate (docs/product.md §12).

Each certificate profile names a CRL distribution point (RFC 5280 §4.2.1.13) and an AIA
caIssuers URL (§4.2.2.1).  The RA answers the *paths* of those URLs: the CRL path with the
newest registered CRL of the issuing CA (only a CRL :mod:`ra.ca_link.crls` registered, i.e.
signature-checked and numbered upwards, is ever served, so what is served never goes
backwards) as DER ``application/pkix-crl``; the caIssuers path with the issuing CA
certificate as DER ``application/pkix-cert`` (RFC 2585 §3 and §4).

Each answer carries what an HTTP cache needs: an ETag (SHA-256 of the body), Last-Modified
(the CRL's thisUpdate) and a ``max-age`` that never reaches past the CRL's nextUpdate, so no
cache keeps a CRL after the CA promised a newer one.  The web edge (:mod:`ra.web.publish`)
turns this into responses; the same files are also written to ``data_dir/publish`` for a
plain web server (:func:`ra.ca_link.crls.publish`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlparse

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.ca_link.crls import issuer_digest
from ra.settings import RASettings
from ra.store.models import CrlRecord
from shomei.errors import ConfigError

CRL_TYPE = "application/pkix-crl"
CERT_TYPE = "application/pkix-cert"
# Paths of the web application itself: a profile URL must not point into them.
RESERVED = ("/console", "/portal", "/auth", "/static", "/api", "/healthz", "/readyz", "/metrics")

What = Literal["crl", "ca"]


@dataclass(frozen=True)
class Published:
    """One published object: its bytes and what an HTTP answer says about them."""

    body: bytes
    media_type: str
    etag: str
    last_modified: dt.datetime | None
    next_update: dt.datetime | None  # for a CRL: caches must not keep it past this

    def max_age(self, now: dt.datetime, ceiling: int) -> int:
        """Seconds a cache may keep it: ``ceiling``, never past nextUpdate (0 once passed)."""
        if self.next_update is None:
            return ceiling
        left = int((self.next_update - now).total_seconds())
        return max(0, min(ceiling, left))


def _path(url: str, key: str) -> str:
    parsed = urlparse(url)
    path = parsed.path
    if parsed.scheme not in ("http", "https") or not path.startswith("/") or path == "/":
        raise ConfigError(
            f"{key} = {url!r}: not an http URL with a path to serve",
            message_ja=f"{key} = {url!r}: 配布するパスのある http の URL ではありません",
        )
    if any(path == r or path.startswith(r + "/") for r in RESERVED):
        raise ConfigError(
            f"{key} = {url!r}: the path {path} belongs to the web application itself",
            message_ja=f"{key} = {url!r}: パス {path} は Web アプリケーション自身が使っています",
        )
    return path


def paths(settings: RASettings) -> dict[str, What]:
    """The paths to answer, from every certificate profile of the RA: path -> what it serves."""
    found: dict[str, What] = {}
    for profile in settings.profiles:
        for key, url, what in (
            ("crl_distribution_point", profile.extensions.crl_distribution_point, "crl"),
            ("ca_issuers", profile.extensions.ca_issuers, "ca"),
        ):
            path = _path(url, f"profile {profile.name}: extensions.{key}")
            if found.setdefault(path, what) != what:  # type: ignore[arg-type]
                raise ConfigError(
                    f"profile {profile.name}: {path} is both a CRL and a CA certificate URL",
                    message_ja=f"プロファイル {profile.name}: {path} が CRL と CA 証明書の"
                    "両方の URL になっています",
                )
    return found


def current_crl(session: Session, ca_certificate: x509.Certificate) -> Published | None:
    """The newest registered CRL of the issuing CA (highest cRLNumber), or None before one."""
    rows = session.execute(
        select(CrlRecord.id, CrlRecord.number).where(
            CrlRecord.issuer_sha256 == issuer_digest(ca_certificate)
        )
    ).all()
    if not rows:
        return None
    newest = max(rows, key=lambda r: (int(r.number), r.id)).id
    record = session.get_one(CrlRecord, newest)
    return Published(
        body=record.der,
        media_type=CRL_TYPE,
        etag=record.sha256,
        last_modified=record.this_update,
        next_update=record.next_update,
    )


def ca_certificate_file(ca_certificate: x509.Certificate) -> Published:
    """The issuing CA certificate as DER, for the caIssuers URL."""
    der = ca_certificate.public_bytes(Encoding.DER)
    return Published(
        body=der,
        media_type=CERT_TYPE,
        etag=hashlib.sha256(der).hexdigest(),
        last_modified=ca_certificate.not_valid_before_utc,
        next_update=None,
    )
