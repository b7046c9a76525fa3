"""Japanese text for display and input: Japan-time dates, 和暦, yen amounts, input folding.

Pure functions on the standard library only, shared by the web pages and the PDF documents.

Display
    Times are stored as timezone-aware UTC and shown in Japan time (UTC+9, no daylight
    saving): :func:`format_date` gives ``2026/12/01`` (or, with ``wareki=True``, the 和暦 of
    :func:`format_wareki`, ``令和8年12月1日``) and :func:`format_datetime` gives
    ``2026/12/01 09:30``.  A naive datetime is a programming error and is refused with
    :class:`TypeError` (as :func:`shomei.clock.require_aware` does).  :func:`format_yen`
    gives ``5,000円``.

Input
    :func:`fold_user_id` folds what people type into a user-ID field (full-width letters and
    digits from a Japanese input method, stray spaces) with Unicode NFKC (UAX #15).
    :func:`fold_kana` and :func:`kana_equal` compare names written in kana for identity
    matching at an office's first sign-in, forgiving how people type kana on a phone or a
    PC (hiragana or katakana, full or half width, spaces, 濁音・半濁音・拗音・促音); the rules
    are listed on :func:`fold_kana`.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Final

from shomei.clock import to_japan
from shomei.errors import MalformedInput

# --- dates -----------------------------------------------------------------------------------

# The eras from the adoption of the Gregorian calendar in Japan (明治6年1月1日 = 1873-01-01);
# a Gregorian date before it has no exact 和暦 and is refused.  Each era begins on the day
# given (the first day of 令和 is 2019-05-01, the day after 平成31年4月30日).
ERAS: Final[tuple[tuple[dt.date, str], ...]] = (
    (dt.date(2019, 5, 1), "令和"),
    (dt.date(1989, 1, 8), "平成"),
    (dt.date(1926, 12, 25), "昭和"),
    (dt.date(1912, 7, 30), "大正"),
    (dt.date(1868, 1, 25), "明治"),  # year 1 counts from 1868; only 1873 onwards is accepted
)
GREGORIAN_ADOPTED: Final = dt.date(1873, 1, 1)


def _japan_date(value: dt.date) -> dt.date:
    """The calendar date of ``value`` in Japan: an aware datetime is converted, a date kept."""
    if isinstance(value, dt.datetime):
        return to_japan(value).date()
    if not isinstance(value, dt.date):
        raise TypeError(f"expected a date or datetime, not {type(value).__name__}")
    return value


def japanese_era(value: dt.date) -> tuple[str, int]:
    """The era name and the year within the era of a calendar date: ``("令和", 8)``.

    A datetime is converted to Japan time first.  Dates before 1873-01-01 (the Gregorian
    calendar in Japan) are refused with :class:`~shomei.errors.MalformedInput`.
    """
    day = _japan_date(value)
    if day < GREGORIAN_ADOPTED:
        raise MalformedInput(
            f"{day.isoformat()} is before 1873-01-01 and has no Japanese era date",
            message_ja=f"{day.isoformat()} は1873年1月1日より前のため和暦で表せません",
            date=day.isoformat(),
        )
    for start, name in ERAS:
        if day >= start:
            return name, day.year - start.year + 1
    raise AssertionError("unreachable: every date from 1873 falls in an era")  # pragma: no cover


def format_wareki(value: dt.date) -> str:
    """``令和8年12月1日``; the first year of an era is 元年 (``令和元年5月1日``)."""
    day = _japan_date(value)
    era, year = japanese_era(day)
    shown = "元" if year == 1 else str(year)
    return f"{era}{shown}年{day.month}月{day.day}日"


def format_date(value: dt.date, *, wareki: bool = False) -> str:
    """A date for people: ``2026/12/01``, or ``令和8年12月1日`` with ``wareki=True``.

    An aware datetime is shown as its calendar day in Japan time (2026-11-30 15:00 UTC is
    2026/12/01); a :class:`datetime.date` is a calendar day already and is shown as it is.
    """
    day = _japan_date(value)
    if wareki:
        return format_wareki(day)
    return f"{day.year:04d}/{day.month:02d}/{day.day:02d}"


def format_datetime(value: dt.datetime, *, wareki: bool = False) -> str:
    """A moment in Japan time: ``2026/12/01 09:30`` (or ``令和8年12月1日 09:30``)."""
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a datetime, not {type(value).__name__}")
    local = to_japan(value)
    return f"{format_date(local, wareki=wareki)} {local.hour:02d}:{local.minute:02d}"


# --- amounts ---------------------------------------------------------------------------------


def format_yen(amount: int) -> str:
    """An amount of yen as ``5,000円`` (``-5,000円`` for a negative balance).

    Only whole yen exist here; a float, a bool or a string is a programming error
    (:class:`TypeError`), so a rounding mistake cannot be printed on a bill.
    """
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"an amount of yen must be an int, not {type(amount).__name__}")
    return f"{amount:,}円"


# --- input folding ---------------------------------------------------------------------------


def fold_user_id(text: str, *, casefold: bool = False) -> str:
    """What was typed into a user-ID field, as the ID it means.

    NFKC turns full-width letters, digits and symbols (``ｏｆ１２３４``) and the ideographic
    space into their ASCII forms; surrounding spaces are trimmed.  Case is kept unless
    ``casefold`` is set: bank passbooks print the payer name (振込人名) in upper case, so
    the payment search folds case on both sides.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text, not {type(text).__name__}")
    folded = unicodedata.normalize("NFKC", text).strip()
    return folded.lower() if casefold else folded


