"""Load and check a CRL (RFC 5280 §5 and §6.3), fast enough for a million entries.

:func:`load_crl` accepts DER or PEM and checks, in this order: the DER structure of the
CertificateList (§5.1; nothing before or after it), that it comes from the expected issuer
(issuer name §5.1.2.3, authorityKeyIdentifier §5.2.1), its signature (§5.1.1.3) with the
issuer's public key, that the issuer may sign CRLs (keyUsage cRLSign, §4.2.1.3), the CRL
extensions (§5.2: an unknown critical one makes the CRL unusable; delta §5.2.4 and indirect
§5.2.5 CRLs are refused), every entry (§5.1.2.6, §5.3), and last, when ``now`` is given, that
the CRL is current (§6.3.3: thisUpdate <= now < nextUpdate).  The scope that an
issuingDistributionPoint gives the CRL is kept as :attr:`LoadedCrl.scope` (:mod:`crl.scope`):
a caller deciding about one certificate asks it whether the CRL covers that certificate.
:func:`check_usable` refuses a delta or indirect CRL without its issuer certificate at hand.

Speed comes from doing the expensive parts once and by hand: the signature is verified over
the TBSCertList byte slice (one hash, one public-key operation), the top-level fields are read
with the small DER reader of :mod:`crl.der`, and the revoked entries are walked once into a
:class:`RevocationIndex` (see :mod:`crl.index`).  No general ASN.1 object is built per entry.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
from dataclasses import dataclass, field

from asn1crypto import crl as acrl
from asn1crypto import x509 as ax509
from cryptography import x509

from crl import der
from crl.builder import SIGNATURE_ALGORITHMS, may_sign_crls, subject_der, subject_key_identifier
from crl.index import Revocation, RevocationIndex, parse_extensions, walk_entries
from crl.scope import Scope, parse_idp
from shomei.errors import MalformedInput, Refused, Undecided, VerificationFailed
from shomei.keys import key_type_of, verify_signature

__all__ = [
    "CrlNotCurrent",
    "LoadedCrl",
    "Revocation",
    "RevocationIndex",
    "Scope",
    "check_usable",
    "load_crl",
]

OID_AUTHORITY_KEY_ID = "2.5.29.35"
OID_CRL_NUMBER = "2.5.29.20"
OID_DELTA_CRL_INDICATOR = "2.5.29.27"
OID_ISSUING_DISTRIBUTION_POINT = "2.5.29.28"
# Extensions a complete CRL may carry that say nothing about which certificates are revoked.
IGNORABLE_CRL_EXTENSIONS = {
    "2.5.29.18",  # issuerAltName (§5.2.2)
    "2.5.29.46",  # freshestCRL (§5.2.6)
    "1.3.6.1.5.5.7.1.1",  # authorityInfoAccess (§5.2.7)
}

_PEM_BEGIN = b"-----BEGIN X509 CRL-----"
_PEM_END = b"-----END X509 CRL-----"


class CrlNotCurrent(Undecided):
    """The CRL is genuine but not current at the time asked about (RFC 5280 §6.3.3).

    Revocation status is then unknown, never "good"; ``fields`` carry ``this_update``,
    ``next_update`` (None when the CRL has none) and ``at``.
    """

    code = "crl_not_current"


@dataclass(frozen=True)
class LoadedCrl:
    """A signature-checked CRL of one issuer, with its revocation index."""

    issuer: x509.Name
    number: int | None
    this_update: dt.datetime
    next_update: dt.datetime | None
    sha256: bytes  # of the DER
    index: RevocationIndex = field(repr=False)
    scope: Scope = field(default_factory=Scope)  # its issuingDistributionPoint (§5.2.5)

    def is_current(self, at: dt.datetime) -> bool:
        """RFC 5280 §6.3.3: ``this_update <= at < next_update``; never without a nextUpdate."""
        return self.next_update is not None and self.this_update <= at < self.next_update


def _to_der(data: object) -> bytes:
    """The DER of ``data``, which is DER or a PEM "X509 CRL" block (RFC 7468 §5)."""
    if isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise MalformedInput(
            "a CRL must be given as bytes", message_ja="CRL はバイト列で渡してください"
        )
    if data[:1] == b"\x30":
        return data
    text = data.strip()
    if not text.startswith(_PEM_BEGIN):
        raise der.malformed("neither DER nor PEM", "DER でも PEM でもありません")
    stop = text.find(_PEM_END)
    if stop < 0 or text[stop + len(_PEM_END) :].strip():
        raise der.malformed("PEM without a single END line", "PEM の END 行が不正です")
    # translate() strips the line breaks in one pass, without splitting a 60 MB text into lines.
    body = text[len(_PEM_BEGIN) : stop].translate(None, b" \t\r\n")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise der.malformed("PEM body is not base64", "PEM の本文が base64 ではありません") from exc


@dataclass
class _Parts:
    """Where the pieces of a CertificateList are (offsets into the DER)."""

    tbs: tuple[int, int] = (0, 0)
    algorithm: bytes = b""
    signature: bytes = b""
    version: int = 1
    issuer: bytes = b""
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    revoked: tuple[int, int] = (0, 0)
    extensions: list[tuple[str, bool, bytes]] = field(default_factory=list)


def _split(data: bytes) -> _Parts:
    """Read the CertificateList's top level (RFC 5280 §5.1) without touching the entries."""
    parts = _Parts()
    end = len(data)
    c_start, c_end = der.expect(data, 0, end, der.TAG_SEQUENCE, "CertificateList")
    if c_end != end:
        raise der.malformed("bytes after the CRL", "CRL の後に余分なデータがあります")
    t_start, t_end = der.expect(data, c_start, c_end, der.TAG_SEQUENCE, "TBSCertList")
    parts.tbs = (c_start, t_end)
    _a_start, a_end = der.expect(data, t_end, c_end, der.TAG_SEQUENCE, "signatureAlgorithm")
    parts.algorithm = data[t_end:a_end]
    b_start, b_end = der.expect(data, a_end, c_end, der.TAG_BIT_STRING, "signatureValue")
    if b_end != c_end or b_start == b_end or data[b_start] != 0:
        raise der.malformed("bad signatureValue", "署名値の形式が不正です")
    parts.signature = data[b_start + 1 : b_end]

    pos = t_start
    tag, v_start, v_end = der.read_header(data, pos, t_end)
    if tag == der.TAG_INTEGER:
        version = der.decode_integer(data[v_start:v_end])
        if version != 1:
            raise der.malformed(
                f"unsupported CRL version {version + 1}", "対応していない CRL のバージョンです"
            )
        parts.version = 2
        pos = v_end
    _s_start, s_end = der.expect(data, pos, t_end, der.TAG_SEQUENCE, "signature")
    if data[pos:s_end] != parts.algorithm:
        # §5.1.1.2: the outer and inner AlgorithmIdentifier must be the same.
        raise der.malformed(
            "inner and outer signature algorithms differ", "署名アルゴリズムが不一致です"
        )
    _i_start, i_end = der.expect(data, s_end, t_end, der.TAG_SEQUENCE, "issuer")
    parts.issuer = data[s_end:i_end]
    tag, v_start, v_end = der.read_header(data, i_end, t_end)
    parts.this_update = der.decode_time(tag, data[v_start:v_end])
    pos = v_end
    if pos < t_end and data[pos] in (der.TAG_UTC_TIME, der.TAG_GENERALIZED_TIME):
        tag, v_start, v_end = der.read_header(data, pos, t_end)
        parts.next_update = der.decode_time(tag, data[v_start:v_end])
        pos = v_end
    if pos < t_end and data[pos] == der.TAG_SEQUENCE:
        parts.revoked = der.expect(data, pos, t_end, der.TAG_SEQUENCE, "revokedCertificates")
        pos = parts.revoked[1]
    if pos < t_end:
        e_start, e_end = der.expect(data, pos, t_end, der.TAG_CONTEXT_0, "crlExtensions")
        if parts.version != 2:
            raise der.malformed("extensions in a v1 CRL", "v1 の CRL に拡張があります")
        parts.extensions = parse_extensions(data, e_start, e_end)
        pos = e_end
    if pos != t_end:
        raise der.malformed(
            "unexpected data in TBSCertList", "TBSCertList に余分なデータがあります"
        )
    return parts


