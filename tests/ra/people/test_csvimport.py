"""CSV import of offices and agents: encodings, every bad row reported, all or nothing."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from sqlalchemy import func, select

from ra.party import Party, party_of
from ra.people import csvimport, passwords
from ra.people.accounts import get_account
from ra.people.csvimport import ImportRefused
from ra.store.models import Account, AccountKind, AuditRecord
from shomei.errors import MalformedInput, NotPermitted
from tests.ra.conftest import Database
from tests.ra.factories import account

HEADER = "種別,事業所番号,名称,郵便番号,住所,電話番号,代表者番号,メールアドレス\r\n"
ROWS = [
    "事業所,1310000001,中央ケア事業所,163-8001,東京都新宿区西新宿2-8-1,03-5321-1111,,a@example.jp",
    "事業所,2710000002,なにわ訪問介護,530-0001,大阪府大阪市北区梅田1-1,06-1234-5678,0612345678,b@example.jp",
    '代理人,9900000001,"株式会社 請求ソフト, 本社",,東京都港区芝公園4-2,03-9876-5432,,c@example.jp',
]


def _csv(rows: list[str], header: str = HEADER) -> str:
    return header + "".join(r + "\r\n" for r in rows)


def _count(database: Database) -> int:
    with database.factory() as s:
        return s.execute(select(func.count()).select_from(Account)).scalar_one()


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp932"])
def test_import_in_each_encoding(database: Database, now: dt.datetime, encoding: str) -> None:
    data = _csv(ROWS).encode(encoding)
    with database.factory() as s, s.begin():
        created = csvimport.import_accounts(
            s, Party.operator(), data, now=now, rng=random.Random(3).randbytes
        )
    assert [c.account.name for c in created] == [
        "中央ケア事業所",
        "なにわ訪問介護",
        "株式会社 請求ソフト, 本社",
    ]
    assert [c.account.kind for c in created] == [AccountKind.OFFICE] * 2 + [AccountKind.AGENT]
    with database.factory() as s:
        first = get_account(s, created[0].user_id)
        assert first.postal_code == "163-8001" and first.representative_number is None
        passwords.check_issuance_password(
            first.issuance_password_hash, created[0].issuance_password or ""
        )
        audited = s.execute(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.action == "create_account")
        ).scalar_one()
        assert audited == 3


def test_english_headers_any_order_and_blank_lines(database: Database, now: dt.datetime) -> None:
    text = (
        "email,kind,number,name,address,phone\n"
        "x@example.jp,office,1310000005,英語見出し事業所,東京都,0312345678\n"
        "\n,,,,,\n"
    )
    with database.factory() as s, s.begin():
        created = csvimport.import_accounts(s, Party.operator(), text.encode(), now=now)
    assert [c.account.office_number for c in created] == ["1310000005"]


def test_every_bad_row_is_reported_and_nothing_is_imported(
    database: Database, now: dt.datetime
) -> None:
    with database.factory() as s, s.begin():
        existing = account(s, kind=AccountKind.OFFICE, now=now)
        existing_number = existing.office_number
    bad = [
        ROWS[0],  # row 2: good
        "事業所,131000000X,番号誤り,,東京都,03-1111-2222,,d@example.jp",  # 3
        "事業所,1310000001,重複,,東京都,03-1111-2222,,e@example.jp",  # 4: duplicate of row 2
        f"事業所,{existing_number},登録済み,,東京都,03-1111-2222,,f@example.jp",  # 5
        "事業所,1310000006,,,東京都,03-1111-2222,,g@example.jp",  # 6: missing name
        "事業所,1310000007,メール誤り,,東京都,03-1111-2222,,not-mail",  # 7
        "病院,1310000008,種別誤り,,東京都,03-1111-2222,,h@example.jp",  # 8
        "事業所,1310000009,列不足",  # 9
    ]
    before = _count(database)
    with database.factory() as s, s.begin(), pytest.raises(ImportRefused) as info:
        csvimport.import_accounts(s, Party.operator(), _csv(bad).encode("cp932"), now=now)
    got = {(p.row, p.column) for p in info.value.problems}
    assert got == {
        (3, "number"),
        (4, "number"),
        (5, "number"),
        (6, "name"),
        (7, "email"),
        (8, "kind"),
        (9, "*"),
    }
    by_row = {p.row: p for p in info.value.problems}
    assert "2 行目と重複" in by_row[4].message_ja and "also on row 2" in by_row[4].message
    assert "既に登録" in by_row[5].message_ja
    assert by_row[6].line("ja") == "6 行目 name: 名称がありません"
    assert by_row[7].line().startswith("row 7, email:")
    assert "1 件も登録していません" in info.value.message_ja
    assert _count(database) == before


def test_header_problems(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin(), pytest.raises(ImportRefused) as info:
        csvimport.import_accounts(
            s, Party.operator(), "種別,番号,名称,住所,電話番号,FAX\n".encode(), now=now
        )
    assert {(p.row, p.column) for p in info.value.problems} == {(1, "FAX"), (1, "email")}


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"", "empty"),
        (HEADER.encode(), "no accounts"),
        (b"\xff\xfe\x00\x81\xff", "neither UTF-8 nor CP932"),
        ((HEADER + '事業所,"1310000001').encode(), "not readable CSV"),
    ],
)
def test_unreadable_files(database: Database, now: dt.datetime, data: bytes, fragment: str) -> None:
    with database.factory() as s, s.begin(), pytest.raises(MalformedInput) as info:
        csvimport.import_accounts(s, Party.operator(), data, now=now)
    assert fragment in info.value.message and info.value.message_ja


def test_only_staff_import(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        office = account(s, kind=AccountKind.OFFICE, now=now)
        with pytest.raises(NotPermitted):
            csvimport.import_accounts(s, party_of(office), _csv(ROWS).encode(), now=now)
        staff = account(s, kind=AccountKind.STAFF, now=now)
        assert (
            len(csvimport.import_accounts(s, party_of(staff), _csv(ROWS[:1]).encode(), now=now))
            == 1
        )
