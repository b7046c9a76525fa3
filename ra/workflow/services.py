"""What every RA service function shares: applying a lifecycle event as a party, and checks.

The service functions (:mod:`ra.workflow.applications`, :mod:`ra.workflow.revocations`,
:mod:`ra.workflow.downloads`, ...)
are what the portal, the console, the CLI and the jobs call.  Each takes the session (opened at
the edge), the acting :class:`~ra.party.Party`, the application id and what the action needs,
plus ``now`` and the source address; it checks the role AND the object (:mod:`ra.party`, the
one permission model), applies one lifecycle event through :mod:`ra.lifecycle` (the only way a
status changes) and adds the side effects in the same session, so the caller's commit makes all
of it happen or none of it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from ra import lifecycle
from ra.lifecycle import Event
from ra.party import PENDING, Party
from ra.store.models import Application
from shomei.errors import MalformedInput

__all__ = ["PENDING", "REASON_LIMIT", "clean_reason", "expect_version", "move", "require_aware"]

REASON_LIMIT = 1000


def move(
    session: Session,
    party: Party,
    app: Application,
    event: Event,
    *,
    now: dt.datetime,
    source_address: str | None,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Apply ``event`` to ``app`` as ``party`` through the lifecycle (audited, guarded)."""
    lifecycle.apply(
        session,
        app,
        event,
        actor=party.actor,
        actor_id=party.audit_id,
        now=now,
        source_address=source_address,
        reason=reason,
        details=details,
    )


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


def expect_version(app: Application, version: int | None) -> None:
    """Refuse with :class:`~ra.lifecycle.ChangedMeanwhile` unless ``app`` is still at ``version``.

    A page shows an application at one version and its form sends that version back: when
    another member of staff changed the application in between, the action the first one
    chose was chosen on what is no longer there, so nothing is done and they are told.  (The
    guarded UPDATE of :func:`ra.lifecycle.apply` then covers a change between this read and
    the write.)  ``None`` means the caller did not read a version (the CLI, jobs).
    """
    if version is not None and version != app.version:
        raise lifecycle.ChangedMeanwhile(
            f"application {app.id} changed since it was shown (version {version}, "
            f"now {app.version}); nothing was changed, reload it and try again",
            message_ja="他の職員が先にこの申請を変更しました。今回の操作は行っていません。"
            "画面を読み込み直してから、もう一度操作してください",
            application=app.id,
        )