def _another_issuer(why: str) -> VerificationFailed:
    return VerificationFailed(
        f"CRL from another issuer: {why}",
        message_ja="別の発行者の CRL です",
        reason=why,
    )


def _check_issuer(parts: _Parts, issuer: x509.Certificate) -> None:
    expected = subject_der(issuer)
    if parts.issuer != expected:
        # Names that differ in bytes may still match under RFC 5280 §7.1 (case, spaces).
        try:
            same = ax509.Name.load(parts.issuer) == ax509.Name.load(expected)
        except ValueError:
            same = False
        if not same:
            raise _another_issuer("issuer name does not match the issuer certificate's subject")
    ski = subject_key_identifier(issuer)
    for oid, _critical, value in parts.extensions:
        if oid == OID_AUTHORITY_KEY_ID and ski is not None:
            try:
                key_id = acrl.AuthorityKeyIdentifier.load(value)["key_identifier"].native
            except ValueError as exc:
                raise der.malformed("bad authorityKeyIdentifier", "AKI の形式が不正です") from exc
            if key_id is not None and key_id != ski:
                raise _another_issuer("authorityKeyIdentifier does not match the issuer's key")


def _check_signature(data: bytes, parts: _Parts, issuer: x509.Certificate) -> None:
    public_key = issuer.public_key()
    key_type = key_type_of(public_key)
    if parts.algorithm != SIGNATURE_ALGORITHMS[key_type]:
        raise VerificationFailed(
            f"CRL signature algorithm is not SHA-256 with the issuer's {key_type} key",
            message_ja="CRL の署名アルゴリズムが発行者の鍵に合いません",
        )
    start, stop = parts.tbs
    try:
        # A memoryview slice: copying a 40 MB TBS would cost as much as hashing it.
        tbs = memoryview(data)[start:stop]
        verify_signature(public_key, parts.signature, tbs)  # type: ignore[arg-type]
    except VerificationFailed as exc:
        raise VerificationFailed(
            "CRL signature is not valid for the issuer's key",
            message_ja="CRL の署名が発行者の鍵で検証できません",
        ) from exc
    if not may_sign_crls(issuer):
        raise VerificationFailed(
            "the issuer certificate's keyUsage does not allow cRLSign",
            message_ja="発行者証明書の keyUsage が CRL 署名 (cRLSign) を許していません",
        )


