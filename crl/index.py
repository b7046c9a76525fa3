"""The revocation index: O(1) "is this serial revoked?" over a CRL's revokedCertificates.

RFC 5280 §5.1.2.6 lists revoked certificates as a SEQUENCE of ``(userCertificate,
revocationDate, crlEntryExtensions OPTIONAL)``.  A CRL of a federation that has run for years
holds a million of them, and the reception side asks about hundreds of thousands of
signatures a month, so this module walks the SEQUENCE once, by hand, and keeps only a dict
from serial number to the run of at most 128 entries that lists it.  Revocation dates and
reasons are decoded only when :meth:`RevocationIndex.lookup` finds a serial; the walk only
checks that each entry is well-formed DER of the right shape, and validates each distinct
``crlEntryExtensions`` encoding once (in a large CRL they repeat: a reason code is one of ten
encodings).
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from cryptography import x509

from crl import der
from shomei.errors import MalformedInput, Refused

SHOWN = 3  # serials named in a message; the rest are counted
OID_REASON_CODE = "2.5.29.21"
OID_HOLD_INSTRUCTION = "2.5.29.23"
OID_INVALIDITY_DATE = "2.5.29.24"
OID_CERTIFICATE_ISSUER = "2.5.29.29"

REASONS_BY_CODE: dict[int, x509.ReasonFlags] = {
    0: x509.ReasonFlags.unspecified,
    1: x509.ReasonFlags.key_compromise,
    2: x509.ReasonFlags.ca_compromise,
    3: x509.ReasonFlags.affiliation_changed,
    4: x509.ReasonFlags.superseded,
    5: x509.ReasonFlags.cessation_of_operation,
    6: x509.ReasonFlags.certificate_hold,
    9: x509.ReasonFlags.privilege_withdrawn,
    10: x509.ReasonFlags.aa_compromise,
    # 8, removeFromCRL, is only meaningful in a delta CRL (RFC 5280 §5.3.1) and is refused.
}

_EXT_CACHE_LIMIT = 1024  # distinct entry-extension encodings remembered while walking
# RFC 5280 §4.1.2.2 allows users to refuse longer serials; 126 keeps the index key one-to-one.
_MAX_SERIAL_OCTETS = 126


def some_serials(serials: Sequence[int], shown: int = SHOWN) -> str:
    """``a, b, c and 4 more``: a few serials (hex) named in a message, the rest counted."""
    named = ", ".join(format(s, "x") for s in serials[:shown])
    rest = len(serials) - shown
    return f"{named} and {rest} more" if rest > 0 else named


@dataclass(frozen=True, slots=True)
class Revocation:
    """One revoked certificate as a CRL lists it."""

    serial: int
    revoked_at: dt.datetime
    reason: x509.ReasonFlags | None


def parse_extensions(data: bytes, pos: int, end: int) -> list[tuple[str, bool, bytes]]:
    """``Extensions`` (RFC 5280 §4.1) at ``data[pos:end]`` as ``(oid, critical, value)``.

    Raises :class:`MalformedInput` for bad DER, an empty list or an extension that appears
    twice (§4.2: "a certificate MUST NOT include more than one instance").
    """
    start, stop = der.expect(data, pos, end, der.TAG_SEQUENCE, "Extensions")
    if stop != end:
        raise der.malformed("bytes after Extensions", "拡張の後に余分なデータがあります")
    if start == stop:
        raise der.malformed("empty Extensions", "拡張が空です")
    found: list[tuple[str, bool, bytes]] = []
    while start < stop:
        e_start, e_end = der.expect(data, start, stop, der.TAG_SEQUENCE, "Extension")
        o_start, o_end = der.expect(data, e_start, e_end, der.TAG_OID, "extnID")
        oid = der.decode_oid(bytes(data[o_start:o_end]))
        critical = False
        tag, v_start, v_end = der.read_header(data, o_end, e_end)
        if tag == der.TAG_BOOLEAN:
            # DER: a BOOLEAN is one octet, FF for TRUE, and the DEFAULT FALSE is never encoded.
            if data[v_start:v_end] != b"\xff":
                raise der.malformed("critical flag not DER TRUE", "critical の符号化が不正です")
            critical = True
            tag, v_start, v_end = der.read_header(data, v_end, e_end)
        if tag != der.TAG_OCTET_STRING or v_end != e_end:
            raise der.malformed(f"extension {oid} has no extnValue", "拡張の値が不正です")
        if any(oid == other for other, _, _ in found):
            raise der.malformed(f"extension {oid} appears twice", "同じ拡張が重複しています")
        found.append((oid, critical, bytes(data[v_start:v_end])))
        start = e_end
    return found


def entry_reason(blob: bytes) -> x509.ReasonFlags | None:
    """Check one entry's ``crlEntryExtensions`` (RFC 5280 §5.3) and return its reason code.

    Indirect CRLs (certificateIssuer, §5.3.3) are refused; an unknown critical extension makes
    the CRL unusable (§5.3: the CRL must not be used), so it is reported as malformed.
    """
    reason: x509.ReasonFlags | None = None
    for oid, critical, value in parse_extensions(blob, 0, len(blob)):
        if oid == OID_REASON_CODE:
            if len(value) != 3 or value[0] != der.TAG_ENUMERATED or value[1] != 1:
                raise der.malformed("bad reasonCode", "失効理由コードの形式が不正です")
            if value[2] not in REASONS_BY_CODE:
                raise der.malformed(
                    f"reasonCode {value[2]} is not allowed in a complete CRL",
                    "この CRL では使えない失効理由コードです",
                )
            reason = REASONS_BY_CODE[value[2]]
        elif oid == OID_CERTIFICATE_ISSUER:
            raise Refused(
                "indirect CRLs (entries with certificateIssuer) are not supported",
                message_ja="間接 CRL (certificateIssuer を含む CRL) には対応していません",
            )
        elif oid == OID_INVALIDITY_DATE:
            tag, _start, stop = der.read_header(value, 0, len(value))
            if stop != len(value) or tag != der.TAG_GENERALIZED_TIME:
                raise der.malformed("bad invalidityDate", "invalidityDate の形式が不正です")
        elif oid == OID_HOLD_INSTRUCTION:
            pass  # non-critical by §5.3.2 and without meaning for a revocation check
        elif critical:
            raise der.malformed(
                f"unknown critical entry extension {oid} (RFC 5280 §5.3)",
                "未知の重要 (critical) なエントリ拡張があります",
                oid=oid,
            )
    return reason


def serial_key(serial: int) -> int:
    """The index key of ``serial``: its DER INTEGER length octet and content, read as one int.

    Computed from DER bytes in C (``int.from_bytes`` of the regex group) while walking, and
    from the serial by arithmetic when asked.  The map is one-to-one because DER content is
    minimal and the length octet (1..126) sits above the content.
    """
    size = ((serial if serial >= 0 else ~serial).bit_length() + 8) >> 3
    width = size << 3
    return (size << width) | (serial & ((1 << width) - 1))


def key_serial(key: int) -> int:
    """The serial of an index key (the inverse of :func:`serial_key`)."""
    width = ((key.bit_length() - 1) >> 3) << 3
    value = key & ((1 << width) - 1)
    return value - (1 << width) if value >> (width - 1) else value


# Entries per run: the index maps a serial to its run, and a lookup that finds a serial scans
# that run for the entry; 128 keeps that at microseconds and the walk's loop short.
RUN = 128
# Serial lengths in the order the regex tries them: the CA's 17 octets (128-bit serials) and
# other common lengths first.
SIZES = (17, 9, 16, 8, 20, 19, 18, 15, 10, 11, 12, 13, 14, 7, 6, 5, 4, 3, 2, 1, 21)


def _fast_pattern() -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    """Regexes for the common entry shapes, checked byte for byte in C.

    An entry of the common shape is ``30 L 02 s <serial> <time> [reasonCode]`` with a short
    serial (up to 21 octets), a UTCTime or GeneralizedTime, and either no extensions or only a
    reasonCode.  ``CHUNK`` matches up to :data:`RUN` such entries in a row, each alternative
    carrying its exact length octet ``L`` (so a wrong length cannot pass), a minimal serial
    INTEGER and digits in the time.  ``SERIAL`` then finds each entry of a checked run and
    captures the serial's length octet and content (the index key).  Anything else goes to
    the general decoder, one entry at a time.
    """
    times = {15: rb"\x17\x0d[0-9]{12}Z", 17: rb"\x18\x0f[0-9]{14}Z"}
    reason = rb"\x30\x0c\x30\x0a\x06\x03\x55\x1d\x15\x04\x03\x0a\x01[\x00-\x06\x09\x0a]"
    # A minimal INTEGER: no 00 before a byte < 80, no FF before a byte >= 80 (X.690 §8.3.2).
    first_two = rb"(?:[\x01-\xfe].|\x00[\x80-\xff]|\xff[\x00-\x7f])"
    branches = []
    for size in SIZES:
        serial = b"." if size == 1 else first_two + (b".{%d}" % (size - 2) if size > 2 else b"")
        for time_length, time in times.items():
            for ext_length, ext in ((0, b""), (14, reason)):
                length = 2 + size + time_length + ext_length
                branches.append(re.escape(bytes((length, 2, size))) + serial + time + ext)
    chunk = rb"(?:\x30(?:" + b"|".join(branches) + rb")){1,%d}+" % RUN
    serials = b"|".join(re.escape(bytes((size,))) + b".{%d}" % size for size in SIZES)
    return (
        re.compile(chunk, re.DOTALL),
        re.compile(rb"\x30[\x00-\x7f]\x02(" + serials + rb")", re.DOTALL),
    )


CHUNK, SERIAL = _fast_pattern()


Run = tuple[int, int, bool]  # (start, end, single): a checked run, or one general entry


def walk_entries(data: bytes, start: int, end: int) -> tuple[dict[int, int], list[Run]]:
    """Index the revokedCertificates content ``data[start:end]``.

    Returns ``(keys, runs)``: ``keys`` maps the key (:func:`serial_key`) of every serial to the
    number of the run that lists it, ``runs`` gives each run's bounds.  This is the hot loop of
    CRL loading, so the per-entry work runs in C: ``CHUNK`` checks a run of common-shape
    entries, ``SERIAL.findall`` finds them again (in a checked run it can match only at entry
    starts: times are digits and ``Z``, the reasonCode encoding holds no ``30 ?? 02``), and
    ``map``/``zip``/``dict.update`` fill the dict without Python code per entry.  Every value
    of a run is the same int object, so the values cost no memory.  Entries of another shape
    are decoded one by one by the strict general reader and get a run of their own.  A serial
    listed twice keeps its last entry.
    """
    keys: dict[int, int] = {}
    runs: list[Run] = []
    seen_extensions: dict[bytes, object] = {}
    from_bytes = int.from_bytes
    big: Iterator[Literal["big"]] = itertools.repeat("big")
    repeat = itertools.repeat
    pos = start
    while pos < end:
        checked = CHUNK.match(data, pos, end)
        if checked is not None:
            stop = checked.end()
            found = map(from_bytes, SERIAL.findall(data, pos, stop), big)
            keys.update(zip(found, repeat(len(runs)), strict=False))  # repeat is endless
            runs.append((pos, stop, False))
            pos = stop
            continue
        key, stop, blob = _slow_entry(data, pos, end)
        if blob and blob not in seen_extensions:
            entry_reason(blob)  # raises for anything the CRL must not be used with
            if len(seen_extensions) >= _EXT_CACHE_LIMIT:
                seen_extensions.clear()
            seen_extensions[blob] = None
        keys[key] = len(runs)
        runs.append((pos, stop, True))
        pos = stop
    return keys, runs


def offset_in_run(data: bytes, run: Run, key: int) -> int:
    """Where the (last) entry of ``key`` starts inside ``run``."""
    start, stop, single = run
    if single:
        return start
    needle = key.to_bytes((key.bit_length() + 7) >> 3, "big")
    found = SERIAL.findall(data, start, stop)
    i = len(found) - 1 - found[::-1].index(needle)
    # Skip the i entries before it; in a checked run every length is one short-form octet.
    offset = start
    for _ in range(i):
        offset += data[offset + 1] + 2
    return offset


def _slow_entry(data: bytes, pos: int, end: int) -> tuple[int, int, bytes]:
    """Decode one entry with the general strict DER reader: ``(key, end, extensions)``."""
    e_start, e_end = der.expect(data, pos, end, der.TAG_SEQUENCE, "revoked entry")
    s_start, s_end = der.expect(data, e_start, e_end, der.TAG_INTEGER, "userCertificate")
    serial = der.decode_integer(data[s_start:s_end])
    if s_end - s_start > _MAX_SERIAL_OCTETS:
        raise der.malformed(
            f"serial of {s_end - s_start} octets (more than {_MAX_SERIAL_OCTETS})",
            "シリアル番号が長すぎます",
            offset=pos,
        )
    tag, t_start, t_end = der.read_header(data, s_end, e_end)
    der.decode_time(tag, data[t_start:t_end])
    return serial_key(serial), e_end, data[t_end:e_end]


def decode_entry(data: bytes, pos: int) -> Revocation:
    """The full :class:`Revocation` of the entry at ``pos`` (already checked by the walk)."""
    e_start, e_end = der.expect(data, pos, len(data), der.TAG_SEQUENCE, "revoked entry")
    s_start, s_end = der.expect(data, e_start, e_end, der.TAG_INTEGER, "userCertificate")
    tag, t_start, t_end = der.read_header(data, s_end, e_end)
    when = der.decode_time(tag, data[t_start:t_end])
    reason = entry_reason(data[t_end:e_end]) if t_end < e_end else None
    return Revocation(der.decode_integer(data[s_start:s_end]), when, reason)


class RevocationIndex:
    """Which serials a CRL revokes: O(1) membership, details decoded on demand.

    Holds the CRL's DER (the details live there), a dict from serial key to run, and the runs'
    bounds.  For a million entries that is about 90 MB, where a set of cryptography's
    RevokedCertificate objects or a list of parsed entries takes several times more.
    """

    __slots__ = ("_der", "_keys", "_runs")

    def __init__(self, der_bytes: bytes, keys: dict[int, int], runs: list[Run]) -> None:
        self._der = der_bytes
        self._keys = keys
        self._runs = runs

    def __contains__(self, serial: object) -> bool:
        return type(serial) is int and serial_key(serial) in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[int]:
        """The revoked serials, in the order the CRL lists them."""
        return map(key_serial, self._keys)

    def lookup(self, serial: int) -> Revocation | None:
        """The revocation of ``serial``, or None when the CRL does not list it.

        Finding the serial is one dict lookup; reading its details scans its run of at most
        :data:`RUN` entries (in C) and decodes the one entry.
        """
        if type(serial) is not int:
            return None
        key = serial_key(serial)
        run = self._keys.get(key)
        if run is None:
            return None
        try:
            return decode_entry(self._der, offset_in_run(self._der, self._runs[run], key))
        except MalformedInput:
            raise
        except (ValueError, IndexError) as exc:  # cannot happen after the walk; never leak
            raise der.malformed("unreadable entry", "エントリを読めません", serial=serial) from exc
