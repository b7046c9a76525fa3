"""A CA private key at rest: encrypted PKCS#8 whose passphrase is split among custodians.

The key is written as an ``ENCRYPTED PRIVATE KEY`` PEM (RFC 5958 §3 EncryptedPrivateKeyInfo,
PBES2 of RFC 8018 §6.2 with PBKDF2-HMAC-SHA256 and AES-256-CBC, as ``cryptography``'s
``BestAvailableEncryption`` makes it).  The passphrase is the hex form of a fresh 128-bit
random secret that is never written anywhere: it is split M-of-N with :mod:`ca.custody.shares`
and only the custodians' shares leave the ceremony.  Because the passphrase has 128 bits of
entropy, the KDF's iteration count is not what protects it; brute force is out of reach.

Beside ``KEY.p8`` lies ``KEY.json``, the custody metadata::

    {"format": "shomei-keyfile-1", "key_id": ..., "algorithm": ..., "m": 2, "n": 3,
     "commitment": SHA-256 hex over a domain string, the key id and the secret,
     "created_at": ISO 8601 UTC, "public_key_sha256": SHA-256 hex of the SubjectPublicKeyInfo}

The commitment lets :func:`open_key_file` tell a wrong reconstruction (say, shares of an
earlier split) from a damaged key file before it tries to decrypt.  Both files are created
with mode 0600 and never replace an existing file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ca.custody.shares import SECRET_SIZE, Share, check_key_id, check_threshold, combine_shares
from ca.custody.shares import split_secret as _split
from shomei.clock import require_aware, utcnow
from shomei.errors import AlreadyExists, CustodyError, MalformedInput, Refused
from shomei.files import MAX_OBJECT, MAX_TEXT, read_bytes, write_new
from signer.keys import PrivateKey, PublicKey, SoftwareKey

Algorithm = Literal["rsa2048", "rsa3072", "rsa4096", "p256", "p384"]
FORMAT = "shomei-keyfile-1"
PEM_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"
_FIELDS = (
    "format",
    "key_id",
    "algorithm",
    "m",
    "n",
    "commitment",
    "created_at",
    "public_key_sha256",
)


@dataclass(frozen=True)
class KeyFileInfo:
    """The custody metadata of a key file; reading it needs no secret."""

    path: Path
    key_id: str
    algorithm: Algorithm
    m: int
    n: int
    commitment: str
    created_at: dt.datetime
    public_key_sha256: str


def metadata_path(path: Path) -> Path:
    """The metadata file that belongs to the key file ``path`` (suffix ``.json``)."""
    path = Path(path)
    if path.suffix == ".json":
        raise MalformedInput(
            f"{path}: a key file must not end in .json (that name is for its metadata)",
            message_ja=f"{path}: 鍵ファイル名は .json で終われません(メタデータ用の名前です)",
        )
    return path.with_suffix(".json")


def commitment(key_id: str, secret: bytes) -> str:
    """SHA-256 hex over a domain string, ``key_id`` and ``secret``: checks a reconstruction.

    The secret has 128 bits of entropy, so publishing this digest does not help anyone
    guess it.
    """
    data = b"shomei-custody-commitment-v1\x00" + key_id.encode("utf-8") + b"\x00" + secret
    return hashlib.sha256(data).hexdigest()


def public_key_sha256(public_key: PublicKey) -> str:
    """SHA-256 hex of the DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7)."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _generate(algorithm: Algorithm) -> PrivateKey:
    if algorithm.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[3:]))
    return ec.generate_private_key(ec.SECP256R1() if algorithm == "p256" else ec.SECP384R1())


def _passphrase(secret: bytes) -> bytes:
    return secret.hex().encode("ascii")


def _refuse_existing(*paths: Path) -> None:
    for p in paths:
        if p.exists() or p.is_symlink():
            raise AlreadyExists(
                f"{p} already exists; a key file is never overwritten",
                message_ja=f"{p} は既に存在します(鍵ファイルは上書きしません)",
                path=str(p),
            )


