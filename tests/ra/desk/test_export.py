"""Saving the certificate list as CSV (ra.desk.export): parsed back as Excel would read it.

Checks CP932 (the default) with 〓 for what CP932 lacks and UTF-8 with a BOM, CRLF line ends,
the Japanese headers and text, dates in Japan time, the fee balance, quoting,
formula-injection guards, the row count against the list query, streaming in chunks, and
that bad conditions write nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy.orm import Session

from ra.desk.export import (
    BOM,
    GETA,
    HEADERS,
    csv_fields,
    csv_stream,
    encode_cp932,
    export_csv,
    japan_date,
    safe_cell,
)
from ra.desk.queries import (
    ApplicantType,
    ListRow,
    count_applications,
    list_applications,
    make_filters,
)
from ra.lifecycle import Applicant, Status
from ra.party import Party, PartyKind
from ra.store.models import Account, AccountKind, Application, Certificate, FeeEntry
from shomei.errors import MalformedInput
from tests.ra.conftest import Database

# Federation staff: the list and its export are theirs (ra.party).
CLERK = Party(PartyKind.STAFF, "st00000001", 1)

# 15:30 UTC on 31 March is already 1 April in Japan.
LATE = dt.datetime(2026, 3, 31, 15, 30, tzinfo=dt.UTC)

NAMES = [
    "社会福祉法人さくら会",
    '=HYPERLINK("http://evil.example/","押してください")',
    "+81-3-0000-0000 ケアセンター",
    "-1+1",
    "@SUM(A1:A2)",
    '株式会社"ひまわり",訪問介護',
    "改行を\r\n含む名前",
    "\tタブ始まり",
    "𠮷田ケア〜センター",  # 𠮷 is not in CP932; the JIS wave dash has a CP932 look-alike
]
COLUMN = {name: i for i, name in enumerate(HEADERS)}


class CountingSink(io.BytesIO):
    """A binary file that counts its writes (to see the rows come in chunks)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.writes += 1
        return super().write(data)


def seed(session: Session) -> None:
    for n, name in enumerate(NAMES, start=1):
        office = Account(
            user_id=f"HJ{n:04d}",
            kind=AccountKind.OFFICE,
            name=name,
            office_number=f"{1300000000 + n:010d}",
            created_at=LATE,
            failed_logins=0,
            active=True,
        )
        session.add(office)
        session.flush()
        for k in range(3):
            status = (Status.ISSUED, Status.REVOKED, Status.AWAITING_ISSUE_REQUEST)[k]
            applied_at = LATE + dt.timedelta(days=n * 10 + k)
            app = Application(
                account_id=office.id,
                applicant=Applicant.OFFICE,
                entered_by="staff" if (n, k) == (1, 2) else "office",
                status=status,
                version=1,
                office_number=office.office_number or "",
                office_name=office.name,
                status_changed_at=applied_at,
                applied_at=applied_at,
                fee_yen=1000,
                csr_der=b"csr",
                request_id=f"req-{n}-{k}",
                profile="office",
            )
            session.add(app)
            session.flush()
            if k == 2:  # the office's fee is charged to its balance; 300 yen offset already
                for amount, kind in ((1000, "charge"), (-300, "offset")):
                    session.add(
                        FeeEntry(
                            account_id=office.id,
                            application_id=app.id,
                            amount_yen=amount,
                            kind=kind,
                            created_at=applied_at,
                        )
                    )
            if status is not Status.AWAITING_ISSUE_REQUEST:
                session.add(
                    Certificate(
                        application_id=app.id,
                        serial_hex=f"{n:020x}{k:020x}",
                        der=b"der",
                        not_before=applied_at,
                        not_after=applied_at + dt.timedelta(days=1095),
                        registered_at=applied_at,
                        revoked_at=LATE + dt.timedelta(days=400)
                        if status is Status.REVOKED
                        else None,
                        expiry_notices_sent=[],
                    )
                )
    session.flush()


def parse(data: bytes, encoding: str = "cp932") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


