"""The PKCS#12 download of an office certificate (A5, docs/product.md §7; RFC 7292).

The file holds the office's private key, its certificate and the CA chain, protected by the
issuance password, with the office name as friendly name, so Windows, macOS, Firefox (NSS)
and openssl install it with the password printed on the office's letter.

Two encryptions:

- ``"aes"`` (default): keys and certificates under PBES2 (RFC 8018 §6.2) with PBKDF2-HMAC-
  SHA256 and AES-256-CBC, MAC with HMAC-SHA256 (RFC 7292 Appendix B key derivation), as
  OpenSSL 3 writes by default;
- ``"legacy"``: pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C) and a SHA-1 MAC, for
  old Windows versions that cannot read PBES2.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from shomei.errors import MalformedInput, Refused
from signer.keys import PrivateKey

Encryption = Literal["aes", "legacy"]
ENCRYPTIONS: tuple[Encryption, ...] = ("aes", "legacy")

# OpenSSL 3's default iteration count for both the PBKDF2 and the MAC key derivation.
KDF_ROUNDS = 2048


def _encryption(kind: Encryption, password: str) -> serialization.KeySerializationEncryption:
    builder = serialization.PrivateFormat.PKCS12.encryption_builder().kdf_rounds(KDF_ROUNDS)
    if kind == "aes":
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC).hmac_hash(
            hashes.SHA256()
        )
    elif kind == "legacy":
        # The RFC 7292 legacy MAC is SHA-1; old Windows reads nothing else, asked for on purpose.
        legacy_mac = hashes.SHA1()  # noqa: S303
        builder = builder.key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC).hmac_hash(
            legacy_mac
        )
    else:
        raise Refused(
            f"unknown PKCS#12 encryption {kind!r} (use 'aes' or 'legacy')",
            message_ja=f"PKCS#12 の暗号化方式 {kind!r} は使えません('aes' か 'legacy')",
        )
    return builder.build(password.encode("utf-8"))


def build(
    *,
    key: PrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    password: str,
    friendly_name: str,
    encryption: Encryption = "aes",
) -> bytes:
    """The DER PKCS#12 of ``key`` + ``certificate`` + ``chain`` under ``password``.

    Refuses a key that does not belong to the certificate (an installer would otherwise
    accept a file that cannot sign anything).
    """
    if not password:
        raise Refused("a PKCS#12 needs a password", message_ja="パスワードが必要です")
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise Refused(
            "the private key does not belong to the certificate",
            message_ja="秘密鍵が証明書と対応していません",
        )
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise MalformedInput("only RSA and ECDSA keys", message_ja="RSA と ECDSA の鍵のみです")
    return pkcs12.serialize_key_and_certificates(
        friendly_name.encode("utf-8"),
        key,
        certificate,
        list(chain) or None,
        _encryption(encryption, password),
    )


def read(data: bytes, password: str) -> pkcs12.PKCS12KeyAndCertificates:
    """Open a PKCS#12 (for checks and the decryption tool); wrong password or garbage raise."""
    try:
        return pkcs12.load_pkcs12(data, password.encode("utf-8"))
    except ValueError as exc:
        raise MalformedInput(
            "the PKCS#12 file cannot be opened: wrong password or not a PKCS#12 file",
            message_ja="PKCS#12 ファイルを開けません(パスワード誤りか形式の誤り)",
        ) from exc
