"""PDF claims: sign and verify PAdES signatures (ETSI EN 319 142-1, baseline B-B) with pyHanko.

Signing wraps any :class:`signer.keys.SigningKey` (file or PKCS#11 token) in a pyHanko
``Signer`` and appends the signature as an incremental update (ISO 32000-1 §12.8,
``ETSI.CAdES.detached``).  Verification lets pyHanko check what is specific to PDF (the byte
range digest, the CMS signature, and whether anything was changed after signing, ISO
32000-1 §12.8.2.2 / pyHanko's difference analysis), then hands the signer certificate to the
same :class:`signer.verifier.Verifier` as detached claims for the trust decision (chain, key
usage, validity, revocation against the CRL index).  Any later change other than a
long-term-validation update makes the verdict INVALID.

pyHanko is not asked to trust anyone (its validation context has no trust roots), so it logs
a warning with a traceback about the path it could not build on every signature, and more
about odd PDFs.  Everything the verdict needs is in the verdict's reasons; pyHanko's own log
records (``pyhanko`` and ``pyhanko_certvalidator`` loggers, at any level) are therefore
passed on at DEBUG under ``shomei.signer.pades`` instead of reaching the application's
handlers: ``shomei -v`` shows them, nothing else does.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from io import BytesIO
from typing import Any

import pyhanko.sign.general  # noqa: F401 - registers CMS attribute types in asn1crypto first
from asn1crypto import algos
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from shomei.errors import MalformedInput
from signer.credentials import Credentials
from signer.keys import SigningKey
from signer.verdict import Verdict, invalid, undecided
from signer.verifier import Verifier

log = logging.getLogger("shomei.signer.pades")


class _AtDebug(logging.Handler):
    """Hands a pyHanko log record on to :data:`log` at DEBUG, traceback included."""

    def emit(self, record: logging.LogRecord) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s: %s", record.name, record.getMessage(), exc_info=record.exc_info)


def _route_pyhanko_logs() -> None:
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logger = logging.getLogger(name)
        if not any(isinstance(handler, _AtDebug) for handler in logger.handlers):
            logger.addHandler(_AtDebug())
        logger.propagate = False


_route_pyhanko_logs()

PDF_MAGIC = b"%PDF-"
# What pyHanko and asn1crypto raise on hostile or broken input (besides their own errors).
_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError)


def is_pdf(data: bytes) -> bool:
    """Whether ``data`` looks like a PDF (the header may follow up to 1 KB of junk)."""
    return PDF_MAGIC in data[:1024]


class _KeySigner(signers.Signer):
    """A pyHanko signer over a :class:`SigningKey`; the key never leaves its keeper."""

    def __init__(self, key: SigningKey, credentials: Credentials) -> None:
        self._key = key
        cert = ax509.Certificate.load(credentials.certificate.public_bytes(Encoding.DER))
        chain = [ax509.Certificate.load(c.public_bytes(Encoding.DER)) for c in credentials.chain]
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        mechanism = "sha256_rsa" if key.key_type == "rsa" else "sha256_ecdsa"
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs([cert, *chain]),  # type: ignore[no-untyped-call]
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
        )

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if digest_algorithm != "sha256":
            raise MalformedInput(
                f"only SHA-256 is supported, not {digest_algorithm}",
                message_ja="SHA-256 のみ対応しています",
            )
        if dry_run:
            # pyHanko sizes the signature placeholder with this; RSA length = modulus length,
            # a DER ECDSA signature is at most 72 bytes for P-256.
            size = getattr(self._key.public_key, "key_size", 256)
            return bytes((size + 7) // 8 if self._key.key_type == "rsa" else 72 + size // 8)
        return self._key.sign(data)


def sign_pdf(pdf: bytes, *, credentials: Credentials, field_name: str = "Signature1") -> bytes:
    """``pdf`` with a PAdES B-B signature by ``credentials`` appended (incremental update)."""
    try:
        writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    except (PdfError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise MalformedInput("not a readable PDF", message_ja="PDF として読み取れません") from exc
    meta = signers.PdfSignatureMetadata(
        field_name=field_name, subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    signer = _KeySigner(credentials.key, credentials)
    try:
        out = asyncio.run(signers.async_sign_pdf(writer, meta, signer=signer, timestamper=None))
    except (PdfError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise MalformedInput(
            f"the PDF cannot be signed: {exc}", message_ja="PDF に署名できません"
        ) from exc
    return bytes(out.getvalue())


def verify_pdf(pdf: bytes, *, verifier: Verifier) -> Verdict:
    """Verdict on every signature of ``pdf``; VALID only if each one is (and there is one)."""
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        embedded = list(reader.embedded_signatures)
    except (PdfError, *_PARSE_ERRORS):
        return undecided("malformed", "not a readable PDF", "PDF として読み取れません")
    if not embedded:
        return invalid("unsigned", "the PDF carries no signature", "PDF に署名がありません")
    verdicts = [_verify_one(emb, verifier) for emb in embedded]
    for verdict in verdicts:
        if not verdict.ok:
            return verdict
    return verdicts[-1]


def _verify_one(emb: Any, verifier: Verifier) -> Verdict:
    context = ValidationContext(trust_roots=[], revocation_mode="soft-fail", allow_fetching=False)
    try:
        status = asyncio.run(async_validate_pdf_signature(emb, signer_validation_context=context))
    except (PdfError, *_PARSE_ERRORS) as exc:  # pyHanko validation errors are ValueErrors
        log.debug("PDF signature unreadable", exc_info=exc)
        return undecided(
            "malformed",
            "the PDF signature cannot be read: the PDF is damaged, or its signature is not a "
            "PAdES signature",
            "PDF の署名を読み取れません(PDF の破損、または PAdES 以外の署名)",
        )
    if not status.intact:
        return invalid(
            "digest",
            "the PDF was changed inside the signed range (digest differs)",
            "PDF の署名範囲が変更されています(ハッシュ値が異なります)",
        )
    if not status.valid:
        return invalid(
            "signature",
            "the PDF signature does not match the signer's key",
            "PDF の署名が署名者の鍵と一致しません",
        )
    level = status.modification_level
    if level is None:
        # Only when the difference analysis did not run: what came after is unknown.
        return undecided(
            "modified",
            "whether the PDF was modified after it was signed could not be determined",
            "署名後に PDF が変更されたかどうかを判断できません",
        )
    if level not in (ModificationLevel.NONE, ModificationLevel.LTA_UPDATES):
        return invalid(
            "modified",
            f"the PDF was modified after it was signed ({level.name.lower()})",
            "署名後に PDF が変更されています",
        )
    signer_der = emb.signer_cert.dump()
    others = [c.chosen.dump() for c in emb.signed_data["certificates"] if c.name == "certificate"]
    when: dt.datetime | None = status.signer_reported_dt
    if when is not None:
        when = when.astimezone(dt.UTC)
    return verifier.check_signer(signer_der, others, when)


__all__ = ["is_pdf", "sign_pdf", "verify_pdf"]
