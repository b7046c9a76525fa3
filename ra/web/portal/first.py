"""初回設定: the first sign-in of an office or agent, one page per step.

Blueprint ``portal_first`` (``/portal/first-sign-in``): terms of use, identity, own password,
mail address (a code is mailed to it), and the authenticator app when the portal asks for
TOTP.  The portal's gate (:mod:`ra.web.portal`) sends an account here until
:func:`ra.people.first_sign_in.steps_left` is empty; each page says in plain Japanese what to
do next.  The rules and the records are the service's (:mod:`ra.people.first_sign_in`).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import segno
from flask import Response, abort, current_app, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import BooleanField, EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from ra.people import auth, first_sign_in
from ra.people.first_sign_in import Step
from ra.people.password_rules import PORTAL
from ra.store.models import Account
from ra.web import WebContext, db, send_soon, text
from ra.web.forms import PlainForm, SignInForm
from ra.web.portal import portal_blueprint
from ra.web.security import User, require_portal_account, signed_in_party, start_session
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput, Refused

blueprint = portal_blueprint("portal_first", "/portal/first-sign-in")

Page = tuple[str, int] | BaseResponse

ENDPOINTS = {
    Step.TERMS: "portal_first.terms",
    Step.IDENTITY: "portal_first.identity",
    Step.PASSWORD: "portal_first.password",
    Step.EMAIL: "portal_first.email",
    Step.TOTP: "portal_first.totp",
}
LABELS = {
    Step.TERMS: _l("Terms of use"),
    Step.IDENTITY: _l("Confirm who you are"),
    Step.PASSWORD: _l("Your own password"),
    Step.EMAIL: _l("Mail address"),
    Step.TOTP: _l("Authenticator app"),
}


class TermsForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    agree = BooleanField(_l("I have read the terms of use and agree to them"))
    submit = SubmitField(_l("Agree and continue"))


class IdentityForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    number = StringField(
        _l("Office number (10 digits)"), validators=[DataRequired(), Length(max=40)]
    )
    kana = StringField(_l("Name in kana"), validators=[Optional(), Length(max=200)])
    submit = SubmitField(_l("Confirm and continue"))


class ChooseForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("New password (again)"), validators=[DataRequired(), Length(max=200)]
    )
    submit = SubmitField(_l("Set this password"))


class EmailForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    email = EmailField(_l("Mail address"), validators=[DataRequired(), Length(max=300)])
    submit = SubmitField(_l("Send the confirmation code"))


class MailCodeForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    code = StringField(
        _l("Confirmation code (6 digits)"), validators=[DataRequired(), Length(max=40)]
    )
    submit = SubmitField(_l("Confirm"))


class AppCodeForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    code = StringField(
        _l("Code shown in the app (6 digits)"), validators=[DataRequired(), Length(max=20)]
    )
    submit = SubmitField(_l("Confirm"))


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


def _account() -> Account:
    return require_portal_account()


def _left() -> list[Step]:
    return first_sign_in.steps_left(_account(), _ctx().settings.signin)


def _progress(current: Step) -> list[dict[str, object]]:
    """The steps for the progress list: number, label, and whether done or current."""
    left = set(_left())
    return [
        {
            "number": i,
            "label": LABELS[step],
            "current": step is current,
            "done": step not in left and step is not current,
        }
        for i, step in enumerate(first_sign_in.steps(_ctx().settings.signin), start=1)
    ]


def _page(template: str, step: Step, status: int = 200, **context: object) -> tuple[str, int]:
    account = _account()
    return render_template(
        f"portal/first_sign_in/{template}",
        progress=_progress(step),
        account=account,
        number_label=_number_label(account),
        lockout=_ctx().settings.signin.portal,
        **context,
    ), status


def _number_label(account: Account) -> object:
    if first_sign_in.number_label_ja(account) == "代理人番号":
        return _l("Agent number (10 digits)")
    return _l("Office number (10 digits)")


def _next() -> BaseResponse:
    left = _left()
    return redirect(url_for(ENDPOINTS[left[0]] if left else "portal_first.done"))


def _at(step: Step) -> Callable[[Callable[[], Page]], Callable[[], Page]]:
    """A view of ``step``: it runs only when ``step`` is the next one, else :func:`_not_now`."""

    def wrap(view: Callable[[], Page]) -> Callable[[], Page]:
        @functools.wraps(view)
        def checked() -> Page:
            return _not_now(step) or view()

        return checked

    return wrap


def _not_now(step: Step) -> BaseResponse | None:
    """Where to go instead when ``step`` is done already (or not the next one)."""
    left = _left()
    if step not in left or left[0] is not step:
        return _next()
    return None


def _locked(exc: LockedOut) -> tuple[str, int]:
    """Locked in the middle of the first sign-in: signed out, told until when."""
    logout_user()
    start_session()
    return render_template(
        "portal/sign_in.html",
        form=SignInForm(formdata=None),
        error=exc.localized(text.language()),
        locked_until=exc.fields.get("until"),
    ), 423


def _source() -> str | None:
    return request.remote_addr


@blueprint.route("/")
def index() -> BaseResponse:
    return _next()


@blueprint.route("/terms", methods=["GET", "POST"])
@_at(Step.TERMS)
def terms() -> Page:
    form = TermsForm()
    settings = _ctx().settings.signin
    context: dict[str, object] = {
        "form": form,
        "terms": settings.terms_of_use,
        "version": settings.terms_version,
    }
    if not form.validate_on_submit():
        return _page("terms.html", Step.TERMS, 200, **context)
    if not form.agree.data:
        return _page(
            "terms.html",
            Step.TERMS,
            400,
            error=_l("To use the portal, tick the box to agree to the terms of use."),
            **context,
        )
    ctx = _ctx()
    first_sign_in.accept_terms(
        db.session(),
        signed_in_party(),
        settings=settings,
        now=ctx.now(),
        source_address=_source(),
    )
    return _next()


@blueprint.route("/identity", methods=["GET", "POST"])
@_at(Step.IDENTITY)
def identity() -> Page:
    form = IdentityForm()
    account = _account()
    form.number.label.text = _number_label(account)
    needs_kana = account.name_kana is not None
    if needs_kana:
        form.kana.validators = [DataRequired(), Length(max=200)]
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _page("identity.html", Step.IDENTITY, status, form=form, needs_kana=needs_kana)
    ctx = _ctx()
    try:
        first_sign_in.confirm_identity(
            db.session(),
            signed_in_party(),
            form.number.data or "",
            form.kana.data or "",
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=_source(),
        )
    except LockedOut as exc:
        return _locked(exc)
    except AuthenticationFailed as exc:
        return _page(
            "identity.html",
            Step.IDENTITY,
            401,
            form=form,
            needs_kana=needs_kana,
            error=exc.localized(text.language()),
        )
    return _next()


def _rules() -> list[str]:
    return PORTAL.rules_ja() if text.language() == "ja" else PORTAL.rules_en()


@blueprint.route("/password", methods=["GET", "POST"])
@_at(Step.PASSWORD)
def password() -> Page:
    form = ChooseForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _page("password.html", Step.PASSWORD, status, form=form, rules=_rules(), errors=[])
    if form.new.data != form.confirm.data:
        return _page(
            "password.html",
            Step.PASSWORD,
            400,
            form=form,
            rules=_rules(),
            errors=[_l("The two new passwords are not the same.")],
        )
    ctx = _ctx()
    try:
        account = first_sign_in.choose_password(
            db.session(),
            signed_in_party(),
            form.new.data or "",
            now=ctx.now(),
            source_address=_source(),
        )
    except MalformedInput as exc:
        db.roll_back_this_request()
        lang = text.language()
        problems = exc.fields.get("problems") or []
        shown = [p.message_ja if lang == "ja" else p.message for p in problems]
        return _page(
            "password.html",
            Step.PASSWORD,
            400,
            form=form,
            rules=_rules(),
            errors=shown or [exc.localized(lang)],
        )
    # The epoch moved on: other sessions are over, this one goes on under the new epoch.
    start_session()
    login_user(User(account))
    return _next()


@blueprint.route("/email", methods=["GET", "POST"])
@_at(Step.EMAIL)
def email() -> Page:
    account = _account()
    form = EmailForm()
    if request.method == "GET" and not form.email.data:
        pending = first_sign_in.pending_code(db.session(), signed_in_party())
        form.email.data = pending.address if pending is not None else account.email
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _page("email.html", Step.EMAIL, status, form=form)
    return _send_code(form.email.data or "", form)


def _send_code(address: str, form: EmailForm | None) -> Page:
    ctx = _ctx()
    try:
        sent = first_sign_in.send_email_code(
            db.session(),
            signed_in_party(),
            address,
            vault=ctx.vault,
            now=ctx.now(),
            message_id_domain=ctx.settings.mail.message_id_domain,
            federation_name=ctx.settings.federation_name,
            source_address=_source(),
        )
    except (MalformedInput, Refused) as exc:
        error = exc.localized(text.language())
        if isinstance(exc, MalformedInput):
            db.roll_back_this_request()
        if form is None:
            return _code_page(error=error, status=429 if isinstance(exc, Refused) else 400)
        return _page("email.html", Step.EMAIL, 400, form=form, error=error)
    send_soon.after_response([sent.mail_id])
    return redirect(url_for(".code"))


def _code_page(
    form: MailCodeForm | None = None, *, error: str | None = None, status: int = 200
) -> Page:
    pending = first_sign_in.pending_code(db.session(), signed_in_party())
    return _page(
        "code.html",
        Step.EMAIL,
        status,
        form=form or MailCodeForm(formdata=None),
        pending=pending,
        resend=PlainForm(),
        error=error,
    )


@blueprint.route("/email/code", methods=["GET", "POST"])
@_at(Step.EMAIL)
def code() -> Page:
    form = MailCodeForm()
    if not form.validate_on_submit():
        return _code_page(form, status=400 if request.method == "POST" else 200)
    ctx = _ctx()
    try:
        first_sign_in.confirm_email(
            db.session(),
            signed_in_party(),
            form.code.data or "",
            vault=ctx.vault,
            now=ctx.now(),
            source_address=_source(),
        )
    except (AuthenticationFailed, Refused) as exc:
        form.code.data = ""
        return _code_page(form, error=exc.localized(text.language()), status=401)
    return _next()


@blueprint.route("/email/resend", methods=["POST"])
@_at(Step.EMAIL)
def resend() -> Page:
    PlainForm()  # CSRFProtect has checked the token already
    last = first_sign_in.last_address(db.session(), signed_in_party())
    return _send_code(last or _account().email or "", None)


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@blueprint.route("/totp", methods=["GET", "POST"])
@_at(Step.TOTP)
def totp() -> Page:
    ctx = _ctx()
    secret, _user_id = first_sign_in.enrolment_secret(
        db.session(), signed_in_party(), vault=ctx.vault, now=ctx.now()
    )
    form = AppCodeForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return _page("totp.html", Step.TOTP, status, form=form, secret=_grouped(secret))
    try:
        first_sign_in.confirm_totp(
            db.session(),
            signed_in_party(),
            form.code.data or "",
            vault=ctx.vault,
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=_source(),
        )
    except LockedOut as exc:
        return _locked(exc)
    except AuthenticationFailed as exc:
        return _page(
            "totp.html",
            Step.TOTP,
            401,
            form=form,
            secret=_grouped(secret),
            error=exc.localized(text.language()),
        )
    return _next()


@blueprint.route("/totp/qr.svg")
def totp_qr() -> Response:
    if Step.TOTP not in _left():
        abort(404)
    ctx = _ctx()
    secret, user_id = first_sign_in.enrolment_secret(
        db.session(), signed_in_party(), vault=ctx.vault, now=ctx.now()
    )
    uri = auth.provisioning_uri(secret, user_id, ctx.settings.federation_name)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=4, xmldecl=False)
    return Response(out.getvalue(), mimetype="image/svg+xml")


@blueprint.route("/done")
def done() -> Page:
    if _left():
        return _next()
    steps = first_sign_in.steps(_ctx().settings.signin)
    return render_template(
        "portal/first_sign_in/done.html",
        account=_account(),
        progress=[
            {"number": i, "label": LABELS[s], "current": False, "done": True}
            for i, s in enumerate(steps, start=1)
        ],
        totp=Step.TOTP in steps,
    ), 200
