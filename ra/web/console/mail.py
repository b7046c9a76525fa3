"""メール (/console/mail, admins): the mail outbox (queued, sent, failed), resending a failed one.

The services (:mod:`ra.mailing.outbox`) refuse anyone who may not run the jobs; a resend is audited
whether or not the server took the mail, and the page says which.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.wrappers import Response as BaseResponse

from ra.mailing import outbox
from ra.party import Permission
from ra.web import WebContext, db, text
from ra.web.console import console_blueprint, nav_item
from ra.web.console.link import acting_party
from ra.web.security import signed_in_party
from shomei.errors import MalformedInput

blueprint = console_blueprint("console_mail", "/console/mail")
nav_item("console_mail.index", _l("Mail"), order=90, permission=Permission.RUN_JOBS)


def _state() -> outbox.MailState | None:
    value = request.args.get("state", "")
    if not value:
        return None
    try:
        return outbox.MailState(value)
    except ValueError as exc:
        raise MalformedInput(
            f"no mail state {value[:20]!r}", message_ja="表示の指定が正しくありません"
        ) from exc


def _page() -> int:
    value = request.args.get("page", "1")
    if not value.isdigit() or len(value) > 9:
        raise MalformedInput("the page must be a number", message_ja="ページ番号が正しくありません")
    return int(value)


@blueprint.route("/")
def index() -> str:
    state = _state()
    page = outbox.outbox_page(db.session(), signed_in_party(), state, page=_page())
    return render_template(
        "console/mail/index.html",
        page=page,
        state=state,
        states=list(outbox.MailState),
        state_of=outbox.state_of,
    )


@blueprint.route("/<mail_id>/resend", methods=["POST"])
def resend(mail_id: str) -> BaseResponse:
    ctx: WebContext = current_app.extensions["shomei"]
    if not mail_id.isdigit() or len(mail_id) > 12:
        raise MalformedInput("no such mail number", message_ja="メール番号が正しくありません")
    done = outbox.resend(ctx.factory, ctx.settings, acting_party(), int(mail_id), now=ctx.now())
    if done.error is None:
        flash(_("Mail %(id)d was sent again to %(to)s.", id=done.mail_id, to=done.to_address))
    else:
        said = done.error_ja if text.language() == "ja" and done.error_ja else done.error
        flash(_("Mail %(id)d could not be sent: %(error)s", id=done.mail_id, error=said))
    return redirect(url_for(".index", state=request.args.get("state") or None))
