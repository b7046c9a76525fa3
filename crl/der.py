"""Small, careful DER helpers for CRLs (ITU-T X.690 §8 and §10, as profiled by RFC 5280).

The CRL builder and reader of this package encode and walk DER by hand, because the general
ASN.1 libraries are far too slow for CRLs with a million entries (see ``docs/crl.md``).  Only
the few forms a CRL needs are supported: single-byte tags, definite lengths in their shortest
form (X.690 §10.1), INTEGER (§8.3, minimal two's complement), OBJECT IDENTIFIER (§8.19), and the
two time types RFC 5280 §5.1.2.4 allows (UTCTime until 2049, GeneralizedTime from 2050, both in
UTC with whole seconds).  Every decoding error raises :class:`shomei.errors.MalformedInput`.
"""

from __future__ import annotations

import datetime as dt

from shomei.errors import MalformedInput

UTC = dt.UTC

TAG_BOOLEAN = 0x01
TAG_INTEGER = 0x02
TAG_BIT_STRING = 0x03
TAG_OCTET_STRING = 0x04
TAG_NULL = 0x05
TAG_OID = 0x06
TAG_ENUMERATED = 0x0A
TAG_UTC_TIME = 0x17
TAG_GENERALIZED_TIME = 0x18
TAG_SEQUENCE = 0x30
TAG_CONTEXT_0 = 0xA0


def malformed(what: str, ja: str, **fields: object) -> MalformedInput:
    """The error for a DER structure that breaks the rules (one place builds the message)."""
    return MalformedInput(
        f"malformed CRL: {what}", message_ja=f"CRL の形式が正しくありません: {ja}", **fields
    )


# -- encoding ---------------------------------------------------------------------------------


def encode_length(length: int) -> bytes:
    """The DER length octets for ``length`` (short form below 128, else minimal long form)."""
    if length < 0:
        raise MalformedInput("a DER length cannot be negative", message_ja="DER の長さが負です")
    if length < 0x80:
        return bytes((length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(size),)) + size


def tlv(tag: int, content: bytes) -> bytes:
    """One DER element: tag, length, content."""
    return bytes((tag,)) + encode_length(len(content)) + content


def sequence(*parts: bytes) -> bytes:
    """A SEQUENCE of already encoded elements."""
    return tlv(TAG_SEQUENCE, b"".join(parts))


