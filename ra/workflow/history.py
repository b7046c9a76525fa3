"""The history of an application, from the audit log: who, when, what, from which status to
which, and why.

The console's detail page (証明書発行管理) and ``shomei ra show`` both show it; the audit log
(:mod:`ra.store.audit`) is the only source, so the history is exactly what was recorded, and the
entries are frozen values an edge renders (in Japan time, with the Japanese labels here).

The portal's 状況照会 (A4) shows the same history as an office should see it
(:func:`office_history`): who acted is the office, the agent or "the federation" (連合会),
never a member of staff or a job by name, and no network address; a reason is shown only
where it is the office's business (a rejection, a revocation and its reason).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import EVENT_LABELS_JA, Event, Status
from ra.party import Party, Permission, application_for, require
from ra.store.models import AuditRecord

# Japanese labels of the audit actions on an application that are not lifecycle events.
OTHER_ACTIONS_JA: Mapping[str, str] = MappingProxyType(
    {
        "download_pkcs12": "PKCS#12 のダウンロード",
        "download_certificate": "証明書のダウンロード",
        "archive_certificate": "保存期間経過による削除",
        "ca_refused_revocation": "認証局による失効拒否",
        "ca_abandoned_request": "認証局によるバッチ中止",
        "request_revocation": "失効依頼",
        "apply_renewal": "更新の申込",
    }
)
ACTORS_JA: Mapping[str, str] = MappingProxyType(
    {
        "office": "事業所",
        "agent": "代理人",
        "staff": "職員",
        "admin": "管理者",
        "system": "システム",
    }
)


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an application's history (the console's detail page, ``shomei ra show``)."""

    seq: int
    at: dt.datetime  # UTC; shown in Japan time by the edge
    actor: str  # office, agent, staff, admin or system (the operator and the jobs)
    actor_id: str  # the user ID, ``cli:NAME`` for the operator, or the job's name
    action: str  # the lifecycle event, or another audited action (a download, ...)
    action_ja: str
    status_before: Status | None
    status_after: Status | None
    reason: str | None  # the rejection reason, the revocation reason code, ...
    source_address: str | None

    @property
    def actor_ja(self) -> str:
        return ACTORS_JA.get(self.actor, self.actor)


# Who acted, as the portal says it: the office or agent itself, or the federation.
FEDERATION = "federation"
WHO_JA: Mapping[str, str] = MappingProxyType(
    {"office": "事業所", "agent": "代理人", FEDERATION: "連合会"}
)
# The actions whose reason (free text or an RFC 5280 reason code) the applicant may read.
OFFICE_REASONS = frozenset(
    {
        Event.REJECT.value,
        Event.EDIT_REJECTION_REASON.value,
        Event.CA_REFUSED.value,
        Event.PROCESS_REJECTION.value,
        Event.REGISTER_REVOCATION.value,
        "request_revocation",
    }
)
# Revocation reasons (RFC 5280 names) in the words of the portal; the same labels as
# ra.workflow.revocations.REASONS, kept here so the history needs no service module.
REASON_CODES_JA: Mapping[str, str] = MappingProxyType(
    {
        "unspecified": "その他",
        "keyCompromise": "鍵の危殆化(紛失・漏えいのおそれ)",
        "affiliationChanged": "所属・登録内容の変更",
        "superseded": "新しい証明書への切り替え",
        "cessationOfOperation": "廃業・業務停止",
        "privilegeWithdrawn": "資格の取消",
    }
)


@dataclass(frozen=True)
class OfficeHistoryEntry:
    """One line of an application's history as its applicant sees it (the portal's A4)."""

    at: dt.datetime  # UTC; shown in Japan time by the edge
    who: str  # office, agent or federation
    action: str
    action_ja: str
    status_before: Status | None
    status_after: Status | None
    reason: str | None  # a rejection reason, or a revocation reason code
    reason_is_code: bool  # True: ``reason`` is an RFC 5280 name (REASON_CODES_JA)

    @property
    def who_ja(self) -> str:
        return WHO_JA[self.who]

    @property
    def reason_ja(self) -> str | None:
        if self.reason is None or not self.reason_is_code:
            return self.reason
        return REASON_CODES_JA.get(self.reason, self.reason)


def office_history(
    session: Session, party: Party, application_id: int
) -> tuple[OfficeHistoryEntry, ...]:
    """The history of the applicant's own application, as the portal shows it (A4).

    Only the office or agent whose application it is (another's is
    :class:`~shomei.errors.NotFound`); staff, admins, the operator and the jobs all appear as
    the federation, and addresses and staff names are left out.
    """
    require(party, Permission.VIEW_OWN_APPLICATIONS)
    entries = []
    for h in application_history(session, party, application_id):
        who = h.actor if h.actor in ("office", "agent") else FEDERATION
        shown = h.action in OFFICE_REASONS
        entries.append(
            OfficeHistoryEntry(
                at=h.at,
                who=who,
                action=h.action,
                action_ja=h.action_ja,
                status_before=h.status_before,
                status_after=h.status_after,
                reason=h.reason if shown else None,
                reason_is_code=shown
                and h.action in (Event.REGISTER_REVOCATION.value, "request_revocation"),
            )
        )
    return tuple(entries)


def _action_ja(action: str) -> str:
    try:
        return EVENT_LABELS_JA[Event(action)]
    except ValueError:
        return OTHER_ACTIONS_JA.get(action, action)


def _status(value: str | None) -> Status | None:
    return Status(value) if value else None


def application_history(
    session: Session, party: Party, application_id: int
) -> tuple[HistoryEntry, ...]:
    """The whole history of an application from the audit log, oldest first.

    ``party`` must be able to see the application (:func:`ra.party.application_for`): an
    office or agent asking for another's gets :class:`~shomei.errors.NotFound`.
    """
    app = application_for(session, party, application_id)
    records = session.execute(
        select(AuditRecord)
        .where(AuditRecord.object_type == "application", AuditRecord.object_id == str(app.id))
        .order_by(AuditRecord.seq)
    ).scalars()
    entries = []
    for r in records:
        details = r.details or {}
        reason = details.get("reason") or details.get("reason_code")
        entries.append(
            HistoryEntry(
                seq=r.seq,
                at=r.at,
                actor=r.actor,
                actor_id=r.actor_id,
                action=r.action,
                action_ja=_action_ja(r.action),
                status_before=_status(r.status_before),
                status_after=_status(r.status_after),
                reason=str(reason) if reason is not None else None,
                source_address=r.source_address,
            )
        )
    return tuple(entries)
