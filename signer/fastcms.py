"""A fast check of the common shape of a detached CMS SignedData (RFC 5652 §5), for volume.

Month-end reception verifies hundreds of thousands of claims, and a generic parse with
asn1crypto (``signer.cms.verify``) costs far more per file than the RSA verification itself
(measured: several hundred microseconds against ~20 µs).  This module walks the DER of the one
shape our signer and ``openssl cms -sign -binary`` produce, slicing bytes instead of building
objects: one SignerInfo identified by issuer and serial number (§5.3), SHA-256, signed
attributes with content-type ``id-data`` and message-digest (§11.1-11.2), optionally
signing-time (§11.3) and signing-certificate-v2 (RFC 5035 §5.4.1), and an RSA PKCS#1 v1.5 or
ECDSA signature over the DER SET OF the signed attributes (§5.4).

Anything else (BER indefinite lengths, several signers, other algorithms, attached content,
an unusual encoding) raises :class:`NotFast`, and the caller falls back to the generic
``signer.cms.verify``, which gives the careful error messages.  Because DER is canonical,
byte comparisons here (signer identifier against the certificate's issuer and serial) are
exact; a non-canonical encoding just takes the slow path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.utils import CryptographyDeprecationWarning

from shomei.errors import VerificationFailed

# DER encodings of the object identifiers this shape uses (tag, length and value).
OID_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
OID_DATA = bytes.fromhex("06092a864886f70d010701")
OID_SHA256 = bytes.fromhex("0609608648016503040201")
OID_RSA = bytes.fromhex("06092a864886f70d010101")
OID_SHA256_RSA = bytes.fromhex("06092a864886f70d01010b")
OID_ECDSA_SHA256 = bytes.fromhex("06082a8648ce3d040302")
OID_CONTENT_TYPE = bytes.fromhex("06092a864886f70d010903")
OID_MESSAGE_DIGEST = bytes.fromhex("06092a864886f70d010904")
OID_SIGNING_TIME = bytes.fromhex("06092a864886f70d010905")
OID_SIGNING_CERT_V2 = bytes.fromhex("060b2a864886f70d010910022f")
OID_SIGNING_CERT_V1 = bytes.fromhex("060b2a864886f70d010910020c")
NULL = b"\x05\x00"
# What parsing a hostile certificate can raise (InvalidVersion is not a ValueError).
CERT_ERRORS = (
    ValueError,
    IndexError,
    x509.InvalidVersion,
    UnsupportedAlgorithm,
    CryptographyDeprecationWarning,
)


class NotFast(Exception):  # a control-flow signal; never leaves the package
    """The input is not the common shape; take the generic path (signer.cms.verify)."""


@dataclass(frozen=True)
class CertInfo:
    """What the fast path needs of a certificate, computed once per certificate."""

    der: bytes
    certificate: x509.Certificate
    public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | None
    sid: bytes  # DER of issuer Name followed by serialNumber INTEGER (RFC 5652 §10.2.4)
    sha256: bytes


@dataclass(frozen=True)
class FastResult:
    """What a successful :func:`check` established: the signer and when it says it signed."""

    signer: CertInfo
    certificates: tuple[bytes, ...]
    signing_time: dt.datetime | None


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, start of value, end of value) of the DER element at ``pos``."""
    if pos + 2 > end:
        raise NotFast
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise NotFast  # high tag numbers never occur in this shape
    first = buf[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + n > end:
            raise NotFast  # indefinite length (BER) or absurd
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    if pos + length > end:
        raise NotFast
    return tag, pos, pos + length


def _children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, value start, value end) of each element in ``buf[start:end]``."""
    out = []
    pos = start
    while pos < end:
        tag, vs, ve = _tlv(buf, pos, end)
        out.append((tag, pos, vs, ve))
        pos = ve
    return out


def cert_info(der: bytes) -> CertInfo:
    """Parse a certificate once; raises one of :data:`CERT_ERRORS` when it is unreadable."""
    with warnings.catch_warnings():
        # A certificate cryptography only warns about (a non-positive serial) is not our shape.
        warnings.simplefilter("error", CryptographyDeprecationWarning)
        cert = x509.load_der_x509_certificate(der)
    _, ts, te = _tlv(der, 0, len(der))
    tbs = _children(der, ts, te)[0]
    fields = _children(der, tbs[2], tbs[3])
    i = 1 if fields[0][0] == 0xA0 else 0  # optional [0] EXPLICIT version
    serial, issuer = fields[i], fields[i + 2]
    sid = der[issuer[1] : issuer[3]] + der[serial[1] : serial[3]]
    key = cert.public_key()
    public_key = key if isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey) else None
    return CertInfo(der, cert, public_key, sid, hashlib.sha256(der).digest())


def _time(buf: bytes, tag: int, vs: int, ve: int) -> dt.datetime:
    text = buf[vs:ve]
    try:
        if tag == 0x17 and len(text) == 13 and text.endswith(b"Z"):
            year = int(text[0:2])
            year += 1900 if year >= 50 else 2000  # RFC 5280 §4.1.2.5.1
            rest = text[2:12]
        elif tag == 0x18 and len(text) == 15 and text.endswith(b"Z"):
            year = int(text[0:4])
            rest = text[4:14]
        else:
            raise NotFast
        month, day, hour, minute, second = (int(rest[k : k + 2]) for k in range(0, 10, 2))
        return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)
    except ValueError as exc:
        raise NotFast from exc


def check(cms_der: bytes, digest: bytes, certs: dict[bytes, CertInfo]) -> FastResult:
    """Check a detached SignedData against the SHA-256 ``digest`` of the claim.

    ``certs`` caches :class:`CertInfo` by certificate DER across calls.  Raises
    :class:`VerificationFailed` when the claim or the signature does not match, and
    :class:`NotFast` when the input is not the common shape (or not parseable at all).
    """
    buf = cms_der
    end = len(buf)
    tag, vs, ve = _tlv(buf, 0, end)
    if tag != 0x30 or ve != end:
        raise NotFast
    ci = _children(buf, vs, ve)
    if len(ci) != 2 or buf[ci[0][1] : ci[0][3]] != OID_SIGNED_DATA or ci[1][0] != 0xA0:
        raise NotFast
    tag, vs, ve = _tlv(buf, ci[1][2], ci[1][3])
    if tag != 0x30 or ve != ci[1][3]:
        raise NotFast
    sd = _children(buf, vs, ve)
    if len(sd) < 4 or sd[0][0] != 0x02 or sd[1][0] != 0x31:
        raise NotFast
    encap = _children(buf, sd[2][2], sd[2][3])
    if len(encap) != 1 or buf[encap[0][1] : encap[0][3]] != OID_DATA:
        raise NotFast  # attached content or another content type: generic path
    cert_ders: list[bytes] = []
    idx = 3
    if sd[idx][0] == 0xA0:
        for ctag, cs, _, cend in _children(buf, sd[idx][2], sd[idx][3]):
            if ctag == 0x30:
                cert_ders.append(buf[cs:cend])
        idx += 1
    if sd[idx][0] == 0xA1:
        idx += 1  # CRLs carried in the SignedData are not trusted for anything here
    if idx != len(sd) - 1 or sd[idx][0] != 0x31:
        raise NotFast
    infos = _children(buf, sd[idx][2], sd[idx][3])
    if len(infos) != 1 or infos[0][0] != 0x30:
        raise NotFast
    si = _children(buf, infos[0][2], infos[0][3])
    if len(si) < 5 or buf[si[0][1] : si[0][3]] != b"\x02\x01\x01" or si[1][0] != 0x30:
        raise NotFast  # only version 1 with issuerAndSerialNumber
    sid = buf[si[1][2] : si[1][3]]
    if _alg(buf, si[2]) != (OID_SHA256, True) or si[3][0] != 0xA0:
        raise NotFast
    sig_oid, _ = _alg(buf, si[4])
    if len(si) < 6 or si[5][0] != 0x04 or (len(si) == 7 and si[6][0] != 0xA1) or len(si) > 7:
        raise NotFast
    signature = buf[si[5][2] : si[5][3]]
    attrs_start, attrs_end = si[3][1], si[3][3]
    signed_attrs = b"\x31" + buf[attrs_start + 1 : attrs_end]  # RFC 5652 §5.4

    seen: dict[bytes, tuple[int, int, int]] = {}
    for atag, _, avs, ave in _children(buf, si[3][2], si[3][3]):
        parts = _children(buf, avs, ave)
        if atag != 0x30 or len(parts) != 2 or parts[0][0] != 0x06 or parts[1][0] != 0x31:
            raise NotFast
        oid = buf[parts[0][1] : parts[0][3]]
        values = _children(buf, parts[1][2], parts[1][3])
        if oid in seen or len(values) != 1:
            raise NotFast  # repeated attribute or value: let the generic path say so
        seen[oid] = (values[0][0], values[0][2], values[0][3])
    if OID_CONTENT_TYPE not in seen or OID_MESSAGE_DIGEST not in seen:
        raise NotFast
    if OID_SIGNING_CERT_V1 in seen:
        raise NotFast
    ct = seen[OID_CONTENT_TYPE]
    if ct[0] != 0x06 or b"\x06" + bytes([ct[2] - ct[1]]) + buf[ct[1] : ct[2]] != OID_DATA:
        raise NotFast
    md = seen[OID_MESSAGE_DIGEST]
    if md[0] != 0x04:
        raise NotFast
    if buf[md[1] : md[2]] != digest:
        raise VerificationFailed(
            "the file does not match its signature (digest differs)",
            message_ja="ファイルが署名と一致しません(ハッシュ値が異なります)",
            reason="digest",
        )
    signing_time = None
    if OID_SIGNING_TIME in seen:
        signing_time = _time(buf, *seen[OID_SIGNING_TIME])

    signer = None
    for der in cert_ders:
        info = certs.get(der)
        if info is None:
            try:
                info = cert_info(der)
            except CERT_ERRORS as exc:
                raise NotFast from exc
            if len(certs) > 100_000:
                certs.clear()  # bound memory on a long-running server
            certs[der] = info
        if info.sid == sid:
            signer = info
            break
    if signer is None or signer.public_key is None:
        raise NotFast

    if OID_SIGNING_CERT_V2 in seen:
        _check_ess(buf, seen[OID_SIGNING_CERT_V2], signer)

    key = signer.public_key
    try:
        if isinstance(key, rsa.RSAPublicKey):
            if sig_oid not in (OID_RSA, OID_SHA256_RSA):
                raise NotFast
            key.verify(signature, signed_attrs, padding.PKCS1v15(), hashes.SHA256())
        else:
            if sig_oid != OID_ECDSA_SHA256:
                raise NotFast
            key.verify(signature, signed_attrs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise VerificationFailed(
            "the signature does not match the signer's key",
            message_ja="署名が署名者の鍵と一致しません",
            reason="signature",
        ) from exc
    return FastResult(signer, tuple(cert_ders), signing_time)


def _alg(buf: bytes, element: tuple[int, int, int, int]) -> tuple[bytes, bool]:
    """(DER of the OID, parameters absent or NULL) of an AlgorithmIdentifier."""
    if element[0] != 0x30:
        raise NotFast
    parts = _children(buf, element[2], element[3])
    if not parts or parts[0][0] != 0x06:
        raise NotFast
    plain = len(parts) == 1 or (len(parts) == 2 and buf[parts[1][1] : parts[1][3]] == NULL)
    return buf[parts[0][1] : parts[0][3]], plain


def _check_ess(buf: bytes, value: tuple[int, int, int], signer: CertInfo) -> None:
    """RFC 5035 §5.4.1: the first ESSCertIDv2 must hash to the signer certificate."""
    if value[0] != 0x30:
        raise NotFast
    top = _children(buf, value[1], value[2])
    if not top or top[0][0] != 0x30:
        raise NotFast
    ids = _children(buf, top[0][2], top[0][3])
    if not ids or ids[0][0] != 0x30:
        raise NotFast
    fields = _children(buf, ids[0][2], ids[0][3])
    if fields and fields[0][0] == 0x30:
        if _alg(buf, fields[0])[0] != OID_SHA256:
            raise NotFast
        fields = fields[1:]
    if not fields or fields[0][0] != 0x04:
        raise NotFast
    if buf[fields[0][2] : fields[0][3]] != signer.sha256:
        raise VerificationFailed(
            "signing-certificate-v2 does not name the attached signer certificate",
            message_ja="signing-certificate-v2 属性が署名者証明書と一致しません",
            reason="signing_certificate",
        )


__all__ = ["CertInfo", "FastResult", "NotFast", "cert_info", "check"]
