"""Build X.509 v2 CRLs that scale to millions of entries (RFC 5280 §5.1).

The revokedCertificates list is encoded by hand, entry by entry (:func:`encode_entry`), and the
TBSCertList is assembled around the joined entries and signed once with a
:class:`shomei.keys.SigningKey`.  General ASN.1 builders are quadratic or simply slow at a
million entries; this path is a join and one signature, and the CA ledger can store each
entry's encoding once and pass it back through ``encoded_entries`` so that re-issuing a CRL
costs no encoding at all.

What the builder writes, by RFC 5280 section:

* §5.1.2.1 version v2; §5.1.2.2 / §5.1.1.2 the same sha256WithRSAEncryption (with NULL
  parameters, RFC 4055 §5) or ecdsa-with-SHA256 (no parameters, RFC 5758 §3.2)
  AlgorithmIdentifier inside and outside the TBS, chosen by ``key.key_type``;
* §5.1.2.3 the issuer is the issuer certificate's subject, copied byte for byte;
* §5.1.2.4-5 thisUpdate and nextUpdate as UTCTime before 2050, GeneralizedTime after;
* §5.1.2.6 revokedCertificates in the order given, left out entirely when empty;
* §5.2.1 authorityKeyIdentifier (the issuer's subjectKeyIdentifier), §5.2.3 cRLNumber;
* §5.3.1 reasonCode only for a reason other than unspecified (which the RFC says to omit).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from crl import der
from shomei.errors import MalformedInput, Refused
from shomei.keys import SigningKey

SIGNATURE_ALGORITHMS: dict[str, bytes] = {
    # sha256WithRSAEncryption 1.2.840.113549.1.1.11 with NULL parameters (RFC 4055 §5).
    "rsa": bytes.fromhex("300d06092a864886f70d01010b0500"),
    # ecdsa-with-SHA256 1.2.840.10045.4.3.2 with parameters absent (RFC 5758 §3.2).
    "ec": bytes.fromhex("300a06082a8648ce3d040302"),
}

# CRLReason codes of RFC 5280 §5.3.1 (7 is not used).
REASON_CODES: dict[x509.ReasonFlags, int] = {
    x509.ReasonFlags.unspecified: 0,
    x509.ReasonFlags.key_compromise: 1,
    x509.ReasonFlags.ca_compromise: 2,
    x509.ReasonFlags.affiliation_changed: 3,
    x509.ReasonFlags.superseded: 4,
    x509.ReasonFlags.cessation_of_operation: 5,
    x509.ReasonFlags.certificate_hold: 6,
    x509.ReasonFlags.remove_from_crl: 8,
    x509.ReasonFlags.privilege_withdrawn: 9,
    x509.ReasonFlags.aa_compromise: 10,
}
# crlEntryExtensions holding only reasonCode (2.5.29.21), keyed by the enum's value string:
# Enum.__hash__ runs Python code, a plain string key does not, and this runs a million times.
_REASON_EXTENSIONS: dict[str, bytes] = {
    flag.value: bytes.fromhex("300c300a0603551d1504030a01") + bytes((code,))
    for flag, code in REASON_CODES.items()
    if code not in (0, 8)
}
_REASON_EXTENSIONS[x509.ReasonFlags.unspecified.value] = b""

_MAX_SERIAL_OCTETS = 20  # RFC 5280 §4.1.2.2


@dataclass(frozen=True, slots=True)
class RevokedEntry:
    """One revoked certificate: its serial, when it was revoked, and why (optional)."""

    serial: int
    revoked_at: dt.datetime  # tz-aware UTC
    reason: x509.ReasonFlags | None = None  # None or unspecified -> no reasonCode extension


def _bad_entry(what: str, ja: str, **fields: object) -> MalformedInput:
    return MalformedInput(
        f"revoked entry: {what}", message_ja=f"失効エントリが不正です: {ja}", **fields
    )


def _reason_extension(reason: object, serial: object) -> bytes:
    if reason is None:
        return b""
    if type(reason) is not x509.ReasonFlags:
        raise _bad_entry(
            "reason must be an x509.ReasonFlags", "理由コードの型が不正です", serial=serial
        )
    try:
        return _REASON_EXTENSIONS[reason._value_]
    except KeyError:
        # removeFromCRL belongs to delta CRLs only (RFC 5280 §5.3.1), which we do not issue.
        raise _bad_entry(
            "removeFromCRL is only for delta CRLs", "removeFromCRL は使えません", serial=serial
        ) from None


def _serial_bytes(serial: object) -> bytes:
    # type() rather than isinstance(): True is an int, and a serial of True is a bug.
    if type(serial) is not int or serial <= 0:
        raise _bad_entry(
            "serial must be a positive int", "シリアル番号は正の整数です", serial=serial
        )
    content = serial.to_bytes((serial.bit_length() + 8) >> 3, "big")
    if len(content) > _MAX_SERIAL_OCTETS:
        raise _bad_entry(
            "serial longer than 20 octets (RFC 5280 §4.1.2.2)",
            "シリアル番号が 20 オクテットを超えています",
            serial=serial,
        )
    return content


def encode_entry(entry: RevokedEntry) -> bytes:
    """The DER of one revokedCertificates element (RFC 5280 §5.1.2.6)."""
    if not isinstance(entry, RevokedEntry):
        raise _bad_entry("not a RevokedEntry", "RevokedEntry ではありません")
    serial = _serial_bytes(entry.serial)
    if not isinstance(entry.revoked_at, dt.datetime):
        raise _bad_entry(
            "revoked_at must be a datetime", "失効日時の型が不正です", serial=entry.serial
        )
    body = (
        b"\x02"
        + bytes((len(serial),))
        + serial
        + der.encode_time(entry.revoked_at)
        + _reason_extension(entry.reason, entry.serial)
    )
    return der.tlv(der.TAG_SEQUENCE, body)


# The same reasonCode encodings keyed by the members' identity: id() and an int hash are the
# cheapest lookup there is, and anything that is not a ReasonFlags member simply misses.
_REASON_BY_ID: dict[int, bytes] = {
    id(flag): _REASON_EXTENSIONS[flag.value]
    for flag in REASON_CODES
    if flag.value in _REASON_EXTENSIONS
}
_REASON_BY_ID[id(None)] = b""


def _encode_entries(entries: Iterable[RevokedEntry]) -> list[bytes]:
    """:func:`encode_entry` for many entries, with the per-entry work cut to the bone.

    The checks are the same as :func:`encode_entry`'s (anything unusual is handed to it, and
    it raises the precise error); what differs is that a revocation time equal to the previous
    entry's (a batch revoked together) is not formatted again, and that the common case, an
    entry shorter than 128 octets, is a single bytes formatting operation.
    """
    out: list[bytes] = []
    append = out.append
    encode_time = der.encode_time
    reasons = _REASON_BY_ID
    entry_type = RevokedEntry
    datetime_type = dt.datetime
    limit = 1 << 159  # 20 octets with the sign bit clear
    last_when: object = None
    stamp = b""
    for entry in entries:
        serial = entry.serial if type(entry) is entry_type else None
        if type(serial) is not int or not 0 < serial < limit:
            append(encode_entry(entry))  # raises the precise error (or encodes a subclass)
            continue
        when = entry.revoked_at
        if when != last_when:  # equal to the last one: a batch revoked together
            if type(when) is not datetime_type:
                append(encode_entry(entry))
                continue
            stamp = encode_time(when)
            last_when = when
        ext = reasons.get(id(entry.reason))
        if ext is None:
            append(encode_entry(entry))
            continue
        size = (serial.bit_length() + 8) >> 3
        length = 2 + size + len(stamp) + len(ext)
        if length < 0x80:
            append(b"\x30%c\x02%c%b%b%b" % (length, size, serial.to_bytes(size, "big"), stamp, ext))
        else:
            append(encode_entry(entry))
    return out


def subject_der(cert: x509.Certificate) -> bytes:
    """The subject Name of ``cert`` exactly as encoded in it (RFC 5280 §4.1.2.6)."""
    tbs = cert.tbs_certificate_bytes
    start, end = der.expect(tbs, 0, len(tbs), der.TAG_SEQUENCE, "TBSCertificate")
    pos = start
    tag, _, stop = der.read_header(tbs, pos, end)
    if tag == der.TAG_CONTEXT_0:  # [0] version
        pos = stop
    # serialNumber, signature, issuer, validity, then the subject.
    for _ in range(4):
        pos = der.read_header(tbs, pos, end)[2]
    stop = der.expect(tbs, pos, end, der.TAG_SEQUENCE, "subject")[1]
    return tbs[pos:stop]


def subject_key_identifier(cert: x509.Certificate) -> bytes | None:
    """The issuer certificate's subjectKeyIdentifier (RFC 5280 §4.2.1.2), if it has one."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    except x509.ExtensionNotFound:
        return None
    return ext.value.key_identifier


