"""Certificate serial numbers (RFC 5280 §4.1.2.2).

RFC 5280 §4.1.2.2 requires a serial number to be a positive integer, unique per issuing CA, of
at most 20 octets.  The CA/Browser Forum practice, which we follow because it makes a chosen
prefix attack on the signature hash impractical, is to put at least 64 bits from a CSPRNG in
it.  We use 127 random bits with bit 127 set: every serial is then exactly 128 bits long, so
its DER INTEGER is 17 octets (a leading zero octet keeps it positive), comfortably under the
20-octet limit, and it can never be zero or negative.  Uniqueness is finally guaranteed by the
CA ledger, which records each serial before anything is signed with it; the 127 random bits
make a collision there a practical impossibility (birthday bound about 2^63 serials).
"""

from __future__ import annotations

import secrets

from shomei.errors import MalformedInput

RANDOM_BITS = 127
# The largest value RFC 5280 allows in 20 octets while staying positive is 2^159 - 1.
UPPER_BOUND = 1 << 159


def new_serial() -> int:
    """A fresh serial: 127 CSPRNG bits with the top (128th) bit set, so 2^127 <= s < 2^128."""
    return (1 << RANDOM_BITS) | secrets.randbits(RANDOM_BITS)


def check_serial(serial: int) -> int:
    """Return ``serial`` if RFC 5280 §4.1.2.2 allows it (0 < s < 2^159), else raise.

    Raises :class:`shomei.errors.MalformedInput` for a serial that is not an ``int``, is zero
    or negative, or needs more than 20 octets.
    """
    if isinstance(serial, bool) or not isinstance(serial, int):
        raise MalformedInput(
            f"a serial number must be an integer, not {type(serial).__name__}",
            message_ja="シリアル番号は整数でなければなりません",
            serial=repr(serial),
        )
    if not 0 < serial < UPPER_BOUND:
        raise MalformedInput(
            "a serial number must be positive and at most 20 octets (RFC 5280 §4.1.2.2)",
            message_ja="シリアル番号は正の整数で 20 オクテット以内でなければなりません"
            "(RFC 5280 §4.1.2.2)",
            serial=str(serial),
        )
    return serial
