"""The values the documents take are checked when they are made."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ra.documents import Addressee, BankAccount, Invoice, Issuer, Quote
from shomei.errors import MalformedInput
from tests.ra.documents.samples import BANK, ISSUED_AT, OFFICE, account


def bad_field(call: object, **changes: object) -> str:
    """The field named by the MalformedInput that ``dataclasses.replace`` raises."""
    with pytest.raises(MalformedInput) as caught:
        dataclasses.replace(call, **changes)  # type: ignore[type-var]
    assert caught.value.message_ja, "a Japanese message for the page"
    return str(caught.value.fields["field"])


def test_issuer_needs_a_name_and_an_address() -> None:
    issuer = Issuer(name="証明連合会", address="東京都千代田区")
    assert bad_field(issuer, name=" \u3000") == "issuer.name"
    assert bad_field(issuer, address="") == "issuer.address"
    assert bad_field(issuer, phone=None) == "issuer.phone"


def test_addressee_checks() -> None:
    assert bad_field(OFFICE, organization="") == "addressee.organization"
    assert bad_field(OFFICE, honorific="殿") == "addressee.honorific"
    assert bad_field(OFFICE, person=3) == "addressee.person"
    assert Addressee(organization="事業所").honorific == "御中"


def test_account_letter_checks() -> None:
    letter = account("of1")
    assert bad_field(letter, kind="staff") == "kind"
    assert bad_field(letter, user_id="") == "user_id"
    assert bad_field(letter, login_password=" ") == "login_password"
    assert bad_field(letter, issuance_password="") == "issuance_password"


def test_quote_checks() -> None:
    quote = Quote(addressee=OFFICE, issued_at=ISSUED_AT, unit_price_yen=5000, tax="exempt")
    assert quote.total_yen == 5000
    assert quote.valid_until == dt.date(2026, 12, 31)  # issued 2026/12/01 in Japan
    assert bad_field(quote, unit_price_yen=-1) == "unit_price_yen"
    assert bad_field(quote, unit_price_yen=5000.0) == "unit_price_yen"
    assert bad_field(quote, unit_price_yen=True) == "unit_price_yen"
    assert bad_field(quote, quantity=0) == "quantity"
    assert bad_field(quote, valid_days=0) == "valid_days"
    assert bad_field(quote, tax="税込") == "tax"  # the codes are "exempt" and "included"
    assert bad_field(quote, item="") == "item"
    assert bad_field(quote, notes=(1,)) == "notes"
    with pytest.raises(TypeError, match="timezone-aware"):
        dataclasses.replace(quote, issued_at=dt.datetime(2026, 12, 1))


def test_invoice_checks() -> None:
    invoice = Invoice(
        addressee=OFFICE,
        number="INV-1",
        issued_at=ISSUED_AT,
        due_date=dt.date(2026, 12, 31),
        payer_user_id="ag12345678",
        unit_price_yen=5000,
        quantity=2,
        tax="included",
    )
    assert invoice.total_yen == 10000
    assert bad_field(invoice, number="") == "number"
    assert bad_field(invoice, payer_user_id="") == "payer_user_id"
    assert bad_field(invoice, due_date=ISSUED_AT) == "due_date"
    assert bad_field(invoice, due_date="2026-12-31") == "due_date"
    assert bad_field(invoice, tax=None) == "tax"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bank": ""}, "bank.bank"),
        ({"branch": "  "}, "bank.branch"),
        ({"holder_kana": ""}, "bank.holder_kana"),
        ({"bank": "○○銀行"}, "bank.bank"),  # the placeholder the RA's old defaults carried
        ({"branch": "◯◯支店"}, "bank.branch"),
        ({"holder_kana": "○○○"}, "bank.holder_kana"),
        ({"holder_kana": "証明連合会"}, "bank.holder_kana"),  # kanji: not a kana name
        ({"holder_kana": "しようめい"}, "bank.holder_kana"),  # hiragana: banks use katakana
        ({"account_type": "貯蓄"}, "bank.account_type"),
        ({"number": "123456"}, "bank.number"),
        ({"number": "12345678"}, "bank.number"),
        ({"number": "１２３４５６７"}, "bank.number"),  # full-width digits
        ({"number": 1234567}, "bank.number"),
    ],
)
def test_bank_account_refuses_blanks_and_placeholders(
    changes: dict[str, object], field: str
) -> None:
    assert bad_field(BANK, **changes) == field


@pytest.mark.parametrize(
    "holder", ["シヨウメイレンゴウカイ", "ｼﾖｳﾒｲﾚﾝｺﾞｳｶｲ", "シヤ）シヨウメイ レンゴウカイ", "ｶ)ABC-1"]
)
def test_bank_account_accepts_kana_names_as_banks_write_them(holder: str) -> None:
    assert dataclasses.replace(BANK, holder_kana=holder).holder_kana == holder


def test_bank_account_has_no_defaults() -> None:
    with pytest.raises(TypeError):
        BankAccount()  # type: ignore[call-arg]