def _store(
    path: Path, private_key: PrivateKey, *, algorithm: Algorithm, m: int, n: int, key_id: str,
    now: dt.datetime,
) -> list[Share]:  # fmt: skip
    """Encrypt ``private_key`` under a fresh split secret into ``path`` + metadata."""
    meta_path = metadata_path(path)
    _refuse_existing(path, meta_path)
    secret = secrets.token_bytes(SECRET_SIZE)
    shares = _split(secret, m=m, n=n, key_id=key_id)
    pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(_passphrase(secret)),
    )
    meta = {
        "format": FORMAT,
        "key_id": key_id,
        "algorithm": algorithm,
        "m": m,
        "n": n,
        "commitment": commitment(key_id, secret),
        "created_at": require_aware(now, "now").isoformat(),
        "public_key_sha256": public_key_sha256(private_key.public_key()),
    }
    write_new(path, pem, mode=0o600)
    try:
        write_new(meta_path, (json.dumps(meta, indent=2) + "\n").encode("utf-8"), mode=0o600)
    except BaseException:
        # Without its metadata the key file could never be opened; take it back.
        path.unlink(missing_ok=True)
        raise
    return shares


def create_key_file(
    path: Path,
    *,
    algorithm: Algorithm,
    m: int,
    n: int,
    key_id: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[SoftwareKey, list[Share]]:
    """Generate a CA key, write it encrypted to ``path`` (+ ``.json``), return key and shares.

    The open key is for the ceremony to use right away (e.g. to self-sign the root); the N
    shares go to the custodians.  Refuses (:class:`Refused`) if either file exists.
    """
    if algorithm not in get_args(Algorithm):
        raise MalformedInput(
            f"unsupported key algorithm {algorithm!r} ({', '.join(get_args(Algorithm))})",
            message_ja=f"対応していない鍵アルゴリズムです: {algorithm!r}",
        )
    check_threshold(m, n)
    key_id = check_key_id(key_id if key_id is not None else secrets.token_hex(8))
    path = Path(path)
    _refuse_existing(path, metadata_path(path))
    private_key = _generate(algorithm)
    shares = _store(
        path, private_key, algorithm=algorithm, m=m, n=n, key_id=key_id, now=now or utcnow()
    )
    return SoftwareKey(private_key), shares


def _bad_meta(path: Path, what: str) -> MalformedInput:
    return MalformedInput(
        f"key metadata {path} is not valid: {what}",
        message_ja=f"鍵のメタデータ {path} が不正です: {what}",
        path=str(path),
    )


def key_file_info(path: Path) -> KeyFileInfo:
    """Read the custody metadata of the key file ``path`` strictly."""
    path = Path(path)
    meta_path = metadata_path(path)
    raw = read_bytes(meta_path, what="key metadata", what_ja="鍵のメタデータ", limit=MAX_TEXT)
    try:
        meta: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad_meta(meta_path, "not JSON") from exc
    if not isinstance(meta, dict):
        raise _bad_meta(meta_path, "not a JSON object")
    unknown = sorted(set(meta) - set(_FIELDS))
    missing = [f for f in _FIELDS if f not in meta]
    if unknown or missing:
        raise _bad_meta(meta_path, f"unknown fields {unknown}, missing fields {missing}")
    if meta["format"] != FORMAT:
        raise _bad_meta(meta_path, f"format {meta['format']!r} (expected {FORMAT})")
    try:
        for name in ("key_id", "algorithm", "commitment", "created_at", "public_key_sha256"):
            if not isinstance(meta[name], str):
                raise ValueError(name)
        if meta["algorithm"] not in get_args(Algorithm):
            raise ValueError("algorithm")
        for name in ("m", "n"):
            if type(meta[name]) is not int:
                raise ValueError(name)
        check_key_id(meta["key_id"])
        check_threshold(meta["m"], meta["n"])
        created_at = require_aware(dt.datetime.fromisoformat(meta["created_at"]))
    except (ValueError, TypeError, MalformedInput) as exc:
        raise _bad_meta(meta_path, f"bad value ({exc})") from exc
    return KeyFileInfo(
        path=path,
        key_id=meta["key_id"],
        algorithm=meta["algorithm"],
        m=meta["m"],
        n=meta["n"],
        commitment=meta["commitment"],
        created_at=created_at,
        public_key_sha256=meta["public_key_sha256"],
    )


def _decrypt(path: Path, info: KeyFileInfo, secret: bytes) -> PrivateKey:
    pem = read_bytes(path, what="key file", what_ja="鍵ファイル", limit=MAX_OBJECT)
    if not pem.lstrip().startswith(PEM_HEADER):
        # A key file that is not encrypted must never be used: it has rested in the clear.
        raise CustodyError(
            f"{path} is not an encrypted PKCS#8 key file",
            message_ja=f"{path} は暗号化された PKCS#8 鍵ファイルではありません",
            path=str(path),
        )
    try:
        key = serialization.load_pem_private_key(pem, password=_passphrase(secret))
    except (ValueError, TypeError) as exc:
        raise CustodyError(
            f"{path} cannot be decrypted with the custodians' secret (is the file damaged?)",
            message_ja=f"{path} を復号できません(ファイルが破損していませんか)",
            path=str(path),
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise CustodyError(
            f"{path} holds neither an RSA nor an EC key",
            message_ja=f"{path} は RSA 鍵でも EC 鍵でもありません",
        )
    if not hmac.compare_digest(public_key_sha256(key.public_key()), info.public_key_sha256):
        raise CustodyError(
            f"{path} holds a different key from the one its metadata describes",
            message_ja=f"{path} の鍵がメタデータの公開鍵と一致しません",
            path=str(path),
        )
    return key


def _secret_from(info: KeyFileInfo, shares: Sequence[Share]) -> bytes:
    foreign = sorted({s.key_id for s in shares if s.key_id != info.key_id})
    if foreign:
        raise CustodyError(
            f"shares of key {', '.join(foreign)} cannot open key {info.key_id}",
            message_ja=f"鍵 {', '.join(foreign)} の分割鍵では鍵 {info.key_id} を開けません",
            key_id=info.key_id,
            foreign=foreign,
        )
    if shares and (shares[0].m, shares[0].n) != (info.m, info.n):
        raise CustodyError(
            f"the shares are {shares[0].m}-of-{shares[0].n} but key {info.key_id} was split "
            f"{info.m}-of-{info.n} (shares of an earlier split?)",
            message_ja=f"分割鍵の M-of-N が鍵 {info.key_id} と一致しません(以前の分割の"
            "分割鍵ではありませんか)",
            key_id=info.key_id,
        )
    secret = combine_shares(shares)
    if not hmac.compare_digest(commitment(info.key_id, secret), info.commitment):
        raise CustodyError(
            f"the shares do not rebuild the secret of key {info.key_id} (a share from an "
            "earlier split, or a forged share)",
            message_ja=f"分割鍵から鍵 {info.key_id} の秘密値を復元できません"
            "(以前の分割の分割鍵か、改ざんされた分割鍵が含まれています)",
            key_id=info.key_id,
        )
    return secret


def open_key_file(path: Path, shares: Sequence[Share]) -> SoftwareKey:
    """Open the key file ``path`` with at least M custodians' shares."""
    path = Path(path)
    info = key_file_info(path)
    secret = _secret_from(info, list(shares))
    return SoftwareKey(_decrypt(path, info, secret))


def reshare_key_file(
    path: Path,
    new_path: Path,
    shares: Sequence[Share],
    *,
    m: int,
    n: int,
    key_id: str,
    now: dt.datetime | None = None,
) -> list[Share]:
    """Re-encrypt the same key under a new secret and split it again (a custodian left).

    Opens ``path`` with ``shares``, writes ``new_path`` (+ ``.json``) with a new ``key_id``
    and returns the new shares.  The old shares keep opening every copy of the *old* file,
    so the old file and all its backups must be destroyed afterwards (docs/key-custody.md).
    """
    path = Path(path)
    new_path = Path(new_path)
    info = key_file_info(path)
    check_threshold(m, n)
    check_key_id(key_id)
    if key_id == info.key_id:
        raise Refused(
            f"the new split needs a new key id (not {key_id}), so old and new shares never mix",
            message_ja=f"再分割には新しい鍵 ID が必要です({key_id} 以外)",
            key_id=key_id,
        )
    _refuse_existing(new_path, metadata_path(new_path))
    private_key = _decrypt(path, info, _secret_from(info, list(shares)))
    return _store(
        new_path,
        private_key,
        algorithm=info.algorithm,
        m=m,
        n=n,
        key_id=key_id,
        now=now or utcnow(),
    )


__all__ = [
    "Algorithm",
    "KeyFileInfo",
    "commitment",
    "create_key_file",
    "key_file_info",
    "metadata_path",
    "open_key_file",
    "public_key_sha256",
    "reshare_key_file",
]
