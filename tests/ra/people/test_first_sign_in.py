"""The services of the portal's first sign-in, mailed codes and the kana name (ra.people)."""

from __future__ import annotations

import collections
import datetime as dt
import random

import pytest
from sqlalchemy import select

from ra.mailing.notify import outbox_body_context
from ra.party import Party, party_of
from ra.people import account_admin, csvimport, first_sign_in, mail_codes, password_reset
from ra.people.accounts import AccountInput, is_kana_name
from ra.people.first_sign_in import Step
from ra.people.password_rules import PORTAL, STAFF, PasswordPolicy
from ra.people.passwords import hash_password
from ra.settings import SignInSettings
from ra.store.models import Account, AccountKind, MailCode, OutboxMail
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput, NotPermitted, Refused
from tests.ra import factories
from tests.ra.conftest import VAULT, Database

SETTINGS = SignInSettings()


def _office(database: Database, now: dt.datetime, kana: str | None = "ケンポ ショウコ") -> int:
    with database.factory() as s, s.begin():
        account = factories.account(s, kind=AccountKind.OFFICE, now=now)
        account.password_hash = hash_password("Letter-pass-1")
        account.name_kana = kana
        account.email = "office@example.jp"
        return account.id


def _party(database: Database, account_id: int) -> Party:
    with database.factory() as s:
        account = s.get(Account, account_id)
        assert account is not None
        return party_of(account)


# --- steps -----------------------------------------------------------------------------------


def test_steps_left_follow_the_account_and_the_settings(
    database: Database, now: dt.datetime
) -> None:
    account_id = _office(database, now)
    with database.factory() as s:
        account = s.get(Account, account_id)
        assert account is not None
        assert first_sign_in.steps_left(account, SETTINGS) == [
            Step.TERMS,
            Step.IDENTITY,
            Step.PASSWORD,
            Step.EMAIL,
        ]
        with_totp = SignInSettings(portal_totp=True)
        assert first_sign_in.steps_left(account, with_totp)[-1] is Step.TOTP
        account.terms_accepted_at = now
        account.terms_version = "old"
        assert Step.TERMS in first_sign_in.steps_left(account, SETTINGS)  # a new version
        account.terms_version = SETTINGS.terms_version
        account.identity_confirmed_at = account.password_chosen_at = now
        account.email_confirmed_at = now
        assert first_sign_in.steps_left(account, SETTINGS) == []
        account.email = None
        assert first_sign_in.steps_left(account, SETTINGS) == [Step.EMAIL]
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        assert first_sign_in.steps_left(staff, with_totp) == []


def test_staff_cannot_use_the_portal_steps(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        with pytest.raises(NotPermitted):
            first_sign_in.accept_terms(s, party_of(staff), settings=SETTINGS, now=now)


def test_identity_failures_lock_on_the_third(database: Database, now: dt.datetime) -> None:
    account_id = _office(database, now)
    party = _party(database, account_id)
    for remaining in (2, 1):
        with database.factory() as s, s.begin():
            number = s.get(Account, account_id).office_number  # type: ignore[union-attr]
            with pytest.raises(AuthenticationFailed) as caught:
                first_sign_in.confirm_identity(
                    s, party, number or "", "ケンポ ショウ", settings=SETTINGS, now=now
                )
            assert caught.value.fields["remaining"] == remaining
            s.commit()  # the failure is kept, as the web keeps it
    with database.factory() as s, s.begin():
        with pytest.raises(LockedOut):
            first_sign_in.confirm_identity(
                s, party, "0000000000", "ケンポ ショウコ", settings=SETTINGS, now=now
            )
        s.commit()
    with database.factory() as s:
        account = s.get(Account, account_id)
        assert account is not None and account.locked_until == now + dt.timedelta(minutes=30)
        assert account.identity_confirmed_at is None


# --- the kana name ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kana", ["ケンポ ショウコ", "けんぽ しょうこ", "ｹﾝﾎﾟ ｼｮｳｺ", "エヌピーオーABC", "カ)ショウメイ"]
)
def test_kana_names_that_may_be_registered(kana: str) -> None:
    assert is_kana_name(kana)


