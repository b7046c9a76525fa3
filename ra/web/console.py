"""The ``console`` blueprint (連合会 管理画面): federation staff and admins only.

Every view of the blueprint is behind :func:`_gate`: an anonymous visitor is sent to the
sign-in page, a signed-in account that may not use the console gets 403 (the check is
:func:`ra.web.security.require_console_account`, one place).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import Blueprint, current_app, render_template
from flask_login import current_user
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from ra import queries, stuck
from ra.lifecycle import Status
from ra.models import CaBatch, CrlRecord
from ra.party import Party
from ra.web import db
from ra.web.security import require_console_account, signed_in_party

blueprint = Blueprint("console", __name__, url_prefix="/console")

# What waits for the CA: requests still to be sent, and requests sent and not answered yet.
TO_SEND = (Status.ISSUE_REQUESTED, Status.REVOCATION_REQUESTED)
AT_CA = (Status.AWAITING_ISSUANCE, Status.AWAITING_REVOCATION)


@dataclass(frozen=True)
class CrlState:
    number: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    overdue: bool


@dataclass(frozen=True)
class Dashboard:
    """The console home: counts by status, the current CRL and what waits for the CA."""

    counts: tuple[tuple[Status, int], ...]
    total: int
    crl: CrlState | None
    open_batches: int
    left_out: int  # applications the CA abandoned, waiting for ``re-request``

    def count(self, status: Status) -> int:
        return dict(self.counts)[status]


def dashboard(session: Session, party: Party, now: dt.datetime) -> Dashboard:
    counts = tuple(
        (status, queries.count_applications(session, party, statuses=[status])) for status in Status
    )
    latest = session.execute(
        select(CrlRecord).order_by(CrlRecord.this_update.desc(), CrlRecord.id.desc()).limit(1)
    ).scalar_one_or_none()
    crl = None
    if latest is not None:
        crl = CrlState(
            number=latest.number,
            this_update=latest.this_update,
            next_update=latest.next_update,
            overdue=latest.next_update is not None and latest.next_update <= now,
        )
    open_batches = int(
        session.scalar(
            select(func.count()).select_from(CaBatch).where(CaBatch.imported_at.is_(None))
        )
        or 0
    )
    left_out = sum(len(ids) for ids in stuck.left_out(session).values())
    return Dashboard(counts, sum(n for _s, n in counts), crl, open_batches, left_out)


@blueprint.before_request
def _gate() -> BaseResponse | None:
    if not current_user.is_authenticated:
        unauthorized: BaseResponse = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return unauthorized
    require_console_account()
    return None


@blueprint.route("/")
def home() -> str:
    ctx = current_app.extensions["shomei"]
    board = dashboard(db.session(), signed_in_party(), ctx.now())
    return render_template(
        "console/home.html", board=board, to_send=TO_SEND, at_ca=AT_CA, now=ctx.now()
    )