def may_sign_crls(cert: x509.Certificate) -> bool:
    """True unless the certificate has a keyUsage without cRLSign (RFC 5280 §4.2.1.3)."""
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.crl_sign


def _crl_extensions(ski: bytes, number: int) -> bytes:
    aki = der.sequence(
        der.encode_oid("2.5.29.35"),
        der.tlv(der.TAG_OCTET_STRING, der.sequence(der.tlv(0x80, ski))),
    )
    crl_number = der.sequence(
        der.encode_oid("2.5.29.20"), der.tlv(der.TAG_OCTET_STRING, der.encode_integer(number))
    )
    return der.tlv(der.TAG_CONTEXT_0, der.sequence(aki, crl_number))


def _check_issuer(issuer: x509.Certificate, key: SigningKey) -> bytes:
    """Refuse an issuer/key pair that could not make a valid CRL; return the issuer's SKI."""
    if not isinstance(issuer, x509.Certificate):
        raise MalformedInput(
            "issuer must be an x509.Certificate", message_ja="発行者は証明書で指定してください"
        )
    if key.key_type not in SIGNATURE_ALGORITHMS:
        raise MalformedInput(
            f"unsupported key type {key.key_type!r}", message_ja="対応していない鍵の種類です"
        )
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key.public_bytes(*spki) != issuer.public_key().public_bytes(*spki):
        raise Refused(
            "the signing key does not belong to the issuer certificate",
            message_ja="署名鍵が発行者証明書の鍵と一致しません",
        )
    if not may_sign_crls(issuer):
        raise Refused(
            "the issuer certificate's keyUsage does not allow cRLSign",
            message_ja="発行者証明書の keyUsage が CRL 署名 (cRLSign) を許していません",
        )
    ski = subject_key_identifier(issuer)
    if ski is None:
        raise MalformedInput(
            "the issuer certificate has no subjectKeyIdentifier for the CRL's AKI",
            message_ja="発行者証明書に subjectKeyIdentifier がありません",
        )
    return ski


