"""What every RA service function shares: who is acting, and may they see this application.

The service functions (:mod:`ra.applications`, :mod:`ra.revocations`, :mod:`ra.downloads`)
are what the portal, the console and the CLI call.  Each takes the session (opened at the
edge), the acting :class:`~ra.models.Account`, the application id and what the action needs,
plus ``now`` and the source address; it checks the role AND the object, applies one
lifecycle event through :mod:`ra.lifecycle` (the only way a status changes) and adds the side
effects in the same session, so the caller's commit makes all of it happen or none of it.

Objects are checked before roles: an office or agent asking for an application that is not
its own gets :class:`NotFound`, exactly as for an id that does not exist, so the portal never
reveals that another office's application exists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ra import lifecycle
from ra.lifecycle import Actor, Event, Status
from ra.models import Account, AccountKind, Application
from shomei.errors import MalformedInput, NotFound, Refused

PORTAL_KINDS = frozenset({AccountKind.OFFICE, AccountKind.AGENT})
CONSOLE_KINDS = frozenset({AccountKind.STAFF, AccountKind.ADMIN})

# Statuses of an application still on its way to a certificate: a second one is refused.
PENDING = frozenset(
    {
        Status.AWAITING_ISSUE_REQUEST,
        Status.AWAITING_PAYMENT,
        Status.ISSUE_REQUESTED,
        Status.AWAITING_ISSUANCE,
    }
)
REASON_LIMIT = 1000


def actor_of(account: Account) -> Actor:
    """The lifecycle actor an account acts as; an inactive account acts as nobody."""
    if not account.active:
        raise Refused(
            f"account {account.user_id} is disabled",
            message_ja=f"アカウント {account.user_id} は利用停止中です",
            actor=account.user_id,
        )
    return Actor(account.kind.value)


def require_console(account: Account) -> Actor:
    """Refuse unless ``account`` is active federation staff or an admin."""
    actor = actor_of(account)
    if account.kind not in CONSOLE_KINDS:
        raise Refused(
            "only federation staff can do this",
            message_ja="この操作は連合会職員のみ行えます",
            actor=account.user_id,
        )
    return actor


def move(
    session: Session,
    actor: Account,
    app: Application,
    event: Event,
    *,
    now: dt.datetime,
    source_address: str | None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Apply ``event`` to ``app`` as ``actor`` through the lifecycle (audited, guarded)."""
    lifecycle.apply(
        session,
        app,
        event,
        actor=actor_of(actor),
        actor_id=actor.user_id,
        now=now,
        source_address=source_address,
        reason=reason,
        details=details,
    )


def application_for(session: Session, account: Account, application_id: int) -> Application:
    """The application ``application_id`` as ``account`` may see it, or :class:`NotFound`.

    Staff and admins see every application; an office or agent only its own.
    """
    actor_of(account)
    app = session.execute(
        select(Application).where(Application.id == application_id)
    ).scalar_one_or_none()
    if app is None or (account.kind in PORTAL_KINDS and app.account_id != account.id):
        raise NotFound(
            f"no application {application_id}",
            message_ja=f"申請 {application_id} は見つかりません",
            application=application_id,
        )
    return app


def clean_reason(reason: str | None, *, what: str, what_ja: str) -> str:
    """A required free-text reason, stripped; empty or too long is :class:`MalformedInput`."""
    text = (reason or "").strip()
    if not text:
        raise MalformedInput(
            f"the {what} is required", message_ja=f"{what_ja}を入力してください", column="reason"
        )
    if len(text) > REASON_LIMIT or any(ord(c) < 0x20 and c not in "\n\t" for c in text):
        raise MalformedInput(
            f"the {what} must be at most {REASON_LIMIT} characters without control characters",
            message_ja=f"{what_ja}は {REASON_LIMIT} 文字以内で、制御文字は使えません",
            column="reason",
        )
    return text


def require_aware(value: dt.datetime, what: str) -> dt.datetime:
    """``value`` in UTC; a naive datetime from a form is bad input, not a crash."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise MalformedInput(
            f"{what} must carry a time zone", message_ja=f"{what} にタイムゾーンがありません"
        )
    return value.astimezone(dt.UTC)
