"""Saving the certificate list as CSV (ra.export): parsed back as Excel would read it.

Checks the UTF-8 BOM, CRLF line ends, the Japanese headers and text, dates in Japan time,
quoting, formula-injection guards, the row count against the list query, streaming in
chunks, and that bad conditions write nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from sqlalchemy.orm import Session

from ra.export import BOM, HEADERS, csv_fields, export_csv, japan_date, safe_cell
from ra.lifecycle import Applicant, Status
from ra.models import Account, AccountKind, Application, Certificate
from ra.party import Party, PartyKind
from ra.queries import ApplicantType, ListRow, count_applications, list_applications
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
]


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


def parse(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_export_is_excel_csv_with_every_row(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        sink = CountingSink()
        written = export_csv(session, CLERK, out=sink, chunk_size=4)
        data = sink.getvalue()
        total = count_applications(session, CLERK)
        listed = [r.application_id for r in list_applications(session, CLERK, page_size=500).rows]
    assert written == total == len(NAMES) * 3
    assert data.startswith(BOM) and not data.startswith(BOM + BOM)
    # Every record ends with CRLF and there is no bare LF (the quoted two-line name holds CRLF).
    assert data.endswith(b"\r\n")
    assert data.count(b"\n") == data.count(b"\r\n")
    table = parse(data)
    assert tuple(table[0]) == HEADERS
    assert table[0][0] == "申請番号" and table[0][3] == "事業所名"
    rows = table[1:]
    assert len(rows) == total
    # Header + 24 rows in chunks of 4: one write for the header, six for the rows.
    assert sink.writes == 1 + 6
    by_user = {r[1]: r for r in rows if r[6] == "発行済み"}
    assert by_user["HJ0001"][3] == "社会福祉法人さくら会"
    assert by_user["HJ0001"][2] == "1300000001"
    assert by_user["HJ0002"][3] == "'" + NAMES[1]
    assert by_user["HJ0003"][3] == "'" + NAMES[2]
    assert by_user["HJ0004"][3] == "'-1+1"
    assert by_user["HJ0005"][3] == "'@SUM(A1:A2)"
    assert by_user["HJ0006"][3] == NAMES[5]  # comma and quotes survive the round trip
    assert by_user["HJ0007"][3] == NAMES[6]
    assert by_user["HJ0008"][3] == "'\tタブ始まり"
    issued = by_user["HJ0001"]
    assert issued[4] == "事業所" and issued[5] == "5"
    assert issued[7] == "2026/04/11"  # LATE + 10 days, in Japan time
    assert issued[8] == "2026/04/11" and issued[9] == "2029/04/10"
    assert issued[10] == ""
    revoked = next(r for r in rows if r[1] == "HJ0001" and r[6] == "失効済み")
    assert revoked[5] == "8" and revoked[10] == "2027/05/06"
    staff = next(r for r in rows if r[1] == "HJ0001" and r[6] == "発行依頼待ち")
    assert staff[4] == "職員" and staff[8] == staff[9] == ""
    # The same rows in the same order as the screen: newest first.
    assert [int(r[0]) for r in rows] == listed


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
    assert written == len(rows) == len(listed.rows) == 8 + 7  # HJ0001's 依頼待ち is 職員
    assert [int(r[0]) for r in rows] == [r.application_id for r in listed.rows]
    assert {r[6] for r in rows} == {"発行済み", "発行依頼待ち"}


def test_export_of_nothing_is_the_header_alone(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        out = io.BytesIO()
        assert export_csv(session, CLERK, out=out, user_id="nobody") == 0
    assert out.getvalue() == BOM + ",".join(HEADERS).encode() + b"\r\n"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"statuses": {"issued", "no_such_status"}},
        {"applicant_types": {"prefecture"}},
        {"user_id": "x" * 40},
        {"chunk_size": 0},
        {"chunk_size": 501},
        {"chunk_size": "100"},
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
    )
    assert csv_fields(row) == [
        "7",
        "'-HJ",
        "",
        "代理人株式会社",
        "代理人",
        "2",
        "入金待ち",
        "2026/05/02",
        "",
        "",
        "",
    ]
