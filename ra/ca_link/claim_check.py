"""Claim signatures checked against what the RA holds now: the reception system's verification.

The federation's reception system sends a claim and its detached CMS signature (or a PDF
carrying its own PAdES signature) through the JSON API; the verdict is the one ``shomei
verify`` gives (:class:`signer.verifier.Verifier`, :func:`signer.pades.verify_pdf`, the
same reasons in English and Japanese) with the issuing CA certificate of the link
(``[ra.link] ca_certificate``, :func:`ra.ca_link.identity.load_ca_certificate`) as the trust
anchor and the RA's current registered CRL (:func:`ra.ca_link.publication.current_crl`) as the
revocation source, i.e. what ``shomei verify CLAIM --trust issuing.pem --crl current.crl``
says.  Before the first CRL is registered every verdict is "could not decide".

A :class:`ClaimChecker` keeps one verifier per (CA certificate, current CRL): loading a large
CRL is paid once, and the CRL in use is looked up on every call, so a newly registered CRL is
used from the next call on.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.orm import Session

from ra.ca_link.identity import load_ca_certificate
from ra.ca_link.publication import current_crl
from ra.party import Party, Permission, require
from ra.settings import RASettings
from shomei.errors import ConfigError, ShomeiError, StateError
from signer.pades import is_pdf, verify_pdf
from signer.verdict import Reason, Status, Verdict, invalid
from signer.verifier import Verifier

log = logging.getLogger("shomei.ra.claim_check")


@dataclass(frozen=True)
class Claim:
    """One claim to check: its bytes and its detached signature (None: a signed PDF)."""

    content: bytes
    signature: bytes | None
    label: str = ""


def check_one(verifier: Verifier, claim: Claim) -> Verdict:
    """The verdict on one claim, as ``shomei verify`` gives it for the same files.

    Without a signature a PDF is checked for its own (PAdES) signature and anything else is
    unsigned (INVALID), as the CLI decides for a claim without its ``.p7s``.  One broken item
    never fails a batch: an unexpected error is an UNDECIDED verdict (and a log entry).
    """
    try:
        if claim.signature is None:
            if is_pdf(claim.content[:1024]):
                return verify_pdf(claim.content, verifier=verifier)
            return invalid(
                "unsigned",
                "the claim is not signed (no signature was sent, and it is not a signed PDF)",
                "請求ファイルに署名がありません(署名が送られておらず、署名付き PDF でもありません)",
            )
        return verifier.verify(claim.content, claim.signature)
    except Exception as exc:
        log.exception("unexpected error verifying %s", claim.label or "a claim")
        return Verdict(
            Status.UNDECIDED,
            (
                Reason(
                    "internal_error",
                    f"could not be checked (internal error {type(exc).__name__}); please report it",
                    f"内部エラー({type(exc).__name__})のため確認できませんでした。ご連絡ください",
                ),
            ),
        )


@dataclass(frozen=True)
class Basis:
    """What the verdicts were decided against: the CA certificate and the CRL (if any)."""

    ca_subject: str
    crl_sha256: str | None
    crl_this_update: dt.datetime | None
    crl_next_update: dt.datetime | None


class ClaimChecker:
    """Verifies claims for the API; one per web application (its clock is the app's)."""

    def __init__(self, clock: Callable[[], dt.datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._key: tuple[str, str | None] | None = None
        self._verifier: Verifier | None = None

    def _verifier_for(self, session: Session, settings: RASettings) -> tuple[Verifier, Basis]:
        try:
            ca = load_ca_certificate(settings.link)
        except ConfigError as exc:
            raise StateError(
                f"claims cannot be verified: {exc.message}",
                message_ja=f"請求の署名を検証できません: {exc.message_ja}",
            ) from exc
        crl = current_crl(session, ca)
        key = (hashlib.sha256(ca.public_bytes(Encoding.DER)).hexdigest(), crl.etag if crl else None)
        basis = Basis(
            ca_subject=_name(ca),
            crl_sha256=crl.etag if crl else None,
            crl_this_update=crl.last_modified if crl else None,
            crl_next_update=crl.next_update if crl else None,
        )
        with self._lock:
            if self._key == key and self._verifier is not None:
                return self._verifier, basis
        try:
            verifier = Verifier(
                trust_anchors=[ca], crls=[crl.body] if crl else (), clock=self._clock
            )
        except ShomeiError as exc:
            raise StateError(
                f"claims cannot be verified: {exc.message}",
                message_ja=f"請求の署名を検証できません: {exc.message_ja}",
            ) from exc
        with self._lock:
            self._key, self._verifier = key, verifier
        return verifier, basis

    def verify(
        self, session: Session, party: Party, settings: RASettings, claims: Sequence[Claim]
    ) -> tuple[list[Verdict], Basis]:
        """One verdict per claim, in order, and what they were decided against."""
        require(party, Permission.VERIFY_CLAIMS)
        verifier, basis = self._verifier_for(session, settings)
        return [check_one(verifier, c) for c in claims], basis


def _name(cert: x509.Certificate) -> str:
    try:
        return cert.subject.rfc4514_string()
    except ValueError:
        return repr(cert.subject)
