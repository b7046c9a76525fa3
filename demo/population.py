"""The demo federation's crowd: a few hundred applications in every one of the ten statuses.

So that the console's list, its paging and its bulk actions show something real, the demo adds
offices, a few agents (software vendors applying for offices) and their applications, and
drives each group to its status through the same services and jobs the console and the
scheduler use; the audit log holds every step.  The groups are made in an order that leaves
each one where it should be:

1. every office and agent applies (1 発行依頼待ち, or 2 入金待ち for an agent's application);
2. staff register issue requests and payments, reject some; the dispatch job issues, the
   rejection job closes the rejections (5 発行済み, 10 却下);
3. staff register revocations of one group; the dispatch brings the CRL (8 失効済み);
4. issue requests and revocations of two more groups go out in a batch the CA has not answered
   yet (4 発行待ち, 7 失効待ち) - written as an offline link would, to an outbox folder.  The
   demo's RA is inline, so its scheduler's first dispatch hands that batch to the CA and
   those applications move on (which is how the running demo shows 4 → 5 and 7 → 8);
5. the last groups are left waiting for staff (3 発行依頼中, 6 失効依頼中, 9 却下待ち).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from contract.profile import Profile
from ra.lifecycle import Status
from ra.party import Party, party_of
from ra.people.accounts import (
    AccountInput,
    NewAccount,
    PortalPasswords,
    add_portal_account,
    new_portal_passwords,
)
from ra.people.passwords import hash_passwords
from ra.settings import RASettings
from ra.store.db import transaction
from ra.store.models import Account, Application
from ra.tasks import jobs
from ra.workflow import applications, revocations

Echo = Callable[[str], None]

# How many applications end in each status (200 in all, so the list has several pages).
GROUPS: dict[Status, int] = {
    Status.AWAITING_ISSUE_REQUEST: 40,
    Status.AWAITING_PAYMENT: 25,
    Status.ISSUE_REQUESTED: 30,
    Status.AWAITING_ISSUANCE: 10,
    Status.ISSUED: 40,
    Status.REVOCATION_REQUESTED: 10,
    Status.AWAITING_REVOCATION: 8,
    Status.REVOKED: 12,
    Status.REJECTION_PENDING: 10,
    Status.REJECTED: 15,
}
# Of each group, the share applied for by an agent (paid by bank transfer) rather than the office.
AGENT_EVERY = 4
AGENTS = (
    ("9920000001", "株式会社さくら請求システム"),
    ("9920000002", "有限会社みなと介護ソフト"),
    ("9920000003", "株式会社ひかり情報サービス"),
)
TOWNS = (
    "千代田", "中央", "港", "新宿", "文京", "台東", "墨田", "江東", "品川", "目黒",
    "大田", "世田谷", "渋谷", "中野", "杉並", "豊島", "北", "荒川", "板橋", "練馬",
)  # fmt: skip
KINDS = ("訪問介護ステーション", "デイサービスセンター", "ケアプランセンター", "グループホーム")
REJECT_REASON = "事業所番号と事業所名が指定通知と一致しないため(訂正のうえ再申請してください)"


@dataclass
class _Member:
    office: NewAccount
    agent: NewAccount | None  # the agent that applies for this office, if any
    status: Status
    app_id: int = 0


class _Clock:
    """Seconds after the demo's start: every step later than the one before, as in life."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def tick(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


def _party(session: Session, account_id: int) -> Party:
    account = session.get(Account, account_id)
    if account is None:  # pragma: no cover - made in this run
        raise LookupError(account_id)
    return party_of(account)


