"""The certificate list query (ra.desk.queries): search conditions, keyset paging and the count.

Every search is checked against a plain Python filter-and-sort of the same rows: walking all
pages forward with ``after`` and back with ``before`` must give exactly that list, and the
count its length.  Bad input is refused with a Japanese message before anything is read.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from dataclasses import dataclass

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.orm import Session

from ra.desk import queries
from ra.desk.queries import (
    ApplicantType,
    Cursor,
    count_applications,
    fetch_page,
    list_applications,
    make_filters,
)
from ra.lifecycle import LABELS_JA, Applicant, Status
from ra.party import Party, PartyKind
from ra.store.db import alembic_config
from ra.store.models import Account, AccountKind, Application, Certificate
from ra.workflow.services import PENDING
from shomei.errors import MalformedInput
from tests.ra.conftest import Database

# Federation staff: the list and its export are theirs (ra.party).
CLERK = Party(PartyKind.STAFF, "st00000001", 1)

BASE = dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Seeded:
    """What the test wrote, to compute the expected list in Python."""

    id: int
    user_id: str
    applicant: Applicant
    entered_by: str
    status: Status
    applied_at: dt.datetime

    @property
    def kind(self) -> ApplicantType:
        if self.entered_by in ("staff", "admin"):
            return ApplicantType.STAFF
        return ApplicantType(self.applicant.value)


def _account(session: Session, user_id: str, kind: AccountKind, n: int) -> Account:
    acct = Account(
        user_id=user_id,
        kind=kind,
        name=f"社会福祉法人テスト会{n}" if kind is AccountKind.OFFICE else f"代理人{n}",
        office_number=f"{1300000000 + n:010d}" if kind is AccountKind.OFFICE else None,
        created_at=BASE,
        failed_logins=0,
        active=True,
    )
    session.add(acct)
    session.flush()
    return acct


def seed(session: Session, count: int = 90) -> list[Seeded]:
    """Offices HJ0001..HJ0009 (one with a non-ASCII suffix), agents AG01/AG02, ``count``
    applications with ties on applied_at, staff/admin entries, and some certificates."""
    rng = random.Random(7)
    offices = [_account(session, f"HJ000{i}", AccountKind.OFFICE, i) for i in range(1, 9)]
    offices.append(_account(session, "HJ0009ü", AccountKind.OFFICE, 9))
    agents = [_account(session, f"AG0{i}", AccountKind.AGENT, 20 + i) for i in (1, 2)]
    seeded: list[Seeded] = []
    in_progress: set[str] = set()  # one application in statuses 1-4 per office (the index)
    for n in range(count):
        applicant = Applicant.AGENT if n % 4 == 0 else Applicant.OFFICE
        acct = rng.choice(agents if applicant is Applicant.AGENT else offices)
        entered_by = rng.choice([applicant.value] * 5 + ["staff", "admin"])
        status = rng.choice(list(Status) + [Status.ISSUED] * 5)
        # An agent applies for offices of its own numbering here; each office once in progress.
        office_number = acct.office_number if applicant is Applicant.OFFICE else f"77{n:08d}"
        if status in PENDING:
            if office_number in in_progress:
                status = Status.ISSUED
            in_progress.add(office_number or "")
        # Groups of three share one applied_at, so the id must break the tie.
        applied_at = BASE + dt.timedelta(hours=n // 3, microseconds=7)
        app = Application(
            account_id=acct.id,
            applicant=applicant,
            entered_by=entered_by,
            status=status,
            version=1,
            office_number=office_number,
            office_name=acct.name,
            status_changed_at=applied_at,
            applied_at=applied_at,
            fee_yen=1000,
            csr_der=b"csr",
            request_id=f"req-{n}",
            profile="office",
        )
        session.add(app)
        session.flush()
        if status in (Status.ISSUED, Status.REVOKED):
            session.add(
                Certificate(
                    application_id=app.id,
                    serial_hex=f"{n + 1:040x}",
                    der=b"der",
                    not_before=applied_at,
                    not_after=applied_at + dt.timedelta(days=1095),
                    registered_at=applied_at,
                    revoked_at=applied_at + dt.timedelta(days=30)
                    if status is Status.REVOKED
                    else None,
                    expiry_notices_sent=[],
                )
            )
        seeded.append(Seeded(app.id, acct.user_id, applicant, entered_by, status, applied_at))
    session.flush()
    return seeded


def expected(
    seeded: list[Seeded],
    *,
    types: set[ApplicantType] | None = None,
    user_id: str | None = None,
    exact: bool = False,
    statuses: set[Status] | None = None,
) -> list[int]:
    rows = [
        s
        for s in seeded
        if (not types or s.kind in types)
        and (not statuses or s.status in statuses)
        and (user_id is None or (s.user_id == user_id if exact else s.user_id.startswith(user_id)))
    ]
    rows.sort(key=lambda s: (s.applied_at, s.id), reverse=True)
    return [s.id for s in rows]


def walk_forward(session: Session, page_size: int, **conditions: object) -> list[list[int]]:
    pages: list[list[int]] = []
    after: Cursor | str | None = None
    while True:
        page = list_applications(session, CLERK, page_size=page_size, after=after, **conditions)  # type: ignore[arg-type]
        pages.append([r.application_id for r in page.rows])
        assert (page.prev_cursor is None) == (after is None) or not page.rows
        if page.next_cursor is None:
            return pages
        after = page.next_cursor.token  # the form the screen round-trips
        assert len(pages) < 1000


def walk_back(session: Session, start: Cursor, page_size: int, **conditions: object) -> list[int]:
    ids: list[int] = []
    before: Cursor | None = start
    while before is not None:
        page = list_applications(session, CLERK, page_size=page_size, before=before, **conditions)  # type: ignore[arg-type]
        ids[:0] = [r.application_id for r in page.rows]
        before = page.prev_cursor
    return ids


SEARCHES: list[dict[str, object]] = [
    {},
    {"types": {ApplicantType.OFFICE}},
    {"types": {ApplicantType.AGENT}, "statuses": {Status.AWAITING_PAYMENT, Status.ISSUED}},
    {"types": {ApplicantType.STAFF}},
    {"types": {ApplicantType.OFFICE, ApplicantType.STAFF}, "statuses": {Status.ISSUED}},
    {"types": {ApplicantType.AGENT, ApplicantType.STAFF}},
    {"types": set(ApplicantType), "statuses": {Status.REVOKED, Status.REJECTED}},
    {"statuses": {Status.AWAITING_ISSUE_REQUEST}},
    {"user_id": "HJ000"},
    {"user_id": "HJ0009"},
    {"user_id": "AG0", "types": {ApplicantType.STAFF}},
    {"user_id": "HJ0003", "exact": True},
    {"user_id": "HJ000", "exact": True},
    {"user_id": "AG02", "exact": True, "statuses": {Status.ISSUED}},
    {"user_id": "ZZ"},
]


@pytest.mark.parametrize("fanout", [queries.ACCOUNT_FANOUT, 2])
def test_every_search_pages_forward_and_back_to_the_expected_list(
    database: Database, monkeypatch: pytest.MonkeyPatch, fanout: int
) -> None:
    # fanout 2 sends the prefix searches through the status indexes, filtered by account.
    monkeypatch.setattr(queries, "ACCOUNT_FANOUT", fanout)
    with database.factory() as session, session.begin():
        seeded = seed(session)
        for search in SEARCHES:
            types = search.get("types")
            statuses = search.get("statuses")
            user_id = search.get("user_id")
            exact = bool(search.get("exact"))
            want = expected(seeded, types=types, user_id=user_id, exact=exact, statuses=statuses)  # type: ignore[arg-type]
            conditions = {
                "applicant_types": types,
                "statuses": statuses,
                "user_id": user_id,
                "user_id_match": "exact" if exact else "prefix",
            }
            for size in (7, 50):
                pages = walk_forward(session, size, **conditions)
                assert list(itertools.chain(*pages)) == want, (search, size)
                assert all(len(p) == size for p in pages[:-1]), (search, size)
            assert count_applications(session, CLERK, **conditions) == len(want), search  # type: ignore[arg-type]
            if len(want) > 7:
                # A cursor newer than every row gives the first page.
                first = list_applications(
                    session,
                    CLERK,
                    page_size=7,
                    after=Cursor(BASE + dt.timedelta(days=999), 1),
                    **conditions,
                )
                assert [r.application_id for r in first.rows] == want[:7]
                back_from = Cursor(BASE - dt.timedelta(days=1), 0)  # older than every row
                assert walk_back(session, back_from, 7, **conditions) == want, search


def test_the_data_covers_every_group(database: Database) -> None:
    # Guards the test above: each applicant type and the staff/admin entries are present.
    with database.factory() as session, session.begin():
        seeded = seed(session)
    assert {s.kind for s in seeded} == set(ApplicantType)
    assert {s.entered_by for s in seeded} >= {"office", "agent", "staff", "admin"}
    assert len({s.applied_at for s in seeded}) < len(seeded)  # ties on applied_at


def test_rows_carry_what_the_screen_shows(database: Database) -> None:
    with database.factory() as session, session.begin():
        seeded = seed(session)
        page = list_applications(session, CLERK, statuses={"revoked"}, page_size=500)
        assert page.rows and page.next_cursor is None and page.prev_cursor is None
        row = page.rows[0]
        source = next(s for s in seeded if s.id == row.application_id)
        assert row.status is Status.REVOKED and row.status_code == "revoked"
        assert row.status_label_ja == LABELS_JA[Status.REVOKED] == "失効済み"
        assert row.status_number == 8
        assert row.user_id == source.user_id
        assert row.applied_at == source.applied_at and row.applied_at.tzinfo is not None
        assert row.not_before == source.applied_at
        assert row.not_after == source.applied_at + dt.timedelta(days=1095)
        assert row.revoked_at == source.applied_at + dt.timedelta(days=30)
        assert row.applicant_type is source.kind
        assert row.applicant_type_label_ja in ("事業所", "代理人", "職員")
        office = list_applications(
            session, CLERK, user_id="HJ0001", user_id_match="exact", applicant_types={"office"}
        ).rows[0]
        assert office.office_number == "1300000001"
        assert office.office_name == "社会福祉法人テスト会1"
        assert office.applicant_type_label_ja == "事業所"
        waiting = list_applications(session, CLERK, statuses={Status.AWAITING_ISSUE_REQUEST}).rows[
            0
        ]
        assert waiting.not_before is None and waiting.not_after is None
        assert waiting.revoked_at is None


def test_empty_list_and_unknown_user(database: Database) -> None:
    with database.factory() as session, session.begin():
        assert list_applications(session, CLERK).rows == ()
        seed(session, count=10)
        page = list_applications(session, CLERK, user_id="nobody")
        assert page == queries.Page((), None, None)
        assert count_applications(session, CLERK, user_id="nobody") == 0
        # A blank search box is no condition at all.
        assert count_applications(session, CLERK, user_id="   ", statuses=set()) == 10


def test_cursor_token_round_trip_and_prefix_bound() -> None:
    cursor = Cursor(dt.datetime(2026, 11, 2, 1, 2, 3, 456, tzinfo=dt.UTC), 42)
    assert cursor.token == "20261102010203000456-42"
    assert Cursor.parse(cursor.token) == cursor
    jst = dt.timezone(dt.timedelta(hours=9))
    assert Cursor(cursor.applied_at.astimezone(jst), 42).token == cursor.token
    assert queries._prefix_upper("HJ1") == "HJ2"
    assert queries._prefix_upper("a\U0010ffff") == "b"
    assert queries._prefix_upper("\U0010ffff") is None
    assert queries._prefix_upper("\ud7ff") == "\ue000"


def test_make_filters_normalises() -> None:
    f = make_filters(
        applicant_types=[Applicant.OFFICE, "staff"], statuses=["issued", Status.REVOKED]
    )
    assert f.applicant_types == {ApplicantType.OFFICE, ApplicantType.STAFF}
    assert f.statuses == (Status.ISSUED, Status.REVOKED)
    everything = make_filters(applicant_types=set(), statuses=None, user_id=" HJ1 ")
    assert everything.applicant_types == set(ApplicantType)
    assert everything.statuses == tuple(Status)
    assert everything.user_id == "HJ1" and everything.user_id_match == "prefix"


BAD_CALLS: list[tuple[dict[str, object], str]] = [
    ({"page_size": 0}, "page_size"),
    ({"page_size": 501}, "page_size"),
    ({"page_size": "50"}, "page_size"),
    ({"page_size": True}, "page_size"),
    ({"after": "abc"}, "cursor"),
    ({"after": ""}, "cursor"),
    ({"after": "20261399000000000000-1"}, "cursor"),  # month 13
    ({"after": "20261102010203000456-42\n"}, "cursor"),
    ({"before": "-1"}, "cursor"),
    ({"after": 12}, "cursor"),
    ({"after": Cursor(dt.datetime(2026, 1, 1), 1)}, "cursor"),  # naive
    ({"after": "20261102010203000456-1", "before": "20261102010203000456-2"}, "cursor"),
    ({"statuses": {"issued", "isued"}}, "statuses"),
    ({"statuses": {"発行済み"}}, "statuses"),
    ({"applicant_types": {"prefecture"}}, "applicant_types"),
    ({"user_id": "x" * 33}, "user_id"),
    ({"user_id": "HJ\x00"}, "user_id"),
    ({"user_id": 12}, "user_id"),
    ({"user_id": "HJ", "user_id_match": "fuzzy"}, "user_id_match"),
]


@pytest.mark.parametrize(("kwargs", "field"), BAD_CALLS)
def test_bad_input_is_refused_in_japanese(
    database: Database, kwargs: dict[str, object], field: str
) -> None:
    with database.factory() as session, session.begin():
        seed(session, count=5)
        with pytest.raises(MalformedInput) as caught:
            list_applications(session, CLERK, **kwargs)  # type: ignore[arg-type]
        assert caught.value.fields["field"] == field
        assert any("\u3040" <= ch <= "\u9fff" for ch in caught.value.message_ja)
        assert caught.value.message_ja != caught.value.message
        if field not in ("page_size", "cursor"):
            with pytest.raises(MalformedInput):
                count_applications(session, CLERK, **kwargs)  # type: ignore[arg-type]


def test_fetch_page_checks_the_page_size(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session, count=5)
        filters = make_filters()
        assert len(fetch_page(session, filters, page_size=3).rows) == 3
        with pytest.raises(MalformedInput):
            fetch_page(session, filters, page_size=0)


LIST_INDEXES = {
    "ix_applications_list_applicant",
    "ix_applications_list_entered_by",
    "ix_applications_list_account",
}


def test_migration_0004_creates_and_drops_the_list_indexes(database: Database) -> None:
    def indexes() -> set[str]:
        with database.engine.connect() as conn:
            names = {i["name"] or "" for i in inspect(conn).get_indexes("applications")}
            names |= {i["name"] or "" for i in inspect(conn).get_indexes("accounts")}
        return names

    pg_only = {"ix_accounts_user_id_c"} if database.is_postgres else set()
    assert LIST_INDEXES | pg_only <= indexes()
    parent = ScriptDirectory.from_config(alembic_config(database.url)).get_revision("0004")
    assert parent is not None
    command.downgrade(alembic_config(database.url), str(parent.down_revision))
    assert not (LIST_INDEXES | {"ix_accounts_user_id_c"}) & indexes()
    command.upgrade(alembic_config(database.url), "head")
    assert LIST_INDEXES | pg_only <= indexes()
