"""Two-step, linted issuance of office certificates (RFC 5280 §4.1; RFC 2986 for the CSR).

Step one, :func:`prepare`, needs no CA key: it checks the office's PKCS#10 request (parsable,
self-signature valid, key type allowed by the profile), builds the TBSCertificate from the
profile and the subject the RA decided, signs it with a *throwaway* key of the issuer's key
type (only so that the TBS carries the right ``signature`` AlgorithmIdentifier and pkilint
sees a whole certificate), and lints that certificate.  Any finding of WARNING or worse is a
:class:`Refusal`.  Step two, :func:`sign_prepared`, signs the very TBS bytes that were linted
with the real key (:func:`ca.certasm.certificate_from_tbs`), so what is signed is exactly what
was checked.

:func:`ca.issuebatch.issue_many` runs a batch of these steps on every core.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from ca.certasm import certificate_from_tbs, throwaway_key
from ca.lint import blocking_codes, lint_certificate
from ca.serials import check_serial
from contract.profile import Profile, key_type_name
from shomei.clock import require_aware
from shomei.errors import Refused
from signer.keys import SigningKey

RefusalCode = Literal["bad_csr", "weak_key", "lint", "subject", "profile"]

_OFFICE_NUMBER = re.compile(r"[0-9]{10}")  # ASCII digits only: \d would allow full-width
UB_COMMON_NAME = 64  # RFC 5280 Appendix A.1, ub-common-name


@dataclass(frozen=True)
class IssueRequest:
    """One issue request decided by the RA."""

    request_id: str  # the RA's id, unique in its batch
    csr_der: bytes  # PKCS#10; its subject is ignored: the RA decided the subject
    office_number: str
    office_name: str
    profile: str = "office"


@dataclass(frozen=True)
class Prepared:
    """A linted, clean TBSCertificate waiting for the real signature."""

    request_id: str
    serial: int
    tbs_der: bytes
    not_before: dt.datetime
    not_after: dt.datetime
    subject_text: str  # RFC 4514 string


@dataclass(frozen=True)
class Refusal:
    """Why one request was not issued, in English and Japanese."""

    request_id: str
    code: RefusalCode
    message: str
    message_ja: str


class SerialStore(Protocol):
    """What issuance needs from the CA ledger (:mod:`ca.ledger` implements it)."""

    def reserve_many(self, request_ids: Sequence[str]) -> list[int]:
        """New unique serials, in order, durably recorded BEFORE any real signature."""
        ...

    def record_signed_many(self, certificates: Sequence[x509.Certificate]) -> None:
        """Record certificates signed under reserved serials (each carries its own)."""
        ...

    def record_refused(self, request_id: str, serial: int | None, refusal: Refusal) -> None:
        """Record a refusal (``serial`` is None when none was reserved)."""
        ...


# ---------------------------------------------------------------------------------------
# Step one: prepare


def _refuse(request: IssueRequest, code: RefusalCode, message: str, message_ja: str) -> Refusal:
    return Refusal(request.request_id, code, message, message_ja)


def _check_subject(request: IssueRequest) -> Refusal | None:
    if not isinstance(request.office_number, str) or not _OFFICE_NUMBER.fullmatch(
        request.office_number
    ):
        return _refuse(
            request,
            "subject",
            f"the office number must be 10 digits, not {request.office_number!r}",
            f"事業所番号は半角数字 10 桁でなければなりません({request.office_number!r})",
        )
    name = request.office_name
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        return _refuse(
            request,
            "subject",
            "the office name must not be empty or start or end with spaces",
            "事業所名が空か、前後に空白があります",
        )
    if len(name) > UB_COMMON_NAME:
        return _refuse(
            request,
            "subject",
            f"the office name has {len(name)} characters; the CN allows at most "
            f"{UB_COMMON_NAME} (RFC 5280 Appendix A.1)",
            f"事業所名が {len(name)} 文字あります。CN の上限は {UB_COMMON_NAME} 文字です",
        )
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in name):
        return _refuse(
            request,
            "subject",
            "the office name contains control characters or unpaired surrogates",
            "事業所名に制御文字などの使えない文字が含まれています",
        )
    return None


def _load_csr(request: IssueRequest) -> x509.CertificateSigningRequest | Refusal:
    data = request.csr_der
    if not isinstance(data, bytes | bytearray) or not data:
        return _refuse(request, "bad_csr", "the CSR is empty", "CSR が空です")
    try:
        if bytes(data).lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(bytes(data))
        return x509.load_der_x509_csr(bytes(data))
    except ValueError:
        return _refuse(
            request,
            "bad_csr",
            "the CSR is not a readable PKCS#10 request",
            "CSR(PKCS#10)として読めません",
        )


def _check_key(
    request: IssueRequest, csr: x509.CertificateSigningRequest, profile: Profile
) -> Refusal | None:
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        public_key = None
    kind = key_type_name(public_key)
    if kind is None or not profile.allows(kind):
        described = _describe_key(public_key)
        allowed = ", ".join(profile.key_types)
        return _refuse(
            request,
            "weak_key",
            f"the CSR's key ({described}) is not allowed by profile {profile.name!r} "
            f"(allowed: {allowed})",
            f"CSR の鍵({described})はプロファイル {profile.name!r} で使えません"
            f"(使える鍵: {allowed})",
        )
    return None


def _describe_key(public_key: object) -> str:
    if isinstance(public_key, rsa.RSAPublicKey):
        return f"RSA-{public_key.key_size}, e={public_key.public_numbers().e}"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return f"EC {public_key.curve.name}"
    if public_key is None:
        return "unsupported algorithm"
    return type(public_key).__name__.removeprefix("_").replace("PublicKey", "")


def _check_self_signature(
    request: IssueRequest, csr: x509.CertificateSigningRequest
) -> Refusal | None:
    # RFC 2986 §3: the signature proves the applicant holds the private key.
    try:
        valid = csr.is_signature_valid
    except (ValueError, UnsupportedAlgorithm):
        valid = False
    if not valid:
        return _refuse(
            request,
            "bad_csr",
            "the CSR's self-signature does not verify",
            "CSR の自己署名を検証できません",
        )
    return None


def office_subject(profile: Profile, office_number: str, office_name: str) -> x509.Name:
    """C=JP (PrintableString), O=federation, OU=office number, CN=office name (UTF8String).

    RFC 5280 §4.1.2.6 and Appendix A.1: countryName is a PrintableString; the other
    attributes are DirectoryStrings, for which §4.1.2.4 wants UTF8String.
    """
    # cryptography's defaults are exactly these string types (PrintableString for C,
    # UTF8String for the rest); the tests check the encoding.
    with warnings.catch_warnings():
        # ub-common-name (64) counts characters, as pkilint does; cryptography counts UTF-8
        # bytes, which would cap a Japanese name at 21 kanji.  The character limit is checked
        # by _check_subject and again by pkilint, so cryptography's byte check is relaxed.
        warnings.simplefilter("ignore", UserWarning)
        common_name = x509.NameAttribute(NameOID.COMMON_NAME, office_name, _validate=False)
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, profile.federation),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, office_number),
            common_name,
        ]
    )


def _key_usage(profile: Profile) -> x509.KeyUsage:
    ku = set(profile.extensions.key_usage)
    return x509.KeyUsage(
        digital_signature="digitalSignature" in ku,
        content_commitment="nonRepudiation" in ku,
        key_encipherment="keyEncipherment" in ku,
        data_encipherment="dataEncipherment" in ku,
        key_agreement="keyAgreement" in ku,
        key_cert_sign="keyCertSign" in ku,
        crl_sign="cRLSign" in ku,
        encipher_only="encipherOnly" in ku,
        decipher_only="decipherOnly" in ku,
    )


def _authority_key_id(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    # RFC 5280 §4.2.1.1: the AKI carries the issuer's subject key identifier.
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()  # type: ignore[arg-type]
        )
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def validity_window(
    profile: Profile, issuer: x509.Certificate, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """(notBefore, notAfter): from ``now`` in whole seconds, clipped to the issuer's notAfter.

    Raises :class:`shomei.errors.Refused` when the issuer cannot issue at ``now`` (not yet
    valid, or expired): no request could be issued, so it is not a per-request refusal.
    """
    not_before = require_aware(now, "now").replace(microsecond=0)
    issuer_end = issuer.not_valid_after_utc
    if not issuer.not_valid_before_utc <= not_before < issuer_end:
        raise Refused(
            f"the issuing CA certificate is not valid at {not_before.isoformat()}",
            message_ja="発行者(CA)証明書がこの日時に有効ではありません",
            now=not_before.isoformat(),
        )
    # RFC 5280 §6.1.3: a certificate outliving its issuer fails path validation at the end.
    return not_before, min(not_before + profile.validity, issuer_end)


def _build(
    subject: x509.Name,
    csr: x509.CertificateSigningRequest,
    *,
    profile: Profile,
    issuer: x509.Certificate,
    serial: int,
    window: tuple[dt.datetime, dt.datetime],
) -> x509.Certificate:
    public_key = csr.public_key()
    ext = profile.extensions
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(window[0])
        .not_valid_after(window[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(profile), critical=ext.key_usage_critical)
        .add_extension(
            x509.ExtendedKeyUsage(ext.eku_oids()), critical=ext.extended_key_usage_critical
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key),
            critical=False,
        )
        .add_extension(_authority_key_id(issuer), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [
                    x509.DistributionPoint(
                        full_name=[x509.UniformResourceIdentifier(ext.crl_distribution_point)],
                        relative_name=None,
                        reasons=None,
                        crl_issuer=None,
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        x509.UniformResourceIdentifier(ext.ca_issuers),
                    )
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier(p), None) for p in ext.policies]
            ),
            critical=False,
        )
    )
    return builder.sign(throwaway_key(issuer.public_key()), hashes.SHA256())


def prepare(
    request: IssueRequest,
    *,
    profile: Profile,
    issuer: x509.Certificate,
    serial: int,
    now: dt.datetime,
) -> Prepared | Refusal:
    """Check ``request``, build its TBSCertificate and lint it; no CA key is used.

    Returns :class:`Prepared` or a :class:`Refusal` (``bad_csr``, ``weak_key``, ``subject``,
    ``profile`` or ``lint``).  Raises :class:`shomei.errors.MalformedInput` for a serial that
    RFC 5280 §4.1.2.2 forbids and :class:`shomei.errors.Refused` when the issuer is not valid
    at ``now``: those are faults of the CA, not of the request.
    """
    check_serial(serial)
    window = validity_window(profile, issuer, now)
    refusal = _check_subject(request)
    if refusal is not None:
        return refusal
    loaded = _load_csr(request)
    if isinstance(loaded, Refusal):
        return loaded
    refusal = _check_key(request, loaded, profile) or _check_self_signature(request, loaded)
    if refusal is not None:
        return refusal
    try:
        draft_subject = office_subject(profile, request.office_number, request.office_name)
        draft = _build(
            draft_subject, loaded, profile=profile, issuer=issuer, serial=serial, window=window
        )
    except (ValueError, TypeError) as exc:
        return _refuse(
            request,
            "profile",
            f"profile {profile.name!r} cannot build a certificate: {exc}",
            f"プロファイル {profile.name!r} から証明書を作れません: {exc}",
        )
    codes = blocking_codes(lint_certificate(draft.public_bytes(serialization.Encoding.DER)))
    if codes:
        joined = ", ".join(codes)
        return _refuse(
            request,
            "lint",
            f"the certificate would break RFC 5280 (pkilint: {joined})",
            f"証明書が RFC 5280 に適合しません(pkilint: {joined})",
        )
    return Prepared(
        request_id=request.request_id,
        serial=serial,
        tbs_der=draft.tbs_certificate_bytes,
        not_before=window[0],
        not_after=window[1],
        # From the Name we built: re-parsing the certificate's subject would make
        # cryptography warn about a CN longer than 64 UTF-8 bytes (see office_subject).
        subject_text=draft_subject.rfc4514_string(),
    )


# ---------------------------------------------------------------------------------------
# Step two: sign


def sign_prepared(prepared: Prepared, key: SigningKey) -> x509.Certificate:
    """Sign the linted TBS of ``prepared`` with the real CA key."""
    return certificate_from_tbs(prepared.tbs_der, key)
