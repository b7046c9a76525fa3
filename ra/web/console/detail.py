"""The detail screen of one application (証明書発行管理, B2-B4): ``/console/applications/<id>``.

The page shows the application (:func:`ra.desk.detail.application_detail`), its whole history,
and
a form for each action the signed-in party may take now (:attr:`ApplicationDetail.actions`,
from :func:`ra.party.allowed_actions`): 却下, 却下理由の修正, 再度申込, 発行依頼, 入金登録,
失効申請 and, for admins, 取消.  Each form posts to its own URL, which calls one service with
the version the page showed; the service checks the party, the status and the version again.
On success: redirect to the page with a flash message.  When the service refuses because of
the application's state (someone else changed it first, the status no longer allows it, ...)
or the input, nothing is kept and the page is shown again, as it is now, with the message
and the error's HTTP status; who may not act at all gets the error page (403).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import MappingProxyType

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as BaseResponse

from ra.desk.detail import ApplicationDetail, application_detail
from ra.lifecycle import Applicant, Status
from ra.party import Party, application_for
from ra.web import WebContext, db, errors, text
from ra.web.console import console_blueprint
from ra.web.console.detail_forms import (
    PaymentForm,
    ReapplyForm,
    ReasonForm,
    RevocationForm,
    VersionForm,
)
from ra.web.notice_kinds import kind_label
from ra.web.security import signed_in_party
from ra.workflow import applications, revocations
from shomei.clock import JST
from shomei.errors import Conflict, MalformedInput

blueprint = console_blueprint("console_detail", "/console/applications")

Page = tuple[str, int] | BaseResponse
# What an action does, given the session, the party, the clock's now, the client's address
# and the version the page showed.
Action = Callable[[Session, Party, dt.datetime, str | None, int], object]

# Who asked for a revocation (ra.workflow.revocations.REQUESTERS), labelled in the reader's
# language.
REQUESTER_LABELS: Mapping[str, object] = MappingProxyType(
    {"office": _l("Office"), "agent": _l("Agent"), "prefecture": _l("Prefecture")}
)


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _revocation_form() -> RevocationForm:
    """The 失効申請 form with its choices: the reasons and who may ask."""
    form = RevocationForm(prefix="revoke")
    form.reason.choices = list(revocation_reasons().items())
    form.requested_by.choices = [(k, str(v)) for k, v in REQUESTER_LABELS.items()]
    return form


def _forms() -> dict[str, FlaskForm]:
    """A blank form of every action (the page shows those the party may take)."""
    return {
        "reject": ReasonForm(prefix="reject"),
        "reason": ReasonForm(prefix="edit"),
        "issue": VersionForm(prefix="issue"),
        "payment": PaymentForm(prefix="pay"),
        "revoke": _revocation_form(),
        "undo": VersionForm(prefix="undo"),
        "reapply": ReapplyForm(prefix="reapply"),
    }


def revocation_reasons() -> dict[str, str]:
    """The RFC 5280 reasons staff may choose, labelled in the reader's language."""
    if text.language() == "ja":
        return {code: f"{label} ({code})" for code, label in revocations.REASONS.items()}
    return {code: code for code in revocations.REASONS}


def _render(
    application_id: int,
    *,
    status: int = 200,
    problem: str | None = None,
    filled: tuple[str, FlaskForm] | None = None,
) -> tuple[str, int]:
    detail = application_detail(db.session(), signed_in_party(), application_id)
    forms = _forms()
    for form in forms.values():
        form.version.data = detail.version  # the version this page shows
    held = detail.holder_request
    if held is not None:
        # The 失効申請 form starts from the holder's own request (失効依頼).
        revoke = forms["revoke"]
        revoke.reason.data = held.reason_code
        revoke.requested_by.data = held.requested_by
        revoke.requested_at.data = held.requested_at.astimezone(JST).replace(
            tzinfo=None, second=0, microsecond=0
        )
    if filled is not None:
        name, form = filled
        # The form as sent (its input kept), but with the version shown now.
        form.version.data = detail.version
        forms[name] = form
    return render_template(
        "console/applications/detail.html",
        d=detail,
        forms=forms,
        problem=problem,
        undo_label=_undo_label(detail),
        reason_label=revocation_reason_label,
        requester_label=_requester_label,
        action_label=_action_label,
        kind_label=kind_label,
        now_local=_ctx().now().astimezone(JST).strftime("%Y-%m-%dT%H:%M"),
    ), status


def _undo_label(d: ApplicationDetail) -> str:
    """What 取消 undoes in the application's status (the button says it)."""
    if d.status is Status.ISSUE_REQUESTED:
        if d.applicant is Applicant.AGENT:
            label = _("Undo the payment registration")
        else:
            label = _("Undo the issue request")
    elif d.status is Status.REJECTION_PENDING:
        label = _("Undo the rejection")
    else:
        label = _("Undo the revocation request")
    return str(label)


def revocation_reason_label(code: str | None) -> str:
    if code is None:
        return ""
    if text.language() == "ja" and code in revocations.REASONS:
        return f"{revocations.REASONS[code]} ({code})"
    return code


def _requester_label(code: str | None) -> str:
    return "" if code is None else str(REQUESTER_LABELS.get(code, code))


