"""crl.index: the serial keys, the fast walk against the general decoder, and a big CRL."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from cryptography import x509

from crl import der
from crl.builder import RevokedEntry, build_crl, encode_entry
from crl.index import RUN, RevocationIndex, key_serial, serial_key, walk_entries
from crl.reader import load_crl
from shomei.errors import MalformedInput
from shomei.keys import SoftwareKey
from tests.pki import NOW


def test_serial_keys_are_one_to_one() -> None:
    rnd = random.Random(3)
    serials = [0, 1, -1, 127, 128, -128, -129, 255, 256, (1 << 159) - 1, -(1 << 159)]
    serials += [rnd.getrandbits(rnd.randrange(1, 1000)) * rnd.choice((1, -1)) for _ in range(2000)]
    keys = {serial_key(s) for s in set(serials)}
    assert len(keys) == len(set(serials))
    assert all(key_serial(serial_key(s)) == s for s in serials)
    # The key is the DER INTEGER's length octet and content read as one number.
    for s in (5, 128, -128, 1 << 100):
        tlv = der.tlv(
            der.TAG_INTEGER,
            s.to_bytes((s.bit_length() + 8) // 8 if s >= 0 else 1, "big", signed=True),
        )
        assert serial_key(s) == int.from_bytes(tlv[1:], "big")


def _entries_der(entries: list[bytes]) -> bytes:
    return b"".join(entries)


def test_fast_and_general_paths_agree() -> None:
    """The same entries, walked as one run and one at a time (a bad entry between them)."""
    rnd = random.Random(5)
    entries = [
        encode_entry(
            RevokedEntry(
                rnd.getrandbits(rnd.randrange(1, 160)) | 1,
                NOW - dt.timedelta(seconds=rnd.randrange(10**9)),
                rnd.choice([None, x509.ReasonFlags.superseded]),
            )
        )
        for _ in range(9000)
    ]
    data = _entries_der(entries)
    fast, fast_runs = walk_entries(data, 0, len(data))
    assert len(fast_runs) == -(-9000 // RUN)  # all in checked runs
    # An invalidityDate extension on every other entry forces the general decoder there.
    invalidity = der.sequence(
        der.sequence(der.encode_oid("2.5.29.24"), der.tlv(4, b"\x18\x0f20250101000000Z"))
    )
    mixed_parts = []
    for i, e in enumerate(entries):
        if i % 2:
            start, end = der.expect(e, 0, len(e), der.TAG_SEQUENCE, "e")
            if e[-14:-12] != b"\x30\x0c":  # no reasonCode: add the invalidityDate
                e = der.sequence(e[start:end] + invalidity)
        mixed_parts.append(e)
    mixed = _entries_der(mixed_parts)
    slow, slow_runs = walk_entries(mixed, 0, len(mixed))
    assert list(fast) == list(slow)
    assert sum(single for _, _, single in slow_runs) > 2000  # the general decoder did run
    for data_, keys, runs in ((data, fast, fast_runs), (mixed, slow, slow_runs)):
        index = RevocationIndex(data_, keys, runs)
        for key in list(keys)[::7]:
            serial = key_serial(key)
            assert index.lookup(serial).serial == serial  # type: ignore[union-attr]


def test_walk_rejects_a_wrong_entry_length() -> None:
    entry = bytearray(encode_entry(RevokedEntry(5, NOW)))
    entry[1] += 1  # claims one more octet than it has
    data = bytes(entry) + encode_entry(RevokedEntry(6, NOW))
    with pytest.raises(MalformedInput):
        walk_entries(data, 0, len(data))


@pytest.mark.slow
def test_hundred_thousand_entries(issuing: x509.Certificate, issuing_key: SoftwareKey) -> None:
    rnd = random.Random(8)
    serials = list({rnd.getrandbits(128) | (1 << 64) for _ in range(100_000)})
    when = NOW - dt.timedelta(days=1)
    data = build_crl(
        issuer=issuing,
        key=issuing_key,
        number=100,
        this_update=NOW - dt.timedelta(hours=1),
        next_update=NOW + dt.timedelta(days=1),
        entries=[RevokedEntry(s, when, x509.ReasonFlags.key_compromise) for s in serials],
    )
    theirs = {r.serial_number for r in x509.load_der_x509_crl(data)}
    loaded = load_crl(data, issuer=issuing, now=NOW)
    assert len(loaded.index) == len(serials) == len(theirs)
    assert set(loaded.index) == theirs
    probes = serials[:500] + [rnd.getrandbits(128) for _ in range(500)]
    assert [p in loaded.index for p in probes] == [p in theirs for p in probes]
    found = loaded.index.lookup(serials[-1])
    assert found is not None and found.revoked_at == when