_VOICING_MARKS: Final = frozenset({"\u3099", "\u309a"})  # combining (han)dakuten
_HIRAGANA_TO_KATAKANA: Final = 0x30A1 - 0x3041
# Small kana and their large forms (katakana; hiragana is mapped to katakana first).
_SMALL_TO_LARGE: Final = str.maketrans(
    "ァィゥェォッャュョヮヵヶ"  # the modern small katakana
    "ㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"  # Katakana Phonetic Extensions (U+31F0-31FF)
    "\U0001b155\U0001b164\U0001b165\U0001b166\U0001b167",  # small コ ヰ ヱ ヲ ン
    "アイウエオツヤユヨワカケクシストヌハヒフヘホムラリルレロコヰヱヲン",
)
# ヰ and ヱ survive in a few old names (ヱビス); they are read イ and エ.
_OLD_KANA: Final = str.maketrans("ヰヱ", "イエ")
# Everything people type for the long vowel mark: the mark itself, hyphens, dashes, minus
# signs (ASCII and full-width were made ASCII by NFKC; half-width ｰ became ー).
_LONG_VOWEL_LOOKALIKES: Final = frozenset(
    "ー-\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe58\ufe63"
)
_ITERATION_MARK: Final = "ヽ"  # ゝ/ゞ/ヽ/ヾ after the steps above
_SEPARATORS: Final = frozenset("・")  # the middle dot (half-width ･ became ・ by NFKC)


