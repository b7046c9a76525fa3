"""Where an office's signing key and certificate come from: PKCS#12, PEM files or a PKCS#11 token.

Every loader returns :class:`Credentials` (a :class:`signer.keys.SigningKey`, its certificate
and the chain to attach), so signing does not care where the key is kept.  PKCS#12 follows
RFC 7292 (the file the portal delivers, A5); PEM keys may be PKCS#8 or traditional, encrypted
or not (RFC 5958); a token key goes through :class:`signer.pkcs11.Pkcs11Key`.  Bad input, a
wrong password and a key that does not match its certificate are reported as
:class:`shomei.errors.ShomeiError` subclasses, never as a bare ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

from shomei import issuance
from shomei.errors import CustodyError, MalformedInput
from signer.keys import PrivateKey, SigningKey, SoftwareKey


@dataclass(frozen=True)
class Credentials:
    """A signing key with the certificate that names it and the chain to attach."""

    key: SigningKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()
    private_key: PrivateKey | None = None  # only for software keys (opening sealed notices)


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in ``data`` (PEM with one or more, or a single DER certificate)."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise MalformedInput(
            "not a readable certificate (PEM or DER expected)",
            message_ja="証明書として読み取れません(PEM か DER 形式が必要です)",
        ) from exc
    return certs


def _check_pair(key: SigningKey, certificate: x509.Certificate) -> None:
    if key.public_key.public_numbers() != certificate.public_key().public_numbers():  # type: ignore[union-attr]
        raise MalformedInput(
            "the private key does not belong to the certificate",
            message_ja="秘密鍵が証明書と対応していません",
        )


def _software_key(private_key: object) -> SoftwareKey:
    return SoftwareKey(private_key)  # type: ignore[arg-type] # SoftwareKey refuses other types


def load_pkcs12(data: bytes, password: str) -> Credentials:
    """Key, certificate and chain from a PKCS#12 file (RFC 7292) opened with ``password``.

    A PKCS#12 downloaded from the RA is protected by the issuance password in its printed
    form (``ABCD-EFGH-JKMN``); when ``password`` does not open the file but is that password
    typed another way (lower case, spaces, no hyphens), its printed form is tried too.
    """
    candidates = [password]
    printed = issuance.canonical(password)
    if printed is not None and printed != password:
        candidates.append(printed)
    opened = None
    for candidate in candidates:
        try:
            opened = pkcs12.load_key_and_certificates(data, candidate.encode("utf-8"))
            break
        except ValueError:
            continue
    if opened is None:
        # cryptography does not tell a wrong password from a corrupt file; say both.
        raise CustodyError(
            "cannot open the PKCS#12 file: wrong password, or not a PKCS#12 file",
            message_ja="PKCS#12 ファイルを開けません(パスワードが違うか、PKCS#12 ではありません)",
        )
    key, cert, extra = opened
    if key is None or cert is None:
        raise MalformedInput(
            "the PKCS#12 file lacks a private key or its certificate",
            message_ja="PKCS#12 ファイルに秘密鍵または証明書が含まれていません",
        )
    signing_key = _software_key(key)
    _check_pair(signing_key, cert)
    return Credentials(signing_key, cert, tuple(extra), signing_key.private_key)


def load_pem(
    key_pem: bytes, cert_data: bytes, *, password: str | None = None, chain: Sequence[bytes] = ()
) -> Credentials:
    """Key from a PEM (or DER) private key, certificate (first) and chain from PEM files."""
    secret = password.encode("utf-8") if password is not None else None
    try:
        if b"-----BEGIN" in key_pem:
            key = serialization.load_pem_private_key(key_pem, secret)
        else:
            key = serialization.load_der_private_key(key_pem, secret)
    except TypeError as exc:
        # cryptography raises TypeError for "encrypted but no password" and the reverse.
        raise CustodyError(
            "the private key is encrypted: give its password"
            if secret is None
            else "the private key is not encrypted: give no password",
            message_ja="秘密鍵のパスワードを指定してください"
            if secret is None
            else "秘密鍵は暗号化されていません(パスワードは不要です)",
        ) from exc
    except ValueError as exc:
        raise CustodyError(
            "cannot read the private key: wrong password, or not a private key",
            message_ja="秘密鍵を読み取れません(パスワードが違うか、秘密鍵ではありません)",
        ) from exc
    certs = load_certificates(cert_data)
    extra = [c for data in chain for c in load_certificates(data)]
    signing_key = _software_key(key)
    _check_pair(signing_key, certs[0])
    return Credentials(signing_key, certs[0], tuple(certs[1:] + extra), signing_key.private_key)


def load_pkcs11(
    *,
    module: Path,
    token_label: str,
    key_label: str,
    pin: str,
    cert_data: bytes,
    chain: Sequence[bytes] = (),
) -> Credentials:
    """A key on a PKCS#11 token with its certificate (and chain) from PEM files."""
    from signer.pkcs11 import Pkcs11Key

    certs = load_certificates(cert_data)
    key = Pkcs11Key(module=module, token_label=token_label, key_label=key_label, pin=pin)
    _check_pair(key, certs[0])
    extra = [c for data in chain for c in load_certificates(data)]
    return Credentials(key, certs[0], tuple(certs[1:] + extra))


def certificate_der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


__all__ = [
    "Credentials",
    "certificate_der",
    "load_certificates",
    "load_pem",
    "load_pkcs11",
    "load_pkcs12",
]
