"""Office keys at the RA: generated per profile, kept only wrapped, or brought as a CSR.

When an office applies on the web the RA generates the key pair (the profile's
``default_key_type``), sends only a CSR to the CA, and keeps the private key wrapped under the
applicant's issuance password as an encrypted PKCS#8 ``EncryptedPrivateKeyInfo`` (RFC 5958
§3) with PBES2 (RFC 8018 §6.2) whose key derivation is scrypt (RFC 7914 §7, id-scrypt) and
whose cipher is AES-256-CBC (RFC 3565 / NIST SP 800-38A).  ``cryptography`` writes PBES2 only
with PBKDF2, so the structure is built here with asn1crypto; ``openssl pkcs8`` reads it.

The scrypt cost is OpenSSL's own default (N=2^14, r=8, p=1: 16 MiB), because OpenSSL refuses
to decrypt PKCS#8 whose scrypt needs more than 32 MiB; the issuance password's 60 bits of
entropy carry the rest.

An office may instead bring its own CSR (the private key never leaves it): :func:`check_csr`
accepts it only if it parses, its self-signature verifies (RFC 2986 §3) and the profile allows
its key type.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import ClassVar

from asn1crypto import core
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.x509.oid import NameOID

from contract.profile import Profile, key_type_name
from ra.people.passwords import Rng, WrongPassword
from shomei.errors import MalformedInput, Refused
from signer.keys import PrivateKey

ID_PBES2 = "1.2.840.113549.1.5.13"  # RFC 8018 Appendix A.4
ID_SCRYPT = "1.3.6.1.4.1.11591.4.11"  # RFC 7914 §7
AES256_CBC = "2.16.840.1.101.3.4.1.42"  # RFC 3565 §4.1 (parameters: the 16-byte IV)

SCRYPT_N = 1 << 14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
# Unwrapping refuses costs beyond this (a stored blob must not make the RA spend gigabytes).
MAX_SCRYPT_N = 1 << 20
# A PKCS#10 request for the largest allowed key is under 2 KiB; anything this big is not one.
MAX_CSR_BYTES = 64 * 1024

_GENERATORS: dict[str, Callable[[], PrivateKey]] = {
    "rsa2048": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "rsa3072": lambda: rsa.generate_private_key(public_exponent=65537, key_size=3072),
    "rsa4096": lambda: rsa.generate_private_key(public_exponent=65537, key_size=4096),
    "p256": lambda: ec.generate_private_key(ec.SECP256R1()),
    "p384": lambda: ec.generate_private_key(ec.SECP384R1()),
}


class _ScryptParams(core.Sequence):  # type: ignore[misc]  # RFC 7914 §7 scrypt-params
    _fields: ClassVar = [
        ("salt", core.OctetString),
        ("cost_parameter", core.Integer),
        ("block_size", core.Integer),
        ("parallelization_parameter", core.Integer),
        ("key_length", core.Integer, {"optional": True}),
    ]


class _AlgorithmIdentifier(core.Sequence):  # type: ignore[misc]
    _fields: ClassVar = [
        ("algorithm", core.ObjectIdentifier),
        ("parameters", core.Any, {"optional": True}),
    ]


class _Pbes2Params(core.Sequence):  # type: ignore[misc]  # RFC 8018 Appendix A.4
    _fields: ClassVar = [
        ("key_derivation_func", _AlgorithmIdentifier),
        ("encryption_scheme", _AlgorithmIdentifier),
    ]


class _EncryptedPrivateKeyInfo(core.Sequence):  # type: ignore[misc]  # RFC 5958 §3
    _fields: ClassVar = [
        ("encryption_algorithm", _AlgorithmIdentifier),
        ("encrypted_data", core.OctetString),
    ]


def generate_key(profile: Profile) -> PrivateKey:
    """A new key pair of the profile's ``default_key_type``."""
    generator = _GENERATORS.get(profile.default_key_type)
    if generator is None:  # the Profile type allows only known names; be explicit anyway
        raise Refused(
            f"cannot generate a {profile.default_key_type} key",
            message_ja=f"{profile.default_key_type} の鍵は生成できません",
        )
    return generator()


def _kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(password.encode("utf-8"))


def wrap_key(key: PrivateKey, password: str, *, rng: Rng = secrets.token_bytes) -> bytes:
    """``key`` as DER EncryptedPrivateKeyInfo, PBES2 with scrypt and AES-256-CBC."""
    salt, iv = rng(SALT_BYTES), rng(16)
    plain = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain) + padder.finalize()
    encryptor = Cipher(
        algorithms.AES(_kek(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)), modes.CBC(iv)
    ).encryptor()
    encrypted = encryptor.update(padded) + encryptor.finalize()
    params = _Pbes2Params(
        {
            "key_derivation_func": {
                "algorithm": ID_SCRYPT,
                "parameters": _ScryptParams(
                    {
                        "salt": salt,
                        "cost_parameter": SCRYPT_N,
                        "block_size": SCRYPT_R,
                        "parallelization_parameter": SCRYPT_P,
                        "key_length": 32,
                    }
                ),
            },
            "encryption_scheme": {"algorithm": AES256_CBC, "parameters": core.OctetString(iv)},
        }
    )
    info = _EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {"algorithm": ID_PBES2, "parameters": params},
            "encrypted_data": encrypted,
        }
    )
    return bytes(info.dump())


