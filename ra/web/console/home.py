"""The console home (管理画面 ホーム): counts by status, the current CRL, what waits for the CA.

Its blueprint is the ``console`` one (``/console/``), behind the console's gate like every
screen of :mod:`ra.web.console`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask import current_app, render_template
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ra.ca_link import stuck
from ra.desk import queries
from ra.lifecycle import Status
from ra.party import Party
from ra.store.models import CaBatch, CrlRecord
from ra.web import db
from ra.web.console import console_blueprint, nav_item
from ra.web.security import signed_in_party

blueprint = console_blueprint("console", "/console")
nav_item("console.home", _l("Home"), order=0)

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


@blueprint.route("/")
def home() -> str:
    ctx = current_app.extensions["shomei"]
    board = dashboard(db.session(), signed_in_party(), ctx.now())
    return render_template(
        "console/home.html", board=board, to_send=TO_SEND, at_ca=AT_CA, now=ctx.now()
    )
