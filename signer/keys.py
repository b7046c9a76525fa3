"""The signing-key interface under the name the signer library has always offered.

The interface itself lives in :mod:`shomei.keys`, the common base, because the CRL package
needs it too and must not import the signer package (``crl/`` sits below ``signer/``: the
verifier reads CRLs, never the reverse).  Offices and the rest of the product keep importing
it from here.
"""

from __future__ import annotations

from shomei.keys import (
    KeyType,
    PrivateKey,
    PublicKey,
    SigningKey,
    SoftwareKey,
    key_type_of,
    signature_algorithm,
    verify_signature,
)

__all__ = [
    "KeyType",
    "PrivateKey",
    "PublicKey",
    "SigningKey",
    "SoftwareKey",
    "key_type_of",
    "signature_algorithm",
    "verify_signature",
]
