"""Serial numbers: CSPRNG, positive, at most 20 octets, unique (RFC 5280 §4.1.2.2)."""

from __future__ import annotations

import pytest
from asn1crypto import core

from ca.serials import UPPER_BOUND, check_serial, new_serial
from shomei.errors import MalformedInput


def test_hundred_thousand_serials_unique_and_in_range() -> None:
    serials = [new_serial() for _ in range(100_000)]
    assert len(set(serials)) == len(serials)
    assert all(0 < s < UPPER_BOUND == 2**159 for s in serials)
    # The top bit is fixed, so every serial has exactly 128 bits and 127 of them are random.
    assert {s.bit_length() for s in serials} == {128}
    # The random bits really vary: every one of the 127 low bits is seen both set and clear.
    ones = 0
    zeros = 0
    for s in serials[:2000]:
        ones |= s
        zeros |= ~s
    assert ones & ((1 << 127) - 1) == (1 << 127) - 1
    assert zeros & ((1 << 127) - 1) == (1 << 127) - 1


def test_serial_der_fits_twenty_octets() -> None:
    for _ in range(1000):
        encoded = core.Integer(new_serial()).contents
        assert len(encoded) <= 20
        assert encoded[0] < 0x80  # positive in two's complement
    assert check_serial(new_serial()) > 0


@pytest.mark.parametrize("bad", [0, -1, 2**159, 2**160, True, "12", 1.0])
def test_check_serial_refuses(bad: object) -> None:
    with pytest.raises(MalformedInput) as info:
        check_serial(bad)  # type: ignore[arg-type]
    assert info.value.message_ja


def test_check_serial_accepts_bounds() -> None:
    assert check_serial(1) == 1
    assert check_serial(2**159 - 1) == 2**159 - 1
    assert len(core.Integer(2**159 - 1).contents) == 20
