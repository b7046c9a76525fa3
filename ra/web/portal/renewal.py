"""更新の申込: the next certificate, applied for from the current one's page (renewal).

``/portal/applications/<id>/renew`` is offered on the status page of an issued certificate
from the first expiry notice on (:func:`ra.workflow.renewals.renewal_offer`; the notice points
here).  It applies as A1 does (issuance password, an office's consent to the fee offset, the
office's own CSR if it brought one last time) through :func:`ra.workflow.renewals.renew`; the
current certificate stays issued and downloadable until it expires.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, PasswordField
from wtforms.validators import DataRequired, Length

from ra.people.passwords import WrongPassword
from ra.web import WebContext, db, errors, text
from ra.web.portal import portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import inquiry, renewals
from shomei.errors import Conflict, MalformedInput, ShomeiError

blueprint = portal_blueprint("portal_renewal", "/portal/applications")

Page = tuple[str, int] | BaseResponse
CSR_LIMIT = 64 * 1024


class RenewalForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    issuance_password = PasswordField(
        _l("Issuance password"), validators=[DataRequired(), Length(max=200)]
    )
    consent_fee_offset = BooleanField(
        _l("I agree that the fee is deducted from the federation's payment for our claims")
    )
    csr = FileField(_l("Certificate signing request (CSR) file"))


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _page(
    application_id: int,
    *,
    form: RenewalForm | None = None,
    problem: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    ctx = _ctx()
    session, party = db.session(), signed_in_party()
    view = inquiry.application_status(
        session, party, application_id, settings=ctx.settings, now=ctx.now()
    )
    refused: ShomeiError | None = None
    try:
        renewals.check(session, party, application_id, settings=ctx.settings, now=ctx.now())
    except Conflict as error:
        refused = error
        if status == 200:
            status = errors.status_of(error)
    fee = (
        ctx.settings.fees.office_fee_yen
        if view.applicant.value == "office"
        else ctx.settings.fees.agent_fee_yen
    )
    return render_template(
        "portal/renewal/form.html",
        a=view,
        form=form or RenewalForm(),
        fee=fee,
        problem=problem,
        refused=refused.localized(text.language()) if refused is not None else None,
    ), status


@blueprint.route("/<int:application_id>/renew")
def form(application_id: int) -> Page:
    return _page(application_id)


@blueprint.route("/<int:application_id>/renew", methods=["POST"])
def renew(application_id: int) -> Page:
    ctx = _ctx()
    session, party = db.session(), signed_in_party()
    # The application first: another office's is "not found" whatever was sent.
    view = inquiry.application_status(
        session, party, application_id, settings=ctx.settings, now=ctx.now()
    )
    sent = RenewalForm()
    if not sent.validate_on_submit():
        problems = [f"{sent[f].label.text}: {e}" for f, es in sent.errors.items() for e in es]
        return _page(application_id, form=sent, problem="\n".join(problems), status=400)
    csr: bytes | None = None
    upload = sent.csr.data
    if view.own_key and isinstance(upload, FileStorage) and upload.filename:
        csr = upload.read(CSR_LIMIT + 1)
        if len(csr) > CSR_LIMIT:
            return _page(
                application_id,
                form=sent,
                problem=_("The CSR file is too large."),
                status=400,
            )
    try:
        new = renewals.renew(
            session,
            party,
            application_id,
            settings=ctx.settings,
            profile=ctx.settings.certificate_profile(),
            now=ctx.now(),
            issuance_password=sent.issuance_password.data or "",
            consent_fee_offset=bool(sent.consent_fee_offset.data),
            csr=csr,
            source_address=request.remote_addr,
        )
    except (Conflict, MalformedInput, WrongPassword) as error:
        session.rollback()
        db.roll_back_this_request()
        return _page(
            application_id,
            form=sent,
            problem=error.localized(text.language()),
            status=errors.status_of(error),
        )
    flash(
        _("We received your application for the next certificate (application %(id)s).", id=new.id)
    )
    return redirect(url_for("portal_status.detail", application_id=new.id), code=303)
