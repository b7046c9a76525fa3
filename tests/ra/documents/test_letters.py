"""The notification letters (通知書) and the issuance-password reset letter."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable

import pytest

from ra.documents import (
    Addressee,
    Fonts,
    LoginPasswordLetter,
    PasswordResetLetter,
    login_password_letter,
    notification_letters,
    password_reset_letter,
)
from shomei.errors import MalformedInput
from tests.ra.documents.conftest import Pdf, assert_readable
from tests.ra.documents.samples import (
    HOSTILE_NAME,
    ISSUED_AT,
    ISSUER,
    LONG_ADDRESS,
    LONG_NAME,
    OFFICE,
    PORTAL,
    account,
)

ReadPdf = Callable[[bytes, str], Pdf]


def test_one_page_per_account(fonts: Fonts, read_pdf: ReadPdf) -> None:
    letters = [
        account("of10000001"),
        account("of10000002", organization=LONG_NAME, address=LONG_ADDRESS),
        account("ag10000003", organization="株式会社みらいソフト", kind="agent"),
    ]
    data = notification_letters(
        letters, issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT, fonts=fonts
    )
    pdf = read_pdf(data, "notification-letters")
    assert pdf.pages() == 3
    assert_readable(
        pdf,
        "ユーザーID・パスワード通知書",
        "初回ログイン用パスワード",
        "証明書発行用パスワード",
        "はじめてログインするとき",
        "本書は大切に保管してください",
        LONG_NAME,
        LONG_ADDRESS,
    )
    pages = pdf.page_texts()
    for page, letter in zip(pages, letters, strict=True):
        flat = "".join(page.split())
        # Each page carries its own account, and only its own.
        assert letter.user_id in flat
        assert letter.login_password in flat
        assert letter.issuance_password in flat
        assert PORTAL in flat
        assert "発行日2026/12/01" in flat  # 00:30 in Japan on 12/1, 15:30 UTC on 11/30
        others = {x.user_id for x in letters} - {letter.user_id}
        assert not any(other in flat for other in others)
    assert "代理人番号と法人名（カナ）による本人確認" in "".join(pages[2].split())
    assert "事業所番号と事業所名（カナ）による本人確認" in "".join(pages[0].split())
    first = "".join(pages[0].split())
    # The words of the portal's screens and mails: the mail code is a 確認コード.
    assert "6桁の確認コード" in first and "認証番号" not in first
    # The screens forgive case and hyphens; a computer importing the .p12 does not.
    assert (
        "申請とダウンロードの画面では、大文字・小文字、空白、ハイフンの有無は区別しません" in first
    )
    assert "インストールするときは、上のとおり（英字は大文字、ハイフンあり）に入力" in first


def test_user_typed_markup_is_printed_as_text(fonts: Fonts, read_pdf: ReadPdf) -> None:
    letters = [account("of10000004", organization=HOSTILE_NAME, address="A & B <i>通り</i>")]
    data = notification_letters(
        letters, issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT, fonts=fonts
    )
    pdf = read_pdf(data, "notification-markup")
    assert_readable(pdf, HOSTILE_NAME, "A & B <i>通り</i>")
    # Not bold, not 40 pt: the characters themselves, at the size of the name.
    heights = {w.text: w.height for w in pdf.words()}
    assert heights["大</font>"] < 20
    assert max(heights.values()) < 30


def test_control_characters_in_names_do_not_break_the_page(fonts: Fonts, read_pdf: ReadPdf) -> None:
    letters = [account("of10000005", organization="ひまわり\x00作業所\r\n本館\t東棟")]
    data = notification_letters(
        letters, issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT, fonts=fonts
    )
    assert "ひまわり 作業所 本館 東棟" in read_pdf(data, "notification-control").text()


def test_wareki_dates(fonts: Fonts, read_pdf: ReadPdf) -> None:
    first_day_of_reiwa = dt.datetime(2019, 4, 30, 15, 0, tzinfo=dt.UTC)
    data = notification_letters(
        [account("of10000006")],
        issuer=ISSUER,
        portal_url=PORTAL,
        issued_at=first_day_of_reiwa,
        wareki=True,
        fonts=fonts,
    )
    assert "発行日令和元年5月1日" in read_pdf(data, "notification-wareki").compact()


def test_an_empty_batch_and_a_bad_url_are_refused(fonts: Fonts) -> None:
    with pytest.raises(MalformedInput):
        notification_letters([], issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT)
    for url in ("", "javascript:alert(1)", "shomei.example.jp", "https://a b/"):
        with pytest.raises(MalformedInput) as caught:
            notification_letters(
                [account("of1")], issuer=ISSUER, portal_url=url, issued_at=ISSUED_AT
            )
        assert caught.value.fields["field"] == "portal_url"


def test_a_naive_issue_time_is_refused(fonts: Fonts) -> None:
    with pytest.raises(TypeError, match="timezone-aware"):
        notification_letters(
            [account("of1")],
            issuer=ISSUER,
            portal_url=PORTAL,
            issued_at=dt.datetime(2026, 12, 1, 9, 0),
            fonts=fonts,
        )


def test_password_reset_letter(fonts: Fonts, read_pdf: ReadPdf) -> None:
    letter = PasswordResetLetter(
        addressee=dataclasses.replace(OFFICE, person="福祉 花子", honorific="様"),
        user_id="of10000007",
        issuance_password="Z9YX-8WVU-7TSR",
    )
    data = password_reset_letter(
        letter, issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT, fonts=fonts
    )
    pdf = read_pdf(data, "password-reset")
    assert pdf.pages() == 1
    assert_readable(
        pdf,
        "証明書発行用パスワード再発行のお知らせ",
        "of10000007",
        "Z9YX-8WVU-7TSR",
        "福祉 花子 様",
        OFFICE.organization,
        "申請したときのパスワード",
        "2026/12/01",
        "電話 03-1234-5678",
    )


def test_password_reset_letter_for_the_longest_name(fonts: Fonts, read_pdf: ReadPdf) -> None:
    letter = PasswordResetLetter(
        addressee=Addressee(
            organization=LONG_NAME, address=LONG_ADDRESS, postal_code="060-0001", person=LONG_NAME
        ),
        user_id="of10000008",
        issuance_password="Z9YX-8WVU-7TSR",
    )
    data = password_reset_letter(
        letter, issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT, wareki=True, fonts=fonts
    )
    pdf = read_pdf(data, "password-reset-long")
    assert pdf.pages() == 1
    assert_readable(pdf, LONG_NAME, LONG_ADDRESS, "令和8年12月1日")


def test_login_password_letter(fonts: Fonts, read_pdf: ReadPdf) -> None:
    letter = LoginPasswordLetter(
        addressee=OFFICE, user_id="of10000009", login_password="k7Rm2pQx9WzT4a"
    )
    data = login_password_letter(
        letter, issuer=ISSUER, portal_url=PORTAL, issued_at=ISSUED_AT, fonts=fonts
    )
    pdf = read_pdf(data, "login-password-reset")
    assert pdf.pages() == 1
    assert_readable(
        pdf,
        "ログイン用パスワード再発行のお知らせ",
        "of10000009",
        "k7Rm2pQx9WzT4a",
        OFFICE.organization,
        "証明書発行用パスワードは変わりません",
        "2026/12/01",
    )
    with pytest.raises(MalformedInput):
        LoginPasswordLetter(addressee=OFFICE, user_id="of10000009", login_password=" ")
