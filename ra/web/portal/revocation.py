"""失効依頼: the holder asks the federation to revoke its certificate.

``/portal/applications/<id>/revocation-request`` takes the reason (the office closes, its
details changed, the key file may be lost, ...), optional words, and a confirmation that a
revocation cannot be undone; :func:`ra.workflow.revocation_requests.request_revocation` records
the request (audited, no status change).  Staff see it on the console and register the
revocation (B4); only then does the status change.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, RadioField, SelectChoice, TextAreaField
from wtforms.validators import DataRequired, Length

from ra.web import WebContext, db, errors, text
from ra.web.portal import portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import inquiry, revocation_requests
from ra.workflow.services import REASON_LIMIT
from shomei.errors import Conflict, MalformedInput

blueprint = portal_blueprint("portal_revocation", "/portal/applications")

Page = tuple[str, int] | BaseResponse


class RequestForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    reason = RadioField(_l("Reason"), validators=[DataRequired()])
    note = TextAreaField(_l("Details (if any)"), validators=[Length(max=REASON_LIMIT)])
    understood = BooleanField(
        _l("I understand that a revoked certificate cannot be used again"),
        validators=[DataRequired()],
    )


def _form() -> RequestForm:
    form = RequestForm()
    labels = (
        revocation_requests.HOLDER_REASONS
        if text.language() == "ja"
        else revocation_requests.HOLDER_REASONS_EN
    )
    form.reason.choices = [SelectChoice(code, label) for code, label in labels.items()]
    return form


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _page(
    application_id: int,
    *,
    form: RequestForm | None = None,
    problem: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    ctx = _ctx()
    view = inquiry.application_status(
        db.session(), signed_in_party(), application_id, settings=ctx.settings, now=ctx.now()
    )
    if not view.may_request_revocation and status == 200:
        status = 409  # the page says why (already asked, not issued, expired)
    return render_template(
        "portal/revocation/form.html", a=view, form=form or _form(), problem=problem
    ), status


@blueprint.route("/<int:application_id>/revocation-request")
def form(application_id: int) -> Page:
    return _page(application_id)


@blueprint.route("/<int:application_id>/revocation-request", methods=["POST"])
def send(application_id: int) -> Page:
    ctx = _ctx()
    session, party = db.session(), signed_in_party()
    # The application first: another office's is "not found" whatever was sent.
    inquiry.application_status(session, party, application_id, settings=ctx.settings, now=ctx.now())
    sent = _form()
    if not sent.validate_on_submit():
        problems = [f"{sent[f].label.text}: {e}" for f, es in sent.errors.items() for e in es]
        return _page(application_id, form=sent, problem="\n".join(problems), status=400)
    try:
        revocation_requests.request_revocation(
            session,
            party,
            application_id,
            reason=sent.reason.data or "",
            note=sent.note.data,
            now=ctx.now(),
            source_address=request.remote_addr,
        )
    except (Conflict, MalformedInput) as error:
        session.rollback()
        db.roll_back_this_request()
        return _page(
            application_id,
            form=sent,
            problem=error.localized(text.language()),
            status=errors.status_of(error),
        )
    flash(_("We received your request. The federation will check it and register the revocation."))
    return redirect(url_for("portal_status.detail", application_id=application_id), code=303)
