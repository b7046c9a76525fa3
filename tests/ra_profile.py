"""The lines every ``ra.toml`` a test writes needs: the RA's certificate profile and its fees.

``ra.profile_files`` is required (the RA checks applications against its own copy of the CA's
profiles); the tests point it at the repository's ``conf/profiles/office.toml``.  ``ra.fees``
is required too (the fees and the bank account printed on invoices, which has no default): the
tests use :data:`FEES`, an account that is plainly a test's.  :data:`RA_REQUIRED` holds both, as
lines of the ``[ra]`` table (the fees as one inline table, so it may stand among other keys).
"""

from __future__ import annotations

import json
from pathlib import Path

from ra.settings import BankAccountSettings, FeeSettings

OFFICE_PROFILE = Path(__file__).resolve().parents[1] / "conf" / "profiles" / "office.toml"
# A JSON string is a valid TOML basic string.
PROFILE_FILES = f"profile_files = [{json.dumps(str(OFFICE_PROFILE))}]"

FEES = FeeSettings(
    office_fee_yen=5000,
    agent_fee_yen=5000,
    tax="exempt",
    bank_account=BankAccountSettings(
        bank="テスト銀行",
        branch="試験支店",
        account_type="普通",
        number="7654321",
        holder_kana="シヨウメイテストレンゴウカイ",
    ),
)
FEES_LINE = (
    'fees = { office_fee_yen = 5000, agent_fee_yen = 5000, tax = "exempt", bank_account = '
    '{ bank = "テスト銀行", branch = "試験支店", account_type = "普通", number = "7654321", '
    'holder_kana = "シヨウメイテストレンゴウカイ" } }'
)
RA_REQUIRED = f"{PROFILE_FILES}\n{FEES_LINE}"
