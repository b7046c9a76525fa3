"""Assemble an X.509 certificate from its to-be-signed part and a signature (RFC 5280 §4.1).

Issuance is done in two steps (docs/product.md §2): the TBSCertificate is built and linted first
(with a throwaway key of the same type standing in for the CA key), and only then is it signed with
the real key, wherever that key lives (a decrypted file key or a PKCS#11 token).  The
``signature`` AlgorithmIdentifier inside the TBS (§4.1.2.3) must equal the outer
``signatureAlgorithm`` (§4.1.1.2); it is copied byte for byte from the TBS so the two cannot
disagree.
"""

from __future__ import annotations

from asn1crypto import core
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from shomei.errors import MalformedInput
from signer.keys import SigningKey


def _tlv(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes((tag, n)) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(size))) + size + body


def certificate_from_tbs(tbs: bytes, key: SigningKey) -> x509.Certificate:
    """Sign the DER TBSCertificate ``tbs`` with ``key`` and return the whole certificate."""
    try:
        parsed = ax509.TbsCertificate.load(tbs, strict=True)
        algorithm = parsed["signature"].dump()
        inner = parsed["signature"].signature_algo
    except (ValueError, TypeError) as exc:
        raise MalformedInput(
            "not a DER TBSCertificate", message_ja="TBSCertificate の DER として読めません"
        ) from exc
    expected = "rsassa_pkcs1v15" if key.key_type == "rsa" else "ecdsa"
    if inner != expected:
        raise MalformedInput(
            f"the TBS names signature algorithm {inner} but the key is {key.key_type}",
            message_ja="TBS の署名アルゴリズムが鍵の種類と一致しません",
        )
    signature = key.sign(tbs)
    bit_string = core.OctetBitString(signature).dump()
    der = _tlv(0x30, tbs + algorithm + bit_string)
    return x509.load_der_x509_certificate(der)


# One throwaway key per process and key kind; generating an RSA key takes tens of ms.
_THROWAWAY: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {}


def throwaway_key(issuer_key: object) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """A private key of the same kind as the issuer's public key, for step one only.

    It signs the draft that is linted, so the TBS carries the issuer's signature algorithm
    identifier; it never signs anything that leaves the process.
    """
    if isinstance(issuer_key, rsa.RSAPublicKey):
        kind = "rsa"
    elif isinstance(issuer_key, ec.EllipticCurvePublicKey):
        kind = issuer_key.curve.name
    else:
        raise MalformedInput(
            "the issuer's key is neither RSA nor ECDSA",
            message_ja="発行者の鍵が RSA でも ECDSA でもありません",
        )
    if kind not in _THROWAWAY:
        if isinstance(issuer_key, ec.EllipticCurvePublicKey):
            _THROWAWAY[kind] = ec.generate_private_key(issuer_key.curve)
        else:
            _THROWAWAY[kind] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return _THROWAWAY[kind]