def _action_label(action_ja: str, action: str) -> str:
    return action_ja if text.language() == "ja" else action.replace("_", " ")


@blueprint.route("/<int:application_id>")
def show(application_id: int) -> Page:
    return _render(application_id)


def _act(application_id: int, name: str, form: FlaskForm, action: Action, done: str) -> Page:
    """Validate ``form``, run ``action`` with the version it carries, then redirect."""
    if not form.validate_on_submit():
        problems = [f"{form[f].label.text}: {e}" for f, es in form.errors.items() for e in es]
        return _render(application_id, status=400, problem="\n".join(problems), filled=(name, form))
    session = db.session()
    try:
        action(session, signed_in_party(), _ctx().now(), request.remote_addr, form.version.data)
    except (Conflict, MalformedInput) as error:
        # Nothing of this request is kept; the page shows the application as it is now.
        session.rollback()
        db.roll_back_this_request()
        return _render(
            application_id,
            status=errors.status_of(error),
            problem=error.localized(text.language()),
            filled=(name, form) if isinstance(error, MalformedInput) else None,
        )
    flash(done)
    return redirect(url_for(".show", application_id=application_id), code=303)


@blueprint.route("/<int:application_id>/reject", methods=["POST"])
def reject(application_id: int) -> Page:
    form = ReasonForm(prefix="reject")
    return _act(
        application_id,
        "reject",
        form,
        lambda s, p, now, ip, v: applications.reject(
            s, p, application_id, reason=form.reason.data, now=now, source_address=ip, version=v
        ),
        _("The application was rejected."),
    )


@blueprint.route("/<int:application_id>/reason", methods=["POST"])
def edit_reason(application_id: int) -> Page:
    form = ReasonForm(prefix="edit")
    return _act(
        application_id,
        "reason",
        form,
        lambda s, p, now, ip, v: applications.edit_rejection_reason(
            s, p, application_id, reason=form.reason.data, now=now, source_address=ip, version=v
        ),
        _("The rejection reason was corrected."),
    )


@blueprint.route("/<int:application_id>/issue-request", methods=["POST"])
def issue_request(application_id: int) -> Page:
    return _act(
        application_id,
        "issue",
        VersionForm(prefix="issue"),
        lambda s, p, now, ip, v: applications.register_issue_request(
            s, p, application_id, now=now, source_address=ip, version=v
        ),
        _("The issue request was registered."),
    )


@blueprint.route("/<int:application_id>/payment", methods=["POST"])
def payment(application_id: int) -> Page:
    form = PaymentForm(prefix="pay")
    return _act(
        application_id,
        "payment",
        form,
        lambda s, p, now, ip, v: applications.register_payment(
            s,
            p,
            application_id,
            paid_on=form.paid_on.data,
            amount_yen=form.amount_yen.data,
            payer_name=form.payer_name.data,
            now=now,
            source_address=ip,
            version=v,
        ),
        _("The payment was registered."),
    )


@blueprint.route("/<int:application_id>/revocation", methods=["POST"])
def revocation(application_id: int) -> Page:
    form = _revocation_form()
    return _act(
        application_id,
        "revoke",
        form,
        lambda s, p, now, ip, v: revocations.register_revocation(
            s,
            p,
            application_id,
            reason=form.reason.data,
            requested_by=form.requested_by.data,
            # The form's time is Japan time, as every time on the pages.
            requested_at=form.requested_at.data.replace(tzinfo=JST),
            now=now,
            source_address=ip,
            version=v,
        ),
        _("The revocation request was registered."),
    )


@blueprint.route("/<int:application_id>/undo", methods=["POST"])
def undo(application_id: int) -> Page:
    def run(s: Session, p: Party, now: dt.datetime, ip: str | None, v: int) -> object:
        # Which undo is the status's: the version check refuses it if the status has moved.
        current = application_for(s, p, application_id).status
        if current is Status.REVOCATION_REQUESTED:
            return revocations.undo_revocation(
                s, p, application_id, now=now, source_address=ip, version=v
            )
        if current is Status.REJECTION_PENDING:
            return applications.undo_rejection(
                s, p, application_id, now=now, source_address=ip, version=v
            )
        return applications.undo_approval(
            s, p, application_id, now=now, source_address=ip, version=v
        )

    return _act(application_id, "undo", VersionForm(prefix="undo"), run, _("It was undone."))


@blueprint.route("/<int:application_id>/reapply", methods=["POST"])
def reapply(application_id: int) -> Page:
    form = ReapplyForm(prefix="reapply")
    created: list[int] = []

    def run(s: Session, p: Party, now: dt.datetime, ip: str | None, v: int) -> object:
        ctx = _ctx()
        new = applications.reapply(
            s,
            p,
            application_id,
            settings=ctx.settings,
            profile=ctx.settings.certificate_profile(),
            now=now,
            issuance_password=form.issuance_password.data,
            consent_fee_offset=bool(form.consent_fee_offset.data),
            source_address=ip,
            version=v,
        )
        created.append(new.id)
        return new

    page = _act(
        application_id, "reapply", form, run, _("A new application was made for the applicant.")
    )
    if created and isinstance(page, BaseResponse):
        return redirect(url_for(".show", application_id=created[0]), code=303)
    return page