def build_crl(
    *,
    issuer: x509.Certificate,
    key: SigningKey,
    number: int,
    this_update: dt.datetime,
    next_update: dt.datetime,
    entries: Iterable[RevokedEntry] = (),
    encoded_entries: Iterable[bytes] = (),
) -> bytes:
    """The DER of a signed v2 CRL (RFC 5280 §5.1) listing ``entries`` then ``encoded_entries``.

    ``encoded_entries`` are trusted to be :func:`encode_entry` output (the CA ledger stores
    them); they are not decoded again, which is what makes re-issuing a large CRL cheap.
    Raises :class:`MalformedInput` for bad entries or times, :class:`Refused` for an issuer
    that may not sign CRLs or a key that is not the issuer's.
    """
    ski = _check_issuer(issuer, key)
    if type(number) is not int or number < 0 or number.bit_length() > 159:
        raise MalformedInput(
            "cRLNumber must be a non-negative int of at most 20 octets (RFC 5280 §5.2.3)",
            message_ja="CRL 番号は 20 オクテット以下の 0 以上の整数です",
            number=number,
        )
    for name, value in (("this_update", this_update), ("next_update", next_update)):
        if not isinstance(value, dt.datetime):
            raise MalformedInput(f"{name} must be a datetime", message_ja="日時の型が不正です")
    this_der = der.encode_time(this_update)
    next_der = der.encode_time(next_update)
    if next_update.replace(microsecond=0) <= this_update.replace(microsecond=0):
        raise MalformedInput(
            "next_update must be later than this_update",
            message_ja="次回更新日時は今回更新日時より後でなければなりません",
            this_update=this_update,
            next_update=next_update,
        )
    parts = _encode_entries(entries)
    try:
        if parts:
            parts.extend(encoded_entries)
            revoked = b"".join(parts)
        else:
            revoked = b"".join(encoded_entries)  # the ledger's path: no list copy at all
    except TypeError as exc:
        raise MalformedInput(
            "encoded_entries must be bytes from encode_entry()",
            message_ja="encoded_entries には encode_entry() の結果を渡してください",
        ) from exc
    del parts
    algorithm = SIGNATURE_ALGORITHMS[key.key_type]
    head = b"\x02\x01\x01" + algorithm + subject_der(issuer) + this_der + next_der
    if revoked:
        revoked_header = b"\x30" + der.encode_length(len(revoked))
    else:
        revoked_header = b""  # §5.1.2.6: absent, never an empty SEQUENCE
    tail = _crl_extensions(ski, number)
    body_length = len(head) + len(revoked_header) + len(revoked) + len(tail)
    tbs = b"".join((b"\x30", der.encode_length(body_length), head, revoked_header, revoked, tail))
    del revoked
    signature = key.sign(tbs)
    bit_string = der.tlv(der.TAG_BIT_STRING, b"\x00" + signature)
    outer_length = len(tbs) + len(algorithm) + len(bit_string)
    return b"".join((b"\x30", der.encode_length(outer_length), tbs, algorithm, bit_string))
