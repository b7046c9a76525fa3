"""CMS SignedData (RFC 5652 §5): build and cryptographically check one-signer signatures.

This is the core both the claim signer and the RA↔CA batch link use.  :func:`sign` makes an
attached or detached SignedData with the signed attributes content-type, message-digest
(RFC 5652 §11.1-11.2), signing-time (§11.3) and signing-certificate-v2 (RFC 5035), and
attaches the signer certificate and its chain.  :func:`verify` checks the digest, the signed
attributes and the signature against the certificate named by the signer identifier, and
returns what it found; it raises :class:`shomei.errors.VerificationFailed` when a check fails
and :class:`shomei.errors.MalformedInput` when the input is not a usable SignedData.  Whether
the signer certificate is trusted (chain, validity, revocation) is the caller's decision.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import algos, cms, tsp
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.utils import CryptographyDeprecationWarning

from shomei.errors import MalformedInput, VerificationFailed
from signer.keys import SigningKey

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


@dataclass(frozen=True)
class CmsSignature:
    """What a successful :func:`verify` established about one SignedData."""

    content: bytes
    signer: x509.Certificate
    certificates: tuple[x509.Certificate, ...]
    signing_time: dt.datetime | None
    digest_algorithm: str


def sign(
    content: bytes,
    *,
    key: SigningKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    detached: bool = True,
    signing_time: dt.datetime,
) -> bytes:
    """A DER ContentInfo holding a SignedData over ``content`` by ``key``.

    ``certificate`` is the certificate of ``key``; ``chain`` (intermediate CAs) is attached
    after it.  With ``detached`` the content is left out (the claim file travels beside its
    ``.p7s``).
    """
    if signing_time.tzinfo is None:
        raise TypeError("signing_time must be timezone-aware")
    cert_der = certificate.public_bytes(Encoding.DER)
    acert = ax509.Certificate.load(cert_der)
    digest = hashlib.sha256(content).digest()
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                tsp.ESSCertIDv2(
                    {
                        # hashAlgorithm DEFAULT sha256 is omitted (RFC 5035 §5.4.1.1, DER).
                        "cert_hash": hashlib.sha256(cert_der).digest(),
                        "issuer_serial": {
                            "issuer": [
                                ax509.GeneralName(name="directory_name", value=acert.issuer)
                            ],
                            "serial_number": acert.serial_number,
                        },
                    }
                )
            ]
        }
    )
    attrs = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute(
            {
                "type": "signing_time",
                "values": [
                    cms.Time(
                        name="utc_time" if 1950 <= signing_time.year < 2050 else "generalized_time",
                        value=signing_time.astimezone(dt.UTC),
                    )
                ],
            }
        ),
        cms.CMSAttribute({"type": "message_digest", "values": [digest]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}),
    ]
    # DER requires the SET OF attributes sorted by their encodings (X.690 §11.6).
    attrs.sort(key=lambda a: a.dump())
    signed_attrs = cms.CMSAttributes(attrs)
    signature = key.sign(signed_attrs.dump())
    sig_alg = "rsassa_pkcs1v15" if key.key_type == "rsa" else "sha256_ecdsa"
    signer_info = cms.SignerInfo(
        {
            "version": "v1",
            "sid": cms.SignerIdentifier(
                name="issuer_and_serial_number",
                value={
                    "issuer": acert.issuer,
                    "serial_number": acert.serial_number,
                },
            ),
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": sig_alg}),
            "signature": signature,
        }
    )
    certs = [acert] + [ax509.Certificate.load(c.public_bytes(Encoding.DER)) for c in chain]
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {
                "content_type": "data",
                "content": None if detached else content,
            },
            "certificates": [cms.CertificateChoices(name="certificate", value=c) for c in certs],
            "signer_infos": [signer_info],
        }
    )
    return bytes(cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump())


def _malformed(what: str, what_ja: str, cause: Exception | None = None) -> MalformedInput:
    err = MalformedInput(
        f"not a usable CMS signature: {what}", message_ja=f"CMS 署名として読めません: {what_ja}"
    )
    if cause is not None:
        err.__cause__ = cause
    return err


def parse_signed_data(cms_der: bytes) -> cms.SignedData:
    """Parse DER (or PEM) ContentInfo and return its SignedData; fully parsed up front."""
    data = cms_der
    if data.lstrip().startswith(b"-----BEGIN"):
        from asn1crypto import pem

        try:
            _, _, data = pem.unarmor(data.strip())
        except ValueError as exc:
            raise _malformed("bad PEM armour", "PEM の形式が正しくありません", exc) from exc
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "signed_data":
            raise _malformed("not SignedData", "SignedData ではありません")
        sd = info["content"]
        sd.native  # noqa: B018 - forces a full parse so later access cannot raise
    except MalformedInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise _malformed("undecodable DER", "DER として解釈できません", exc) from exc
    return sd


def verify(cms_der: bytes, *, content: bytes | None = None) -> CmsSignature:
    """Check the one signature in ``cms_der`` over ``content`` (or the attached content).

    Raises :class:`VerificationFailed` if the digest, the signed attributes or the signature
    do not match, :class:`MalformedInput` if the structure is unusable.
    """
    sd = parse_signed_data(cms_der)
    try:
        return _verify(sd, content)
    except (MalformedInput, VerificationFailed):
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise _malformed("inconsistent structure", "構造が正しくありません", exc) from exc


def _verify(sd: cms.SignedData, content: bytes | None) -> CmsSignature:
    attached = sd["encap_content_info"]["content"]
    if content is None:
        if attached.native is None:
            raise _malformed(
                "detached signature but no content given",
                "分離署名ですが対象ファイルが指定されていません",
            )
        content = attached.native
        if not isinstance(content, bytes):
            content = attached.contents
    elif attached.native is not None and attached.native != content:
        raise VerificationFailed(
            "attached content differs from the given file",
            message_ja="署名に含まれる内容とファイルが一致しません",
            reason="digest",
        )
    signer_infos = sd["signer_infos"]
    if len(signer_infos) != 1:
        raise _malformed(
            f"{len(signer_infos)} signers (exactly one expected)",
            f"署名者が {len(signer_infos)} 人です(1 人のみ対応)",
        )
    si = signer_infos[0]
    certs: list[x509.Certificate] = []
    acerts: list[ax509.Certificate] = []
    for choice in sd["certificates"] or []:
        if choice.name != "certificate":
            continue
        acerts.append(choice.chosen)
        try:
            with warnings.catch_warnings():
                # A certificate cryptography only reads with a deprecation warning (a negative
                # serial, a bad version) is not one we accept as a signer's.
                warnings.simplefilter("error", CryptographyDeprecationWarning)
                certs.append(x509.load_der_x509_certificate(choice.chosen.dump()))
        except (ValueError, x509.InvalidVersion, CryptographyDeprecationWarning) as exc:
            raise _malformed(
                "an attached certificate is unreadable", "添付された証明書が読めません", exc
            ) from exc
    signer_index = _find_signer(si["sid"], acerts)
    signer = certs[signer_index]
    digest_name = si["digest_algorithm"]["algorithm"].native
    if digest_name not in _HASHES:
        raise _malformed(
            f"unsupported digest {digest_name}", f"対応していないハッシュ関数です({digest_name})"
        )
    digest = hashlib.new(digest_name, content).digest()
    signing_time = None
    signed_attrs = si["signed_attrs"]
    if signed_attrs.native is not None and len(signed_attrs):
        by_type: dict[str, list[object]] = {}
        for attr in signed_attrs:
            by_type.setdefault(attr["type"].native, []).append(attr)
        for required in ("content_type", "message_digest"):
            if len(by_type.get(required, [])) != 1:
                raise _malformed(
                    f"signed attribute {required} missing or repeated",
                    f"署名属性 {required} がないか重複しています",
                )
        ctype = signed_attrs_value(si, "content_type")
        if ctype != sd["encap_content_info"]["content_type"].native:
            raise VerificationFailed(
                "content-type attribute does not match",
                message_ja="content-type 属性が一致しません",
                reason="signed_attributes",
            )
        if signed_attrs_value(si, "message_digest") != digest:
            raise VerificationFailed(
                "the file does not match its signature (digest differs)",
                message_ja="ファイルが署名と一致しません(ハッシュ値が異なります)",
                reason="digest",
            )
        st = signed_attrs_value(si, "signing_time")
        if isinstance(st, dt.datetime):
            signing_time = st.astimezone(dt.UTC)
        ess = signed_attrs_value(si, "signing_certificate_v2")
        if isinstance(ess, dict):
            cert_hash = ess["certs"][0]["cert_hash"]
            hash_alg = ess["certs"][0]["hash_algorithm"]["algorithm"]
            if hashlib.new(hash_alg, acerts[signer_index].dump()).digest() != cert_hash:
                raise VerificationFailed(
                    "signing-certificate-v2 does not name the attached signer certificate",
                    message_ja="signing-certificate-v2 属性が署名者証明書と一致しません",
                    reason="signing_certificate",
                )
        # The signature covers the DER SET OF, not the [0] IMPLICIT encoding (RFC 5652 §5.4).
        signed_bytes = b"\x31" + signed_attrs.dump()[1:]
    else:
        signed_bytes = content
    _check_signature(signer, si, signed_bytes, digest_name)
    return CmsSignature(
        content=content,
        signer=signer,
        certificates=tuple(certs),
        signing_time=signing_time,
        digest_algorithm=digest_name,
    )


def signed_attrs_value(si: cms.SignerInfo, name: str) -> object:
    """The native value of the single signed attribute ``name``, or None."""
    for attr in si["signed_attrs"]:
        if attr["type"].native == name:
            return attr["values"][0].native
    return None


def _find_signer(sid: cms.SignerIdentifier, certs: list[ax509.Certificate]) -> int:
    for i, cert in enumerate(certs):
        if sid.name == "issuer_and_serial_number":
            ias = sid.chosen
            if cert.serial_number == ias["serial_number"].native and cert.issuer == ias["issuer"]:
                return i
        elif sid.name == "subject_key_identifier":
            if cert.key_identifier == sid.chosen.native:
                return i
    raise _malformed("the signer certificate is not attached", "署名者の証明書が添付されていません")


def _check_signature(
    signer: x509.Certificate, si: cms.SignerInfo, data: bytes, digest_name: str
) -> None:
    sig = si["signature"].native
    algo = si["signature_algorithm"]
    public_key = signer.public_key()
    hash_cls = _HASHES[digest_name]
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if algo.signature_algo != "rsassa_pkcs1v15":
                raise _malformed(
                    f"unsupported RSA signature scheme {algo.signature_algo}",
                    "対応していない RSA 署名方式です",
                )
            algo_hash = algo["algorithm"].native
            if algo_hash != "rsassa_pkcs1v15" and algo.hash_algo != digest_name:
                raise _malformed(
                    "signature and digest algorithms disagree",
                    "署名アルゴリズムとハッシュ関数が一致しません",
                )
            public_key.verify(sig, data, padding.PKCS1v15(), hash_cls())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(sig, data, ec.ECDSA(hash_cls()))
        else:
            raise _malformed("unsupported signer key type", "対応していない鍵の種類です")
    except InvalidSignature as exc:
        raise VerificationFailed(
            "the signature does not match the signer's key",
            message_ja="署名が署名者の鍵と一致しません",
            reason="signature",
        ) from exc


__all__ = ["CmsSignature", "parse_signed_data", "sign", "verify"]