def _check_extensions(parts: _Parts) -> tuple[int | None, Scope]:
    """Check the CRL extensions (RFC 5280 §5.2); return the cRLNumber and the scope."""
    number: int | None = None
    scope = Scope()
    for oid, critical, value in parts.extensions:
        if oid == OID_CRL_NUMBER:
            v_start, v_end = der.expect(value, 0, len(value), der.TAG_INTEGER, "cRLNumber")
            number = der.decode_integer(value[v_start:v_end])
            if v_end != len(value) or number < 0:
                raise der.malformed("bad cRLNumber", "CRL 番号が不正です")
        elif oid == OID_DELTA_CRL_INDICATOR:
            raise _delta(value)
        elif oid == OID_ISSUING_DISTRIBUTION_POINT:
            scope = parse_idp(value, parts.issuer)
            if scope.indirect:
                raise Refused(
                    "indirect CRLs are not supported", message_ja="間接 CRL には対応していません"
                )
        elif oid == OID_AUTHORITY_KEY_ID or oid in IGNORABLE_CRL_EXTENSIONS:
            continue
        elif critical:
            raise der.malformed(
                f"unknown critical CRL extension {oid} (RFC 5280 §5.2)",
                "未知の重要 (critical) な CRL 拡張があります",
                oid=oid,
            )
    return number, scope


def _delta(value: bytes) -> Refused:
    """The refusal of a delta CRL (§5.2.4), naming the base CRL it completes."""
    try:
        v_start, v_end = der.expect(value, 0, len(value), der.TAG_INTEGER, "BaseCRLNumber")
        base = f" on base CRL number {der.decode_integer(value[v_start:v_end])}"
    except MalformedInput:
        base = ""
    return Refused(
        f"this is a delta CRL{base}; delta CRLs are not supported: give the complete CRL "
        "of the issuer instead",
        message_ja="差分 CRL には対応していません。発行者の完全な CRL を指定してください",
    )


