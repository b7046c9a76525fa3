"""Tests of ca.custody.shares: Shamir M-of-N splitting and the printable, checksummed form."""

from __future__ import annotations

import itertools
import os
import re

import pytest

from ca.custody.shares import Share, combine_shares, parse_share, split_secret
from shomei.errors import CustodyError, MalformedInput

SECRET = bytes(range(16))


def test_any_m_of_n_rebuilds_the_secret() -> None:
    secret = os.urandom(16)
    shares = split_secret(secret, m=3, n=5, key_id="root-2026")
    assert [s.index for s in shares] == [1, 2, 3, 4, 5]
    assert len({s.data for s in shares}) == 5
    for subset in itertools.combinations(shares, 3):
        assert combine_shares(subset) == secret
    assert combine_shares(shares) == secret  # more than M is fine too
    # Two shares of a 3-of-5 do not give the secret (and are refused before trying).
    with pytest.raises(CustodyError, match="needs 3 of 5"):
        combine_shares(shares[:2])


def test_encode_parse_round_trip_and_tolerance() -> None:
    share = split_secret(SECRET, m=2, n=3, key_id="issuing-2026")[1]
    text = share.encode()
    assert re.fullmatch(
        r"SHOMEI-SHARE-1:issuing-2026:2-of-3:2:([A-Z2-7]{4}-){6}[A-Z2-7]{2}:[A-Z2-7]{4}-[A-Z2-7]{4}",
        text,
    ), text
    assert parse_share(text) == share
    # As typed by a person: lower case, spaces, line breaks, group hyphens left out.
    head, value, checksum = text.rsplit(":", 2)
    sloppy = (
        f"  {head.lower()}:\n{value.replace('-', ' ').lower()}\n: {checksum.replace('-', '')}\n"
    )
    assert parse_share(sloppy) == share
    assert parse_share(text.replace(" ", "")) == share


def test_every_single_character_typo_is_caught() -> None:
    text = split_secret(SECRET, m=2, n=3, key_id="issuing-2026")[0].encode()
    for i, original in enumerate(text):
        # A replacement that is really different (not merely another case of the letter).
        replacement = "Q" if original.upper() != "Q" else "R"
        typo = text[:i] + replacement + text[i + 1 :]
        with pytest.raises(CustodyError, match=r"typo \(checksum mismatch\)") as info:
            parse_share(typo)
        assert "入力誤り" in info.value.message_ja
    # Dropped and doubled characters are caught as well.
    value_starts = text.rindex(":", 0, text.rindex(":")) + 1
    for i in range(len(text)):
        dropped = text[:i] + text[i + 1 :]
        if text[i] == "-" and i >= value_starts:
            continue  # a missing group hyphen in the value or checksum is harmless, by design
        with pytest.raises(CustodyError):
            parse_share(dropped)


def test_not_a_share() -> None:
    with pytest.raises(CustodyError, match="not a Shomei custodian share"):
        parse_share("hello world")
    with pytest.raises(CustodyError, match="must be text"):
        parse_share(b"SHOMEI")  # type: ignore[arg-type]


def test_repr_hides_the_value() -> None:
    share = split_secret(SECRET, m=2, n=3, key_id="k1")[0]
    assert share.data.hex() not in repr(share)
    assert "index=1" in repr(share)


def test_share_given_twice_is_refused() -> None:
    shares = split_secret(SECRET, m=2, n=3, key_id="k1")
    with pytest.raises(CustodyError, match="share 1 was given twice") as info:
        combine_shares([shares[0], parse_share(shares[0].encode())])
    assert "2 回入力" in info.value.message_ja
    forged = Share(key_id="k1", m=2, n=3, index=1, data=bytes(16))
    with pytest.raises(CustodyError, match="two different shares are numbered 1"):
        combine_shares([shares[0], forged])


def test_too_few_mixed_and_empty_are_refused() -> None:
    a = split_secret(SECRET, m=2, n=3, key_id="k1")
    b = split_secret(SECRET, m=2, n=3, key_id="k2")
    c = split_secret(SECRET, m=3, n=4, key_id="k1")
    with pytest.raises(CustodyError, match="1 share\\(s\\) given but key k1 needs 2 of 3"):
        combine_shares(a[:1])
    with pytest.raises(CustodyError, match="different keys: k1, k2"):
        combine_shares([a[0], b[1]])
    with pytest.raises(CustodyError, match="disagree about M-of-N"):
        combine_shares([a[0], c[1]])
    with pytest.raises(CustodyError, match="no shares"):
        combine_shares([])


def test_split_refuses_bad_arguments() -> None:
    with pytest.raises(MalformedInput, match="16 bytes"):
        split_secret(b"short", m=2, n=3, key_id="k1")
    with pytest.raises(MalformedInput, match="invalid threshold 4-of-3"):
        split_secret(SECRET, m=4, n=3, key_id="k1")
    with pytest.raises(MalformedInput, match="invalid threshold 0-of-3"):
        split_secret(SECRET, m=0, n=3, key_id="k1")
    with pytest.raises(MalformedInput, match="invalid key id"):
        split_secret(SECRET, m=2, n=3, key_id="Bad:Id")
    with pytest.raises(MalformedInput, match="invalid share"):
        Share(key_id="k1", m=2, n=3, index=4, data=SECRET)


def test_one_of_one_only() -> None:
    (share,) = split_secret(SECRET, m=1, n=1, key_id="dev")
    assert share.data == SECRET and combine_shares([share]) == SECRET
    with pytest.raises(MalformedInput, match="any one custodian could open the key alone"):
        split_secret(SECRET, m=1, n=3, key_id="dev")


def test_fingerprint_and_typed_check() -> None:
    import io

    from ca.custody.__main__ import main
    from ca.custody.shares import share_fingerprint

    shares = split_secret(SECRET, m=2, n=3, key_id="k1")
    prints = {share_fingerprint(s) for s in shares}
    assert len(prints) == 3 and all(re.fullmatch(r"[0-9a-f]{16}", p) for p in prints)
    out = io.StringIO()
    assert main(io.StringIO(shares[1].encode().lower() + "\n"), out) == 0
    assert f"share 2 (2-of-3), fingerprint {share_fingerprint(shares[1])}" in out.getvalue()
    assert shares[1].encode() not in out.getvalue().upper()
    out = io.StringIO()
    typo = shares[1].encode()[:-1] + ("A" if shares[1].encode()[-1] != "A" else "B")
    assert main(io.StringIO(typo), out) == 2
    assert "typo" in out.getvalue() and "入力誤り" in out.getvalue()


def test_full_width_input_is_folded() -> None:
    share = split_secret(SECRET, m=2, n=3, key_id="issuing-2026")[2]
    text = share.encode()
    # As typed with a Japanese input method left in full-width mode, long-vowel marks for
    # the hyphens between groups.
    head, value, checksum = text.rsplit(":", 2)
    full = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in head)
    typed = f"{full}：{value.replace('-', 'ー')}：{checksum}"
    assert parse_share(typed) == share
    # A non-ASCII character that does not fold is a typo, not a crash.
    with pytest.raises(CustodyError, match="typo"):
        parse_share(text[:-1] + "あ")
