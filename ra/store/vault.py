"""Secrets the RA must read back, sealed at rest under a key of its own (AES-256-GCM).

Passwords are stored only as argon2id hashes and office keys only wrapped under the issuance
password, but the console's TOTP secrets (RFC 6238) must be read back to check a code, so a
hash will not do.  They are sealed with AES-256-GCM (NIST SP 800-38D, through
``cryptography``'s AEAD API) under a 256-bit key kept in a file beside the settings
(``secrets_key_file``, mode 0600), which ``shomei ra init-db`` creates.  A copy of the database
alone then gives none of them away, and a sealed value moved to another row or column does not
open, because what it belongs to (``context``, e.g. ``accounts.totp_secret/st12345678``) is
bound in as associated data.

A sealed value is text: ``v1:`` and the base64 of a 96-bit random nonce followed by the
ciphertext and its tag.  A value without the prefix is a secret still in clear (a database from
before the seal); reading one is refused with "run init-db", which seals them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shomei.errors import ConfigError, Refused
from shomei.files import write_new

log = logging.getLogger("shomei.ra.vault")

PREFIX = "v1:"
KEY_BYTES = 32
NONCE_BYTES = 12
KEY_MODE = 0o600
HEADER = (
    "# Shomei RA secrets key (AES-256-GCM). It seals the TOTP secrets in the RA database:\n"
    "# keep it readable only by the RA's user and back it up with the database.\n"
)


def totp_context(user_id: str) -> str:
    """What a staff member's sealed TOTP secret belongs to (its associated data)."""
    return f"accounts.totp_secret/{user_id}"


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


@dataclass(frozen=True)
class Vault:
    """The RA's secrets key, opened; seals and opens values bound to their ``context``."""

    key: bytes = field(repr=False)
    source: str = "the secrets key"

    def seal(self, secret: str, *, context: str) -> str:
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.key).encrypt(nonce, secret.encode("utf-8"), context.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def mac(self, data: str, *, context: str) -> str:
        """A keyed hash (HMAC-SHA256, hex) of ``data`` for ``context``, for what must be
        checked but never read back (the codes mailed to people, ra.people.mail_codes).

        The key is derived from the secrets key for this use alone (HMAC of a fixed label), so
        a copy of the database alone cannot test guesses against the stored values.
        """
        key = hmac.new(self.key, b"shomei vault mac v1", hashlib.sha256).digest()
        message = context.encode("utf-8") + b"\x00" + data.encode("utf-8")
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def open(self, sealed: str, *, context: str) -> str:
        if not is_sealed(sealed):
            raise ConfigError(
                f"{context} is stored in clear: run `shomei ra init-db --settings FILE` to seal "
                "the secrets of this database",
                message_ja=f"{context} が暗号化されていません。`shomei ra init-db` を実行して"
                "暗号化してください",
                context=context,
            )
        try:
            raw = base64.b64decode(sealed.removeprefix(PREFIX), validate=True)
            plain = AESGCM(self.key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode())
            return plain.decode("utf-8")
        except (InvalidTag, ValueError, binascii.Error) as exc:
            raise ConfigError(
                f"{context} does not open with {self.source}: the key file is not the one this "
                "database was sealed with, or the value was altered",
                message_ja=f"{context} を {self.source} で復号できません(このデータベースの鍵"
                "ファイルではないか、値が改変されています)",
                context=context,
            ) from exc


def create_key_file(path: Path) -> Vault:
    """Make a new random key in ``path`` (mode 0600, never over an existing file)."""
    key = AESGCM.generate_key(bit_length=8 * KEY_BYTES)
    text = HEADER + base64.b64encode(key).decode("ascii") + "\n"
    write_new(path, text.encode("ascii"), mode=KEY_MODE)
    return Vault(key, source=str(path))


def load_vault(path: Path | None) -> Vault:
    """Open the key file ``path``; every problem is a one-line :class:`ConfigError`."""
    if path is None:
        raise ConfigError(
            "the RA settings name no secrets key file (ra.secrets_key_file)",
            message_ja="RA 設定に暗号鍵ファイル(ra.secrets_key_file)が指定されていません",
        )
    try:
        info = path.stat()
        # A key file is a few lines; never read something large (a wrong path) whole.
        with path.open("rb") as handle:
            data = handle.read(4096)
    except FileNotFoundError as exc:
        raise ConfigError(
            f"the RA secrets key file {path} is missing: restore it from the backup made with "
            "the database (a new installation gets one from `shomei ra init-db`)",
            message_ja=f"RA の暗号鍵ファイル {path} がありません。データベースと一緒に取った"
            "バックアップから戻してください(新規設置では `shomei ra init-db` が作成します)",
            path=str(path),
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot read the RA secrets key file {path}: {exc.strerror}",
            message_ja=f"RA の暗号鍵ファイル {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o077:
        # As ssh does with a private key: a key others can read protects nothing.
        raise ConfigError(
            f"the RA secrets key file {path} can be read by other users (mode {mode:04o}): "
            f"run `chmod 600 {path}`",
            message_ja=f"RA の暗号鍵ファイル {path} が他のユーザーから読めます(モード "
            f"{mode:04o})。`chmod 600 {path}` を実行してください",
            path=str(path),
        )
    lines = [
        line.strip()
        for line in data.decode("ascii", errors="replace").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    try:
        key = base64.b64decode(lines[0], validate=True) if len(lines) == 1 else b""
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"{path} is not an RA secrets key file (expected one base64 line of {KEY_BYTES} bytes)",
            message_ja=f"{path} は RA の暗号鍵ファイルではありません",
            path=str(path),
        )
    return Vault(key, source=str(path))


def warn_if_shared(path: Path, what: str) -> None:
    """Log a warning when the secret file ``path`` can be read by other users (as ssh does).

    For secrets the operator provides (the link key's passphrase, the SMTP password): they are
    used all the same, since refusing would stop the RA for a matter of hygiene.
    """
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return  # reading it will say what is wrong
    if mode & 0o077:
        log.warning(
            "%s %s can be read by other users (mode %04o): chmod 600 %s", what, path, mode, path
        )


SESSION_KEY_HEADER = (
    "# Shomei RA web session key. It signs the session cookies of the web application:\n"
    "# keep it readable only by the RA's user. A new key signs everybody out.\n"
)


def ensure_session_key(path: Path) -> bytes:
    """The web application's session-signing key in ``path``, created (0600) if missing.

    Same file rules as the secrets key: one base64 line, refused when others can read it.
    Losing it only signs everybody out, so it is made at the first start when absent.
    """
    if not (path.exists() or path.is_symlink()):
        key = os.urandom(KEY_BYTES)
        text = SESSION_KEY_HEADER + base64.b64encode(key).decode("ascii") + "\n"
        try:
            write_new(path, text.encode("ascii"), mode=KEY_MODE)
        except Refused:
            pass  # another worker made it first: read theirs
        else:
            return key
    return load_vault(path).key
