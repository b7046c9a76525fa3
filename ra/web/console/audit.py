"""監査 (/console/audit, admins): verify the audit chain and search the audit log.

The services (:mod:`ra.desk.audit_desk`) refuse anyone without the audit permission; the menu
entry shows only to those who have it.  A broken chain is shown as the verification's own
message (which record, what happened), with status 422.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from ra.desk import audit_desk
from ra.lifecycle import Status
from ra.party import Permission
from ra.web import WebContext, db, text
from ra.web.console import console_blueprint, nav_item
from ra.web.security import signed_in_party
from shomei.errors import MalformedInput

blueprint = console_blueprint("console_audit", "/console/audit")
nav_item("console_audit.index", _l("Audit"), order=80, permission=Permission.VIEW_AUDIT)


def _date(name: str) -> dt.date | None:
    value = request.args.get(name, "").strip()
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value.replace("/", "-"))
    except ValueError as exc:
        raise MalformedInput(
            f"{value!r} is not a date",
            message_ja=f"日付 {value[:20]} が正しくありません(例 2026/12/01)",
        ) from exc


def _int(name: str, default: int | None) -> int | None:
    value = request.args.get(name, "").strip()
    if not value:
        return default
    if not value.isdigit() or len(value) > 12:
        raise MalformedInput(
            f"{name} must be a number", message_ja="番号は半角数字で入力してください"
        )
    return int(value)


def _status_text(value: str | None) -> str:
    """An application status as the console names it (``5 発行済み``); other values as they are."""
    if value is None:
        return "-"
    try:
        return text.status_label(Status(value))
    except ValueError:
        return value


# What an audit record is about, as the console names it.
OBJECT_TYPES = {
    "account": _l("Account"),
    "application": _l("Application"),
    "ca_batch": _l("Batch"),
    "certificate": _l("Certificate"),
    "crl": _l("CRL"),
    "job": _l("Job"),
    "mail": _l("Mail"),
}


@blueprint.route("/")
def index() -> str:
    query = audit_desk.AuditQuery(
        account=request.args.get("account", "").strip()[:64],
        application=_int("application", None),
        date_from=_date("from"),
        date_to=_date("to"),
    )
    page = audit_desk.search(db.session(), signed_in_party(), query, page=_int("page", 1) or 1)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render_template(
        "console/audit/index.html",
        query=query,
        page=page,
        args=args,
        status_text=_status_text,
        object_types=OBJECT_TYPES,
    )


@blueprint.route("/verify", methods=["POST"])
def verify() -> BaseResponse:
    ctx: WebContext = current_app.extensions["shomei"]
    report = audit_desk.verify_chain(db.session(), signed_in_party(), ctx.settings)
    flash(
        _(
            "The audit log is intact: %(records)s record(s), %(anchors)s signed anchor(s), "
            "head %(head)s.",
            records=format(report.records, ","),
            anchors=format(report.anchors, ","),
            head=report.head_hash[:16],
        )
    )
    return redirect(url_for(".index"))