def integer_content(value: int) -> bytes:
    """The content octets of a non-negative INTEGER (X.690 §8.3: minimal, sign bit clear)."""
    # One more bit than the magnitude needs keeps the sign bit clear: 0x80 becomes 00 80.
    return value.to_bytes((value.bit_length() + 8) // 8, "big")


def encode_integer(value: int) -> bytes:
    """A DER INTEGER of a non-negative ``value``."""
    if value < 0:
        raise MalformedInput(
            "negative INTEGERs are not used in CRLs", message_ja="CRL では負の整数を使いません"
        )
    return tlv(TAG_INTEGER, integer_content(value))


def encode_oid(dotted: str) -> bytes:
    """A DER OBJECT IDENTIFIER from its dotted form, e.g. ``"2.5.29.20"`` (X.690 §8.19)."""
    try:
        arcs = [int(a) for a in dotted.split(".")]
    except ValueError:
        arcs = []
    if len(arcs) < 2 or min(arcs) < 0 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise MalformedInput(
            f"not a dotted OBJECT IDENTIFIER: {dotted!r}", message_ja="OID の形式が不正です"
        )
    first = [arcs[0] * 40 + arcs[1]]
    out = bytearray()
    for arc in first + arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(TAG_OID, bytes(out))


_TWO_DIGITS = [b"%02d" % i for i in range(100)]
_UTC_TIME = b"\x17\x0d%b%b%b%b%b%bZ"
_GENERALIZED_TIME = b"\x18\x0f%b%b%b%b%b%b%bZ"


def encode_time(value: dt.datetime) -> bytes:
    """RFC 5280 §5.1.2.4: UTCTime for 1950-2049, GeneralizedTime otherwise; UTC, whole seconds.

    ``value`` must be timezone-aware; fractional seconds are dropped, because the RFC forbids
    them (the product's clock already works in whole seconds).  This runs once per CRL entry,
    so the digits come from a table instead of string formatting.
    """
    if value.tzinfo is not UTC:
        if value.tzinfo is None or value.utcoffset() is None:
            raise MalformedInput(
                "times in a CRL must be timezone-aware",
                message_ja="CRL の時刻にはタイムゾーンが必要です",
            )
        value = value.astimezone(UTC)
    two = _TWO_DIGITS
    year = value.year
    if 1950 <= year < 2050:
        return _UTC_TIME % (
            two[year % 100],
            two[value.month],
            two[value.day],
            two[value.hour],
            two[value.minute],
            two[value.second],
        )
    return _GENERALIZED_TIME % (
        two[year // 100],
        two[year % 100],
        two[value.month],
        two[value.day],
        two[value.hour],
        two[value.minute],
        two[value.second],
    )


# -- decoding ---------------------------------------------------------------------------------


def read_header(data: bytes | memoryview, pos: int, end: int) -> tuple[int, int, int]:
    """Read the tag and length at ``pos``; return ``(tag, content_start, content_end)``.

    Strict DER: a single-byte tag, a definite length in its shortest form, and content that
    fits before ``end``.
    """
    if pos + 2 > end:
        raise malformed("truncated element", "要素が途中で切れています", offset=pos)
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise malformed("multi-byte tags are not used in CRLs", "未対応のタグです", offset=pos)
    first = data[pos + 1]
    pos += 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise malformed("indefinite or oversized length", "長さの符号化が不正です", offset=pos)
        if pos + count > end:
            raise malformed("truncated length", "長さが途中で切れています", offset=pos)
        length = int.from_bytes(data[pos : pos + count], "big")
        if length < 0x80 or data[pos] == 0:
            raise malformed(
                "length not in its shortest form", "長さが最短形式ではありません", offset=pos
            )
        pos += count
    if pos + length > end:
        raise malformed("truncated content", "内容が途中で切れています", offset=pos)
    return tag, pos, pos + length


def expect(data: bytes | memoryview, pos: int, end: int, tag: int, what: str) -> tuple[int, int]:
    """Read an element that must carry ``tag``; return its ``(content_start, content_end)``."""
    got, start, stop = read_header(data, pos, end)
    if got != tag:
        raise malformed(
            f"{what}: expected tag 0x{tag:02x}, found 0x{got:02x}",
            f"{what} のタグが不正です",
            offset=pos,
        )
    return start, stop


def decode_integer(content: bytes) -> int:
    """A DER INTEGER's value (X.690 §8.3.2: no redundant leading 00 or FF octets)."""
    if not content:
        raise malformed("empty INTEGER", "空の INTEGER です")
    if len(content) > 1 and (
        (content[0] == 0 and content[1] < 0x80) or (content[0] == 0xFF and content[1] >= 0x80)
    ):
        raise malformed("INTEGER not in its shortest form", "INTEGER が最短形式ではありません")
    return int.from_bytes(content, "big", signed=True)


def decode_time(tag: int, content: bytes) -> dt.datetime:
    """A UTCTime or GeneralizedTime in the form RFC 5280 §5.1.2.4 requires, as aware UTC."""
    if tag == TAG_UTC_TIME and len(content) == 13:
        digits, year_digits = content[:12], 2
    elif tag == TAG_GENERALIZED_TIME and len(content) == 15:
        digits, year_digits = content[:14], 4
    else:
        raise malformed("time is not UTCTime/GeneralizedTime in UTC", "時刻の形式が不正です")
    if content[-1:] != b"Z" or not digits.isdigit():
        raise malformed("time is not in the YYMMDDHHMMSSZ form", "時刻の形式が不正です")
    year = int(digits[:year_digits])
    if year_digits == 2:
        # RFC 5280 §4.1.2.5.1: YY >= 50 is 19YY, otherwise 20YY.
        year += 1900 if year >= 50 else 2000
    rest = digits[year_digits:]
    try:
        return dt.datetime(
            year,
            int(rest[0:2]),
            int(rest[2:4]),
            int(rest[4:6]),
            int(rest[6:8]),
            int(rest[8:10]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise malformed("time out of range", "時刻の値が範囲外です") from exc


def decode_oid(content: bytes) -> str:
    """The dotted form of an OBJECT IDENTIFIER's content (X.690 §8.19)."""
    if not content or content[-1] & 0x80:
        raise malformed("bad OBJECT IDENTIFIER", "OID の形式が不正です")
    arcs: list[int] = []
    value = 0
    fresh = True
    for byte in content:
        if fresh and byte == 0x80:
            raise malformed("OBJECT IDENTIFIER not minimal", "OID が最短形式ではありません")
        value = (value << 7) | (byte & 0x7F)
        fresh = not byte & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])