@pytest.mark.parametrize("kana", ["証明ケア", "Shomei", "", "   ", "ケア\tサービス", "ア" * 101])
def test_kana_names_that_may_not(kana: str) -> None:
    assert not is_kana_name(kana)


def test_the_csv_takes_an_optional_kana_column(database: Database, now: dt.datetime) -> None:
    header = "種別,事業所番号,名称,フリガナ,住所,電話番号,メールアドレス\r\n"
    rows = (
        "事業所,1310000001,中央ケア事業所,チュウオウケアジギョウショ,東京都新宿区1-1,03-5321-1111,a@example.jp\r\n"
        "事業所,1310000002,南ケア事業所,,東京都新宿区1-2,03-5321-1112,b@example.jp\r\n"
    )
    with database.factory() as s, s.begin():
        created = csvimport.import_accounts(
            s,
            Party.operator(),
            (header + rows).encode("cp932"),
            now=now,
            rng=random.Random(1).randbytes,
        )
        assert [c.account.name_kana for c in created] == ["チュウオウケアジギョウショ", None]
    bad = (
        header
        + "事業所,1310000003,北ケア事業所,北ケア,東京都新宿区1-3,03-5321-1113,c@example.jp\r\n"
    )
    with database.factory() as s, s.begin():
        with pytest.raises(csvimport.ImportRefused) as caught:
            csvimport.import_accounts(s, Party.operator(), bad.encode(), now=now)
    assert [(p.row, p.column) for p in caught.value.problems] == [(2, "name_kana")]
    assert "フリガナはカタカナ" in caught.value.problems[0].message_ja
    assert csvimport.HEADERS["名称カナ"] == csvimport.HEADERS["name_kana"] == "name_kana"


def test_account_input_checks_the_kana_name() -> None:
    good = AccountInput(
        AccountKind.OFFICE, "1310000001", "中央ケア", "東京都", "03-1234-5678", "a@example.jp"
    )
    assert good.problems() == []
    bad = AccountInput(
        AccountKind.OFFICE,
        "1310000001",
        "中央ケア",
        "東京都",
        "03-1234-5678",
        "a@example.jp",
        name_kana="中央",
    )
    assert [p.column for p in bad.problems()] == ["name_kana"]


# --- password policies -----------------------------------------------------------------------


def test_the_portal_policy_says_its_rules_and_checks_each() -> None:
    assert PORTAL.rules_ja() == [
        "半角で8文字以上20文字以内",
        "英字・数字・記号をそれぞれ1文字以上含める(記号の例: ! # $ % & -)",
        "ユーザーIDを含めない",
    ]
    assert PORTAL.problems("Sakura-2027!", "of12345678") == []
    assert len(PORTAL.problems("", "of1")) == 4  # length, letter, digit, symbol
    assert STAFF.problems("abc", "st1") == PORTAL.problems("abc", "st1")
    lenient = PasswordPolicy("test", min_length=4, symbol=False, not_user_id=False)
    assert lenient.problems("ab12", "ab") == []
    assert lenient.rules_en() == [
        "4 to 20 half-width characters",
        "at least a letter, a digit (symbols: ! # $ % & - ...)",
    ]


# --- mailed codes ----------------------------------------------------------------------------


def test_codes_are_six_uniform_digits_and_typing_is_forgiven() -> None:
    rng = random.Random(7).randbytes
    codes = [mail_codes.new_code(rng) for _ in range(20000)]
    assert all(len(c) == 6 and c.isdigit() for c in codes)
    first_digits = collections.Counter(c[0] for c in codes)
    assert set(first_digits) == set("0123456789")
    assert max(first_digits.values()) < 2 * min(first_digits.values())
    assert mail_codes.normalize("１２３ ４５６") == "123456"
    assert mail_codes.normalize("123-456") == "123456"
    for bad in ("12345", "1234567", "12a456", "", None, "٣٤٥٦٧٨"):
        assert mail_codes.normalize(bad) == ""


