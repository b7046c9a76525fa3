"""Revocation requests: staff register them (B4), admins undo them until sent (docs/product.md §9).

The reason is an RFC 5280 §5.3.1 CRLReason, by its ASN.1 name.  Only the reasons that make
sense for an office's end-entity certificate are accepted: ``cACompromise`` and
``aACompromise`` concern authorities, ``certificateHold``/``removeFromCRL`` would make a
revocation reversible, which the federation's CRL policy does not allow.  Who asked is the
office, its agent or the prefecture (都道府県), with the time they asked.  A holder's own
request from the portal (失効依頼, :mod:`ra.workflow.revocation_requests`) is closed by the
registration that answers it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType

from sqlalchemy.orm import Session

from ra.lifecycle import Event
from ra.party import Party, Permission, application_for, require
from ra.store.models import Application
from ra.workflow import revocation_requests
from ra.workflow.services import expect_version, move, require_aware
from shomei.errors import MalformedInput

REASONS: Mapping[str, str] = MappingProxyType(
    {
        "unspecified": "理由なし",
        "keyCompromise": "鍵の危殆化",
        "affiliationChanged": "所属の変更",
        "superseded": "再発行による置換",
        "cessationOfOperation": "廃業・業務停止",
        "privilegeWithdrawn": "資格の取消",
    }
)
REQUESTERS: Mapping[str, str] = MappingProxyType(
    {"office": "事業所", "agent": "代理人", "prefecture": "都道府県"}
)


def register_revocation(
    session: Session,
    party: Party,
    application_id: int,
    *,
    reason: str,
    requested_by: str,
    requested_at: dt.datetime,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """証明書失効申請 (B4): 5 → 6, recording the reason, who asked and when."""
    require(party, Permission.REGISTER_REVOCATION)
    if reason not in REASONS:
        raise MalformedInput(
            f"unknown revocation reason {reason!r} (use one of {', '.join(REASONS)})",
            message_ja=f"失効理由 {reason!r} は使えません",
            column="reason",
        )
    if requested_by not in REQUESTERS:
        raise MalformedInput(
            f"requested_by must be office, agent or prefecture, not {requested_by!r}",
            message_ja="依頼者は事業所・代理人・都道府県のいずれかです",
            column="requested_by",
        )
    when = require_aware(requested_at, "requested_at")
    if when > now:
        raise MalformedInput(
            "the request time is in the future",
            message_ja="依頼日時が未来です",
            column="requested_at",
        )
    app = application_for(session, party, application_id)
    expect_version(app, version)
    request = revocation_requests.open_request(session, party, app.id)
    move(
        session,
        party,
        app,
        Event.REGISTER_REVOCATION,
        now=now,
        source_address=source_address,
        details={
            "reason_code": reason,
            "requested_by": requested_by,
            "requested_at": when.isoformat(),
            **({"request": request.id} if request is not None else {}),
        },
    )
    revocation_requests.close_requests(session, party, app, now=now)
    app.revocation_reason = reason
    app.revocation_requested_by = requested_by
    app.revocation_requested_at = when
    session.flush()
    return app


def undo_revocation(
    session: Session,
    party: Party,
    application_id: int,
    *,
    now: dt.datetime,
    source_address: str | None = None,
    version: int | None = None,
) -> Application:
    """失効取消 (admin): 6 → 5 while the revocation has not been sent to the CA."""
    require(party, Permission.UNDO)
    app = application_for(session, party, application_id)
    expect_version(app, version)
    undone = {
        "reason_code": app.revocation_reason,
        "requested_by": app.revocation_requested_by,
    }
    move(
        session,
        party,
        app,
        Event.UNDO_REVOCATION,
        now=now,
        source_address=source_address,
        details={"undone": undone},
    )
    # The certificate is simply issued again; the audit log keeps what was undone.
    app.revocation_reason = None
    app.revocation_requested_by = None
    app.revocation_requested_at = None
    session.flush()
    return app
