"""The printed form of the issuance password (証明書発行用パスワード), shared by RA and signer.

The RA makes the password (:mod:`ra.people.passwords`): 12 characters of a 32-letter alphabet
without look-alikes, printed in groups of four, ``ABCD-EFGH-JKMN``.  That printed, canonical
form is the password of the office's PKCS#12 download.  People type it from a letter in lower
case, with spaces or without hyphens; the RA's portal and Shomei's own tools (``shomei sign
--p12``, ``shomei notice open``) accept those forms through :func:`canonical`.  Other programs
that open the PKCS#12 (the Windows and macOS certificate import, Firefox, openssl) need the
canonical form exactly, as docs/office-guide.md says.
"""

from __future__ import annotations

import unicodedata

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
GROUPS = 3
GROUP = 4
_IGNORED = " -\t\u3000\u2010\u2011\u2012\u2013\u2014\u2212\uff0d"  # spaces and dash look-alikes


def canonical(typed: str) -> str | None:
    """The canonical form of a typed issuance password, or None if it cannot be one.

    Case, spaces and hyphens do not matter, nor full-width forms (a Japanese input method
    left on types ``ＡＢＣＤ－…``; NFKC makes them ASCII).
    """
    compact = "".join(c for c in unicodedata.normalize("NFKC", typed).upper() if c not in _IGNORED)
    if len(compact) == GROUPS * GROUP and all(c in ALPHABET for c in compact):
        return "-".join(compact[i : i + GROUP] for i in range(0, len(compact), GROUP))
    return None
