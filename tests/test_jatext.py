"""Japanese display and input helpers (shomei.jatext)."""

from __future__ import annotations

import ast
import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import pytest

import shomei.jatext
from shomei.errors import MalformedInput
from shomei.jatext import (
    fold_kana,
    fold_user_id,
    format_date,
    format_datetime,
    format_wareki,
    format_yen,
    japanese_era,
    kana_equal,
)

UTC = dt.UTC


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


# --- dates -----------------------------------------------------------------------------------


def test_format_date_is_the_japan_calendar_day() -> None:
    assert format_date(utc(2026, 12, 1, 0, 30)) == "2026/12/01"
    # 15:00 UTC is midnight in Japan: the next day there.
    assert format_date(utc(2026, 11, 30, 14, 59, 59)) == "2026/11/30"
    assert format_date(utc(2026, 11, 30, 15, 0)) == "2026/12/01"
    # An aware datetime in another zone is the same moment.
    ny = dt.timezone(dt.timedelta(hours=-5))
    assert format_date(dt.datetime(2026, 11, 30, 10, 0, tzinfo=ny)) == "2026/12/01"


def test_format_date_keeps_a_calendar_date_as_it_is() -> None:
    assert format_date(dt.date(2026, 1, 5)) == "2026/01/05"
    assert format_date(dt.date(2026, 1, 5), wareki=True) == "令和8年1月5日"


def test_format_datetime_in_japan_time() -> None:
    assert format_datetime(utc(2026, 12, 1, 0, 30)) == "2026/12/01 09:30"
    assert format_datetime(utc(2026, 11, 30, 15, 5)) == "2026/12/01 00:05"
    assert format_datetime(utc(2026, 12, 1, 0, 30), wareki=True) == "令和8年12月1日 09:30"


def test_naive_datetimes_are_refused() -> None:
    naive = dt.datetime(2026, 12, 1, 9, 30)
    for call in (format_date, format_datetime, format_wareki, japanese_era):
        with pytest.raises(TypeError, match="timezone-aware"):
            call(naive)


def test_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError):
        format_datetime(dt.date(2026, 12, 1))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        format_date("2026-12-01")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("day", "shown"),
    [
        (dt.date(2026, 12, 1), "令和8年12月1日"),
        (dt.date(2019, 5, 1), "令和元年5月1日"),
        (dt.date(2019, 4, 30), "平成31年4月30日"),
        (dt.date(2020, 1, 1), "令和2年1月1日"),
        (dt.date(1989, 1, 8), "平成元年1月8日"),
        (dt.date(1989, 1, 7), "昭和64年1月7日"),
        (dt.date(1926, 12, 25), "昭和元年12月25日"),
        (dt.date(1926, 12, 24), "大正15年12月24日"),
        (dt.date(1912, 7, 30), "大正元年7月30日"),
        (dt.date(1912, 7, 29), "明治45年7月29日"),
        (dt.date(1873, 1, 1), "明治6年1月1日"),
    ],
)
def test_wareki_era_boundaries(day: dt.date, shown: str) -> None:
    assert format_wareki(day) == shown
    assert format_date(day, wareki=True) == shown


def test_wareki_of_a_utc_moment_uses_the_japan_day() -> None:
    # 2019-04-30 15:00 UTC is 2019-05-01 00:00 in Japan: the first day of 令和.
    assert format_wareki(utc(2019, 4, 30, 14, 59, 59)) == "平成31年4月30日"
    assert format_wareki(utc(2019, 4, 30, 15, 0)) == "令和元年5月1日"
    assert japanese_era(utc(2019, 4, 30, 15, 0)) == ("令和", 1)
    assert japanese_era(dt.date(2026, 12, 1)) == ("令和", 8)


def test_dates_before_the_gregorian_calendar_in_japan_are_refused() -> None:
    with pytest.raises(MalformedInput) as caught:
        format_wareki(dt.date(1872, 12, 31))
    assert "和暦" in caught.value.message_ja
    # Shown in the Western calendar, it is still a date.
    assert format_date(dt.date(1872, 12, 31)) == "1872/12/31"


# --- amounts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(5000, "5,000円"), (0, "0円"), (999, "999円"), (1234567, "1,234,567円"), (-5000, "-5,000円")],
)
def test_format_yen(amount: int, shown: str) -> None:
    assert format_yen(amount) == shown


