"""The one permission model (ra.party): the role table, the checks of every service function,
the object check, and the actions a console page offers, on SQLite and PostgreSQL.

For each service function the roles that may not call it get :class:`NotPermitted` and change
nothing; an office or agent asking for another's application gets :class:`NotFound`, exactly
as for an id that does not exist.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from contract.profile import load_profile
from ra.ca_link.claim_check import ClaimChecker
from ra.ca_link.recovery import rerequest_batch
from ra.desk import bulk, passbook, reception
from ra.desk.detail import application_detail
from ra.desk.export import csv_stream, export_csv
from ra.desk.queries import count_applications, list_applications, make_filters
from ra.lifecycle import TRANSITIONS, Actor, Applicant, Status
from ra.party import (
    EVENTS,
    PERMISSIONS,
    Party,
    PartyKind,
    Permission,
    Scope,
    account_of,
    allowed_actions,
    application_for,
    may,
    party_of,
    require,
)
from ra.people import accounts, api_tokens, auth, csvimport
from ra.people.accounts import AccountInput
from ra.settings import RASettings
from ra.store.models import Account, AccountKind, Application, AuditRecord
from ra.workflow import applications, billing, downloads, reissue, revocations
from ra.workflow.history import application_history
from shomei.errors import NotFound, NotPermitted
from tests.ra import factories
from tests.ra.conftest import VAULT, Database
from tests.ra_profile import FEES, OFFICE_PROFILE

P = Permission


def test_the_table_names_every_kind_and_only_known_actions() -> None:
    assert set(PERMISSIONS) == set(PartyKind)
    assert all(perms <= set(Permission) for perms in PERMISSIONS.values())
    # Every permission is held by someone, and nothing is held by everyone.
    held = set().union(*PERMISSIONS.values())
    assert held == set(Permission)
    assert not any(all(p in perms for perms in PERMISSIONS.values()) for p in Permission)


@pytest.mark.parametrize("kind", list(PartyKind))
@pytest.mark.parametrize("permission", list(Permission))
def test_require_follows_the_table(kind: PartyKind, permission: Permission) -> None:
    party = Party(kind, "someone", 1 if kind not in (PartyKind.OPERATOR, PartyKind.JOB) else None)
    if permission in PERMISSIONS[kind]:
        require(party, permission)
        assert may(party, permission)
    else:
        with pytest.raises(NotPermitted) as info:
            require(party, permission)
        assert "権限がありません" in info.value.message_ja
        assert info.value.fields["permission"] == permission.value


def test_what_each_role_may_do() -> None:
    """The decisions that matter, spelled out (a change to the table must change this)."""
    staff, admin = PERMISSIONS[PartyKind.STAFF], PERMISSIONS[PartyKind.ADMIN]
    assert P.UNDO not in staff and P.UNDO in admin
    assert P.MANAGE_STAFF not in staff and P.MANAGE_STAFF in admin
    assert P.VIEW_AUDIT not in staff and P.VIEW_AUDIT in admin
    assert staff < admin  # an admin may do all that staff may
    for portal in (PartyKind.OFFICE, PartyKind.AGENT):
        assert (
            P.DOWNLOAD in PERMISSIONS[portal] and P.VIEW_ALL_APPLICATIONS not in PERMISSIONS[portal]
        )
        assert P.REGISTER_ISSUE_REQUEST not in PERMISSIONS[portal]
    assert P.DOWNLOAD not in admin  # the federation never receives an office's key
    # The operator administers but decides nothing about an application; jobs only run.
    operator = PERMISSIONS[PartyKind.OPERATOR]
    assert P.REJECT not in operator and P.MANAGE_STAFF in operator
    assert PERMISSIONS[PartyKind.JOB] == {P.VIEW_ALL_APPLICATIONS, P.RUN_JOBS, P.MANAGE_LINK}
    # An API token reads, verifies and registers CRLs, never decides on an application;
    # only admins and the operator make and revoke tokens.
    assert PERMISSIONS[PartyKind.API] == {P.VIEW_ALL_APPLICATIONS, P.VERIFY_CLAIMS, P.REGISTER_CRL}
    assert P.MANAGE_API_TOKENS in admin and P.MANAGE_API_TOKENS not in staff


def test_an_api_token_holds_only_what_its_scopes_grant() -> None:
    reader = Party.api_token("reception", [Scope.READ_APPLICATIONS])
    assert (reader.kind, reader.actor, reader.audit_id) == (
        PartyKind.API,
        Actor.SYSTEM,
        "api:reception",
    )
    assert may(reader, P.VIEW_ALL_APPLICATIONS)
    assert not may(reader, P.VERIFY_CLAIMS) and not may(reader, P.REGISTER_CRL)
    with pytest.raises(NotPermitted) as info:
        require(reader, P.VERIFY_CLAIMS)
    assert info.value.fields["scopes"] == ["verify_claims"]
    assert "請求の署名検証" in info.value.message_ja and "verify_claims" in info.value.message
    # Scopes never lift a token above the role table.
    assert not may(Party(PartyKind.API, "x", None, frozenset({P.UNDO})), P.UNDO)


def test_parties_and_their_audit_names() -> None:
    operator = Party.operator("add-staff")
    assert (operator.kind, operator.actor, operator.audit_id) == (
        PartyKind.OPERATOR,
        Actor.SYSTEM,
        "cli:add-staff",
    )
    job = Party.job("scheduler")
    assert (job.actor, job.audit_id, job.account_id) == (Actor.SYSTEM, "scheduler", None)
    assert Party(PartyKind.ADMIN, "ad1", 3).actor is Actor.ADMIN
    with pytest.raises(AttributeError):
        job.kind = PartyKind.ADMIN  # type: ignore[misc]  # frozen


@dataclass
class World:
    office: Account
    other_office: Account
    agent: Account
    staff: Account
    admin: Account
    apps: dict[Status, int]  # office's applications by status
    agent_app: int  # the agent's, awaiting payment

    def party(self, kind: PartyKind) -> Party:
        if kind is PartyKind.OPERATOR:
            return Party.operator("test")
        if kind is PartyKind.JOB:
            return Party.job("test-job")
        if kind is PartyKind.API:
            return Party.api_token("test-token", Scope)  # every scope: the table decides
        account = {
            PartyKind.OFFICE: self.office,
            PartyKind.AGENT: self.agent,
            PartyKind.STAFF: self.staff,
            PartyKind.ADMIN: self.admin,
        }[kind]
        return party_of(account)


@pytest.fixture
def world(database: Database, now: dt.datetime) -> World:
    with database.factory() as s, s.begin():
        office = factories.account(s, kind=AccountKind.OFFICE, now=now)
        other = factories.account(s, kind=AccountKind.OFFICE, now=now)
        agent = factories.account(s, kind=AccountKind.AGENT, now=now)
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        admin = factories.account(s, kind=AccountKind.ADMIN, now=now)
        apps = {
            status: factories.application(
                s, applicant=Applicant.OFFICE, status=status, now=now, acct=office
            ).id
            for status in Status
        }
        agent_app = factories.application(
            s, applicant=Applicant.AGENT, status=Status.AWAITING_PAYMENT, now=now, acct=agent
        ).id
    return World(office, other, agent, staff, admin, apps, agent_app)


def _state(s: Session) -> tuple[int, int, list[tuple[int, str, int]]]:
    audits = s.execute(select(func.count()).select_from(AuditRecord)).scalar_one()
    accounts_n = s.execute(select(func.count()).select_from(Account)).scalar_one()
    rows = s.execute(select(Application.id, Application.status, Application.version)).all()
    return audits, accounts_n, sorted((r[0], str(r[1]), r[2]) for r in rows)


NOW = dt.datetime(2026, 11, 2, 1, 2, 3, tzinfo=dt.UTC)
INPUT = AccountInput(
    kind=AccountKind.OFFICE,
    number="1399999999",
    name="新規事業所",
    address="東京都",
    phone="03-1234-5678",
    email="new@example.jp",
)
CSV = (
    "種別,番号,名称,住所,電話番号,メールアドレス\r\n"
    "事業所,1399999998,別の事業所,東京都,03-1234-5678,b@example.jp\r\n"
).encode()

Call = Callable[[Session, Party, World], Any]

# Each service function, called as it would be, with the permissions that let a party in.
SERVICES: dict[str, tuple[Call, frozenset[Permission]]] = {
    "register_issue_request": (
        lambda s, p, w: applications.register_issue_request(
            s, p, w.apps[Status.AWAITING_ISSUE_REQUEST], now=NOW
        ),
        frozenset({P.REGISTER_ISSUE_REQUEST}),
    ),
    "register_payment": (
        lambda s, p, w: applications.register_payment(
            s, p, w.agent_app, paid_on=NOW.date(), amount_yen=1000, payer_name="x", now=NOW
        ),
        frozenset({P.REGISTER_PAYMENT}),
    ),
    "reject": (
        lambda s, p, w: applications.reject(
            s, p, w.apps[Status.AWAITING_ISSUE_REQUEST], reason="r", now=NOW
        ),
        frozenset({P.REJECT}),
    ),
    "edit_rejection_reason": (
        lambda s, p, w: applications.edit_rejection_reason(
            s, p, w.apps[Status.REJECTION_PENDING], reason="r2", now=NOW
        ),
        frozenset({P.EDIT_REJECTION_REASON}),
    ),
    "undo_approval": (
        lambda s, p, w: applications.undo_approval(s, p, w.apps[Status.ISSUE_REQUESTED], now=NOW),
        frozenset({P.UNDO}),
    ),
    "undo_rejection": (
        lambda s, p, w: applications.undo_rejection(
            s, p, w.apps[Status.REJECTION_PENDING], now=NOW
        ),
        frozenset({P.UNDO}),
    ),
    "register_revocation": (
        lambda s, p, w: revocations.register_revocation(
            s,
            p,
            w.apps[Status.ISSUED],
            reason="superseded",
            requested_by="office",
            requested_at=NOW,
            now=NOW,
        ),
        frozenset({P.REGISTER_REVOCATION}),
    ),
    "undo_revocation": (
        lambda s, p, w: revocations.undo_revocation(
            s, p, w.apps[Status.REVOCATION_REQUESTED], now=NOW
        ),
        frozenset({P.UNDO}),
    ),
    "apply": (
        lambda s, p, w: applications.apply(
            s,
            p,
            settings=RASettings(fees=FEES, database_url="sqlite://", data_dir=Path(".")),
            profile=None,  # type: ignore[arg-type]
            now=NOW,
        ),
        frozenset({P.APPLY, P.APPLY_FOR_APPLICANT}),
    ),
    "plan_application": (
        lambda s, p, w: applications.plan_application(
            s,
            p,
            settings=RASettings(fees=FEES, database_url="sqlite://", data_dir=Path(".")),
            profile=None,  # type: ignore[arg-type]
            issuance_password="x",
        ),
        frozenset({P.APPLY, P.APPLY_FOR_APPLICANT}),
    ),
    "certificate_screen": (
        lambda s, p, w: applications.certificate_screen(s, p),
        frozenset({P.VIEW_OWN_APPLICATIONS}),
    ),
    "known_offices": (
        lambda s, p, w: applications.known_offices(s, p),
        frozenset({P.VIEW_OWN_APPLICATIONS}),
    ),
    "certificate_card": (
        lambda s, p, w: applications.certificate_card(s, p, w.apps[Status.ISSUED]),
        frozenset({P.VIEW_ALL_APPLICATIONS, P.VIEW_OWN_APPLICATIONS}),
    ),
    "quote_form": (
        lambda s, p, w: billing.quote_form(
            s, p, settings=RASettings(fees=FEES, database_url="sqlite://", data_dir=Path("."))
        ),
        frozenset({P.APPLY}),
    ),
    "quote_pdf": (
        lambda s, p, w: billing.quote_pdf(
            s,
            p,
            settings=RASettings(fees=FEES, database_url="sqlite://", data_dir=Path(".")),
            organization="x",
            address="",
            person="",
            honorific="御中",
            now=NOW,
        ),
        frozenset({P.APPLY}),
    ),
    "invoice": (
        lambda s, p, w: billing.invoice(
            s,
            p,
            w.apps[Status.ISSUED],
            settings=RASettings(fees=FEES, database_url="sqlite://", data_dir=Path(".")),
            now=NOW,
        ),
        frozenset({P.VIEW_ALL_APPLICATIONS, P.VIEW_OWN_APPLICATIONS}),
    ),
    "get_application": (
        lambda s, p, w: applications.get_application(s, p, w.apps[Status.ISSUED]),
        frozenset({P.VIEW_ALL_APPLICATIONS, P.VIEW_OWN_APPLICATIONS}),
    ),
    "application_history": (
        lambda s, p, w: application_history(s, p, w.apps[Status.ISSUED]),
        frozenset({P.VIEW_ALL_APPLICATIONS, P.VIEW_OWN_APPLICATIONS}),
    ),
    "application_detail": (
        lambda s, p, w: application_detail(s, p, w.apps[Status.ISSUED]),
        frozenset({P.VIEW_ALL_APPLICATIONS, P.VIEW_OWN_APPLICATIONS}),
    ),
    "reapply": (
        lambda s, p, w: applications.reapply(
            s,
            p,
            w.apps[Status.REJECTED],
            settings=RASettings(fees=FEES, database_url="sqlite://", data_dir=Path("unused")),
            profile=load_profile(OFFICE_PROFILE),
            now=NOW,
            issuance_password="x",
        ),
        frozenset({P.APPLY_FOR_APPLICANT}),
    ),
    "download_certificate": (
        lambda s, p, w: downloads.download_certificate(
            s, p, w.apps[Status.ISSUED], chain=[], now=NOW
        ),
        frozenset({P.DOWNLOAD}),
    ),
    "download_pkcs12": (
        lambda s, p, w: downloads.download_pkcs12(
            s, p, w.apps[Status.ISSUED], issuance_password="x", chain=[], now=NOW
        ),
        frozenset({P.DOWNLOAD}),
    ),
    "reissue_sealed": (
        lambda s, p, w: reissue.reissue_sealed(s, p, now=NOW, message_id_domain="t.example"),
        frozenset({P.REISSUE_OWN_PASSWORD}),
    ),
    "list_applications": (
        lambda s, p, w: list_applications(s, p),
        frozenset({P.VIEW_ALL_APPLICATIONS}),
    ),
    "count_applications": (
        lambda s, p, w: count_applications(s, p),
        frozenset({P.VIEW_ALL_APPLICATIONS}),
    ),
    "export_csv": (
        lambda s, p, w: export_csv(s, p, out=io.BytesIO()),
        frozenset({P.VIEW_ALL_APPLICATIONS}),
    ),
    "add_portal_account": (
        lambda s, p, w: accounts.add_portal_account(s, p, INPUT, now=NOW),
        frozenset({P.MANAGE_PORTAL_ACCOUNTS}),
    ),
    "import_accounts": (
        lambda s, p, w: csvimport.import_accounts(s, p, CSV, now=NOW),
        frozenset({P.MANAGE_PORTAL_ACCOUNTS}),
    ),
    "reset_issuance_password": (
        lambda s, p, w: accounts.reset_issuance_password(
            s, p, w.office.user_id, now=NOW, federation_name="連合会"
        ),
        frozenset({P.MANAGE_PORTAL_ACCOUNTS}),
    ),
    "reset_login_password(portal)": (
        lambda s, p, w: accounts.reset_login_password(s, p, w.office.user_id, now=NOW),
        frozenset({P.MANAGE_PORTAL_ACCOUNTS}),
    ),
    "reset_login_password(staff)": (
        lambda s, p, w: accounts.reset_login_password(s, p, w.staff.user_id, now=NOW),
        frozenset({P.MANAGE_STAFF}),
    ),
    "unlock(portal)": (
        lambda s, p, w: auth.unlock(s, p, w.office.user_id, now=NOW),
        frozenset({P.MANAGE_PORTAL_ACCOUNTS}),
    ),
    "unlock(staff)": (
        lambda s, p, w: auth.unlock(s, p, w.staff.user_id, now=NOW),
        frozenset({P.MANAGE_STAFF}),
    ),
    "bulk_issue_request": (
        lambda s, p, w: bulk.bulk_issue_request(
            s, p, [w.apps[Status.AWAITING_ISSUE_REQUEST]], now=NOW
        ),
        frozenset({P.REGISTER_ISSUE_REQUEST}),
    ),
    "bulk_register_payment": (
        lambda s, p, w: bulk.bulk_register_payment(
            s, p, [w.agent_app], paid_on=NOW.date(), amount_yen=1000, payer_name="x", now=NOW
        ),
        frozenset({P.REGISTER_PAYMENT}),
    ),
    "bulk_undo_issue_request": (
        lambda s, p, w: bulk.bulk_undo_issue_request(
            s, p, [w.apps[Status.ISSUE_REQUESTED]], now=NOW
        ),
        frozenset({P.UNDO}),
    ),
    "search_by_payer": (
        lambda s, p, w: passbook.search_by_payer(s, p, w.agent.user_id),
        frozenset({P.REGISTER_PAYMENT}),
    ),
    "csv_stream": (
        lambda s, p, w: csv_stream(s, p, make_filters()),
        frozenset({P.VIEW_ALL_APPLICATIONS}),
    ),
    "add_console_user": (
        lambda s, p, w: accounts.add_console_user(
            s, p, kind=AccountKind.STAFF, name="新職員", email="n@fed.example", now=NOW, vault=VAULT
        ),
        frozenset({P.MANAGE_STAFF}),
    ),
    "create_api_token": (
        lambda s, p, w: api_tokens.create_token(
            s, p, name="受付", scopes=[Scope.VERIFY_CLAIMS], now=NOW
        ),
        frozenset({P.MANAGE_API_TOKENS}),
    ),
    "list_api_tokens": (
        lambda s, p, w: api_tokens.list_tokens(s, p),
        frozenset({P.MANAGE_API_TOKENS}),
    ),
    "certificate_by_serial": (
        lambda s, p, w: reception.certificate_by_serial(s, p, "1a", now=NOW),
        frozenset({P.VIEW_ALL_APPLICATIONS}),
    ),
    "verify_claims": (
        lambda s, p, w: ClaimChecker(lambda: NOW).verify(
            s,
            p,
            RASettings(fees=FEES, database_url="sqlite:///unused", data_dir=Path("unused")),
            [],
        ),
        frozenset({P.VERIFY_CLAIMS}),
    ),
}


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_forbidden_roles_are_refused_and_nothing_changes(
    database: Database, world: World, name: str
) -> None:
    call, needed = SERVICES[name]
    for kind in PartyKind:
        if needed & PERMISSIONS[kind]:
            continue
        party = world.party(kind)
        with database.factory() as s, s.begin():
            before = _state(s)
            with pytest.raises(NotPermitted) as info:
                call(s, party, world)
            assert info.value.message_ja, (name, kind)
            assert _state(s) == before, (name, kind)


def test_rerequest_needs_an_admin_or_the_operator(database: Database, world: World) -> None:
    for kind in PartyKind:
        if P.REREQUEST_ISSUANCE in PERMISSIONS[kind]:
            with pytest.raises(NotFound):  # let in; the batch does not exist
                rerequest_batch(database.factory, world.party(kind), "no-batch", now=NOW)
        else:
            with pytest.raises(NotPermitted):
                rerequest_batch(database.factory, world.party(kind), "no-batch", now=NOW)


OBJECT_CALLS = [
    "get_application",
    "certificate_card",
    "invoice",
    "application_history",
    "application_detail",
    "download_certificate",
    "download_pkcs12",
]


@pytest.mark.parametrize("name", OBJECT_CALLS)
def test_another_office_gets_not_found(database: Database, world: World, name: str) -> None:
    call, _ = SERVICES[name]
    with database.factory() as s, s.begin():
        before = _state(s)
        with pytest.raises(NotFound) as stranger:
            call(s, party_of(world.other_office), world)
        # Exactly what an id that does not exist gives: nothing tells the two apart.
        with pytest.raises(NotFound) as missing:
            application_for(s, party_of(world.other_office), 10**6)
        assert stranger.value.message_ja == f"申請 {world.apps[Status.ISSUED]} は見つかりません"
        assert missing.value.message_ja == f"申請 {10**6} は見つかりません"
        assert _state(s) == before


def test_an_agent_cannot_see_an_office_application(database: Database, world: World) -> None:
    with database.factory() as s, s.begin(), pytest.raises(NotFound):
        applications.get_application(s, party_of(world.agent), world.apps[Status.ISSUED])
    with database.factory() as s, s.begin():
        own = applications.get_application(s, party_of(world.agent), world.agent_app)
        assert own.id == world.agent_app


def test_a_disabled_account_acts_as_nobody(database: Database, world: World) -> None:
    party = party_of(world.staff)
    with database.factory() as s, s.begin():
        account = s.get(Account, world.staff.id)
        assert account is not None
        account.active = False
        with pytest.raises(NotPermitted) as info:
            party_of(account)
        assert "利用停止中" in info.value.message_ja
        # A party made before the account was disabled is refused where the account is read.
        with pytest.raises(NotPermitted):
            account_of(s, party)
    with database.factory() as s, s.begin(), pytest.raises(NotPermitted):
        account_of(s, Party.operator())  # the operator has no account


def _expected_actions(kind: PartyKind, status: Status, own: bool) -> set[Permission]:
    """The buttons of the detail page, written out from the rules (not from the code)."""
    staff_side = {
        Status.AWAITING_ISSUE_REQUEST: {P.REGISTER_ISSUE_REQUEST, P.REJECT},
        Status.AWAITING_PAYMENT: {P.REGISTER_PAYMENT, P.REJECT},
        Status.REJECTION_PENDING: {P.EDIT_REJECTION_REASON},
        Status.ISSUED: {P.REGISTER_REVOCATION},
    }.get(status, set())
    admin_only = {
        Status.ISSUE_REQUESTED: {P.UNDO},
        Status.REJECTION_PENDING: {P.UNDO},
        Status.REVOCATION_REQUESTED: {P.UNDO},
        Status.AWAITING_ISSUANCE: {P.REREQUEST_ISSUANCE},
    }.get(status, set())
    # 再度申込 is offered once the application is no longer on its way to a certificate.
    finished = {
        Status.ISSUED,
        Status.REVOCATION_REQUESTED,
        Status.AWAITING_REVOCATION,
        Status.REVOKED,
        Status.REJECTION_PENDING,
        Status.REJECTED,
    }
    reapply = {P.APPLY_FOR_APPLICANT} if status in finished else set()
    if kind is PartyKind.STAFF:
        return staff_side | reapply
    if kind is PartyKind.ADMIN:
        return staff_side | admin_only | reapply
    if kind in (PartyKind.OFFICE, PartyKind.AGENT):
        return {P.DOWNLOAD} if own and status is Status.ISSUED else set()
    # The operator re-requests from the command line (an admin does it in the console);
    # other events of the operator and jobs are the jobs' own, not buttons.
    operator = kind is PartyKind.OPERATOR and status is Status.AWAITING_ISSUANCE
    return {P.REREQUEST_ISSUANCE} if operator else set()


def test_allowed_actions_are_what_the_role_and_status_allow(
    database: Database, world: World
) -> None:
    with database.factory() as s, s.begin():
        for status, app_id in world.apps.items():
            app = s.get(Application, app_id)
            assert app is not None
            for kind in PartyKind:
                got = allowed_actions(world.party(kind), app)
                own = kind is PartyKind.OFFICE
                assert got == _expected_actions(kind, status, own), (status, kind)
            # Another office sees no button on this one.
            assert allowed_actions(party_of(world.other_office), app) == frozenset()


def test_every_offered_lifecycle_action_is_legal(database: Database, world: World) -> None:
    """An action offered on a page is one the lifecycle would accept from that status."""
    with database.factory() as s, s.begin():
        for status, app_id in world.apps.items():
            app = s.get(Application, app_id)
            assert app is not None
            for kind in PartyKind:
                party = world.party(kind)
                for action in allowed_actions(party, app) & set(EVENTS):
                    assert any(
                        (t := TRANSITIONS.get((status, e))) is not None and party.actor in t.actors
                        for e in EVENTS[action]
                    ), (status, kind, action)
