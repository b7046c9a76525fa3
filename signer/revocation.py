"""Revocation status of one certificate from the CRLs given to a verifier (RFC 5280 §6.3.3).

A :class:`CrlSet` holds the CRLs as they were given and loads each one (signature checked,
index built, by :func:`crl.reader.load_crl`) the first time a certificate of its issuer is
checked.  :meth:`CrlSet.status` then answers for one certificate: revoked, could not decide, or
the complete CRL that says "not revoked".  Only CRLs whose scope covers the certificate count
(issuingDistributionPoint, §5.2.5 and §6.3.3 (b)(2), see :mod:`crl.scope`); a delta or
indirect CRL is refused when it is added (§5.2.4), never silently left unused.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from crl.reader import LoadedCrl, check_usable, load_crl
from shomei.errors import MalformedInput, ShomeiError
from signer.verdict import Verdict, invalid, undecided


@dataclass
class _Source:
    data: bytes
    issuer: x509.Name
    loaded: dict[bytes, Any] = field(default_factory=dict)  # issuer cert DER -> LoadedCrl|error


class CrlSet:
    """The CRLs given to a verifier, loaded per issuer certificate when first needed."""

    def __init__(self) -> None:
        self._sources: list[_Source] = []

    def add(self, data: bytes) -> None:
        """Add a CRL (DER or PEM); its signature is checked when its issuer is first needed.

        A delta or indirect CRL is :class:`~shomei.errors.Refused` here, at once: it would
        otherwise be left unused without a word whenever a complete CRL of the same issuer is
        given too.
        """
        if data.lstrip().startswith(b"-----BEGIN"):
            try:
                crl = x509.load_pem_x509_crl(data)
            except ValueError as exc:
                raise _bad_crl() from exc
            data = crl.public_bytes(Encoding.DER)
        else:
            try:
                crl = x509.load_der_x509_crl(data)
            except ValueError as exc:
                raise _bad_crl() from exc
        try:
            issuer = crl.issuer
        except ValueError as exc:
            raise _bad_crl() from exc
        check_usable(data)
        self._sources.append(_Source(data, issuer))

    def _of(self, issuer: x509.Certificate) -> tuple[list[LoadedCrl], ShomeiError | None]:
        """The signature-checked CRLs of ``issuer``, and why the first unusable one is not."""
        key = issuer.public_bytes(Encoding.DER)
        usable: list[LoadedCrl] = []
        error: ShomeiError | None = None
        for source in self._sources:
            if source.issuer != issuer.subject:
                continue
            if key not in source.loaded:
                try:
                    # Loaded without a time: a stale CRL still proves a revocation; whether
                    # it is current is asked on every verification (Verifier.check_signer).  Any
                    # scope is accepted because status() asks each CRL about each certificate.
                    source.loaded[key] = load_crl(source.data, issuer=issuer, any_scope=True)
                except ShomeiError as exc:
                    source.loaded[key] = exc
            got = source.loaded[key]
            if isinstance(got, ShomeiError):
                error = error or got
            else:
                usable.append(got)
        return usable, error

    def status(
        self, cert: x509.Certificate, issuer: x509.Certificate, whose: tuple[str, str]
    ) -> Verdict | LoadedCrl:
        """The revocation status of ``cert`` from the CRLs of ``issuer`` (RFC 5280 §6.3.3).

        A failed verdict (revoked, or undecided), or else the complete CRL that says "not
        revoked", whose currency the caller checks at every verification.  Only CRLs whose
        scope covers ``cert`` are used (:mod:`crl.scope`).  The newest complete one decides;
        a CRL limited to some reasons can prove a revocation but never its absence, so it is
        consulted too when it is not older than the complete one, and when it is all there
        is, the answer is "could not decide".  So is it when any CRL given in the issuer's
        name cannot be used (forged, damaged, an unknown critical extension), unless a usable
        one proves the revocation.
        """
        crls, error = self._of(issuer)
        unusable = None
        if error is not None:
            unusable = undecided(
                "bad_crl",
                f"the CRL of {_name(issuer)} cannot be used: {error.message}",
                f"{_name(issuer)} の失効リスト(CRL)が使えません: {error.message_ja}",
            )
        if not crls:
            if unusable is not None:
                return unusable
            given = ", ".join(sorted({s.issuer.rfc4514_string() for s in self._sources})) or "none"
            return undecided(
                "no_crl",
                f"no CRL of {_name(issuer)} was given (CRLs given: {given}); "
                "revocation cannot be checked",
                f"{_name(issuer)} の失効リスト(CRL)が指定されていないため失効確認ができません"
                f"(指定された CRL: {given})",
            )
        covering = [(crl, crl.scope.coverage(cert)) for crl in crls]
        in_scope = [(crl, cover) for crl, cover in covering if cover.reasons]
        best = max((crl for crl, cover in in_scope if cover.complete), key=_newness, default=None)
        partial = [crl for crl, cover in in_scope if not cover.complete]
        consulted = [best] if best is not None else []
        consulted += [crl for crl in partial if best is None or crl.this_update >= best.this_update]
        for crl in consulted:
            revocation = crl.index.lookup(cert.serial_number)
            if revocation is not None:
                reason = getattr(revocation.reason, "value", revocation.reason) or "unspecified"
                return invalid(
                    "revoked",
                    f"{whose[0]} was revoked on {_when(revocation.revoked_at)} (reason: {reason})",
                    f"{whose[1]}は {_when(revocation.revoked_at)} に失効しています(理由: {reason})",
                )
        if unusable is not None:
            # A CRL in the issuer's name that cannot be used may be the newest one, listing
            # this certificate: "not revoked" is never said past it.  (It may also be forged
            # or damaged; the operator removes it or fetches it again.)
            return unusable
        if best is not None:
            return best
        if in_scope:
            return undecided(
                "crl_scope",
                f"the CRLs of {_name(issuer)} given cover only some revocation reasons for "
                f"{whose[0]}; a complete CRL is needed to know that it is not revoked",
                f"{_name(issuer)} の失効リスト(CRL)は一部の失効理由だけを対象としているため、"
                f"{whose[1]}が失効していないことを確認できません(完全な CRL が必要です)",
            )
        _, first = covering[0]
        return undecided(
            "crl_scope",
            f"the CRL of {_name(issuer)} given does not cover {whose[0]}: {first.why_not}",
            f"{_name(issuer)} の失効リスト(CRL)は{whose[1]}を対象としていません: "
            f"{first.why_not_ja}",
        )

    def has_issuer(self, name: x509.Name) -> bool:
        """Whether a CRL in the name of ``name`` was given (checked or not)."""
        return any(source.issuer == name for source in self._sources)


def not_current(loaded: LoadedCrl, now: dt.datetime, **kw: Any) -> Verdict:
    """UNDECIDED for a CRL outside thisUpdate..nextUpdate (§6.3.3 (a)), saying which side."""
    who = loaded.issuer.rfc4514_string()
    if loaded.this_update > now:
        return undecided(
            "crl_not_yet_valid",
            f"the CRL of {who} is not valid yet (this update {_when(loaded.this_update)} is "
            "in the future); check this computer's clock",
            f"{who} の失効リスト(CRL)はまだ有効ではありません(発行日時 "
            f"{_when(loaded.this_update)} が未来です)。この端末の時計を確認してください",
            **kw,
        )
    nxt = _when(loaded.next_update) if loaded.next_update else "none"
    return undecided(
        "stale_crl",
        f"the CRL of {who} is not current (this update {_when(loaded.this_update)}, next "
        f"update {nxt}); get the latest CRL",
        f"{who} の失効リスト(CRL)が最新ではありません(次回更新 {nxt})。"
        "最新の CRL を取得してください",
        **kw,
    )


def _newness(crl: LoadedCrl) -> tuple[int, dt.datetime]:
    """Which of two CRLs of one issuer is newer: the cRLNumber, then thisUpdate (§5.2.3)."""
    return (crl.number if crl.number is not None else -1, crl.this_update)


def _bad_crl() -> MalformedInput:
    return MalformedInput(
        "the CRL file is not a readable CRL",
        message_ja="失効リスト(CRL)ファイルを読み取れません",
        reason="malformed",
    )


def _name(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return repr(cert.subject)


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


__all__ = ["CrlSet", "not_current"]