@pytest.mark.parametrize("bad", [5000.0, True, "5000", Decimal(5000)])
def test_format_yen_refuses_anything_but_whole_yen(bad: object) -> None:
    with pytest.raises(TypeError):
        format_yen(bad)  # type: ignore[arg-type]


# --- user IDs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "folded"),
    [
        ("of12345678", "of12345678"),
        ("ｏｆ１２３４５６７８", "of12345678"),  # full-width from a Japanese input method
        ("\u3000of12345678 \t", "of12345678"),  # ideographic and ASCII spaces around it
        ("ＡＧ－１２", "AG-12"),  # full-width hyphen-minus
        ("", ""),
    ],
)
def test_fold_user_id(typed: str, folded: str) -> None:
    assert fold_user_id(typed) == folded


def test_fold_user_id_keeps_case_unless_asked() -> None:
    assert fold_user_id("ＯＦ１２") == "OF12"
    # Bank passbooks print the payer name in upper case.
    assert fold_user_id("ＯＦ１２３４５６７８", casefold=True) == "of12345678"
    assert fold_user_id("OF12345678", casefold=True) == fold_user_id("of12345678")


def test_fold_user_id_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        fold_user_id(b"of1234")  # type: ignore[arg-type]


# --- kana ------------------------------------------------------------------------------------

REGISTERED = "ケンポ ショウコ"


@pytest.mark.parametrize(
    "typed",
    [
        "ケンポ ショウコ",  # as registered
        "ケンポショウコ",  # no space between family and given name
        "ケンポ\u3000ショウコ",  # full-width space
        "  ケンポ  ショウコ ",  # several spaces
        "けんぽ しょうこ",  # hiragana
        "ケンぽ しょウコ",  # mixed
        "ｹﾝﾎﾟ ｼｮｳｺ",  # half-width, separate handakuten
        "ｹﾝﾎﾟｼｮｳｺ",
        "ケンホ シヨウコ",  # 半濁音 and 拗音 written plain
        "ケンボ ショウゴ",  # 濁音 where the name has none: seen as the same
        "ケンホ゜ ショウコ",  # a spacing handakuten typed after the letter
        "ケンホ\u309a ショウコ",  # a combining handakuten
    ],
)
def test_seed_examples_match(typed: str) -> None:
    assert kana_equal(REGISTERED, typed)
    assert kana_equal(typed, REGISTERED)


@pytest.mark.parametrize(
    "typed",
    [
        "ケンポ ショウ",  # a letter missing
        "ケンポ ショウコウ",  # a letter more
        "ケンパ ショウコ",  # another vowel
        "ケソポ ショウコ",  # a look-alike letter
        "健保 翔子",  # kanji are not read
        "ケンポー ショウコ",  # a long vowel mark is a letter of its own
    ],
)
def test_different_names_do_not_match(typed: str) -> None:
    assert not kana_equal(REGISTERED, typed)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ガギグゲゴ", "カキクケコ"),
        ("パピプペポ", "バビブベボ"),
        ("パピプペポ", "ハヒフヘホ"),
        ("ヴ", "ウ"),  # ヴ is ウ with a dakuten
        ("ゔ", "ウ"),
        ("ヷヸヹヺ", "ワイエヲ"),  # ヸ = ヰ with a dakuten = イ
        ("ァィゥェォ", "アイウエオ"),
        ("ぁぃぅぇぉ", "アイウエオ"),
        ("ッャュョヮ", "ツヤユヨワ"),
        ("っゃゅょゎ", "ツヤユヨワ"),
        ("ヵヶ", "カケ"),
        ("ゕゖ", "カケ"),
        ("ｧｨｩｪｫｯｬｭｮ", "アイウエオツヤユヨ"),
        ("ㇰㇱㇳ", "クシト"),  # Katakana Phonetic Extensions (Ainu)
        ("ヰヱ", "イエ"),
        ("ゐゑ", "イエ"),
        ("ｶﾞｷﾞｸﾞ", "ガギグ"),
        ("ﾊﾟ", "パ"),
        ("ｳﾞ", "ヴ"),
        ("いすゞ", "イスズ"),  # the voiced iteration mark repeats the letter before it
        ("サヽキ", "ササキ"),
        ("ケア・センター", "ケアセンター"),
        ("ｹｱ･ｾﾝﾀｰ", "ケアセンター"),
        ("サ-ビス", "サービス"),  # ASCII hyphen for the long vowel mark
        ("サ－ビス", "サービス"),  # full-width hyphen-minus
        ("サ―ビス", "サービス"),  # horizontal bar
        ("サ—ビス", "サービス"),  # em dash
        ("サ‐ビス", "サービス"),  # hyphen
        ("サ−ビス", "サービス"),  # minus sign
        ("ｻｰﾋﾞｽ", "サービス"),  # half-width long vowel mark
        ("ＮＰＯ", "npo"),
        ("エヌピーオー法人ABC", "えぬぴーおー法人abc"),
    ],
)
def test_folding_rules(a: str, b: str) -> None:
    assert fold_kana(a) == fold_kana(b), (fold_kana(a), fold_kana(b))
    assert kana_equal(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ヴ", "ブ"),  # ヴ folds to ウ, not to ブ
        ("ヲ", "オ"),  # ヲ is a modern letter of its own
        ("サービス", "サビス"),  # the long vowel mark is significant ...
        ("サービス", "サアビス"),  # ... and not replaced by the vowel it lengthens
        ("山田", "ヤマダ"),  # kanji are compared as they are
        ("山田", "山口"),
        ("佐々木", "佐佐木"),  # 々 is a kanji iteration mark, not expanded
        ("ン", "ヌ"),
    ],
)
def test_folding_keeps_apart(a: str, b: str) -> None:
    assert not kana_equal(a, b)


