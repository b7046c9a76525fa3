"""The quote (見積書) and the agent's invoice (請求書)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
from collections.abc import Callable

import pytest

from ra.documents import Addressee, Fonts, Invoice, Quote, invoice_pdf, quote_pdf
from ra.documents.model import BankAccount
from tests.ra.documents.conftest import Pdf, assert_readable
from tests.ra.documents.samples import (
    BANK,
    HOSTILE_NAME,
    ISSUED_AT,
    ISSUER,
    LONG_ADDRESS,
    LONG_NAME,
    OFFICE,
)

ReadPdf = Callable[[bytes, str], Pdf]

AGENT = Addressee(
    organization="株式会社みらいソフト",
    postal_code="530-0001",
    address="大阪府大阪市北区梅田一丁目1番1号",
    person="請求 太郎",
    honorific="様",
)


def quote(**changes: object) -> Quote:
    base = Quote(
        addressee=dataclasses.replace(OFFICE, person="福祉 花子", honorific="様"),
        issued_at=ISSUED_AT,
        unit_price_yen=5000,
        tax="exempt",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def invoice(**changes: object) -> Invoice:
    base = Invoice(
        addressee=AGENT,
        number="INV-2026-000123",
        issued_at=ISSUED_AT,
        due_date=dt.date(2026, 12, 31),
        payer_user_id="ag12345678",
        unit_price_yen=5000,
        tax="exempt",
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# --- 見積書 ----------------------------------------------------------------------------------


def test_quote(fonts: Fonts, read_pdf: ReadPdf) -> None:
    pdf = read_pdf(quote_pdf(quote(number="Q-0001"), issuer=ISSUER, fonts=fonts), "quote")
    assert pdf.pages() == 1
    assert_readable(
        pdf,
        "御見積書",
        "〒150-0002",
        OFFICE.address,
        OFFICE.organization,
        "福祉 花子 様",
        "見積日 2026/12/01",
        "見積番号 Q-0001",
        "電子証明書発行手数料",
        "お見積金額 5,000円（非課税）",
        "見積有効期限 2026/12/31",  # 30 days from 2026/12/01 in Japan
        ISSUER.name,
        ISSUER.address,
        "電話 03-1234-5678",
    )
    pdf.assert_row("電子証明書発行手数料", "1", "5,000円", "5,000円")
    pdf.assert_row("合計（非課税）", "5,000円")


def test_quote_tax_included_quantity_and_wareki(fonts: Fonts, read_pdf: ReadPdf) -> None:
    data = quote_pdf(
        quote(
            tax="included",
            quantity=3,
            unit_price_yen=5500,
            valid_days=14,
            addressee=Addressee(organization="事業所あおぞら", honorific="御中"),
            notes=("手数料は請求代金と相殺します。",),
        ),
        issuer=dataclasses.replace(ISSUER, registration_number="T1234567890123"),
        wareki=True,
        fonts=fonts,
    )
    pdf = read_pdf(data, "quote-tax-included")
    assert_readable(
        pdf,
        "事業所あおぞら 御中",
        "お見積金額 16,500円（税込）",
        "見積日 令和8年12月1日",
        "見積有効期限 令和8年12月15日",
        "登録番号 T1234567890123",
        "備考",
        "手数料は請求代金と相殺します。",
    )
    pdf.assert_row("電子証明書発行手数料", "3", "5,500円", "16,500円")
    pdf.assert_row("合計（税込）", "16,500円")
    assert "非課税" not in pdf.text()


def test_quote_for_the_longest_name_and_address(fonts: Fonts, read_pdf: ReadPdf) -> None:
    data = quote_pdf(
        quote(
            addressee=Addressee(
                organization=LONG_NAME,
                address=LONG_ADDRESS,
                postal_code="060-0001",
                person="長い 名前の担当者さん" * 3,
                honorific="様",
            ),
            number="Q-" + "9" * 40,
        ),
        issuer=dataclasses.replace(ISSUER, address=LONG_ADDRESS, name=LONG_NAME),
        fonts=fonts,
    )
    pdf = read_pdf(data, "quote-long")
    assert pdf.pages() == 1
    assert_readable(pdf, LONG_NAME, LONG_ADDRESS, "Q-" + "9" * 40)


def test_quote_prints_typed_markup_as_text(fonts: Fonts, read_pdf: ReadPdf) -> None:
    data = quote_pdf(
        quote(
            addressee=Addressee(
                organization=HOSTILE_NAME, address="<br/>大阪 & 京都", person="<i>田中</i>"
            )
        ),
        issuer=ISSUER,
        fonts=fonts,
    )
    assert_readable(
        read_pdf(data, "quote-markup"), HOSTILE_NAME, "<br/>大阪 & 京都", "<i>田中</i> 御中"
    )


# --- 請求書 ----------------------------------------------------------------------------------


def test_invoice(fonts: Fonts, read_pdf: ReadPdf) -> None:
    pdf = read_pdf(invoice_pdf(invoice(), issuer=ISSUER, bank=BANK, fonts=fonts), "invoice")
    assert pdf.pages() == 1
    assert_readable(
        pdf,
        "請求書",
        "株式会社みらいソフト",
        "請求 太郎 様",
        AGENT.address,
        "請求番号 INV-2026-000123",
        "請求日 2026/12/01",
        "ご請求金額 5,000円（非課税）",
        "電子証明書発行手数料",
        "お振込先",
        "金融機関 みずなみ銀行 千代田支店",
        "口座 普通 0123456",
        "口座名義 シヨウメイレンゴウカイ",
        "お支払期限 2026/12/31",
        "振込人名（ご依頼人名）には、必ずユーザーIDを記入してください",
        "振込人名 ag12345678",
    )


def test_invoice_shows_the_payer_name_prominently(fonts: Fonts, read_pdf: ReadPdf) -> None:
    pdf = read_pdf(invoice_pdf(invoice(), issuer=ISSUER, bank=BANK, fonts=fonts), "invoice")
    words = pdf.words()
    body = [w.height for w in words if w.text == "下記のとおりご請求申し上げます。"]
    payer = [w.height for w in words if w.text == "ag12345678"]
    assert body and payer
    # The user ID to write as payer name is set larger than the running text.
    assert max(payer) >= 1.4 * body[0]


def test_invoice_tax_included_wareki_and_current_account(fonts: Fonts, read_pdf: ReadPdf) -> None:
    data = invoice_pdf(
        invoice(
            tax="included", due_date=dt.date(2019, 5, 1), notes=("振込手数料はご負担ください。",)
        ),
        issuer=ISSUER,
        bank=dataclasses.replace(BANK, account_type="当座", holder_kana="ｼﾖｳﾒｲﾚﾝｺﾞｳｶｲ"),
        wareki=True,
        fonts=fonts,
    )
    pdf = read_pdf(data, "invoice-wareki")
    assert_readable(
        pdf,
        "ご請求金額 5,000円（税込）",
        "お支払期限 令和元年5月1日",
        "請求日 令和8年12月1日",
        "口座 当座 0123456",
        "口座名義 ｼﾖｳﾒｲﾚﾝｺﾞｳｶｲ",
        "振込手数料はご負担ください。",
    )


def test_invoice_for_the_longest_name_and_address(fonts: Fonts, read_pdf: ReadPdf) -> None:
    data = invoice_pdf(
        invoice(
            addressee=Addressee(
                organization=LONG_NAME,
                address=LONG_ADDRESS,
                postal_code="060-0001",
                person=HOSTILE_NAME,
                honorific="様",
            ),
            notes=(HOSTILE_NAME,),
        ),
        issuer=dataclasses.replace(ISSUER, address=LONG_ADDRESS, registration_number="T1"),
        bank=dataclasses.replace(
            BANK, bank="みずなみ信用金庫" * 4, branch="ほげほげ支店" * 4, holder_kana="カ" * 60
        ),
        fonts=fonts,
    )
    pdf = read_pdf(data, "invoice-long")
    assert pdf.pages() == 1
    assert_readable(pdf, LONG_NAME, LONG_ADDRESS, f"{HOSTILE_NAME} 様", "振込人名 ag12345678")


def test_the_bank_account_is_required() -> None:
    bank = inspect.signature(invoice_pdf).parameters["bank"]
    assert bank.kind is inspect.Parameter.KEYWORD_ONLY
    assert bank.default is inspect.Parameter.empty
    assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(BankAccount))
    with pytest.raises(TypeError):
        invoice_pdf(invoice(), issuer=ISSUER)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no default account"):
        invoice_pdf(invoice(), issuer=ISSUER, bank=None)  # type: ignore[arg-type]