def _offices(total: int) -> Iterator[tuple[str, str]]:
    for i in range(total):
        town = TOWNS[i % len(TOWNS)]
        kind = KINDS[(i // len(TOWNS)) % len(KINDS)]
        yield f"13{20000000 + i:08d}", f"{town}{kind} 第{i // (len(TOWNS) * len(KINDS)) + 1}"


def populate(
    factory: sessionmaker[Session],
    settings: RASettings,
    profile: Profile,
    *,
    staff_id: int,
    outbox: Path,
    start: dt.datetime,
    echo: Echo = print,
) -> dict[Status, int]:
    """Add the groups of :data:`GROUPS`; return the count of applications per status after."""
    clock = _Clock(start)
    operator = Party.operator("demo")
    members: list[_Member] = []
    # The argon2id hashes of every new account's two passwords, on every core at once, as the
    # office CSV import makes them (one hash costs a few tenths of a CPU second by design).
    total = len(AGENTS) + sum(GROUPS.values())
    clear = [new_portal_passwords() for _ in range(total)]
    hashes = iter(hash_passwords([pw for pair in clear for pw in pair]))
    passwords = iter(PortalPasswords(i, lg, next(hashes), next(hashes)) for i, lg in clear)
    with transaction(factory) as session:
        agents = [
            add_portal_account(
                session,
                operator,
                _input("agent", number, name, i),
                now=clock.tick(),
                passwords=next(passwords),
            )
            for i, (number, name) in enumerate(AGENTS)
        ]
        numbers = _offices(sum(GROUPS.values()))
        for status, count in GROUPS.items():
            for i in range(count):
                number, name = next(numbers)
                office = add_portal_account(
                    session,
                    operator,
                    _input("office", number, name, len(members)),
                    now=clock.tick(),
                    passwords=next(passwords),
                )
                # An agent's application starts at 2 (入金待ち), never at 1.
                by_agent = status is Status.AWAITING_PAYMENT or (
                    status is not Status.AWAITING_ISSUE_REQUEST
                    and i % AGENT_EVERY == AGENT_EVERY - 1
                )
                agent = agents[len(members) % len(agents)] if by_agent else None
                members.append(_Member(office, agent, status))
    echo(f"   {len(members)} offices and {len(agents)} agents; every office applies")
    for member in members:  # one transaction each: a key is made and wrapped per application
        with transaction(factory) as session:
            applicant = member.agent or member.office
            app = applications.apply(
                session,
                _party(session, applicant.account.id),
                settings=settings,
                profile=profile,
                now=clock.tick(),
                issuance_password=applicant.issuance_password,
                consent_fee_offset=member.agent is None,
                for_office=member.office.account.office_number if member.agent else None,
            )
            member.app_id = app.id

    def group(*statuses: Status) -> list[_Member]:
        return [m for m in members if m.status in statuses]

    def approve(chosen: list[_Member]) -> None:
        with transaction(factory) as session:
            clerk = _party(session, staff_id)
            for m in chosen:
                if m.agent is None:
                    applications.register_issue_request(session, clerk, m.app_id, now=clock.tick())
                else:
                    applications.register_payment(
                        session,
                        clerk,
                        m.app_id,
                        paid_on=clock.now.date(),
                        amount_yen=settings.fees.agent_fee_yen,
                        payer_name=m.agent.account.user_id,
                        now=clock.tick(),
                    )

    def reject(chosen: list[_Member]) -> None:
        with transaction(factory) as session:
            clerk = _party(session, staff_id)
            for m in chosen:
                applications.reject(
                    session, clerk, m.app_id, reason=REJECT_REASON, now=clock.tick()
                )

    def revoke(chosen: list[_Member]) -> None:
        with transaction(factory) as session:
            clerk = _party(session, staff_id)
            for m in chosen:
                revocations.register_revocation(
                    session,
                    clerk,
                    m.app_id,
                    reason="cessationOfOperation",
                    requested_by="office",
                    requested_at=clock.now,
                    now=clock.tick(),
                )

    echo("   staff approve and reject; the jobs issue certificates and close the rejections")
    approve(group(Status.ISSUED, Status.REVOCATION_REQUESTED, Status.AWAITING_REVOCATION))
    approve(group(Status.REVOKED))
    reject(group(Status.REJECTED))
    jobs.JOBS["dispatch"](factory, settings, clock.tick())
    jobs.JOBS["process-rejections"](factory, settings, clock.tick())
    echo("   revocations: one group revoked, one sent to the CA, one waiting for staff")
    revoke(group(Status.REVOKED))
    jobs.JOBS["dispatch"](factory, settings, clock.tick())
    approve(group(Status.AWAITING_ISSUANCE))
    revoke(group(Status.AWAITING_REVOCATION))
    # A batch the CA has not answered yet: written as an offline link writes it (see module).
    outbox.mkdir(parents=True, exist_ok=True)
    offline = dataclasses.replace(
        settings, link=dataclasses.replace(settings.link, mode="offline", outbox=outbox)
    )
    jobs.JOBS["dispatch"](factory, offline, clock.tick())
    approve(group(Status.ISSUE_REQUESTED))
    revoke(group(Status.REVOCATION_REQUESTED))
    reject(group(Status.REJECTION_PENDING))
    return counts(factory)


def counts(factory: sessionmaker[Session]) -> dict[Status, int]:
    """How many applications are in each status."""
    with factory() as session:
        rows = session.execute(
            select(Application.status, func.count()).group_by(Application.status)
        ).all()
    found = {Status(status): int(n) for status, n in rows}
    return {status: found.get(status, 0) for status in Status}


def _input(kind: str, number: str, name: str, i: int) -> AccountInput:
    from ra.store.models import AccountKind

    return AccountInput(
        kind=AccountKind.AGENT if kind == "agent" else AccountKind.OFFICE,
        number=number,
        name=name,
        address=f"東京都{TOWNS[i % len(TOWNS)]}区本町{i % 9 + 1}-{i % 20 + 1}-{i % 7 + 1}",
        phone=f"03-{5000 + i % 4000:04d}-{1000 + i:04d}",
        email=f"{kind}{i}@office.example",
        representative_number=f"03{10000000 + i:08d}",
    )
