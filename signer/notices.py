"""Sealed notices: a document encrypted to a certificate holder, with authenticated encryption.

This carries the reissued issuance password of the A7 function (``docs/office-guide.md``): the
RA seals it to the office's certificate, and the office opens it with its key
(``shomei notice open``).  A sealed notice is a CMS ContentInfo of AuthEnvelopedData (RFC 5083)
with AES-256-GCM (RFC 5084: a 12-byte nonce, a 16-byte tag) under a fresh key, which is
transported to the one recipient with RSAES-OAEP, SHA-256 and MGF1-SHA-256 (RFC 8017 §7.1,
identifiers of RFC 4055 §4).  ``openssl cms -decrypt`` opens it.

Opening refuses every change, so that an office is never handed a wrong password silently:
the GCM tag covers the content and the nonce, OAEP covers the content key, the recipient must
be the holder's certificate byte for byte, every algorithm and version must be one this
module accepts, and the file must be the canonical DER of what it parses to (a change that
parses to the same values is refused too).  A notice has exactly one recipient, because the
recipient list itself is not authenticated by AuthEnvelopedData.  Notices of the old format
(EnvelopedData with AES-CBC, which a flipped bit turned into garbled text) are refused with a
message that says how to ask for a new one.

asn1crypto builds and reads the structures; ``cryptography`` does RSA and AES-GCM.  Only RSA
certificates can receive.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import ClassVar

from asn1crypto import algos, core, pem
from asn1crypto import cms as acms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding

from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed
from signer.credentials import Credentials

MAX_NOTICE_BYTES = 16 * 1024 * 1024
NONCE_BYTES = 12  # RFC 5084 §3.2: the recommended nonce size
TAG_BYTES = 16  # the full GCM tag; shorter ones are not accepted
_GCM_KEY_BYTES = {"aes128_gcm": 16, "aes192_gcm": 24, "aes256_gcm": 32}
_OAEP_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,  # openssl's default OAEP parameters
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class GcmParameters(core.Sequence):  # type: ignore[misc]  # asn1crypto is untyped
    """RFC 5084 §3.2 ``GCMParameters`` (asn1crypto has no spec for them)."""

    _fields: ClassVar = [
        ("aes_nonce", core.OctetString),
        ("aes_icvlen", core.Integer, {"default": 12}),
    ]


def _oaep_parameters() -> algos.RSAESOAEPParams:
    return algos.RSAESOAEPParams(
        {
            "hash_algorithm": {"algorithm": "sha256"},
            "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": "sha256"}},
        }
    )


def seal(
    document: bytes,
    *,
    recipient: x509.Certificate,
    random: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """``document`` encrypted to ``recipient`` as a DER ContentInfo of AuthEnvelopedData."""
    public_key = recipient.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise Refused(
            "notices can only be sealed to an RSA certificate",
            message_ja="お知らせの暗号化は RSA の証明書にのみ対応しています",
        )
    if len(document) > MAX_NOTICE_BYTES:
        raise Refused("the document is too large to seal", message_ja="文書が大きすぎます")
    key, nonce = random(32), random(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, document, None)
    ciphertext, tag = sealed[:-TAG_BYTES], sealed[-TAG_BYTES:]
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    issued = ax509.Certificate.load(recipient.public_bytes(Encoding.DER))
    recipient_info = acms.KeyTransRecipientInfo(
        {
            "version": "v0",
            "rid": acms.RecipientIdentifier(
                name="issuer_and_serial_number",
                value=acms.IssuerAndSerialNumber(
                    {"issuer": issued.issuer, "serial_number": issued.serial_number}
                ),
            ),
            "key_encryption_algorithm": {
                "algorithm": "rsaes_oaep",
                "parameters": _oaep_parameters(),
            },
            "encrypted_key": public_key.encrypt(key, oaep),
        }
    )
    content = acms.AuthEnvelopedData(
        {
            "version": "v0",
            "recipient_infos": [acms.RecipientInfo(name="ktri", value=recipient_info)],
            "auth_encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {
                    "algorithm": "aes256_gcm",
                    "parameters": GcmParameters({"aes_nonce": nonce, "aes_icvlen": TAG_BYTES}),
                },
                "encrypted_content": ciphertext,
            },
            "mac": tag,
        }
    )
    info = acms.ContentInfo({"content_type": "authenticated_enveloped_data", "content": content})
    return bytes(info.dump())


# -- opening -------------------------------------------------------------------------------


def _damaged(detail: str = "") -> MalformedInput:
    return MalformedInput(
        "not a sealed notice (CMS AuthEnvelopedData expected) or damaged"
        + (f": {detail}" if detail else ""),
        message_ja="暗号化されたお知らせ(CMS AuthEnvelopedData)ではないか、壊れています",
    )


def _altered() -> VerificationFailed:
    return VerificationFailed(
        "the sealed notice was altered or damaged (its integrity check failed); "
        "download it again from the portal",
        message_ja="お知らせが改ざんされているか壊れています(完全性の検証に失敗しました)。"
        "ポータルからもう一度ダウンロードしてください",
    )


def _old_format() -> Refused:
    return Refused(
        "this notice is in the old format (CMS EnvelopedData without an integrity check), "
        "which is no longer opened; ask for a new issuance password in the portal "
        "(パスワード再発行) and open the new notice",
        message_ja="このお知らせは旧形式(完全性の検証がない CMS EnvelopedData)のため開けません。"
        "ポータルで証明書発行用パスワードの再発行を申し込み、新しいお知らせを開いてください",
    )


def _der(data: bytes) -> bytes:
    if len(data) > MAX_NOTICE_BYTES:
        raise MalformedInput("the sealed notice is too large", message_ja="お知らせが大きすぎます")
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            kind, _, der = pem.unarmor(data.strip())
        except ValueError as exc:
            raise _damaged("bad PEM armor") from exc
        if kind not in ("CMS", "PKCS7"):
            raise _damaged(f"PEM of type {kind}")
        return bytes(der)
    return data


def _parse(data: bytes) -> acms.AuthEnvelopedData:
    """The AuthEnvelopedData of a sealed notice, checked to be canonical DER of our shape."""
    der = _der(data)
    try:
        info = acms.ContentInfo.load(der, strict=True)
        kind = info["content_type"].native
        if kind == "enveloped_data":
            raise _old_format()
        if kind != "authenticated_enveloped_data":
            raise _damaged(f"content type {kind}")
        content = info["content"]
        # Re-encoding every value must give back the very same bytes: a change that still
        # parses (another length form, another string type) is a change all the same.
        if info.dump(force=True) != der:
            raise _damaged("not canonical DER")
        if content["version"].native != "v0":
            raise _damaged("AuthEnvelopedData version")
        for optional in ("originator_info", "auth_attrs", "unauth_attrs"):
            if content[optional].native is not None:
                raise _damaged(f"unexpected {optional}")
        return content
    except (MalformedInput, Refused):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _damaged() from exc


def _recipient(content: acms.AuthEnvelopedData) -> acms.KeyTransRecipientInfo:
    infos = list(content["recipient_infos"])
    if len(infos) != 1:
        raise _damaged(f"{len(infos)} recipients (a sealed notice has exactly one)")
    info = infos[0]
    if info.name != "ktri" or info.chosen["version"].native != "v0":
        raise _damaged("the recipient is not an RSA key-transport recipient")
    if info.chosen["rid"].name != "issuer_and_serial_number":
        raise _damaged("the recipient is not named by issuer and serial number")
    return info.chosen


def recipients(sealed: bytes) -> list[tuple[bytes, int]]:
    """(DER of the issuer Name, serial) of the recipient of a sealed notice."""
    try:
        ias = _recipient(_parse(sealed))["rid"].chosen
        return [(ias["issuer"].dump(), ias["serial_number"].native)]
    except MalformedInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _damaged() from exc


def _key_padding(algorithm: acms.KeyEncryptionAlgorithm) -> padding.AsymmetricPadding:
    """The RSA padding the recipient's key was encrypted with (OAEP, or PKCS#1 v1.5)."""
    name = algorithm["algorithm"].native
    if name == "rsaes_pkcs1v15":
        return padding.PKCS1v15()  # what `openssl cms -encrypt` uses unless told otherwise
    if name != "rsaes_oaep":
        raise _unsupported(f"key transport {name}")
    params = algorithm["parameters"]
    digest = params["hash_algorithm"]["algorithm"].native
    mgf = params["mask_gen_algorithm"]
    mgf_digest = mgf["parameters"]["algorithm"].native
    label = params["p_source_algorithm"]
    if (
        digest not in _OAEP_HASHES
        or mgf["algorithm"].native != "mgf1"
        or mgf_digest not in _OAEP_HASHES
        or label["algorithm"].native != "p_specified"
        or label["parameters"].native != b""
    ):
        raise _unsupported("these RSAES-OAEP parameters")
    return padding.OAEP(
        mgf=padding.MGF1(_OAEP_HASHES[mgf_digest]()),
        algorithm=_OAEP_HASHES[digest](),
        label=None,
    )


