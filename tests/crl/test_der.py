"""crl.der: the small DER encoders and the strict decoders, against known encodings."""

from __future__ import annotations

import datetime as dt

import pytest

from crl import der
from shomei.errors import MalformedInput

JST = dt.timezone(dt.timedelta(hours=9))


@pytest.mark.parametrize(
    ("length", "encoded"),
    [(0, "00"), (127, "7f"), (128, "8180"), (255, "81ff"), (256, "820100"), (65536, "83010000")],
)
def test_lengths(length: int, encoded: str) -> None:
    assert der.encode_length(length).hex() == encoded
    element = b"\x04" + bytes.fromhex(encoded) + b"x" * length
    assert der.read_header(element, 0, len(element)) == (4, 1 + len(encoded) // 2, len(element))


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "020100"), (1, "020101"), (127, "02017f"), (128, "02020080"), (256, "02020100")],
)
def test_integers(value: int, encoded: str) -> None:
    assert der.encode_integer(value).hex() == encoded
    assert der.decode_integer(bytes.fromhex(encoded)[2:]) == value


def test_integer_errors() -> None:
    with pytest.raises(MalformedInput):
        der.encode_integer(-1)
    with pytest.raises(MalformedInput):
        der.encode_length(-1)
    for content in (b"", b"\x00\x05", b"\xff\x80"):
        with pytest.raises(MalformedInput):
            der.decode_integer(content)
    assert der.decode_integer(b"\xff\x7f") == -129


def test_oids_round_trip() -> None:
    for dotted, encoded in [
        ("2.5.29.20", "0603551d14"),
        ("1.2.840.113549.1.1.11", "06092a864886f70d01010b"),
    ]:
        assert der.encode_oid(dotted).hex() == encoded
        assert der.decode_oid(bytes.fromhex(encoded)[2:]) == dotted
    for dotted in ("", "2", "1.40", "3.1", "1.2.x", "1.-2"):
        with pytest.raises(MalformedInput):
            der.encode_oid(dotted)
    for bad in (b"", b"\x55\x81", b"\x55\x80\x01"):
        with pytest.raises(MalformedInput):
            der.decode_oid(bad)


def test_times() -> None:
    utc = dt.datetime(2026, 4, 1, 0, 0, 5, 999, tzinfo=dt.UTC)
    assert der.encode_time(utc) == b"\x17\x0d260401000005Z"
    assert der.encode_time(utc.astimezone(JST)) == b"\x17\x0d260401000005Z"
    assert der.encode_time(dt.datetime(1950, 1, 1, tzinfo=dt.UTC)) == b"\x17\x0d500101000000Z"
    assert der.encode_time(dt.datetime(2050, 1, 1, tzinfo=dt.UTC)) == b"\x18\x0f20500101000000Z"
    assert der.encode_time(dt.datetime(1949, 12, 31, tzinfo=dt.UTC))[:2] == b"\x18\x0f"
    assert der.decode_time(0x17, b"260401000005Z") == utc.replace(microsecond=0)
    assert der.decode_time(0x17, b"991231235959Z").year == 1999
    assert der.decode_time(0x18, b"20500101000000Z") == dt.datetime(2050, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("tag", "content"),
    [
        (0x17, b"2604010000Z"),  # no seconds
        (0x17, b"260401000005+"),
        (0x17, b"260431000005Z"),  # 31 April
        (0x18, b"20500101000000.5Z"),
        (0x18, b"260401000005Z"),  # a UTCTime body under the GeneralizedTime tag
        (0x04, b"260401000005Z"),
    ],
)
def test_time_errors(tag: int, content: bytes) -> None:
    with pytest.raises(MalformedInput):
        der.decode_time(tag, content)


def test_naive_time_is_refused() -> None:
    with pytest.raises(MalformedInput):
        der.encode_time(dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "element",
    [
        b"",
        b"\x30",
        b"\x30\x05abc",
        b"\x30\x80",
        b"\x30\x81\x05abcde",
        b"\x30\x82\x00\x80" + b"x" * 128,
        b"\x30\x85\x01\x00\x00\x00\x00",
        b"\x1f\x01\x00",
    ],
)
def test_header_errors(element: bytes) -> None:
    with pytest.raises(MalformedInput):
        der.read_header(element, 0, len(element))


def test_expect_checks_the_tag() -> None:
    assert der.expect(b"\x02\x01\x05", 0, 3, der.TAG_INTEGER, "n") == (2, 3)
    with pytest.raises(MalformedInput, match="expected tag 0x30"):
        der.expect(b"\x02\x01\x05", 0, 3, der.TAG_SEQUENCE, "n")


def test_helpers_compose() -> None:
    assert (
        der.sequence(der.encode_integer(1), der.tlv(der.TAG_NULL, b""))
        == b"\x30\x05\x02\x01\x01\x05\x00"
    )
