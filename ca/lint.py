"""Lint certificates and CRLs against RFC 5280 with pkilint, in-process.

Every certificate and CRL the CA signs is linted first (docs/product.md §2 and §11, "issue in two
steps").  We build the same validator trees as pkilint's own console scripts
``lint_pkix_cert`` and ``lint_crl -p PKIX`` (RFC 5280 §4 for certificates, §5 for CRLs), once
per process, because building them is slow compared to running them.  Findings come back as
plain frozen :class:`Finding` values so callers never touch pkilint's types.

The CA's rule is strict: any finding of severity WARNING or more severe (pkilint's FATAL,
ERROR, WARNING) makes the object unfit to sign; NOTICE and INFO findings are informative.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal, cast

from pkilint import loader, pkix
from pkilint.pkix import certificate, crl, extension, name
from pkilint.validation import ValidationFindingSeverity

from shomei.errors import MalformedInput, VerificationFailed

Severity = Literal["FATAL", "ERROR", "WARNING", "NOTICE", "INFO", "DEBUG"]
# Severities that stop issuance; pkilint orders them most severe first (FATAL = 0).
BLOCKING: frozenset[str] = frozenset({"FATAL", "ERROR", "WARNING"})


@dataclass(frozen=True)
class Finding:
    """One pkilint finding: its severity name, its stable code and an optional message."""

    severity: Severity
    code: str
    message: str

    @property
    def blocking(self) -> bool:
        """True for WARNING and anything more severe."""
        return self.severity in BLOCKING


@functools.cache
def _certificate_validator() -> Any:
    # The same tree as pkilint/bin/lint_pkix_cert.py.
    return certificate.create_pkix_certificate_validator_container(
        certificate.create_decoding_validators(
            name.ATTRIBUTE_TYPE_MAPPINGS, extension.EXTENSION_MAPPINGS
        ),
        [
            certificate.create_issuer_validator_container([]),
            certificate.create_validity_validator_container(),
            certificate.create_subject_validator_container([]),
            certificate.create_extensions_validator_container([]),
            certificate.create_spki_validator_container([]),
        ],
    )


@functools.cache
def _crl_validator() -> Any:
    # The same tree as pkilint/bin/lint_crl.py with "-t CRL -p PKIX".
    return crl.create_pkix_crl_validator_container(
        [
            pkix.create_attribute_decoder(name.ATTRIBUTE_TYPE_MAPPINGS),
            pkix.create_extension_decoder(extension.EXTENSION_MAPPINGS),
        ],
        [
            crl.create_issuer_validator_container([]),
            crl.create_validity_validator_container([]),
            crl.create_extensions_validator_container([]),
        ],
    )


@functools.cache
def _certificate_loader() -> Any:
    return loader.RFC5280CertificateDocumentLoader()


@functools.cache
def _crl_loader() -> Any:
    return loader.RFC5280CertificateListDocumentLoader()


def warm_up() -> None:
    """Build the cached validators and loaders now (before forking workers, for example)."""
    _certificate_validator()
    _crl_validator()
    _certificate_loader()
    _crl_loader()


def _findings(results: Any) -> list[Finding]:
    out: list[Finding] = []
    for result in results:
        for description in result.finding_descriptions:
            severity = cast(Severity, ValidationFindingSeverity(description.finding.severity).name)
            out.append(
                Finding(
                    severity=severity,
                    code=str(description.finding.code),
                    message=str(description.message or ""),
                )
            )
    return out


def _lint(der: bytes, what: str, doc_loader: Any, validator: Any) -> list[Finding]:
    if not isinstance(der, bytes | bytearray) or not der:
        raise MalformedInput(
            f"the {what} to lint must be non-empty DER bytes",
            message_ja=f"検査する{'証明書' if what == 'certificate' else 'CRL'}が空です",
        )
    try:
        document = doc_loader.load_der_document(bytes(der), what)
    except ValueError as exc:
        # pkilint raises ValueError (or its subclass) when the outer structure does not decode.
        raise MalformedInput(
            f"the {what} is not valid DER: {exc}",
            message_ja=f"{'証明書' if what == 'certificate' else 'CRL'}が DER として読めません",
        ) from exc
    return _findings(validator.validate(document.root))


def lint_certificate(der: bytes) -> list[Finding]:
    """Every pkilint RFC 5280 finding on the DER certificate ``der`` (all severities).

    Raises :class:`shomei.errors.MalformedInput` when ``der`` is not a decodable certificate.
    """
    return _lint(der, "certificate", _certificate_loader(), _certificate_validator())


def lint_crl(der: bytes) -> list[Finding]:
    """Every pkilint RFC 5280 finding on the DER CRL ``der`` (all severities).

    Raises :class:`shomei.errors.MalformedInput` when ``der`` is not a decodable CRL.
    """
    return _lint(der, "crl", _crl_loader(), _crl_validator())


def blocking_codes(findings: list[Finding]) -> list[str]:
    """The codes of the findings that stop issuance (WARNING or worse), sorted, no repeats."""
    return sorted({f.code for f in findings if f.blocking})


def require_clean(findings: list[Finding]) -> None:
    """Raise :class:`shomei.errors.VerificationFailed` if any finding is WARNING or worse.

    The error's message lists the codes; its ``findings`` field holds the blocking findings.
    """
    blocking = [f for f in findings if f.blocking]
    if blocking:
        codes = ", ".join(blocking_codes(blocking))
        raise VerificationFailed(
            f"RFC 5280 lint failed: {codes}",
            message_ja=f"RFC 5280 の検査(pkilint)で不適合が見つかりました: {codes}",
            findings=blocking,
        )
