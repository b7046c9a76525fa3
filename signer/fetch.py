"""Fetching the CRL a certificate names (its CRL distribution points, RFC 5280 §4.2.1.13).

``shomei verify --fetch`` needs only the trust anchor: the CRL of each certificate of a path
is fetched from the http URL the certificate carries, once per URL per run, and then checked
like a CRL given with ``--crl`` (signature by the issuer, number, currency).  A fetch that
fails (no answer within the timeout, an error status, too large, not a CRL) leaves the CRL
missing, and a missing CRL is "could not decide", never "valid": the failure is kept so the
verdict can say why.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from cryptography import x509

from shomei.errors import MalformedInput, ShomeiError

TIMEOUT = 10.0  # seconds for one fetch
MAX_CRL = 64 * 1024 * 1024  # bytes: a CRL of millions of entries still fits

Fetch = Callable[[str], bytes]


def crl_urls(certificate: x509.Certificate) -> list[str]:
    """The http(s) URLs of the certificate's CRL distribution points, in order."""
    try:
        points = certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
        and name.value.lower().startswith(("http://", "https://"))
    ]


def http_fetch(url: str, *, timeout: float = TIMEOUT, limit: int = MAX_CRL) -> bytes:
    """GET ``url``: its body, or :class:`MalformedInput` saying why not (one line)."""
    if not url.lower().startswith(("http://", "https://")):
        raise MalformedInput(
            f"not an http URL: {url}", message_ja=f"http の URL ではありません: {url}"
        )
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310  # http(s) only
            body: bytes = answer.read(limit + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise MalformedInput(
            f"could not fetch the CRL from {url}: {reason}",
            message_ja=f"{url} から CRL を取得できませんでした: {reason}",
        ) from exc
    if len(body) > limit:
        raise MalformedInput(
            f"the CRL at {url} is larger than {limit} bytes",
            message_ja=f"{url} の CRL が大きすぎます({limit} バイト超)",
        )
    return body


class CrlFetcher:
    """Fetches each URL once per run; remembers what failed and why."""

    def __init__(self, fetch: Fetch = http_fetch) -> None:
        self._fetch = fetch
        self._done: dict[str, bytes | ShomeiError] = {}

    def get(self, url: str) -> bytes | ShomeiError:
        if url not in self._done:
            try:
                self._done[url] = self._fetch(url)
            except ShomeiError as exc:
                self._done[url] = exc
        return self._done[url]