def check_usable(data: bytes) -> None:
    """Refuse a CRL that no certificate can be checked with here, before its issuer is known.

    Reads the top level only (no signature check, no entries): a delta CRL (§5.2.4) or an
    indirect CRL (§5.2.5) is :class:`Refused`, broken DER :class:`MalformedInput`.  A CRL that
    passes may still be refused by :func:`load_crl` for anything else.
    """
    try:
        parts = _split(_to_der(data))
    except IndexError as exc:
        raise der.malformed("truncated CRL", "CRL が途中で切れています") from exc
    for oid, _critical, value in parts.extensions:
        if oid == OID_DELTA_CRL_INDICATOR:
            raise _delta(value)
        if oid == OID_ISSUING_DISTRIBUTION_POINT and parse_idp(value, parts.issuer).indirect:
            raise Refused(
                "this is an indirect CRL; indirect CRLs are not supported",
                message_ja="間接 CRL には対応していません",
            )


def load_crl(
    data: bytes,
    *,
    issuer: x509.Certificate,
    now: dt.datetime | None = None,
    any_scope: bool = False,
) -> LoadedCrl:
    """Parse and check a CRL of ``issuer``; see the module docstring for what is checked.

    Raises :class:`MalformedInput` (cannot be parsed, or must not be used), :class:`Refused`
    (delta or indirect CRL), :class:`VerificationFailed` (another issuer, bad signature, issuer
    may not sign CRLs) and :class:`CrlNotCurrent` (genuine but not current at ``now``).

    A CRL limited to some revocation reasons or to CA or attribute certificates is
    :class:`Refused` too, unless ``any_scope`` is set: a caller that sets it promises to ask
    :meth:`crl.scope.Scope.coverage` about every certificate it checks with the CRL.
    """
    if now is not None and (not isinstance(now, dt.datetime) or now.utcoffset() is None):
        raise MalformedInput(
            "now must be a timezone-aware datetime",
            message_ja="now には UTC の日時を渡してください",
        )
    if not isinstance(issuer, x509.Certificate):
        raise MalformedInput(
            "issuer must be an x509.Certificate", message_ja="発行者は証明書で指定してください"
        )
    der_bytes = _to_der(data)
    try:
        parts = _split(der_bytes)
    except IndexError as exc:  # a length that points past the end, caught by a raw read
        raise der.malformed("truncated CRL", "CRL が途中で切れています") from exc
    _check_issuer(parts, issuer)
    _check_signature(der_bytes, parts, issuer)
    number, scope = _check_extensions(parts)
    if not any_scope and (
        scope.reasons is not None or scope.only_ca_certs or scope.only_attribute_certs
    ):
        raise Refused(
            "CRLs limited to some reasons or to CA/attribute certificates are not supported",
            message_ja="理由や証明書の種類を限定した CRL には対応していません",
        )
    start, stop = parts.revoked
    try:
        keys, runs = walk_entries(der_bytes, start, stop)
    except IndexError as exc:
        raise der.malformed("truncated revoked entry", "失効エントリが途中で切れています") from exc
    assert parts.this_update is not None  # _split always sets it or raises
    loaded = LoadedCrl(
        issuer=issuer.subject,
        number=number,
        this_update=parts.this_update,
        next_update=parts.next_update,
        sha256=hashlib.sha256(der_bytes).digest(),
        index=RevocationIndex(der_bytes, keys, runs),
        scope=scope,
    )
    if now is not None and not loaded.is_current(now):
        raise CrlNotCurrent(
            "the CRL is not current: "
            + (
                "it has no nextUpdate"
                if loaded.next_update is None
                else "outside thisUpdate..nextUpdate"
            ),
            message_ja="CRL が有効期間外です (失効状態を判断できません)",
            this_update=loaded.this_update,
            next_update=loaded.next_update,
            at=now,
        )
    return loaded
