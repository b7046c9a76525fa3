"""What the printed documents show: frozen values, checked when they are made.

The documents take these values and nothing else (no database session, no request), so the
web views, the CLI and the tests build them the same way.  Every check raises
:class:`~shomei.errors.MalformedInput` naming the field, in English and Japanese; a naive
datetime is a programming error (:class:`TypeError`).

Text that people typed (names, addresses) is kept exactly as typed here; the layout escapes
it, so it is printed as text and never read as markup.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final, Literal, get_args

from shomei.clock import require_aware, to_japan
from shomei.errors import MalformedInput
from shomei.jatext import is_bank_kana_name, looks_like_placeholder

Honorific = Literal["様", "御中"]
AccountKind = Literal["office", "agent"]
AccountType = Literal["普通", "当座"]
# Whether the fee includes consumption tax: printed as 「非課税」 or 「税込」 next to amounts.
TaxTreatment = Literal["exempt", "included"]
TAX_LABELS: Final[dict[TaxTreatment, str]] = {"exempt": "非課税", "included": "税込"}

FEE_ITEM: Final = "電子証明書発行手数料"
_ACCOUNT_NUMBER = re.compile(r"[0-9]{7}")  # Zengin: seven digits, zero-padded


def _bad(field: str, message: str, message_ja: str) -> MalformedInput:
    return MalformedInput(f"{field}: {message}", message_ja=message_ja, field=field)


def _text(value: object, field: str, label_ja: str, *, required: bool) -> None:
    if not isinstance(value, str):
        raise _bad(field, "must be text", f"{label_ja}が正しくありません")
    if required and not value.strip():
        raise _bad(field, "is required", f"{label_ja}を入力してください")


def _count(value: object, field: str, label_ja: str, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _bad(
            field,
            f"must be a whole number of at least {minimum}",
            f"{label_ja}は{minimum}以上の整数で指定してください",
        )


def _choice(value: object, allowed: object, field: str, label_ja: str) -> None:
    if value not in get_args(allowed):
        raise _bad(field, f"must be one of {get_args(allowed)}", f"{label_ja}が正しくありません")


@dataclass(frozen=True, kw_only=True)
class Issuer:
    """The federation that issues the document (from the RA settings)."""

    name: str
    address: str
    postal_code: str = ""
    phone: str = ""
    # 適格請求書発行事業者登録番号 (T + 13 digits), printed on quotes and invoices when given.
    registration_number: str = ""

    def __post_init__(self) -> None:
        _text(self.name, "issuer.name", "連合会の名称", required=True)
        _text(self.address, "issuer.address", "連合会の住所", required=True)
        _text(self.postal_code, "issuer.postal_code", "連合会の郵便番号", required=False)
        _text(self.phone, "issuer.phone", "連合会の電話番号", required=False)
        _text(self.registration_number, "issuer.registration_number", "登録番号", required=False)


@dataclass(frozen=True, kw_only=True)
class Addressee:
    """Whom a document is addressed to: an office or agent, maybe a named person.

    The honorific follows the last line of the name: ``事業所名`` then ``氏名 様``, or
    ``事業所名 御中`` when no person is named.
    """

    organization: str  # 事業所名 (法人名 for agents)
    address: str = ""
    postal_code: str = ""
    person: str = ""  # 氏名
    honorific: Honorific = "御中"

    def __post_init__(self) -> None:
        _text(self.organization, "addressee.organization", "事業所名", required=True)
        _text(self.address, "addressee.address", "住所", required=False)
        _text(self.postal_code, "addressee.postal_code", "郵便番号", required=False)
        _text(self.person, "addressee.person", "氏名", required=False)
        _choice(self.honorific, Honorific, "addressee.honorific", "敬称")


@dataclass(frozen=True, kw_only=True)
class AccountLetter:
    """One page of the notification letter (通知書) for a new office or agent account."""

    addressee: Addressee
    kind: AccountKind
    user_id: str
    login_password: str  # the initial password for the first sign-in
    issuance_password: str  # 証明書発行用パスワード
    office_number: str = ""  # 事業所番号 (or the agent's number)

    def __post_init__(self) -> None:
        _choice(self.kind, AccountKind, "kind", "利用者の種別")
        _text(self.user_id, "user_id", "ユーザーID", required=True)
        _text(self.login_password, "login_password", "初回ログイン用パスワード", required=True)
        _text(self.issuance_password, "issuance_password", "証明書発行用パスワード", required=True)
        _text(self.office_number, "office_number", "事業所番号", required=False)


@dataclass(frozen=True, kw_only=True)
class PasswordResetLetter:
    """パスワード再発行のお知らせ: a new issuance password, posted (the phone path of A7)."""

    addressee: Addressee
    user_id: str
    issuance_password: str

    def __post_init__(self) -> None:
        _text(self.user_id, "user_id", "ユーザーID", required=True)
        _text(self.issuance_password, "issuance_password", "証明書発行用パスワード", required=True)


@dataclass(frozen=True, kw_only=True)
class LoginPasswordLetter:
    """ログインパスワード再発行のお知らせ: a new login password set by the federation, posted."""

    addressee: Addressee
    user_id: str
    login_password: str

    def __post_init__(self) -> None:
        _text(self.user_id, "user_id", "ユーザーID", required=True)
        _text(self.login_password, "login_password", "ログイン用パスワード", required=True)


@dataclass(frozen=True, kw_only=True)
class Quote:
    """見積書 (A2): the fee for a certificate, addressed as the office or agent typed it."""

    addressee: Addressee
    issued_at: dt.datetime
    unit_price_yen: int
    tax: TaxTreatment
    quantity: int = 1
    valid_days: int = 30  # the quote holds this many days from its date
    item: str = FEE_ITEM
    number: str = ""  # 見積番号, printed when given
    notes: tuple[str, ...] = ()  # 備考 lines

    def __post_init__(self) -> None:
        require_aware(self.issued_at, "issued_at")
        _count(self.unit_price_yen, "unit_price_yen", "単価", minimum=0)
        _count(self.quantity, "quantity", "数量", minimum=1)
        _count(self.valid_days, "valid_days", "見積有効期間", minimum=1)
        _choice(self.tax, TaxTreatment, "tax", "消費税の扱い")
        _text(self.item, "item", "品名", required=True)
        _text(self.number, "number", "見積番号", required=False)
        for note in self.notes:
            _text(note, "notes", "備考", required=False)

    @property
    def total_yen(self) -> int:
        return self.unit_price_yen * self.quantity

    @property
    def valid_until(self) -> dt.date:
        """The last day the quote holds, counted from its date in Japan time."""
        return to_japan(self.issued_at).date() + dt.timedelta(days=self.valid_days)


@dataclass(frozen=True, kw_only=True)
class BankAccount:
    """The account an agent pays the fee into (振込先).  Every field is required.

    There is no default and no sample account: an invoice must never send money to a
    made-up account, so blank values and template marks such as ``○○銀行`` are refused.
    """

    bank: str  # 金融機関名
    branch: str  # 支店名
    account_type: AccountType
    number: str  # 口座番号, seven digits
    holder_kana: str  # 口座名義 (カナ), as the bank registers it

    def __post_init__(self) -> None:
        for field, label in (
            ("bank", "金融機関名"),
            ("branch", "支店名"),
            ("holder_kana", "口座名義"),
        ):
            value = getattr(self, field)
            _text(value, f"bank.{field}", label, required=True)
            if looks_like_placeholder(value):
                raise _bad(
                    f"bank.{field}",
                    f"looks like a template placeholder: {value!r}",
                    f"{label}が記入例のままです。実際の振込先を設定してください: {value}",
                )
        _choice(self.account_type, AccountType, "bank.account_type", "口座種別")
        if not isinstance(self.number, str) or not _ACCOUNT_NUMBER.fullmatch(self.number):
            raise _bad("bank.number", "must be seven digits", "口座番号は7桁の数字です")
        if not is_bank_kana_name(self.holder_kana):
            raise _bad(
                "bank.holder_kana",
                "must be written in katakana",
                "口座名義はカタカナで設定してください",
            )


@dataclass(frozen=True, kw_only=True)
class Invoice:
    """請求書 (A3): the fee an agent pays by bank transfer, with its user ID as payer name."""

    addressee: Addressee
    number: str  # 請求番号
    issued_at: dt.datetime
    due_date: dt.date  # お支払期限, a calendar day in Japan
    payer_user_id: str  # the agent's user ID: what the payer name (振込人名) must say
    unit_price_yen: int
    tax: TaxTreatment
    quantity: int = 1
    item: str = FEE_ITEM
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        require_aware(self.issued_at, "issued_at")
        if isinstance(self.due_date, dt.datetime) or not isinstance(self.due_date, dt.date):
            raise _bad("due_date", "must be a calendar date", "お支払期限が正しくありません")
        _text(self.number, "number", "請求番号", required=True)
        _text(self.payer_user_id, "payer_user_id", "ユーザーID", required=True)
        _count(self.unit_price_yen, "unit_price_yen", "単価", minimum=0)
        _count(self.quantity, "quantity", "数量", minimum=1)
        _choice(self.tax, TaxTreatment, "tax", "消費税の扱い")
        _text(self.item, "item", "品名", required=True)
        for note in self.notes:
            _text(note, "notes", "備考", required=False)

    @property
    def total_yen(self) -> int:
        return self.unit_price_yen * self.quantity
