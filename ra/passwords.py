"""Passwords of RA accounts: generation (human-typable), argon2id hashing, checking.

Two secrets per portal account: the login password and the issuance password
(証明書発行用パスワード), which is printed on the notification letter, typed by a person and
also protects the office's private key and its PKCS#12 download.  Both are generated here
from injected randomness and shown once; only their argon2id hashes (RFC 9106, through
argon2-cffi) are stored.

The issuance password has 12 characters from a 32-letter alphabet without look-alikes (no
0/O, no 1/I; typed input is upper-cased), shown in groups of four (``ABCD-EFGH-JKMN``, 60
bits).  :func:`normalize` forgives what people do when they type it from a letter (lower
case, spaces, missing hyphens), so the canonical printed form is the one that protects keys
and PKCS#12 files.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shomei.errors import Refused

Rng = Callable[[int], bytes]

# 32 symbols: a byte modulo 32 is uniform, so no rejection sampling is needed.
ISSUANCE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
# 56 symbols for login passwords (no look-alikes either); rejection sampling below.
LOGIN_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ISSUANCE_GROUPS = 3
GROUP = 4
LOGIN_LENGTH = 14

_HASHER = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 "low memory" defaults


class WrongPassword(Refused):
    """A password did not match; nothing was changed or revealed."""

    code = "wrong_password"


def _pick(alphabet: str, count: int, rng: Rng) -> str:
    limit = 256 - 256 % len(alphabet)  # reject the top bytes so every symbol is equally likely
    out: list[str] = []
    while len(out) < count:
        for byte in rng(count):
            if byte < limit and len(out) < count:
                out.append(alphabet[byte % len(alphabet)])
    return "".join(out)


def new_issuance_password(rng: Rng = secrets.token_bytes) -> str:
    """A fresh issuance password in its canonical printed form, e.g. ``ABCD-EFGH-JKMN``."""
    raw = _pick(ISSUANCE_ALPHABET, ISSUANCE_GROUPS * GROUP, rng)
    return "-".join(raw[i : i + GROUP] for i in range(0, len(raw), GROUP))


def new_login_password(rng: Rng = secrets.token_bytes) -> str:
    """A fresh login password (14 characters, about 81 bits)."""
    return _pick(LOGIN_ALPHABET, LOGIN_LENGTH, rng)


def normalize(typed: str) -> str:
    """The canonical form of a typed issuance password (upper case, grouped by hyphens).

    Input that cannot be an issuance password is returned stripped but otherwise unchanged,
    so it simply fails to match.
    """
    compact = "".join(c for c in typed.upper() if c not in " -\t\u3000")
    if len(compact) == ISSUANCE_GROUPS * GROUP and all(c in ISSUANCE_ALPHABET for c in compact):
        return "-".join(compact[i : i + GROUP] for i in range(0, len(compact), GROUP))
    return typed.strip()


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of ``password``."""
    return _HASHER.hash(password)


def check_password(stored_hash: str | None, password: str, *, what: str, what_ja: str) -> None:
    """Raise :class:`WrongPassword` unless ``password`` matches ``stored_hash``.

    ``what``/``what_ja`` name the password in the message ("issuance password",
    "証明書発行用パスワード").  An account without a stored hash never matches.
    """
    if stored_hash:
        try:
            if _HASHER.verify(stored_hash, password):
                return
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass
    raise WrongPassword(
        f"the {what} is not correct",
        message_ja=f"{what_ja}が正しくありません",
    )


def check_issuance_password(stored_hash: str | None, typed: str) -> str:
    """Check a typed issuance password; return its canonical form (what protects keys)."""
    canonical = normalize(typed)
    check_password(
        stored_hash, canonical, what="issuance password", what_ja="証明書発行用パスワード"
    )
    return canonical
