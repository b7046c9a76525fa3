"""Sealed notices: a document encrypted to a certificate holder (CMS EnvelopedData, RFC 5652 §6).

This carries the reissued issuance password of SPEC A7: the RA seals it to the office's
certificate, and the office opens it with its key (``shomei notice open``).  The content is
encrypted with AES-256-CBC (RFC 3565) under a fresh key, which is transported to the recipient
with RSA PKCS#1 v1.5 key transport (RFC 5652 §6.2.1, what ``openssl cms -encrypt`` does).
``cryptography`` builds and opens the structure; asn1crypto only reads the recipient list so
that "not sealed to you" is told apart from "damaged".  Only RSA certificates can receive.
"""

from __future__ import annotations

from asn1crypto import cms as acms
from asn1crypto import pem
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed
from signer.credentials import Credentials

MAX_NOTICE_BYTES = 16 * 1024 * 1024


def seal(document: bytes, *, recipient: x509.Certificate) -> bytes:
    """``document`` encrypted to ``recipient`` as a DER ContentInfo of EnvelopedData."""
    if not isinstance(recipient.public_key(), rsa.RSAPublicKey):
        raise Refused(
            "notices can only be sealed to an RSA certificate",
            message_ja="お知らせの暗号化は RSA の証明書にのみ対応しています",
        )
    if len(document) > MAX_NOTICE_BYTES:
        raise Refused("the document is too large to seal", message_ja="文書が大きすぎます")
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(document)
        .set_content_encryption_algorithm(algorithms.AES256)
        .add_recipient(recipient)
        .encrypt(Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def _der(data: bytes) -> bytes:
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            _, _, der = pem.unarmor(data.strip())
        except ValueError as exc:
            raise _damaged() from exc
        return bytes(der)
    return data


def _damaged() -> MalformedInput:
    return MalformedInput(
        "not a sealed notice (CMS EnvelopedData expected) or damaged",
        message_ja="暗号化されたお知らせ(CMS EnvelopedData)ではないか、壊れています",
    )


def recipients(sealed: bytes) -> list[tuple[bytes, int]]:
    """(DER of the issuer Name, serial) of every key-transport recipient of a sealed notice."""
    try:
        info = acms.ContentInfo.load(_der(sealed), strict=True)
        if info["content_type"].native != "enveloped_data":
            raise _damaged()
        out = []
        for ri in info["content"]["recipient_infos"]:
            if ri.name != "ktri" or ri.chosen["rid"].name != "issuer_and_serial_number":
                continue
            ias = ri.chosen["rid"].chosen
            out.append((ias["issuer"].dump(), ias["serial_number"].native))
        return out
    except MalformedInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise _damaged() from exc


def open_notice(sealed: bytes, *, credentials: Credentials) -> bytes:
    """The document inside ``sealed``, opened with the holder's key and certificate."""
    if len(sealed) > MAX_NOTICE_BYTES:
        raise MalformedInput("the sealed notice is too large", message_ja="お知らせが大きすぎます")
    der = _der(sealed)
    cert = credentials.certificate
    acert = ax509.Certificate.load(cert.public_bytes(Encoding.DER))
    mine = (acert.issuer.dump(), cert.serial_number)
    # Names are compared by DER: the sealer copied the issuer from the very same certificate.
    if mine not in recipients(der):
        raise NotFound(
            "this notice was not sealed to your certificate "
            f"(serial {cert.serial_number:x}); use the certificate it was sent to",
            message_ja="このお知らせはお使いの証明書宛てに暗号化されていません。"
            "送付先の証明書を使ってください",
        )
    key = credentials.private_key
    if not isinstance(key, rsa.RSAPrivateKey):
        raise Refused(
            "opening a notice needs the RSA private key in a file (PKCS#12 or PEM)",
            message_ja="お知らせを開くには RSA 秘密鍵のファイル(PKCS#12 または PEM)が必要です",
        )
    try:
        return pkcs7.pkcs7_decrypt_der(der, cert, key, [])
    except ValueError as exc:
        raise VerificationFailed(
            "the sealed notice cannot be decrypted with your key (damaged or altered)",
            message_ja="お知らせを復号できません(壊れているか改ざんされています)",
        ) from exc
    except Exception as exc:  # UnsupportedAlgorithm and friends
        raise MalformedInput(
            f"the sealed notice uses an unsupported algorithm ({type(exc).__name__})",
            message_ja="お知らせの暗号方式に対応していません",
        ) from exc


__all__ = ["open_notice", "recipients", "seal"]