def col(row: list[str], name: str) -> str:
    return row[COLUMN[name]]


def test_export_is_excel_csv_in_cp932_with_every_row(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        sink = CountingSink()
        written = export_csv(session, CLERK, out=sink, chunk_size=4)
        data = sink.getvalue()
        total = count_applications(session, CLERK)
        listed = [r.application_id for r in list_applications(session, CLERK, page_size=500).rows]
    assert written == total == len(NAMES) * 3
    assert not data.startswith(BOM)
    # Every record ends with CRLF and there is no bare LF (the quoted two-line name holds CRLF).
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")
    table = parse(data)  # strict CP932: any byte CP932 cannot read fails here
    assert tuple(table[0]) == HEADERS
    assert table[0][:7] == [
        "申請番号",
        "ユーザID",
        "事業所名",
        "事業所番号",
        "状況",
        "申請年月日",
        "手数料残高",
    ]
    rows = table[1:]
    assert len(rows) == total
    # Header + 27 rows in chunks of 4: one write for the header, seven for the rows.
    assert sink.writes == 1 + 7
    by_user = {col(r, "ユーザID"): r for r in rows if col(r, "状況") == "発行済み"}
    assert col(by_user["HJ0001"], "事業所名") == "社会福祉法人さくら会"
    assert col(by_user["HJ0001"], "事業所番号") == "1300000001"
    assert col(by_user["HJ0002"], "事業所名") == "'" + NAMES[1]
    assert col(by_user["HJ0003"], "事業所名") == "'" + NAMES[2]
    assert col(by_user["HJ0004"], "事業所名") == "'-1+1"
    assert col(by_user["HJ0005"], "事業所名") == "'@SUM(A1:A2)"
    assert col(by_user["HJ0006"], "事業所名") == NAMES[5]  # comma and quotes survive
    assert col(by_user["HJ0007"], "事業所名") == NAMES[6]
    assert col(by_user["HJ0008"], "事業所名") == "'\tタブ始まり"
    # 𠮷 became the visible 〓; the JIS wave dash became the CP932 full-width tilde.
    assert col(by_user["HJ0009"], "事業所名") == "〓田ケア～センター"
    issued = by_user["HJ0001"]
    assert col(issued, "申請者") == "事業所" and col(issued, "状況番号") == "5"
    assert col(issued, "申請年月日") == "2026/04/11"  # LATE + 10 days, in Japan time
    assert col(issued, "有効開始年月日") == "2026/04/11"
    assert col(issued, "有効終了年月日") == "2029/04/10"
    assert col(issued, "失効年月日") == "" and col(issued, "手数料残高") == "0"
    revoked = next(r for r in rows if r[1] == "HJ0001" and col(r, "状況") == "失効済み")
    assert col(revoked, "状況番号") == "8" and col(revoked, "失効年月日") == "2027/05/06"
    staff = next(r for r in rows if r[1] == "HJ0001" and col(r, "状況") == "発行依頼待ち")
    assert col(staff, "申請者") == "職員" and col(staff, "有効開始年月日") == ""
    assert col(staff, "手数料残高") == "700"  # 1,000 charged, 300 offset
    # The same rows in the same order as the screen: newest first.
    assert [int(r[0]) for r in rows] == listed


def test_utf8_with_bom_keeps_every_character(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        out = io.BytesIO()
        export_csv(session, CLERK, out=out, encoding="utf-8-sig", user_id="HJ0009")
    data = out.getvalue()
    assert data.startswith(BOM) and not data.startswith(BOM + BOM)
    rows = parse(data, "utf-8-sig")
    assert tuple(rows[0]) == HEADERS
    assert {col(r, "事業所名") for r in rows[1:]} == {NAMES[8]}


def test_the_stream_yields_chunks_and_counts_replacements(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        stream = csv_stream(session, CLERK, make_filters(), chunk_size=2)
        first = next(stream)
        assert first.decode("cp932") == ",".join(HEADERS) + "\r\n"
        assert stream.rows == 0  # nothing read before it is asked for
        chunks = [first, *stream]
    # 27 rows, two per read: 14 chunks after the header, each a whole number of records.
    assert len(chunks) == 1 + 14
    assert all(c.endswith(b"\r\n") for c in chunks)
    assert stream.rows == 27
    assert stream.replaced == 3  # 𠮷 in each of HJ0009's three rows
    assert b"".join(chunks).decode("cp932").count(GETA) == 3


def test_cp932_encoding_of_text_outside_cp932() -> None:
    assert encode_cp932("ABCあ") == ("ABCあ".encode("cp932"), 0)
    data, replaced = encode_cp932("a😀b𠮷c−‖—¢£¬")
    assert data.decode("cp932") == "a〓b〓c－∥―￠￡￢" and replaced == 2
    assert encode_cp932("髙橋") == ("髙橋".encode("cp932"), 0)  # an IBM extension kanji


def test_export_filters_like_the_list(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        out = io.BytesIO()
        written = export_csv(
            session,
            CLERK,
            out=out,
            applicant_types={"office"},
            statuses={Status.ISSUED, Status.AWAITING_ISSUE_REQUEST},
            user_id="HJ000",
        )
        listed = list_applications(
            session,
            CLERK,
            applicant_types={"office"},
            statuses={Status.ISSUED, Status.AWAITING_ISSUE_REQUEST},
            user_id="HJ000",
            page_size=500,
        )
    rows = parse(out.getvalue())[1:]
    assert written == len(rows) == len(listed.rows) == 9 + 8  # HJ0001's 依頼待ち is 職員
    assert [int(r[0]) for r in rows] == [r.application_id for r in listed.rows]
    assert {col(r, "状況") for r in rows} == {"発行済み", "発行依頼待ち"}


def test_export_of_nothing_is_the_header_alone(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        out = io.BytesIO()
        assert export_csv(session, CLERK, out=out, user_id="nobody") == 0
        utf8 = io.BytesIO()
        assert export_csv(session, CLERK, out=utf8, user_id="nobody", encoding="utf-8-sig") == 0
    assert out.getvalue() == ",".join(HEADERS).encode("cp932") + b"\r\n"
    assert utf8.getvalue() == BOM + ",".join(HEADERS).encode() + b"\r\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"statuses": {"issued", "no_such_status"}},
        {"applicant_types": {"prefecture"}},
        {"user_id": "x" * 40},
        {"chunk_size": 0},
        {"chunk_size": 501},
        {"chunk_size": "100"},
        {"encoding": "shift_jis"},
        {"encoding": "utf-8"},
    ],
)
def test_bad_conditions_write_nothing(database: Database, kwargs: dict[str, object]) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        out = io.BytesIO()
        with pytest.raises(MalformedInput) as caught:
            export_csv(session, CLERK, out=out, **kwargs)  # type: ignore[arg-type]
    assert out.getvalue() == b""
    assert any("\u3040" <= ch <= "\u9fff" for ch in caught.value.message_ja)


def test_cell_helpers() -> None:
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("HJ0001") == "HJ0001"
    assert safe_cell("") == ""
    assert japan_date(None) == ""
    assert japan_date(dt.datetime(2026, 12, 31, 15, 0, tzinfo=dt.UTC)) == "2027/01/01"
    assert japan_date(dt.datetime(2026, 12, 31, 14, 59, tzinfo=dt.UTC)) == "2026/12/31"
    row = ListRow(
        application_id=7,
        user_id="-HJ",
        office_number=None,
        office_name="代理人株式会社",
        applicant_type=ApplicantType.AGENT,
        status=Status.AWAITING_PAYMENT,
        applied_at=dt.datetime(2026, 5, 1, 16, 0, tzinfo=dt.UTC),
        not_before=None,
        not_after=None,
        revoked_at=None,
        fee_balance_yen=1000,
    )
    assert csv_fields(row) == [
        "7",
        "'-HJ",
        "代理人株式会社",
        "",
        "入金待ち",
        "2026/05/02",
        "1000",
        "代理人",
        "2",
        "",
        "",
        "",
    ]