def _unsupported(what: str) -> MalformedInput:
    return MalformedInput(
        f"the sealed notice uses an unsupported algorithm ({what})",
        message_ja="お知らせの暗号方式に対応していません",
    )


def _gcm(content: acms.AuthEnvelopedData) -> tuple[int, bytes, bytes]:
    """(key length, nonce, ciphertext) of the AES-GCM encrypted content (RFC 5084 §3)."""
    encrypted = content["auth_encrypted_content_info"]
    if encrypted["content_type"].native != "data":
        # RFC 5083 §2.1: another content type needs authenticated attributes; none are used.
        raise _damaged("the content is not id-data")
    algorithm = encrypted["content_encryption_algorithm"]
    name = algorithm["algorithm"].native
    if name not in _GCM_KEY_BYTES:
        raise _unsupported(f"content encryption {name}")
    params = GcmParameters.load(algorithm["parameters"].dump(), strict=True)
    nonce = params["aes_nonce"].native
    if len(nonce) != NONCE_BYTES or params["aes_icvlen"].native != TAG_BYTES:
        raise _damaged("GCM parameters other than a 12-byte nonce and a 16-byte tag")
    if len(content["mac"].native) != TAG_BYTES:
        raise _damaged("GCM tag length")
    ciphertext = encrypted["encrypted_content"].native
    if ciphertext is None:
        raise _damaged("no encrypted content")
    return _GCM_KEY_BYTES[name], nonce, ciphertext


