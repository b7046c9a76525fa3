"""状況照会 (A4): the account's applications, and one application's status and history.

``/portal/applications`` lists the applications of the signed-in office or agent;
``/portal/applications/<id>`` shows one (:func:`ra.workflow.inquiry.application_status`): its
status, its certificate, its history as an office should see it (the federation, never a member
of staff), the rejection reason, and in plain words what to do next, with the way to do it:
download, renew, ask for revocation.  Another account's application is "not found" (404),
exactly as an id that does not exist.
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import lazy_gettext as _l

from ra.web import WebContext, db, text
from ra.web.portal import nav_item, portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import inquiry
from ra.workflow.history import OfficeHistoryEntry

blueprint = portal_blueprint("portal_status", "/portal/applications")
nav_item("portal_status.index", _l("Status inquiry"), order=20)


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def who_label(entry: OfficeHistoryEntry) -> str:
    """Who acted, in the reader's language: the office, the agent or the federation."""
    if text.language() == "ja":
        return entry.who_ja
    return {"office": "Office", "agent": "Agent"}.get(entry.who, "Federation")


def action_label(entry: OfficeHistoryEntry) -> str:
    return entry.action_ja if text.language() == "ja" else entry.action.replace("_", " ")


def reason_label(entry: OfficeHistoryEntry) -> str:
    if entry.reason is None:
        return ""
    return (entry.reason_ja or "") if text.language() == "ja" else entry.reason


@blueprint.route("/")
def index() -> str:
    ctx = _ctx()
    rows = inquiry.own_statuses(
        db.session(), signed_in_party(), settings=ctx.settings, now=ctx.now()
    )
    return render_template("portal/status/index.html", rows=rows)


@blueprint.route("/<int:application_id>")
def detail(application_id: int) -> str:
    ctx = _ctx()
    view = inquiry.application_status(
        db.session(), signed_in_party(), application_id, settings=ctx.settings, now=ctx.now()
    )
    return render_template(
        "portal/status/detail.html",
        a=view,
        who_label=who_label,
        action_label=action_label,
        reason_label=reason_label,
        lang=text.language(),
    )
