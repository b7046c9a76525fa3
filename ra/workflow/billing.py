"""The quote (見積書, A2) and the agent's invoice (請求書, A3): what they say, as PDF.

The documents themselves are :mod:`ra.documents` (frozen values in, PDF bytes out); this
module decides what goes into them from the RA's settings and the database, for the acting
party:

* the federation as issuer (``federation_name`` and ``[ra.documents] issuer_address``, postal
  code and phone), refused with one clear line while the address is not set;
* the fee of the party's kind (``[ra.fees] office_fee_yen`` / ``agent_fee_yen``) and the tax
  treatment (``[ra.fees] tax``);
* for the invoice, the bank account of ``[ra.fees.bank_account]`` (required at start-up:
  there is no default account) and the agent's user ID as the payer name (振込人名,
  docs/product.md §6).

A quote is addressed as the office or agent typed it on the portal (住所, 事業所名 or
法人名, 氏名, 様 / 御中); the invoice to the agent as registered.  Printing changes nothing, so
neither is audited.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ra import documents
from ra.lifecycle import Applicant, Status
from ra.party import Party, Permission, account_of, application_for, require
from ra.settings import RASettings
from ra.store.models import AccountKind
from shomei.clock import to_japan
from shomei.errors import ConfigError, Conflict, MalformedInput

# What people may type on the quote's form (the console's account fields hold as much).
LIMITS = {"organization": 200, "address": 300, "postal_code": 8, "person": 100}


def issuer(settings: RASettings) -> documents.Issuer:
    """The federation as its documents print it (``[ra.documents]`` of the RA settings)."""
    if not settings.documents.issuer_address.strip():
        raise ConfigError(
            "the RA settings do not give the federation's address for printed documents "
            "([ra.documents] issuer_address)",
            message_ja="書類に印刷する連合会の住所が RA 設定([ra.documents] issuer_address)に"
            "ありません",
        )
    return documents.Issuer(
        name=settings.federation_name,
        address=settings.documents.issuer_address,
        postal_code=settings.documents.issuer_postal_code,
        phone=settings.documents.issuer_phone,
    )


def bank_account(settings: RASettings) -> documents.BankAccount:
    """The account agents pay into (``[ra.fees.bank_account]``), as the invoice prints it."""
    bank = settings.fees.bank_account
    return documents.BankAccount(
        bank=bank.bank,
        branch=bank.branch,
        account_type=bank.account_type,
        number=bank.number,
        holder_kana=bank.holder_kana,
    )


def printable(settings: RASettings) -> bool:
    """Whether quotes and invoices can be printed (the federation's address is set)."""
    return bool(settings.documents.issuer_address.strip())


@dataclass(frozen=True)
class QuoteForm:
    """What the quote's form starts with: the account as registered (it may be changed)."""

    organization: str
    address: str
    postal_code: str
    person: str
    honorific: str
    fee_yen: int


def _fee(settings: RASettings, kind: AccountKind) -> int:
    return (
        settings.fees.office_fee_yen if kind is AccountKind.OFFICE else settings.fees.agent_fee_yen
    )


def quote_form(session: Session, party: Party, *, settings: RASettings) -> QuoteForm:
    """The quote's form filled in from the signed-in office's or agent's account."""
    require(party, Permission.APPLY)
    account = account_of(session, party)
    return QuoteForm(
        organization=account.name,
        address=account.address or "",
        postal_code=account.postal_code or "",
        person="",
        honorific="御中",
        fee_yen=_fee(settings, account.kind),
    )


def _typed(value: str, field: str, label_ja: str) -> str:
    text = value.strip()
    limit = LIMITS[field]
    if len(text) > limit:
        raise MalformedInput(
            f"{field} is longer than {limit} characters",
            message_ja=f"{label_ja}は {limit} 文字以内で入力してください",
            field=field,
        )
    return text


def quote_pdf(
    session: Session,
    party: Party,
    *,
    settings: RASettings,
    organization: str,
    address: str,
    person: str,
    honorific: str,
    now: dt.datetime,
    postal_code: str = "",
    wareki: bool = False,
) -> bytes:
    """御見積書 (A2) of one certificate for the signed-in office or agent, addressed as typed.

    Raises :class:`MalformedInput` (one Japanese line) for a missing 事業所名, text that is too
    long or a 敬称 other than 様 / 御中, and :class:`ConfigError` while the federation's
    address is not set.
    """
    require(party, Permission.APPLY)
    account = account_of(session, party)
    if honorific not in ("様", "御中"):
        raise MalformedInput(
            "the honorific must be 様 or 御中", message_ja="敬称は「様」か「御中」を選んでください"
        )
    what = "法人名" if account.kind is AccountKind.AGENT else "事業所名"
    addressee = documents.Addressee(
        organization=_typed(organization, "organization", what),
        address=_typed(address, "address", "住所"),
        postal_code=_typed(postal_code, "postal_code", "郵便番号"),
        person=_typed(person, "person", "氏名"),
        honorific="様" if honorific == "様" else "御中",
    )
    how = (
        "手数料は、連合会からの請求の支払額から差し引いて(相殺して)精算します。"
        if account.kind is AccountKind.OFFICE
        else "お申込みの後に請求書を発行します。銀行振込でお支払いください。"
    )
    quote = documents.Quote(
        addressee=addressee,
        issued_at=now,
        unit_price_yen=_fee(settings, account.kind),
        tax=settings.fees.tax,
        valid_days=settings.fees.quote_valid_days,
        notes=(
            "証明書1枚(1事業所)あたりの発行手数料です。",
            how,
            "お申込みは、ポータルの証明書画面の「発行申請」から行ってください。",
        ),
    )
    return documents.quote_pdf(
        quote,
        issuer=issuer(settings),
        wareki=wareki,
        fonts=documents.Fonts.from_settings(settings.documents),
    )


def invoice(
    session: Session, party: Party, application_id: int, *, settings: RASettings, now: dt.datetime
) -> documents.Invoice:
    """What the invoice (A3) of an agent's application awaiting payment says."""
    app = application_for(session, party, application_id)
    if app.applicant is not Applicant.AGENT or app.status is not Status.AWAITING_PAYMENT:
        raise Conflict(
            "an invoice exists only for an agent's application awaiting payment",
            message_ja="請求書は入金待ちの代理人申請のみ発行できます",
            application=app.id,
        )
    agent = app.account
    issued_on = to_japan(now).date()
    return documents.Invoice(
        addressee=documents.Addressee(
            organization=agent.name,
            address=agent.address or "",
            postal_code=agent.postal_code or "",
            honorific="御中",
        ),
        number=f"{to_japan(app.applied_at):%Y%m%d}-{app.id}",
        issued_at=now,
        due_date=issued_on + dt.timedelta(days=settings.fees.invoice_due_days),
        payer_user_id=agent.user_id,
        unit_price_yen=app.fee_yen,
        tax=settings.fees.tax,
        notes=(
            f"対象の事業所: 事業所番号 {app.office_number} {app.office_name}",
            f"申請番号 {app.id} の証明書発行手数料です。",
            "入金を連合会が確認すると、証明書の発行手続きに進みます。",
        ),
    )


def invoice_pdf(
    session: Session,
    party: Party,
    application_id: int,
    *,
    settings: RASettings,
    now: dt.datetime,
    wareki: bool = False,
) -> bytes:
    """請求書 (A3) as PDF, with the bank account of the settings and the payer name rule."""
    bill = invoice(session, party, application_id, settings=settings, now=now)
    return documents.invoice_pdf(
        bill,
        issuer=issuer(settings),
        bank=bank_account(settings),
        wareki=wareki,
        fonts=documents.Fonts.from_settings(settings.documents),
    )