def test_a_code_mail_is_sealed_and_opens_to_the_code(database: Database, now: dt.datetime) -> None:
    account_id = _office(database, now)
    party = _party(database, account_id)
    with database.factory() as s, s.begin():
        sent = first_sign_in.send_email_code(
            s,
            party,
            " ｊｉｍｕｓｈｏ＠ｅｘａｍｐｌｅ．ｊｐ ",
            vault=VAULT,
            now=now,
            message_id_domain="ra.test",
            federation_name="証明連合会",
            rng=random.Random(2).randbytes,
        )
        assert sent.address == "jimusho@example.jp"
    with database.factory() as s:
        mail = s.get(OutboxMail, sent.mail_id)
        row = s.scalars(select(MailCode)).one()
        assert mail is not None
        text = VAULT.open(mail.body, context=outbox_body_context(mail.message_id))
    code = text.split("確認コード: ")[1][:6]
    assert mail.to_address == "jimusho@example.jp" and mail.kind == "code_confirm_email"
    assert f"{row.salt}:{code}" not in row.code_hash and code not in row.code_hash
    assert row.code_hash == VAULT.mac(
        f"{row.salt}:{code}", context=f"mail_codes/confirm_email/{account_id}"
    )
    assert "有効期限:" in text and "テスト" in text
    with database.factory() as s, s.begin():
        account = first_sign_in.confirm_email(s, party, code, vault=VAULT, now=now)
        assert account.email == "jimusho@example.jp" and account.email_confirmed_at == now
    with database.factory() as s, s.begin():
        with pytest.raises(mail_codes.NoCode):
            first_sign_in.confirm_email(s, party, code, vault=VAULT, now=now)  # used up


def test_a_bad_address_sends_nothing(database: Database, now: dt.datetime) -> None:
    party = _party(database, _office(database, now))
    with database.factory() as s, s.begin():
        with pytest.raises(MalformedInput):
            first_sign_in.send_email_code(
                s,
                party,
                "not an address",
                vault=VAULT,
                now=now,
                message_id_domain="t",
                federation_name="f",
            )
        assert s.scalars(select(OutboxMail)).first() is None


# --- forgotten password ----------------------------------------------------------------------


def test_reset_codes_go_only_to_a_confirmed_address(database: Database, now: dt.datetime) -> None:
    account_id = _office(database, now)
    with database.factory() as s, s.begin():
        user_id = s.get(Account, account_id).user_id  # type: ignore[union-attr]
        kwargs = {"vault": VAULT, "now": now, "message_id_domain": "t", "federation_name": "f"}
        assert password_reset.request_code(s, user_id, **kwargs) is None  # not confirmed
        assert password_reset.request_code(s, "of00000000", **kwargs) is None
        s.get(Account, account_id).email_confirmed_at = now  # type: ignore[union-attr]
        assert password_reset.request_code(s, user_id, **kwargs) is not None
        with pytest.raises(mail_codes.CodeWrong):
            password_reset.check_code(
                s, user_id, "12345", requested_at=now, tries=0, vault=VAULT, now=now
            )
        with pytest.raises(Refused):
            password_reset.set_new_password(
                s,
                account_id,
                0,
                "Sakura-2027!",
                verified_at=now - dt.timedelta(minutes=11),
                now=now,
            )


def test_staff_remove_an_offices_lost_authenticator(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        office = factories.account(s, kind=AccountKind.OFFICE, now=now)
        with pytest.raises(Refused):  # nothing to remove
            account_admin.reset_totp(s, party_of(staff), office.user_id, now=now)
        office.totp_secret_sealed = "sealed"
        office.totp_enrolled_at = now
        account_admin.reset_totp(s, party_of(staff), office.user_id, now=now)
        assert office.totp_secret_sealed is None and office.totp_enrolled_at is None
