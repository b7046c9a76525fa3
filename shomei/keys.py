"""One signing-key interface for every key in the product.

A CA key on a PKCS#11 token, a CA key decrypted from custodian shares, an office key from a
PKCS#12 file: all are used through :class:`SigningKey`, which signs bytes with SHA-256 and
returns the signature in the encoding X.509 and CMS expect (RFC 8017 PKCS#1 v1.5 for RSA,
the DER ``Ecdsa-Sig-Value`` of RFC 5480 §2.2 for ECDSA).  The private key itself never leaves
the implementation.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from shomei.errors import MalformedInput

KeyType = Literal["rsa", "ec"]
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@runtime_checkable
class SigningKey(Protocol):
    """A private key that signs with SHA-256, wherever it is kept."""

    @property
    def public_key(self) -> PublicKey:
        """The matching public key."""
        ...

    @property
    def key_type(self) -> KeyType:
        """ "rsa" or "ec"."""
        ...

    def sign(self, data: bytes) -> bytes:
        """Sign ``data`` (hashed here with SHA-256); RSA PKCS#1 v1.5 or DER ECDSA."""
        ...


class SoftwareKey:
    """A :class:`SigningKey` over a private key object of ``cryptography``, held in memory."""

    def __init__(self, private_key: PrivateKey) -> None:
        if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise MalformedInput(
                "only RSA and ECDSA keys are supported",
                message_ja="RSA と ECDSA の鍵のみ使えます",
            )
        self._key = private_key

    @property
    def private_key(self) -> PrivateKey:
        return self._key

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key()

    @property
    def key_type(self) -> KeyType:
        return "rsa" if isinstance(self._key, rsa.RSAPrivateKey) else "ec"

    def sign(self, data: bytes) -> bytes:
        if isinstance(self._key, rsa.RSAPrivateKey):
            return self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self._key.sign(data, ec.ECDSA(hashes.SHA256()))


def key_type_of(public_key: object) -> KeyType:
    """ "rsa" or "ec" for a public key; anything else is refused."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa"
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ec"
    raise MalformedInput(
        f"unsupported public key type {type(public_key).__name__}",
        message_ja="対応していない公開鍵の種類です",
    )


def signature_algorithm(key_type: KeyType) -> str:
    """The asn1crypto name of the SHA-256 signature algorithm for ``key_type``."""
    return "sha256_rsa" if key_type == "rsa" else "sha256_ecdsa"


def verify_signature(public_key: PublicKey, signature: bytes, data: bytes) -> None:
    """Check a SHA-256 signature made by a :class:`SigningKey`; raise on failure.

    Raises :class:`shomei.errors.VerificationFailed` when the signature does not match.
    """
    from cryptography.exceptions import InvalidSignature

    from shomei.errors import VerificationFailed

    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        else:
            key_type_of(public_key)
    except InvalidSignature as exc:
        raise VerificationFailed(
            "signature does not match", message_ja="署名が一致しません"
        ) from exc