def fold_kana(text: str) -> str:
    """The form two kana names are compared in (for :func:`kana_equal`).

    Rules, in order:

    1. Width and compatibility (NFKC): full-width ASCII is ASCII, half-width katakana is
       full-width, and half-width ``ｶﾞ`` (a letter and a separate voicing mark) is ``ガ``.
    2. 濁音・半濁音 are their plain forms: ``ガ`` = ``カ``, ``パ`` = ``バ`` = ``ハ``, ``ヴ`` =
       ``ウ`` (ヴ is ウ with a dakuten, so it is not ``ブ``); a spacing ``゛``/``゜`` typed
       after a letter is dropped as well.
    3. Hiragana is katakana: ``けんぽ`` = ``ケンポ``.
    4. Small kana (拗音・促音) are their large forms: ``ャュョッァィゥェォヮ`` and ``ヵヶ``
       (and the hiragana ones) are ``ヤユヨツアイウエオワカケ``: ``ショウコ`` = ``シヨウコ``.
    5. The old kana ``ヰ``/``ヱ`` are ``イ``/``エ``; ``ヲ`` stays (it is a modern letter).
    6. The long vowel mark ``ー`` is significant (``サービス`` is not ``サビス`` nor
       ``サアビス``), but everything typed for it is the same mark: ``ｰ``, ``-``, ``－``,
       ``‐``, ``–``, ``—``, ``―``, ``−``.
    7. The iteration marks ``ゝゞヽヾ`` repeat the letter before them: ``いすゞ`` = ``イスス``.
    8. Spaces (ASCII, full-width, any Unicode white space) and the middle dot ``・`` are
       ignored: ``ケンポ ショウコ`` = ``ケンポショウコ``.
    9. Latin letters ignore case.  Kanji and everything else are compared as they are
       (after NFKC, which maps compatibility ideographs such as U+FA19 to the unified form).
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text, not {type(text).__name__}")
    # NFKC first: it composes ｶﾞ into ガ and makes the spacing ゛ a space plus U+3099.
    text = unicodedata.normalize("NFKC", text)
    # Decompose to take the voicing marks off (ガ → カ + U+3099), then recompose the rest.
    text = "".join(ch for ch in unicodedata.normalize("NFD", text) if ch not in _VOICING_MARKS)
    text = unicodedata.normalize("NFC", text)
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if 0x3041 <= code <= 0x3096 or code in (0x309D, 0x309E):  # hiragana, ゝゞ
            ch = chr(code + _HIRAGANA_TO_KATAKANA)
        elif code in (0x1B132, 0x1B150, 0x1B151, 0x1B152):  # small こ ゐ ゑ を
            ch = {0x1B132: "コ", 0x1B150: "ヰ", 0x1B151: "ヱ", 0x1B152: "ヲ"}[code]
        ch = ch.translate(_SMALL_TO_LARGE).translate(_OLD_KANA)
        if ch.isspace() or ch in _SEPARATORS:
            continue
        if ch in _LONG_VOWEL_LOOKALIKES:
            ch = "ー"
        elif ch == _ITERATION_MARK:
            # A repeat of the kana before it; with nothing to repeat it stays a mark.
            if out and _is_katakana(out[-1]):
                ch = out[-1]
        out.append(ch)
    return "".join(out).casefold()


def _is_katakana(ch: str) -> bool:
    return "\u30a1" <= ch <= "\u30fa"


def kana_equal(a: str, b: str) -> bool:
    """True if two kana names are the same after :func:`fold_kana`.

    Meant for identity matching, so a side that folds to nothing (empty, only spaces or
    dots) never matches, not even another empty one.
    """
    left, right = fold_kana(a), fold_kana(b)
    return bool(left) and left == right


# --- bank accounts ---------------------------------------------------------------------------

# White circles are what templates print for "fill in here" (○○銀行): never a real account.
PLACEHOLDER_MARKS: Final = frozenset("○◯")


def looks_like_placeholder(text: str) -> bool:
    """True if ``text`` still holds a template's fill-in marks (``○○銀行``)."""
    return bool(PLACEHOLDER_MARKS & set(text))


def is_bank_kana_name(text: str) -> bool:
    """True if ``text`` is what a bank's kana account name (口座名義) may hold.

    Katakana (full or half width), Latin letters, digits, spaces and the signs banks use
    (``カ)ショウメイ``, ``（ド``).
    """
    folded = unicodedata.normalize("NFKC", text)  # ｼﾖｳﾒｲ → ショウメイ, ｺﾞ → ゴ
    return all(
        ("\u30a0" <= c <= "\u30ff") or c.isascii() or c.isspace() or c in "（）「」" for c in folded
    )
