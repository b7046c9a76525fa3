"""Numbered pages of the certificate list (ra.desk.queries.list_page, plan_pages, PlanCache).

Every page reached by number must be the same rows as the page reached by walking the
cursors, and both the slice of a plain Python filter-and-sort of the seeded rows; the edges
(first, last, beyond the last, an empty search), the total, what makes a page stale, the
plan cache, the fee balance column and migration 0008.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, update

from ra.desk import queries
from ra.desk.queries import ApplicantType, PlanCache, list_page, make_filters, plan_pages
from ra.lifecycle import Applicant, Status
from ra.party import Party, PartyKind
from ra.store.db import alembic_config
from ra.store.models import Application, FeeEntry
from shomei.errors import MalformedInput, NotPermitted
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra.desk.test_queries import BASE, expected, seed, walk_forward

STAFF = Party(PartyKind.STAFF, "st000001", 1)

SEARCHES: list[dict[str, Any]] = [
    {},
    {"types": {ApplicantType.OFFICE}},
    {"types": {ApplicantType.STAFF}},
    {"types": {ApplicantType.AGENT}, "statuses": {Status.AWAITING_PAYMENT, Status.ISSUED}},
    {"statuses": {Status.ISSUED}},
    {"user_id": "HJ000"},
    {"user_id": "AG02", "exact": True},
]


def conditions(search: dict[str, Any]) -> dict[str, Any]:
    return {
        "applicant_types": search.get("types"),
        "statuses": search.get("statuses"),
        "user_id": search.get("user_id"),
        "user_id_match": "exact" if search.get("exact") else "prefix",
    }


@pytest.mark.parametrize("page_size", [7, 10])
def test_every_page_by_number_is_the_page_by_cursor(database: Database, page_size: int) -> None:
    with database.factory() as session, session.begin():
        seeded = seed(session)
        for search in SEARCHES:
            want = expected(seeded, **search)
            kwargs = conditions(search)
            filters = make_filters(**kwargs)
            walked = walk_forward(session, page_size, **kwargs)
            plan = plan_pages(session, filters, page_size=page_size)
            assert plan.total == len(want), search
            assert plan.page_count == max(1, -(-len(want) // page_size)), search
            first = list_page(session, filters, page=1, page_size=page_size)
            assert first.plan is None  # page 1 needs no plan
            assert (first.total, first.page_count) == (plan.total, plan.page_count)
            assert [r.application_id for r in first.rows] == want[:page_size]
            # Jump to the pages in an order no cursor walk would take, last page first.
            for number in reversed(range(1, plan.page_count + 1)):
                page = list_page(session, filters, page=number, page_size=page_size, plan=plan)
                ids = [r.application_id for r in page.rows]
                start = (number - 1) * page_size
                assert ids == want[start : start + page_size], (search, number)
                if want:
                    assert ids == walked[number - 1], (search, number)
                assert page.plan is plan and not page.stale
                assert (page.page, page.total) == (number, len(want))
                assert page.has_next == (number < plan.page_count)
                assert page.has_previous == (number > 1)


def test_a_jump_without_a_plan_plans_the_search(database: Database) -> None:
    with database.factory() as session, session.begin():
        seeded = seed(session)
        filters = make_filters(statuses={Status.ISSUED})
        want = expected(seeded, statuses={Status.ISSUED})
        page = list_page(session, filters, page=3, page_size=5)
        assert page.plan is not None and page.plan.total == len(want)
        assert [r.application_id for r in page.rows] == want[10:15]
        # A plan made for other conditions or another page size is not used.
        other = list_page(session, make_filters(), page=2, page_size=5, plan=page.plan)
        assert [r.application_id for r in other.rows] == expected(seeded)[5:10]
        resized = list_page(session, filters, page=2, page_size=4, plan=page.plan)
        assert [r.application_id for r in resized.rows] == want[4:8]


def test_beyond_the_last_page_is_the_last_page(database: Database) -> None:
    with database.factory() as session, session.begin():
        seeded = seed(session)
        want = expected(seeded)
        filters = make_filters()
        last = list_page(session, filters, page=10**9, page_size=8)
        assert last.page == last.page_count == -(-len(want) // 8)
        assert [r.application_id for r in last.rows] == want[(last.page - 1) * 8 :]
        assert 1 <= len(last.rows) <= 8 and not last.has_next
        one_page = list_page(session, filters, page=2, page_size=queries.MAX_PAGE_SIZE)
        assert one_page.page == one_page.page_count == 1
        assert [r.application_id for r in one_page.rows] == want


def test_an_empty_search_is_one_empty_page(database: Database) -> None:
    with database.factory() as session, session.begin():
        seed(session)
        for filters in (
            make_filters(user_id="nobody"),
            make_filters(user_id="AG01", statuses={Status.REJECTED}, applicant_types={"office"}),
        ):
            for number in (1, 3):
                page = list_page(session, filters, page=number)
                assert (page.page, page.page_count, page.total, page.rows) == (1, 1, 0, ())
                assert not page.stale and not page.has_next and not page.has_previous


@pytest.mark.parametrize("bad", [0, -1, "2", 2.0, True, None])
def test_a_bad_page_number_is_refused_in_japanese(database: Database, bad: object) -> None:
    with database.factory() as session, session.begin():
        with pytest.raises(MalformedInput) as caught:
            list_page(session, make_filters(), page=bad)  # type: ignore[arg-type]
        assert caught.value.fields["field"] == "page"
        assert "ページ番号" in caught.value.message_ja
        with pytest.raises(MalformedInput):
            list_page(session, make_filters(), page=2, page_size=0)


def test_a_page_tells_when_the_search_changed_under_its_plan(database: Database) -> None:
    with database.factory() as session, session.begin():
        seeded = seed(session)
        filters = make_filters(statuses={Status.ISSUED})
        want = expected(seeded, statuses={Status.ISSUED})
        plan = plan_pages(session, filters, page_size=5)
        # Another staff member moves a row of page 2 out of the search: page 2 is short.
        session.execute(
            update(Application).where(Application.id == want[6]).values(status=Status.REVOKED)
        )
        page2 = list_page(session, filters, page=2, page_size=5, plan=plan)
        assert page2.stale
        assert [r.application_id for r in page2.rows] == [i for i in want[5:10] if i != want[6]]
        page3 = list_page(session, filters, page=3, page_size=5, plan=plan)
        assert not page3.stale and [r.application_id for r in page3.rows] == want[10:15]
        # A newer matching application arrives: every page of the old plan says so, and
        # still shows the rows between its anchors.
        factories.application(
            session,
            applicant=Applicant.AGENT,
            status=Status.ISSUED,
            now=BASE + dt.timedelta(days=400),
        )
        page3 = list_page(session, filters, page=3, page_size=5, plan=plan)
        assert page3.stale and [r.application_id for r in page3.rows] == want[10:15]
        fresh = plan_pages(session, filters, page_size=5)
        assert fresh.total == len(want)  # one left, one arrived
        assert not list_page(session, filters, page=3, page_size=5, plan=fresh).stale


def test_the_plan_cache_reuses_expires_and_drops_stale_plans(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    planned: list[int] = []
    real = queries.plan_pages

    def counting(*args: Any, **kwargs: Any) -> queries.PagePlan:
        planned.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(queries, "plan_pages", counting)
    cache = PlanCache(max_entries=1, max_age=dt.timedelta(minutes=5))
    now = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    with database.factory() as session, session.begin():
        seeded = seed(session)
        filters = make_filters()
        want = expected(seeded)
        page = cache.page(session, STAFF, filters, page=1, page_size=10, now=now)
        assert planned == [] and [r.application_id for r in page.rows] == want[:10]
        cache.page(session, STAFF, filters, page=3, page_size=10, now=now)
        cache.page(session, STAFF, filters, page=5, page_size=10, now=now + dt.timedelta(minutes=4))
        assert len(planned) == 1  # planned once, reused
        cache.page(
            session, STAFF, filters, page=5, page_size=10, now=now + dt.timedelta(minutes=10)
        )
        assert len(planned) == 2  # too old: planned again
        cache.page(session, STAFF, filters, page=2, page_size=10, now=now, refresh=True)
        assert len(planned) == 3  # 検索 pressed again
        other = make_filters(statuses={Status.ISSUED})
        cache.page(session, STAFF, other, page=2, page_size=10, now=now)
        cache.page(session, STAFF, filters, page=2, page_size=10, now=now)
        assert len(planned) == 5  # one entry only: the first search was evicted
        newer = factories.application(
            session,
            applicant=Applicant.AGENT,
            status=Status.ISSUED,
            now=BASE + dt.timedelta(days=9),
        )
        stale = cache.page(session, STAFF, filters, page=2, page_size=10, now=now)
        assert stale.stale and len(planned) == 5
        assert [r.application_id for r in stale.rows] == want[10:20]  # the planned rows
        again = cache.page(session, STAFF, filters, page=2, page_size=10, now=now)
        assert len(planned) == 6 and not again.stale
        assert [r.application_id for r in again.rows] == [newer.id, *want][10:20]


@pytest.mark.parametrize("kind", [PartyKind.OFFICE, PartyKind.AGENT])
def test_only_those_who_see_every_application_page_the_list(
    database: Database, kind: PartyKind
) -> None:
    cache = PlanCache()
    with database.factory() as session, session.begin():
        seed(session)
        with pytest.raises(NotPermitted):
            cache.page(
                session,
                Party(kind, "of000001", 1),
                make_filters(),
                page=1,
                page_size=10,
                now=dt.datetime(2026, 12, 6, tzinfo=dt.UTC),
            )


def test_rows_carry_the_fee_balance(database: Database) -> None:
    with database.factory() as session, session.begin():
        now = BASE
        office_app = factories.application(
            session, applicant=Applicant.OFFICE, status=Status.AWAITING_ISSUE_REQUEST, now=now
        )
        for amount, kind in ((1000, "charge"), (-1000, "offset"), (1000, "charge")):
            session.add(
                FeeEntry(
                    account_id=office_app.account_id,
                    application_id=office_app.id,
                    amount_yen=amount,
                    kind=kind,
                    created_at=now,
                )
            )
        unpaid = factories.application(
            session, applicant=Applicant.AGENT, status=Status.AWAITING_PAYMENT, now=now
        )
        paid = factories.application(
            session, applicant=Applicant.AGENT, status=Status.ISSUE_REQUESTED, now=now
        )
        session.flush()
        rows = {r.application_id: r for r in list_page(session, make_filters()).rows}
        assert rows[office_app.id].fee_balance_yen == 1000
        assert rows[unpaid.id].fee_balance_yen == unpaid.fee_yen == 1000
        assert rows[paid.id].fee_balance_yen == 0


def test_migration_0008_creates_and_drops_its_indexes(database: Database) -> None:
    def indexes() -> set[str]:
        with database.engine.connect() as conn:
            found = inspect(conn)
            return {
                i["name"] or ""
                for t in ("applications", "fee_entries")
                for i in found.get_indexes(t)
            }

    mine = {"ix_applications_list_order", "ix_fee_entries_application_id"}
    assert mine <= indexes()
    command.downgrade(alembic_config(database.url), "0007")
    assert not mine & indexes()
    command.upgrade(alembic_config(database.url), "head")
    assert mine <= indexes()
