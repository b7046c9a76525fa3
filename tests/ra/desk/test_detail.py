"""The detail screen's services: the application as shown (ra.desk.detail), 再度申込
(applications.reapply) and the version check of the console's actions (services.expect_version),
on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select

from contract.profile import Profile, load_profile
from ra.desk.detail import application_detail
from ra.lifecycle import Applicant, ChangedMeanwhile, Status
from ra.party import Party, Permission, party_of
from ra.people import accounts
from ra.people.accounts import AccountInput
from ra.settings import RASettings
from ra.store.models import AccountKind, Application, AuditRecord
from ra.workflow import applications, revocations
from shomei.errors import AlreadyExists, Conflict
from tests.ra.conftest import VAULT, Database
from tests.ra_profile import FEES, OFFICE_PROFILE

OP = Party.operator("test")


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(OFFICE_PROFILE)


@pytest.fixture
def settings(tmp_path: Path) -> RASettings:
    return RASettings(fees=FEES, database_url="sqlite://", data_dir=tmp_path)


def _portal(kind: AccountKind, number: str, name: str) -> AccountInput:
    return AccountInput(
        kind=kind,
        number=number,
        name=name,
        address="東京都新宿区西新宿2-8-1",
        phone="03-5321-1111",
        email=f"{number}@example.jp",
    )


@dataclass(frozen=True)
class People:
    office: Party
    office_password: str
    agent: Party
    agent_password: str
    staff: Party


@pytest.fixture
def people(database: Database, now: dt.datetime) -> People:
    """An office and an agent (with their issuance passwords) and a member of staff."""
    rng = random.Random(8).randbytes
    with database.factory() as s, s.begin():
        office = accounts.add_portal_account(
            s, OP, _portal(AccountKind.OFFICE, "1310000001", "中央ケア事業所"), now=now, rng=rng
        )
        agent = accounts.add_portal_account(
            s, OP, _portal(AccountKind.AGENT, "9900000001", "請求代行株式会社"), now=now, rng=rng
        )
        staff = accounts.add_console_user(
            s,
            OP,
            kind=AccountKind.STAFF,
            name="職員",
            email="st@fed.example",
            now=now,
            vault=VAULT,
            rng=rng,
        )
        return People(
            party_of(office.account),
            office.issuance_password or "",
            party_of(agent.account),
            agent.issuance_password or "",
            party_of(staff.account),
        )


def _agent_application(
    database: Database, people: People, settings: RASettings, profile: Profile, now: dt.datetime
) -> int:
    with database.factory() as s, s.begin():
        app = applications.apply(
            s,
            people.agent,
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=people.agent_password,
            for_office="1310000001",
            rng=random.Random(1).randbytes,
        )
        return app.id


def _audits(database: Database) -> int:
    with database.factory() as s:
        return int(s.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def test_the_detail_of_an_agent_application(
    database: Database, people: People, settings: RASettings, profile: Profile, now: dt.datetime
) -> None:
    app_id = _agent_application(database, people, settings, profile, now)
    with database.factory() as s:
        d = application_detail(s, people.staff, app_id)
    # The applicant is the agent; the office is the one it applied for, as registered.
    assert d.user_id == people.agent.user_id and d.phone == "03-5321-1111"
    assert (d.office_number, d.office_name) == ("1310000001", "中央ケア事業所")
    assert d.address == "東京都新宿区西新宿2-8-1"
    assert d.status is Status.AWAITING_PAYMENT and d.applicant is Applicant.AGENT
    assert d.fee_balance_yen == settings.fees.agent_fee_yen  # awaiting its transfer
    assert d.version == 1 and d.rejection_reason is None and d.payments == ()
    assert [h.action for h in d.history] == ["apply"]
    assert d.actions == {Permission.REGISTER_PAYMENT, Permission.REJECT}
    with database.factory() as s, s.begin():
        applications.register_payment(
            s,
            people.staff,
            app_id,
            paid_on=now.date(),
            amount_yen=settings.fees.agent_fee_yen,
            payer_name=people.agent.user_id,
            now=now,
            version=1,
        )
    with database.factory() as s:
        d = application_detail(s, people.staff, app_id)
    assert d.status is Status.ISSUE_REQUESTED and d.version == 2 and d.fee_balance_yen == 0
    assert [(p.amount_yen, p.payer_name) for p in d.payments] == [
        (settings.fees.agent_fee_yen, people.agent.user_id)
    ]
    assert [h.action for h in d.history] == ["apply", "register_payment"]


def test_a_stale_version_changes_nothing(
    database: Database, people: People, settings: RASettings, profile: Profile, now: dt.datetime
) -> None:
    app_id = _agent_application(database, people, settings, profile, now)
    with database.factory() as s, s.begin():
        applications.reject(s, people.staff, app_id, reason="書類不備", now=now, version=1)
    before = _audits(database)
    # The page showed version 1; the application is at 2 now.
    calls = [
        lambda s: applications.edit_rejection_reason(
            s, people.staff, app_id, reason="押印漏れ", now=now, version=1
        ),
        lambda s: applications.reject(s, people.staff, app_id, reason="x", now=now, version=1),
        lambda s: revocations.register_revocation(
            s,
            people.staff,
            app_id,
            reason="unspecified",
            requested_by="office",
            requested_at=now,
            now=now,
            version=1,
        ),
    ]
    for call in calls:
        with database.factory() as s, s.begin(), pytest.raises(ChangedMeanwhile) as info:
            call(s)
        assert "他の職員が先にこの申請を変更しました" in info.value.message_ja
    assert _audits(database) == before
    with database.factory() as s:
        app = s.get(Application, app_id)
        assert app is not None and (app.version, app.status_reason) == (2, "書類不備")
    with database.factory() as s, s.begin():  # the version shown now is accepted
        applications.edit_rejection_reason(
            s, people.staff, app_id, reason="押印漏れ", now=now, version=2
        )


def test_reapply_for_an_agent(
    database: Database, people: People, settings: RASettings, profile: Profile, now: dt.datetime
) -> None:
    app_id = _agent_application(database, people, settings, profile, now)
    with database.factory() as s, s.begin(), pytest.raises(Conflict) as info:
        applications.reapply(
            s,
            people.staff,
            app_id,
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=people.agent_password,
        )
    assert "処理中のため、再度申込はできません" in info.value.message_ja
    with database.factory() as s, s.begin():
        applications.reject(s, people.staff, app_id, reason="重複", now=now)
    later = now + dt.timedelta(hours=1)
    with database.factory() as s, s.begin():
        new = applications.reapply(
            s,
            people.staff,
            app_id,
            settings=settings,
            profile=profile,
            now=later,
            issuance_password=people.agent_password,
            rng=random.Random(2).randbytes,
            version=2,
        )
        new_id = new.id
    with database.factory() as s:
        new = s.get(Application, new_id)
        old = s.get(Application, app_id)
        assert new is not None and old is not None
        assert (new.account_id, new.office_number) == (old.account_id, old.office_number)
        assert new.entered_by == "staff" and new.status is Status.AWAITING_PAYMENT
        assert old.status is Status.REJECTION_PENDING  # the old one keeps its own history
    # A second one while the new is in progress is refused by apply's own rule.
    with database.factory() as s, s.begin(), pytest.raises(AlreadyExists):
        applications.reapply(
            s,
            people.staff,
            app_id,
            settings=settings,
            profile=profile,
            now=later,
            issuance_password=people.agent_password,
        )
