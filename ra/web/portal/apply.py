"""発行申請 (A1): the issuance password, a confirmation screen, and the application.

Three pages (``/portal/apply``), for offices and agents:

1. the form: an agent names the registered office it applies for (its office number); the key
   is made by the RA (the default) or comes as the office's own CSR (a PEM or DER file, or
   PEM text pasted), and the issuance password from the notification letter is entered.
   :func:`ra.workflow.applications.plan_application` checks all of it as the application
   itself will (a wrong password, an office that is not registered, an application still in
   progress, a CSR the CA would refuse: one Japanese line on the form, nothing written);
2. the confirmation: what will be applied for, the fee and, for an office, the consent to the
   fee offset (the text of ``[ra.fees] offset_consent``) to tick;
3. :func:`ra.workflow.applications.apply` makes the application (an office's goes to
   発行依頼待ち, an agent's to 入金待ち) and the done page says what comes next.

Between pages 1 and 2 the password is kept sealed (AES-256-GCM under the RA's secrets key,
:mod:`ra.store.vault`, bound to the account) in the signed session, never in the page; the CSR,
which is public, travels in the confirmation form and must be the one checked on page 1 (its
SHA-256 is kept beside the password).  The session's copy is dropped when the application is
made, and is refused after :data:`KEPT`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from werkzeug.wrappers import Response as BaseResponse
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ra.lifecycle import Applicant
from ra.party import Permission, account_of
from ra.store.models import AccountKind
from ra.web import WebContext, db, text
from ra.web.errors import status_of
from ra.web.portal import nav_item, portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import applications
from shomei.errors import MalformedInput, ShomeiError

blueprint = portal_blueprint("portal_apply", "/portal/apply")
nav_item("portal_apply.form", _l("Apply"), order=10, permission=Permission.APPLY)

SESSION_KEY = "apply"
KEPT = 30 * 60  # seconds the entered password is kept for the confirmation
CSR_TEXT_LIMIT = 64 * 1024

Page = tuple[str, int] | BaseResponse


class ApplyForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    for_office = StringField(
        _l("Office number of the office you apply for (10 digits)"),
        validators=[Optional(), Length(max=20)],
    )
    key_source = RadioField(
        _l("How the key is made"),
        choices=[
            SelectChoice("ra", _l("The federation's system makes it (recommended)")),
            SelectChoice("csr", _l("I use a CSR I made myself")),
        ],
        default="ra",
        validators=[DataRequired()],
    )
    csr_file = FileField(_l("CSR file (PEM or DER)"))
    csr_text = TextAreaField(_l("Or paste the CSR (PEM)"), validators=[Optional()])
    issuance_password = PasswordField(
        _l("Issuance password (証明書発行用パスワード)"),
        validators=[DataRequired(), Length(max=100)],
    )


class ConfirmForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    csr = HiddenField()
    consent = BooleanField(_l("I agree to the above"))


@blueprint.app_template_filter("key_label")
def key_label(kind: str) -> str:
    """A key type of the profile as people read it: ``rsa2048`` is "RSA 2048 bit"."""
    if kind.startswith("rsa"):
        return str(_("RSA %(bits)s bit", bits=kind.removeprefix("rsa")))
    return {"p256": "ECDSA P-256", "p384": "ECDSA P-384"}.get(kind, kind)


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


def _context(account_id: int) -> str:
    return f"portal-apply:{account_id}"


def _state() -> tuple[Any, Any, applications.ApplyState]:
    s = db.session()
    party = signed_in_party()
    return s, party, applications.apply_state(s, party)


def _form_page(form: ApplyForm, *, error: str | None = None, status: int = 200) -> Page:
    s, party, state = _state()
    account = account_of(s, party)
    known = applications.known_offices(s, party) if state.for_agent else []
    return render_template(
        "portal/apply/form.html",
        form=form,
        state=state,
        account=account,
        known=known,
        error=error,
        fee=_fee(account.kind),
    ), status


def _fee(kind: AccountKind) -> int:
    fees = _ctx().settings.fees
    return fees.office_fee_yen if kind is AccountKind.OFFICE else fees.agent_fee_yen


def _csr_of(form: ApplyForm) -> bytes | None:
    """The CSR the form carries (a file, or pasted text), or None when the RA makes the key."""
    if form.key_source.data != "csr":
        return None
    upload = form.csr_file.data
    data = upload.read(CSR_TEXT_LIMIT + 1) if upload and upload.filename else b""
    if not data:
        data = (form.csr_text.data or "").strip().encode("utf-8", "replace")
    if not data:
        raise MalformedInput(
            "choose the CSR file or paste the CSR",
            message_ja="CSR のファイルを選ぶか、CSR の内容を貼り付けてください",
            field="csr",
        )
    return data


@blueprint.route("/", methods=["GET"])
def form() -> Page:
    session.pop(SESSION_KEY, None)
    return _form_page(ApplyForm())


@blueprint.route("/", methods=["POST"])
def check() -> Page:
    """Page 1 sent: check everything, keep the password sealed, show the confirmation."""
    form = ApplyForm()
    if not form.validate_on_submit():
        return _form_page(
            form,
            error=_("Enter the issuance password from your notification letter."),
            status=400,
        )
    ctx = _ctx()
    s = db.session()
    party = signed_in_party()
    account = account_of(s, party)
    office = (form.for_office.data or "").strip() if account.kind is AccountKind.AGENT else None
    password = form.issuance_password.data or ""
    try:
        csr = _csr_of(form)
        plan = applications.plan_application(
            s,
            party,
            settings=ctx.settings,
            profile=ctx.settings.certificate_profile(),
            issuance_password=password,
            csr=csr,
            for_office=office,
        )
    except ShomeiError as exc:
        db.roll_back_this_request()
        return _form_page(form, error=exc.localized(text.language()), status=status_of(exc))
    # The CSR goes on exactly as the office gave it (the service reads PEM or DER).
    checked_csr = csr if plan.own_csr else None
    session[SESSION_KEY] = {
        "password": ctx.vault.seal(password, context=_context(account.id)),
        "office": office,
        "csr_sha256": hashlib.sha256(checked_csr).hexdigest() if checked_csr else None,
        "at": int(ctx.now().timestamp()),
    }
    return _confirm_page(plan, ConfirmForm(csr=_b64(checked_csr)), account=account)


def _b64(data: bytes | None) -> str:
    return base64.b64encode(data).decode("ascii") if data else ""


def _confirm_page(
    plan: applications.ApplyPlan,
    form: ConfirmForm,
    *,
    account: Any,
    error: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    return render_template(
        "portal/apply/confirm.html",
        plan=plan,
        form=form,
        account=account,
        error=error,
        office_applicant=plan.applicant is Applicant.OFFICE,
        tax=_ctx().settings.fees.tax,
    ), status


def _restart(message: str) -> BaseResponse:
    session.pop(SESSION_KEY, None)
    flash(message)
    return redirect(url_for(".form"))


@blueprint.route("/confirm", methods=["POST"])
def confirm() -> Page:
    """Page 2 sent: make the application with the kept password and the ticked consent."""
    ctx = _ctx()
    form = ConfirmForm()
    kept = session.get(SESSION_KEY)
    if not form.validate_on_submit() or not isinstance(kept, dict):
        return _restart(_("Please enter the issuance password again."))
    if int(ctx.now().timestamp()) - int(kept.get("at", 0)) > KEPT:
        return _restart(_("Too much time has passed. Please enter the issuance password again."))
    s = db.session()
    party = signed_in_party()
    account = account_of(s, party)
    try:
        password = ctx.vault.open(str(kept["password"]), context=_context(account.id))
        csr = base64.b64decode(form.csr.data or "", validate=True) or None
    except (ShomeiError, ValueError, binascii.Error, KeyError):
        return _restart(_("Please enter the issuance password again."))
    digest = hashlib.sha256(csr).hexdigest() if csr else None
    if digest != kept.get("csr_sha256"):
        return _restart(_("The CSR changed after it was checked. Please start again."))
    settings = ctx.settings
    profile = settings.certificate_profile()
    office = kept.get("office")
    try:
        app = applications.apply(
            s,
            party,
            settings=settings,
            profile=profile,
            now=ctx.now(),
            issuance_password=password,
            consent_fee_offset=bool(form.consent.data),
            csr=csr,
            for_office=office,
            source_address=request.remote_addr,
        )
    except ShomeiError as exc:
        db.roll_back_this_request()
        error = exc.localized(text.language())
        try:
            plan = applications.plan_application(
                s,
                party,
                settings=settings,
                profile=profile,
                issuance_password=password,
                csr=csr,
                for_office=office,
            )
        except ShomeiError:
            return _restart(error)
        return _confirm_page(plan, form, account=account, error=error, status=status_of(exc))
    session.pop(SESSION_KEY, None)
    return redirect(url_for(".done", application_id=app.id))


@blueprint.route("/done/<int:application_id>")
def done(application_id: int) -> str:
    """What comes next, after the application was made."""
    s = db.session()
    party = signed_in_party()
    app = applications.get_application(s, party, application_id)
    return render_template(
        "portal/apply/done.html",
        app=app,
        account=account_of(s, party),
        agent=app.applicant is Applicant.AGENT,
    )