def open_notice(sealed: bytes, *, credentials: Credentials) -> bytes:
    """The document inside ``sealed``, opened with the holder's key and certificate.

    Raises :class:`NotFound` (sealed to another certificate), :class:`VerificationFailed`
    (altered: the integrity check failed), :class:`Refused` (the old EnvelopedData format,
    or a key that cannot decrypt) and :class:`MalformedInput` (not a sealed notice, damaged).
    """
    content = _parse(sealed)
    try:
        recipient = _recipient(content)
        ias = recipient["rid"].chosen
        cert = credentials.certificate
        mine = ax509.Certificate.load(cert.public_bytes(Encoding.DER))
        # Compared by DER: the sealer copied the issuer from the very same certificate.
        if (ias["issuer"].dump(), ias["serial_number"].native) != (
            mine.issuer.dump(),
            cert.serial_number,
        ):
            raise NotFound(
                "this notice was not sealed to your certificate "
                f"(serial {cert.serial_number:x}), or its recipient was altered; use the "
                "certificate it was sent to",
                message_ja="このお知らせはお使いの証明書宛てに暗号化されていません"
                "(または宛先が改ざんされています)。送付先の証明書を使ってください",
            )
        key_padding = _key_padding(recipient["key_encryption_algorithm"])
        key_bytes, nonce, ciphertext = _gcm(content)
        encrypted_key = recipient["encrypted_key"].native
        tag = content["mac"].native
    except (MalformedInput, NotFound):
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise _damaged() from exc
    key = credentials.private_key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise Refused(
            "opening a notice needs the RSA private key in a file (PKCS#12 or PEM)",
            message_ja="お知らせを開くには RSA 秘密鍵のファイル(PKCS#12 または PEM)が必要です",
        )
    try:
        content_key = key.decrypt(encrypted_key, key_padding)
    except ValueError as exc:
        raise _altered() from exc
    if len(content_key) != key_bytes:
        raise _altered()
    try:
        return AESGCM(content_key).decrypt(nonce, ciphertext + tag, None)
    except InvalidTag as exc:
        raise _altered() from exc


__all__ = ["open_notice", "recipients", "seal"]