def _malformed() -> MalformedInput:
    return MalformedInput(
        "the stored key is not a PBES2/scrypt/AES-256-CBC encrypted PKCS#8 key",
        message_ja="保管された鍵の形式が正しくありません",
    )


def unwrap_key(wrapped: bytes, password: str) -> PrivateKey:
    """The private key inside ``wrapped``; :class:`WrongPassword` if ``password`` is wrong."""
    try:
        info = _EncryptedPrivateKeyInfo.load(wrapped)
        alg = info["encryption_algorithm"]
        if alg["algorithm"].dotted != ID_PBES2:
            raise _malformed()
        params = _Pbes2Params.load(alg["parameters"].dump())
        kdf, scheme = params["key_derivation_func"], params["encryption_scheme"]
        if kdf["algorithm"].dotted != ID_SCRYPT or scheme["algorithm"].dotted != AES256_CBC:
            raise _malformed()
        sp = _ScryptParams.load(kdf["parameters"].dump())
        salt = sp["salt"].native
        n, r, p = (
            sp[f].native for f in ("cost_parameter", "block_size", "parallelization_parameter")
        )
        iv = core.OctetString.load(scheme["parameters"].dump()).native
        encrypted = info["encrypted_data"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise _malformed() from exc
    if not (1 < n <= MAX_SCRYPT_N and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16):
        raise _malformed()
    if len(iv) != 16 or not encrypted or len(encrypted) % 16:
        raise _malformed()
    decryptor = Cipher(algorithms.AES(_kek(password, salt, n, r, p)), modes.CBC(iv)).decryptor()
    padded = decryptor.update(encrypted) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = unpadder.update(padded) + unpadder.finalize()
        key = serialization.load_der_private_key(plain, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # With CBC a wrong key shows as bad padding or, rarely, as garbage that is not
        # PKCS#8; either way the password did not open the key.
        raise WrongPassword(
            "the issuance password does not open this key",
            message_ja="証明書発行用パスワードで鍵を開けません",
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise _malformed()
    return key


def make_csr(key: PrivateKey, *, office_number: str, office_name: str) -> bytes:
    """A DER PKCS#10 request for ``key`` (the CA sets the real subject from the RA's data)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, office_number),
            x509.NameAttribute(NameOID.COMMON_NAME, office_name),
        ]
    )
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def check_csr(data: bytes, profile: Profile) -> bytes:
    """Check an office's own CSR (PEM or DER); return it as DER, or raise MalformedInput."""
    if len(data) > MAX_CSR_BYTES:
        raise MalformedInput(
            f"the CSR is larger than {MAX_CSR_BYTES // 1024} KiB",
            message_ja=f"CSR が大きすぎます({MAX_CSR_BYTES // 1024} KiB まで)",
        )
    try:
        text = data.lstrip()
        csr = (
            x509.load_pem_x509_csr(text)
            if text.startswith(b"-----BEGIN")
            else x509.load_der_x509_csr(data)
        )
    except ValueError as exc:
        raise MalformedInput(
            "the CSR is not a readable PKCS#10 request",
            message_ja="CSR(PKCS#10)として読めません",
        ) from exc
    try:
        valid = csr.is_signature_valid
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise MalformedInput(
            "the CSR's key or signature algorithm is not supported",
            message_ja="CSR の鍵または署名の方式に対応していません",
        ) from exc
    if not valid:
        raise MalformedInput(
            "the CSR's self-signature does not verify",
            message_ja="CSR の自己署名を検証できません",
        )
    kind = key_type_name(public_key)
    if not profile.allows(kind):
        allowed = ", ".join(profile.key_types)
        raise MalformedInput(
            f"the CSR's key ({kind or 'unsupported'}) is not allowed (allowed: {allowed})",
            message_ja=f"CSR の鍵({kind or '未対応'})は使えません(使える鍵: {allowed})",
            key_type=kind,
        )
    return csr.public_bytes(serialization.Encoding.DER)


def csr_key_type(csr_der: bytes) -> str:
    """The profile name of the key in a CSR :func:`check_csr` accepted ("rsa2048", "p256")."""
    kind = key_type_name(x509.load_der_x509_csr(csr_der).public_key())
    if kind is None:  # check_csr refuses such a CSR; a caller passed one it did not check
        raise MalformedInput(
            "the CSR's key is not a supported type", message_ja="CSR の鍵の種類に対応していません"
        )
    return kind
