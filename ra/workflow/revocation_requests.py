"""失効依頼: a holder asks the federation to revoke its certificate (docs/product.md §9).

An office or agent (Permission.REQUEST_REVOCATION) asks from the portal, with a reason (the
office closes, its details changed, the key file was lost, ...) and, if it wants, a few words.
The request changes no status: it waits on the console (the detail page and the list show
it) until staff register the revocation (B4, :func:`ra.workflow.revocations.register_revocation`),
which closes every open request of the application.  Only an issued, unexpired certificate can
be asked for; one open request per application (asking twice says it was received already).
Every request is audited on the application, so its history shows it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ra import lifecycle
from ra.lifecycle import Status
from ra.party import Party, Permission, application_for, require
from ra.store import audit
from ra.store.models import Application, RevocationRequest
from ra.workflow.services import REASON_LIMIT
from shomei.clock import to_japan
from shomei.errors import AlreadyExists, Conflict, MalformedInput

# What a holder may give as its reason, in the portal's words; each is an RFC 5280 CRLReason
# (ra.workflow.revocations.REASONS), so staff register it as it came.
HOLDER_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "cessationOfOperation": "廃業・事業所の閉鎖",
        "affiliationChanged": "事業所の名称・所在地などの変更",
        "keyCompromise": "証明書ファイルやパスワードの紛失・漏えいのおそれ",
        "superseded": "新しい証明書に切り替えたため",
        "unspecified": "その他",
    }
)
HOLDER_REASONS_EN: Mapping[str, str] = MappingProxyType(
    {
        "cessationOfOperation": "The office closes",
        "affiliationChanged": "The office's name, address or other details changed",
        "keyCompromise": "The certificate file or its password may be lost or leaked",
        "superseded": "We switched to a new certificate",
        "unspecified": "Other",
    }
)


@dataclass(frozen=True)
class OpenRequest:
    """An open request as the console's page of requests lists it."""

    request_id: int
    application_id: int
    office_number: str
    office_name: str
    user_id: str
    requested_by: str  # office / agent
    reason_code: str
    note: str | None
    requested_at: dt.datetime


def _clean_note(note: str | None, reason: str) -> str | None:
    text = (note or "").strip()
    if len(text) > REASON_LIMIT or any(ord(c) < 0x20 and c not in "\n\t" for c in text):
        raise MalformedInput(
            f"the note must be at most {REASON_LIMIT} characters without control characters",
            message_ja=f"内容は {REASON_LIMIT} 文字以内で書いてください",
            column="note",
        )
    if reason == "unspecified" and not text:
        raise MalformedInput(
            "say in a few words why the certificate should be revoked",
            message_ja="「その他」を選んだときは、失効を依頼する理由を書いてください",
            column="note",
        )
    return text or None


def open_request(session: Session, party: Party, application_id: int) -> RevocationRequest | None:
    """The open request of the application (as ``party`` may see it), or None."""
    app = application_for(session, party, application_id)
    return session.execute(
        select(RevocationRequest).where(
            RevocationRequest.application_id == app.id, RevocationRequest.closed_at.is_(None)
        )
    ).scalar_one_or_none()


def may_request(app: Application, now: dt.datetime) -> bool:
    """Whether the certificate of ``app`` is one a holder may ask to revoke (status, expiry)."""
    return (
        Status(app.status) is Status.ISSUED
        and app.certificate is not None
        and app.certificate.not_after > now
    )


def request_revocation(
    session: Session,
    party: Party,
    application_id: int,
    *,
    reason: str,
    note: str | None,
    now: dt.datetime,
    source_address: str | None = None,
) -> RevocationRequest:
    """失効依頼: the holder asks; audited on the application, no status changes."""
    require(party, Permission.REQUEST_REVOCATION)
    app = application_for(session, party, application_id)
    if reason not in HOLDER_REASONS:
        raise MalformedInput(
            f"choose a reason for the revocation, not {reason[:40]!r}",
            message_ja="失効を依頼する理由を選んでください",
            column="reason",
        )
    text = _clean_note(note, reason)
    status = Status(app.status)
    if status is not Status.ISSUED or app.certificate is None:
        raise Conflict(
            "only an issued certificate can be asked to be revoked "
            f"(now: {lifecycle.LABELS_EN[status]})",
            message_ja="失効依頼は発行済みの証明書についてのみできます"
            f"(現在の状況: {lifecycle.LABELS_JA[status]})",
            application=app.id,
        )
    if not may_request(app, now):
        raise Conflict(
            "this certificate has expired already; it needs no revocation",
            message_ja="この証明書は有効期限が過ぎているため、失効依頼の必要はありません",
            application=app.id,
        )
    existing = open_request(session, party, app.id)
    if existing is not None:
        raise _received_already(app, existing)
    request = RevocationRequest(
        application_id=app.id,
        account_id=app.account_id,
        requested_by=party.kind.value,
        reason_code=reason,
        note=text,
        requested_at=now,
        source_address=source_address,
    )
    try:
        with session.begin_nested():  # two requests at once: the index keeps one
            session.add(request)
            session.flush()
    except IntegrityError as exc:
        if "uq_revocation_requests_one_open" not in str(exc.orig) and (
            "revocation_requests.application_id" not in str(exc.orig)
        ):
            raise
        raise AlreadyExists(
            "a revocation request for this certificate arrived at the same time",
            message_ja="この証明書の失効依頼は受付済みです",
            application=app.id,
        ) from exc
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="request_revocation",
        object_type="application",
        object_id=str(app.id),
        status_before=status.value,
        status_after=status.value,
        now=now,
        source_address=source_address,
        details={"reason_code": reason, "note": text, "request": request.id},
    )
    return request


def _received_already(app: Application, existing: RevocationRequest) -> AlreadyExists:
    at = to_japan(existing.requested_at)
    return AlreadyExists(
        f"a revocation request for this certificate was received on {at:%Y-%m-%d %H:%M}",
        message_ja=f"この証明書の失効依頼は {at:%Y/%m/%d %H:%M} に受付済みです。"
        "連合会が失効を登録するまでお待ちください",
        application=app.id,
    )


def close_requests(
    session: Session, party: Party, app: Application, *, now: dt.datetime
) -> list[int]:
    """Close the application's open requests (staff registered the revocation); their ids."""
    require(party, Permission.REGISTER_REVOCATION)
    requests = list(
        session.execute(
            select(RevocationRequest).where(
                RevocationRequest.application_id == app.id, RevocationRequest.closed_at.is_(None)
            )
        ).scalars()
    )
    for request in requests:
        request.closed_at = now
        request.closed_by = party.audit_id
    session.flush()
    return [r.id for r in requests]


def open_requests(session: Session, party: Party) -> list[OpenRequest]:
    """Every open request, oldest first (the console's 失効依頼 page)."""
    require(party, Permission.VIEW_ALL_APPLICATIONS)
    rows = session.execute(
        select(RevocationRequest, Application)
        .join(Application, Application.id == RevocationRequest.application_id)
        .where(RevocationRequest.closed_at.is_(None))
        .order_by(RevocationRequest.requested_at, RevocationRequest.id)
    ).all()
    return [
        OpenRequest(
            request_id=r.id,
            application_id=a.id,
            office_number=a.office_number,
            office_name=a.office_name,
            user_id=a.account.user_id,
            requested_by=r.requested_by,
            reason_code=r.reason_code,
            note=r.note,
            requested_at=r.requested_at,
        )
        for r, a in rows
    ]
