"""The history of an application, from the audit log: who, when, what, from which status to
which, and why.

The console's detail page (証明書発行管理) and ``shomei ra show`` both show it; the audit log
(:mod:`ra.store.audit`) is the only source, so the history is exactly what was recorded, and the
entries are frozen values an edge renders (in Japan time, with the Japanese labels here).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra.lifecycle import EVENT_LABELS_JA, Event, Status
from ra.party import Party, application_for
from ra.store.models import AuditRecord

# Japanese labels of the audit actions on an application that are not lifecycle events.
OTHER_ACTIONS_JA: Mapping[str, str] = MappingProxyType(
    {
        "download_pkcs12": "PKCS#12 のダウンロード",
        "download_certificate": "証明書のダウンロード",
        "archive_certificate": "保存期間経過による削除",
        "ca_refused_revocation": "認証局による失効拒否",
        "ca_abandoned_request": "認証局によるバッチ中止",
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
