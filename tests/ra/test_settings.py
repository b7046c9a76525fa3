"""RA settings: the sign-in and web tables are typed, checked and strict about keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from ra.settings import LockoutPolicy, load_ra_settings
from shomei.errors import ConfigError
from tests.ra_profile import PROFILE_FILES, RA_REQUIRED

BASE = f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "var"\n{RA_REQUIRED}\n'


def _write(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(BASE + extra, encoding="utf-8")
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_ra_settings(_write(tmp_path, ""))
    assert settings.signin.console == LockoutPolicy(5, 30)
    assert settings.signin.portal == LockoutPolicy(3, 30)
    assert settings.web.secret_key_file == tmp_path / "ra-web.key"
    assert settings.web.behind_tls is False and settings.web.date_style == "western"


def test_values_are_read(tmp_path: Path) -> None:
    settings = load_ra_settings(
        _write(
            tmp_path,
            "[ra.signin.portal]\nattempts = 4\nminutes = 10\n"
            '[ra.web]\nbehind_tls = true\ndate_style = "wareki"\nidle_timeout_minutes = 15\n'
            'secret_key_file = "keys/web.key"\n',
        )
    )
    assert settings.signin.portal == LockoutPolicy(4, 10)
    assert settings.web.behind_tls and settings.web.date_style == "wareki"
    assert settings.web.idle_timeout_minutes == 15
    assert settings.web.secret_key_file == tmp_path / "keys" / "web.key"


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ("[ra.signin.console]\nattempts = 5\nminutes = 30\nfoo = 1\n", "foo"),
        ("[ra.signin.console]\nattempts = 0\nminutes = 30\n", "signin.console"),
        ('[ra.web]\ndate_style = "showa"\n', "date_style"),
        ("[ra.web]\nidle_timeout_minutes = 0\n", "idle_timeout_minutes"),
        ('[ra.web]\nbehind_tls = "yes"\n', "behind_tls"),
        ('[ra.signin]\nterms_of_use = "  "\n', "terms_of_use"),
        ('[ra.signin]\nterms_version = ""\n', "terms_version"),
        ('[ra.signin]\nportal_totp = "on"\n', "portal_totp"),
    ],
)
def test_bad_values_are_one_clear_error(tmp_path: Path, extra: str, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_ra_settings(_write(tmp_path, extra))
    assert words in err.value.message


def test_the_portal_sign_in_settings(tmp_path: Path) -> None:
    default = load_ra_settings(_write(tmp_path, "")).signin
    assert default.portal_totp is False and default.terms_version == "1"
    assert (
        default.terms_of_use.startswith("第1条(目的)\n") and "第6条(変更)" in default.terms_of_use
    )
    settings = load_ra_settings(
        _write(
            tmp_path,
            '[ra.signin]\nportal_totp = true\nterms_version = "2027-04"\n'
            'terms_of_use = """\n第1条 テスト\n"""\n',
        )
    ).signin
    assert settings.portal_totp and settings.terms_version == "2027-04"
    assert settings.terms_of_use == "第1条 テスト\n"


# --- [ra.fees]: required, no placeholder ------------------------------------------------------

NO_FEES = f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "var"\n{PROFILE_FILES}\n'
FEES_TABLE = (
    '[ra.fees]\noffice_fee_yen = 4000\nagent_fee_yen = 6000\ntax = "included"\n'
    'offset_consent = "手数料の相殺に同意します。"\n'
)
BANK = (
    '[ra.fees.bank_account]\nbank = "テスト銀行"\nbranch = "試験支店"\naccount_type = "当座"\n'
    'number = "0012345"\nholder_kana = "ｼﾖｳﾒｲﾚﾝｺﾞｳｶｲ"\n'
)


def _fees(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(NO_FEES + text, encoding="utf-8")
    return path


def test_the_fees_and_the_bank_account_are_read(tmp_path: Path) -> None:
    fees = load_ra_settings(_fees(tmp_path, FEES_TABLE + BANK)).fees
    assert (fees.office_fee_yen, fees.agent_fee_yen, fees.tax) == (4000, 6000, "included")
    assert fees.offset_consent == "手数料の相殺に同意します。"
    assert fees.bank_account.account_type == "当座" and fees.bank_account.number == "0012345"
    assert (fees.quote_valid_days, fees.invoice_due_days) == (30, 30)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "ra.fees is required: the certificate fees (office_fee_yen, agent_fee_yen, tax)"),
        (FEES_TABLE, "ra.fees.bank_account is required: the account agents pay the fee into"),
        (
            FEES_TABLE.replace('tax = "included"\n', "") + BANK,
            'ra.fees.tax is required: how quotes and invoices print the tax: "exempt"',
        ),
        (
            FEES_TABLE + BANK.replace('number = "0012345"\n', ""),
            "ra.fees.bank_account.number is required: the seven-digit account number",
        ),
    ],
)
def test_missing_fees_stop_the_start_with_what_to_set(
    tmp_path: Path, text: str, words: str
) -> None:
    path = _fees(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_ra_settings(path)
    message = err.value.message
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message
    assert "必須です" in err.value.message_ja


@pytest.mark.parametrize(
    ("bank", "words"),
    [
        (BANK.replace("テスト銀行", "○○銀行"), "template's fill-in mark"),
        (BANK.replace("試験支店", " "), "fees.bank_account.branch: must not be empty"),
        (BANK.replace("0012345", "12345"), "not a seven-digit account number"),
        (BANK.replace("ｼﾖｳﾒｲﾚﾝｺﾞｳｶｲ", "証明連合会"), "must be written in katakana"),
        (BANK.replace('"当座"', '"貯蓄"'), "account_type"),
    ],
)
def test_a_made_up_or_broken_account_is_refused(tmp_path: Path, bank: str, words: str) -> None:
    path = _fees(tmp_path, FEES_TABLE + bank)
    with pytest.raises(ConfigError) as err:
        load_ra_settings(path)
    assert err.value.message.startswith(f"{path}: ") and words in err.value.message


def test_fees_are_whole_yen_not_negative(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="office_fee_yen: must not be negative"):
        load_ra_settings(_fees(tmp_path, FEES_TABLE.replace("4000", "-1") + BANK))
    with pytest.raises(ConfigError, match="invoice_due_days: must be at least 1"):
        load_ra_settings(_fees(tmp_path, FEES_TABLE + "invoice_due_days = 0\n" + BANK))