OFFICE_KANA = "ショウメイ ケアサービス チュウオウジギョウショ"


@pytest.mark.parametrize(
    "typed",
    [
        "しょうめい けあさーびす ちゅうおうじぎょうしょ",  # hiragana
        "ｼｮｳﾒｲ ｹｱｻｰﾋﾞｽ ﾁｭｳｵｳｼﾞｷﾞｮｳｼｮ",  # half-width katakana
        "ショウメイケアサービスチュウオウジギョウショ",  # no spaces
        "ショウメイ　ケアサービス　チュウオウ　ジギョウショ",  # full-width spaces, one more
        "ショウメイ ケアサービス チュウオウシキヨウシヨ",  # 濁音 and 拗音 written plain and large
        "シヨウメイ ケアサ-ビス チユウオウジギヨウシヨ",  # small kana large, a hyphen for ー
        "ｼｮｳﾒｲｹｱｻｰﾋﾞｽﾁｭｳｵｳｼﾞｷﾞｮｳｼｮ",
    ],
)
def test_office_names_typed_in_every_way_match(typed: str) -> None:
    """The first sign-in's identity check (ra.people.first_sign_in): an office types its name
    in kana as its keyboard or phone gives it."""
    assert kana_equal(OFFICE_KANA, typed)


@pytest.mark.parametrize(
    "typed",
    [
        "ショウメイ ケアサービス チュウオウ",  # a word short
        "ショウメイ ケアセンター チュウオウジギョウショ",  # another word
        "ショウメイ ケアサビス チュウオウジギョウショ",  # the long vowel mark left out
        "証明ケアサービス中央事業所",  # kanji are not read as kana
    ],
)
def test_office_names_that_differ_do_not_match(typed: str) -> None:
    assert not kana_equal(OFFICE_KANA, typed)


def test_fold_kana_form() -> None:
    assert fold_kana("ｹﾝﾎﾟ　ｼｮｳｺ") == "ケンホシヨウコ"
    assert fold_kana("きゃりーぱみゅぱみゅ") == "キヤリーハミユハミユ"
    assert fold_kana("カ゛") == "カ"  # a spacing dakuten (NFKC makes it a space + U+3099)
    assert fold_kana("ゝ") == "ヽ"  # nothing to repeat: the mark stays
    assert fold_kana("\ufa19") == "\u795e"  # a compatibility ideograph is its unified form
    assert fold_kana("株式会社ＡＢＣ") == "株式会社abc"


def test_nothing_never_matches() -> None:
    assert not kana_equal("", "")
    assert not kana_equal(" \u3000", "")
    assert not kana_equal("・", "・")
    assert not kana_equal("ケンポ", "")


def test_fold_kana_refuses_non_text() -> None:
    with pytest.raises(TypeError):
        fold_kana(None)  # type: ignore[arg-type]


def test_jatext_needs_nothing_beyond_the_standard_library() -> None:
    tree = ast.parse(Path(shomei.jatext.__file__).read_text(encoding="utf-8"))
    imported = {
        (node.module or "") if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    outside = {
        name
        for name in imported
        if name.split(".")[0] not in sys.stdlib_module_names
        and name not in ("shomei.clock", "shomei.errors")  # both stdlib-only themselves
    }
    assert not outside, outside
