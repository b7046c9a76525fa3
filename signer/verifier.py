"""Verify signed claims at month-end volume: one :class:`Verifier`, loaded once, many claims.

A claim is VALID only when all of these hold (RFC 5652 §5.6 and RFC 5280 §6):

1. the claim's SHA-256 digest matches the message-digest attribute and the signature over the
   signed attributes matches the signer certificate's key (:mod:`signer.fastcms` for the
   common shape, :func:`signer.cms.verify` for anything else);
2. the signer certificate chains to one of the configured trust anchors (path validation by
   pyhanko-certvalidator; intermediates come from the CMS and from ``untrusted``);
3. every certificate of the path is valid at the signing time, and the signing time is not in
   the future; the signer certificate has not expired since (a current CRL no longer lists
   expired certificates, RFC 5280 §3.3, so its status could not be known);
4. the signer certificate's key usage allows digitalSignature or nonRepudiation (§4.2.1.3);
5. its serial is not on a current CRL, signature-checked, of its issuer, whose scope covers
   it (RFC 5280 §6.3.3, :mod:`signer.revocation`).  CA certificates of the path are checked
   too when a CRL of their issuer is configured.

A stale, missing, unreadable or out-of-scope CRL makes the verdict UNDECIDED, never VALID; a
delta or indirect CRL is refused when it is added.  Revocation is a set lookup in the CRL
index of :mod:`crl.reader`, and everything about a signer certificate
that does not depend on the claim (path, key usage, revocation) is computed once per
certificate and cached for the lifetime of the verifier, that is, per set of CRL versions:
:meth:`Verifier.add_crl` drops the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from crl.reader import LoadedCrl
from shomei import files
from shomei.clock import utcnow
from shomei.errors import MalformedInput, Refused, ShomeiError
from signer import chain, cms, fastcms
from signer.fetch import CrlFetcher, crl_urls
from signer.revocation import CrlSet, not_current
from signer.verdict import Status, Verdict, from_error, invalid, undecided

SKEW = dt.timedelta(minutes=5)
MAX_CLAIM_BYTES = files.MAX_INPUT
# A detached signature is a few kilobytes with its chain; a PAdES signature lives in its PDF.
MAX_SIGNATURE_BYTES = files.MAX_OBJECT
_TIME_CODES = ("expired", "not_yet_valid")
_MOMENT_LIFE = dt.timedelta(hours=1)
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)


def _name(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return repr(cert.subject)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@dataclass
class _Signer:
    """Everything about one signer certificate that does not depend on the claim."""

    failure: Verdict | None = None  # a claim-independent failure (untrusted, key usage, ...)
    path: tuple[x509.Certificate, ...] = ()  # anchor first, signer last
    not_before: dt.datetime = EARLIEST
    not_after: dt.datetime = LATEST
    crls: tuple[LoadedCrl, ...] = ()  # the complete CRLs the decision relied on
    subject: str = ""
    serial: int = 0


class Verifier:
    """Trust anchors and CRLs loaded once; :meth:`verify` many claims against them."""

    def __init__(
        self,
        *,
        trust_anchors: Sequence[x509.Certificate],
        crls: Sequence[bytes] = (),
        untrusted: Sequence[x509.Certificate] = (),
        clock: Callable[[], dt.datetime] = utcnow,
        fetcher: CrlFetcher | None = None,
    ) -> None:
        if not trust_anchors:
            raise MalformedInput(
                "no trust anchor given", message_ja="信頼点(ルート証明書)が指定されていません"
            )
        for anchor in trust_anchors:
            _require_ca(anchor)
        self._anchors = tuple(trust_anchors)
        self._anchor_ders = {c.public_bytes(Encoding.DER) for c in self._anchors}
        self._paths = chain.PathValidator(self._anchors, untrusted)
        self._moment: dt.datetime | None = None
        self._clock = clock
        self._crls = CrlSet()
        self._fetcher = fetcher  # fetches the CRLs the certificates name (signer.fetch)
        self._fetched: dict[str, ShomeiError | None] = {}  # URL -> why it is missing, or None
        self._signers: dict[bytes, _Signer] = {}
        self._certs: dict[bytes, fastcms.CertInfo] = {}
        for data in crls:
            self.add_crl(data)

    # -- CRLs -------------------------------------------------------------------------------

    def add_crl(self, data: bytes) -> None:
        """Add a CRL (DER or PEM): see :meth:`signer.revocation.CrlSet.add`."""
        self._crls.add(data)
        self._signers.clear()  # cached decisions were made against the previous CRL set

    # -- claims -----------------------------------------------------------------------------

    def verify_files(self, claim: Path, signature: Path | None = None) -> Verdict:
        """Verify ``claim`` against ``signature`` (default: the claim's name + ``.p7s``).

        The claim is hashed in blocks, never held whole, unless the signature is of a shape
        that only the generic CMS path checks (see :mod:`signer.fastcms`).
        """
        signature = signature or claim.with_name(claim.name + ".p7s")
        try:
            sig = _read(signature, "signature", "署名ファイル", limit=MAX_SIGNATURE_BYTES)
            digest = _read(
                claim, "claim", "請求ファイル", limit=MAX_CLAIM_BYTES, reader=files.sha256_file
            )
            return self._verify_digest(
                digest, sig, lambda: _read(claim, "claim", "請求ファイル", limit=MAX_CLAIM_BYTES)
            )
        except MalformedInput as exc:
            # A claim is any bytes: what could not be read is the signature file; say so.
            return from_error(
                exc
                if signature.name in exc.message
                else MalformedInput(
                    f"{signature.name}: {exc.message}",
                    message_ja=f"{signature.name}: {exc.message_ja}",
                    **exc.fields,
                )
            )
        except ShomeiError as exc:
            return from_error(exc)

    def verify(self, content: bytes, signature: bytes) -> Verdict:
        """Verify the detached CMS ``signature`` over ``content``; never raises ShomeiError."""
        try:
            return self._verify_digest(hashlib.sha256(content).digest(), signature, lambda: content)
        except ShomeiError as exc:
            return from_error(exc)

    def _verify_digest(
        self, digest: bytes, signature: bytes, content: Callable[[], bytes]
    ) -> Verdict:
        """The verdict on ``signature`` over the content whose SHA-256 is ``digest``.

        ``content`` gives the content itself, for the generic path only.
        """
        try:
            fast = fastcms.check(signature, digest, self._certs)
            signer_der, others, signing_time = fast.signer.der, fast.certificates, fast.signing_time
            signer_cert = fast.signer.certificate
        except fastcms.NotFast:
            # signer.cms maps every decoding failure to MalformedInput and gives its
            # VerificationFailed the same reason codes as the fast path.
            checked = cms.verify(signature, content=content())
            signer_cert = checked.signer
            signer_der = signer_cert.public_bytes(Encoding.DER)
            others = tuple(c.public_bytes(Encoding.DER) for c in checked.certificates)
            signing_time = checked.signing_time
        return self.check_signer(signer_der, others, signing_time, _cert=signer_cert)

    def check_signer(
        self,
        signer_der: bytes,
        others: Sequence[bytes],
        signing_time: dt.datetime | None,
        *,
        _cert: x509.Certificate | None = None,
    ) -> Verdict:
        """Trust decision for a signer certificate whose signature was already checked.

        ``others`` are further certificates that came with the signature (intermediates);
        ``signing_time`` is what the signature claims (the current time when absent).
        PAdES verification uses this after pyhanko has checked the PDF's integrity.
        """
        now = self._clock()
        entry = self._signers.get(signer_der)
        if entry is None:
            examined = self._examine(signer_der, others, signing_time or now, now, _cert)
            if isinstance(examined, Verdict):
                return examined  # a failure that depends on the signing time: not cached
            entry = examined
        info = {"signer_subject": entry.subject, "signer_serial": entry.serial}
        if entry.failure is not None:
            return entry.failure
        when = signing_time or now
        if when > now + SKEW:
            return invalid(
                "future",
                f"the signing time {_when(when)} is in the future",
                f"署名時刻 {_when(when)} が未来の日時です",
                signing_time=signing_time,
                **info,
            )
        if when > entry.not_after:
            return invalid(
                "expired",
                f"a certificate of the chain had expired at the signing time {_when(when)} "
                f"(valid until {_when(entry.not_after)}); renew the certificate",
                f"署名時刻 {_when(when)} に証明書の有効期限({_when(entry.not_after)})が"
                "切れていました。証明書を更新してください",
                signing_time=signing_time,
                **info,
            )
        if when < entry.not_before:
            return invalid(
                "not_yet_valid",
                f"a certificate of the chain was not yet valid at the signing time {_when(when)} "
                f"(valid from {_when(entry.not_before)})",
                f"署名時刻 {_when(when)} に証明書はまだ有効ではありませんでした"
                f"(有効期間の開始 {_when(entry.not_before)})",
                signing_time=signing_time,
                **info,
            )
        signer_not_after = entry.path[-1].not_valid_after_utc
        if now > signer_not_after:
            return undecided(
                "expired_since",
                f"the signer certificate expired on {_when(signer_not_after)}; its revocation "
                "status can no longer be checked",
                f"署名者の証明書は {_when(signer_not_after)} に期限切れとなったため、"
                "失効状態を確認できません",
                signing_time=signing_time,
                **info,
            )
        for loaded in entry.crls:
            if not loaded.is_current(now):
                return not_current(loaded, now, signing_time=signing_time, **info)
        return Verdict(Status.VALID, signing_time=signing_time, **info)  # type: ignore[arg-type]

    # -- per signer certificate, cached -----------------------------------------------------

    def _examine(
        self,
        signer_der: bytes,
        others: Sequence[bytes],
        moment: dt.datetime,
        now: dt.datetime,
        cert: x509.Certificate | None,
    ) -> _Signer | Verdict:
        try:
            cert = cert or x509.load_der_x509_certificate(signer_der)
        except fastcms.CERT_ERRORS as exc:
            raise MalformedInput(
                "the signer certificate is unreadable", message_ja="署名者の証明書が読めません"
            ) from exc
        subject, serial = _name(cert), cert.serial_number
        info = {"signer_subject": subject, "signer_serial": serial}
        intermediates = [
            ax509.Certificate.load(o)
            for o in others
            if o != signer_der and o not in self._anchor_ders
        ]
        # The path is validated at one shared time (the verification time, kept for an hour so
        # one validation context serves every claim), or else at the ends of the signer's own
        # validity; the signing time of each claim is then checked against the validity
        # window of the path (check_signer), so the path never has to be validated per claim.
        if self._moment is None or not dt.timedelta(0) <= now - self._moment < _MOMENT_LIFE:
            self._moment = now
        result: tuple[x509.Certificate, ...] | Verdict = invalid("untrusted", "", "")
        for at in (self._moment, cert.not_valid_after_utc, cert.not_valid_before_utc):
            result = self._paths.validate(signer_der, intermediates=intermediates, moment=at)
            if not isinstance(result, Verdict) or result.reasons[0].code not in _TIME_CODES:
                break
        else:
            # Never valid as a whole: say so for this claim's signing time, and do not cache.
            result = self._paths.validate(signer_der, intermediates=intermediates, moment=moment)
            if isinstance(result, Verdict):
                return Verdict(result.status, result.reasons, **info)  # type: ignore[arg-type]
        if isinstance(result, Verdict):
            failed = Verdict(result.status, result.reasons, **info)  # type: ignore[arg-type]
            self._signers[signer_der] = _Signer(failure=failed, subject=subject, serial=serial)
            return self._signers[signer_der]
        path = result
        entry = _Signer(path=path, subject=subject, serial=serial)
        entry.not_before = max(c.not_valid_before_utc for c in path)
        entry.not_after = min(c.not_valid_after_utc for c in path)
        entry.failure = _key_usage(cert, info) or self._revocation(entry, info)
        self._signers[signer_der] = entry
        return entry

    def _revocation(self, entry: _Signer, info: dict[str, Any]) -> Verdict | None:
        decided_by = []
        # path[0] is the anchor; every certificate after it is checked against its issuer's CRL.
        for position in range(1, len(entry.path)):
            subject_cert, issuer_cert = entry.path[position], entry.path[position - 1]
            is_signer = position == len(entry.path) - 1
            if not is_signer and not self._crls.has_issuer(issuer_cert.subject):
                continue  # no CRL of this CA's issuer configured (documented policy)
            whose = (
                ("the signer certificate", "署名者の証明書")
                if is_signer
                else (f"CA {_name(subject_cert)}", f"認証局 {_name(subject_cert)}")
            )
            failed = self._fetch_crls(subject_cert)
            status = self._crls.status(subject_cert, issuer_cert, whose)
            if isinstance(status, Verdict):
                if failed is not None and not status.ok and status.status is not Status.INVALID:
                    # No usable CRL because the fetch failed: say so (still undecided).
                    return undecided("crl_unavailable", failed.message, failed.message_ja, **info)
                return Verdict(status.status, status.reasons, **info)
            decided_by.append(status)
        entry.crls = tuple(decided_by)
        return None

    def _fetch_crls(self, cert: x509.Certificate) -> ShomeiError | None:
        """Fetch (once per URL) the CRLs ``cert`` names; the first failure, if any."""
        if self._fetcher is None:
            return None
        first: ShomeiError | None = None
        for url in crl_urls(cert):
            if url not in self._fetched:
                got = self._fetcher.get(url)
                if isinstance(got, ShomeiError):
                    self._fetched[url] = got
                else:
                    try:
                        self._crls.add(got)
                        self._fetched[url] = None
                    except ShomeiError as exc:
                        self._fetched[url] = exc
            first = first or self._fetched[url]
        return first


def _require_ca(anchor: x509.Certificate) -> None:
    """Refuse a trust anchor that is not a CA certificate (basicConstraints cA, §4.2.1.9).

    A trust anchor is never checked for revocation (RFC 5280 §6.1), so an office certificate
    given as one, by mistake or in a chain file, would make its own claims VALID even when
    its issuer's CRL lists it.
    """
    try:
        is_ca = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except (x509.ExtensionNotFound, ValueError):
        is_ca = False
    if not is_ca:
        raise Refused(
            f"the trust anchor {_name(anchor)} is not a CA certificate; give the root (or "
            "issuing) CA certificate, not an office's",
            message_ja=f"信頼点 {_name(anchor)} は認証局の証明書ではありません。"
            "事業所の証明書ではなく、ルート(または発行)認証局の証明書を指定してください",
        )


def _key_usage(cert: x509.Certificate, info: dict[str, Any]) -> Verdict | None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        allowed = usage.digital_signature or usage.content_commitment
    except (x509.ExtensionNotFound, ValueError):
        allowed = False  # absent or unreadable: not a certificate for signing claims
    if allowed:
        return None
    return invalid(
        "key_usage",
        "the signer certificate is not for signing (key usage lacks digitalSignature and "
        "nonRepudiation)",
        "署名者の証明書は署名用ではありません(鍵用途に digitalSignature も nonRepudiation も"
        "ありません)",
        **info,
    )


def _read(
    path: Path,
    what: str,
    what_ja: str,
    *,
    limit: int,
    reader: Callable[..., bytes] = files.read_bytes,
) -> bytes:
    """``reader`` (a :mod:`shomei.files` reader) on ``path``; a file that cannot be read is
    MalformedInput with the reason code ``malformed`` (an UNDECIDED row, never a crash)."""
    try:
        return reader(path, what=what, what_ja=what_ja, limit=limit)
    except ShomeiError as exc:
        raise MalformedInput(exc.message, message_ja=exc.message_ja, reason="malformed") from exc


def load_verifier(
    *,
    trust: Sequence[bytes],
    crls: Sequence[bytes] = (),
    untrusted: Sequence[bytes] = (),
    clock: Callable[[], dt.datetime] = utcnow,
    fetcher: CrlFetcher | None = None,
) -> Verifier:
    """A :class:`Verifier` from PEM/DER file contents (each may hold several certificates)."""
    from signer.credentials import load_certificates

    return Verifier(
        trust_anchors=[c for data in trust for c in load_certificates(data)],
        crls=crls,
        untrusted=[c for data in untrusted for c in load_certificates(data)],
        clock=clock,
        fetcher=fetcher,
    )


__all__ = ["SKEW", "Verifier", "load_verifier"]
