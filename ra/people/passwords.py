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
and PKCS#12 files (the format itself is :mod:`shomei.issuance`, which the signer shares).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from shomei import issuance
from shomei.errors import Refused

Rng = Callable[[int], bytes]

# 32 symbols: a byte modulo 32 is uniform, so no rejection sampling is needed.
ISSUANCE_ALPHABET = issuance.ALPHABET
# 56 symbols for login passwords (no look-alikes either); rejection sampling below.
LOGIN_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
ISSUANCE_GROUPS = issuance.GROUPS
GROUP = issuance.GROUP
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
    return issuance.canonical(typed) or typed.strip()


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string) of ``password``."""
    return _HASHER.hash(password)


def cores() -> int:
    """The CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def hash_passwords(
    passwords: Sequence[str],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """The argon2id hashes of ``passwords``, in order, computed on every core.

    For bulk imports: one hash costs a few tenths of a CPU second by design.  argon2-cffi
    releases the GIL while it hashes, so threads use every core, with the same parameters
    as :func:`hash_password`.  ``progress`` is called (in this thread) with the number of
    hashes finished so far; when it raises, the hashes not yet started are dropped.
    """
    count = len(passwords)
    workers = max(1, min(workers or cores(), count))
    hashes: list[str] = [""] * count
    if workers == 1:
        for index, password in enumerate(passwords):
            hashes[index] = hash_password(password)
            if progress is not None:
                progress(index + 1)
        return hashes
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2") as pool:
        futures = {pool.submit(hash_password, pw): index for index, pw in enumerate(passwords)}
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                hashes[futures[future]] = future.result()
                if progress is not None:
                    progress(done)
        except BaseException:
            # Stopped (``progress`` raised, or the process is told to stop): do not hash the
            # rest first, which for a large import would take minutes.
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return hashes


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
