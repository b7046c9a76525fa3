"""The ``auth`` blueprint: sign-in, the TOTP step, TOTP enrolment, sign-out, own password.

A console sign-in is two steps.  After the password (:func:`ra.people.auth.check_password`) the
session holds only a *pending* sign-in (account id and epoch, for a few minutes); the TOTP
step, or the enrolment of a new staff member, turns it into a signed-in session.  Each step
starts a new session (nothing of the session before is kept but the language and the date
style), so a session id fixed by someone else before the sign-in is worthless.  Sign-in
failures are committed (:mod:`ra.web.db` keeps them): the lockout counts them.
"""

from __future__ import annotations

import io
from typing import Any

import segno
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import login_required, login_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from ra.people import auth
from ra.store.models import Account
from ra.web import WebContext, db, text
from ra.web.forms import ChoiceForm, CodeForm, PasswordChangeForm, PlainForm, SignInForm
from ra.web.security import (
    User,
    home_endpoint,
    sign_in_endpoint,
    signed_in_account,
    start_session,
)
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput

blueprint = Blueprint("auth", __name__, url_prefix="/auth")
PENDING = "pending"
PENDING_SECONDS = 300  # between the password and the code

Page = tuple[str, int] | BaseResponse


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _source() -> str | None:
    return request.remote_addr


def _lockout_page(template: str, exc: LockedOut, **context: Any) -> tuple[str, int]:
    session.pop(PENDING, None)
    return render_template(
        template,
        locked_until=exc.fields.get("until"),
        error=exc.localized(text.language()),
        **context,
    ), 423


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Page:
    if signed_in_account() is not None:
        return redirect(url_for(home_endpoint()))
    form = SignInForm()
    if not form.validate_on_submit():
        return render_template("auth/sign_in.html", form=form, error=None), 200
    ctx = _ctx()
    try:
        checked = auth.check_password(
            db.session(),
            form.user_id.data or "",
            form.password.data or "",
            settings=ctx.settings.signin,
            now=ctx.now(),
            kinds=auth.CONSOLE_KINDS,
            source_address=_source(),
        )
    except AuthenticationFailed as exc:
        return render_template(
            "auth/sign_in.html", form=form, error=exc.localized(text.language())
        ), 401
    except LockedOut as exc:
        return _lockout_page("auth/sign_in.html", exc, form=form)
    start_session()
    session[PENDING] = {
        "id": checked.account.id,
        "epoch": checked.account.session_epoch,
        "at": int(ctx.now().timestamp()),
    }
    return redirect(url_for(".enrol" if checked.needs_enrolment else ".totp"))


def _pending_id() -> int | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("id"), int):
        return None
    if int(_ctx().now().timestamp()) - int(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    epoch = db.session().scalar(select(Account.session_epoch).where(Account.id == pending["id"]))
    if epoch is None or epoch != pending.get("epoch"):
        # The password was changed or reset since the first step: it no longer counts.
        session.pop(PENDING, None)
        return None
    return int(pending["id"])


def _finish(account_id: int, message: str | None = None) -> BaseResponse:
    account = auth.find_account_by_id(db.session(), account_id)
    start_session()
    login_user(User(account))
    if message:
        flash(message)  # after the new session began, which drops what the old one held
    return redirect(url_for("console.home"))


@blueprint.route("/totp", methods=["GET", "POST"])
def totp() -> Page:
    account_id = _pending_id()
    if account_id is None:
        flash(_("Please sign in again."))
        return redirect(url_for(".sign_in"))
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("auth/totp.html", form=form, error=None), 200
    ctx = _ctx()
    try:
        auth.check_totp(
            db.session(),
            account_id,
            form.code.data or "",
            vault=ctx.vault,
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=_source(),
        )
    except AuthenticationFailed as exc:
        return render_template(
            "auth/totp.html", form=form, error=exc.localized(text.language())
        ), 401
    except LockedOut as exc:
        return _lockout_page("auth/totp.html", exc, form=form)
    return _finish(account_id)


def _enrolment_uri(account_id: int) -> tuple[str, str]:
    ctx = _ctx()
    secret = auth.enrolment_secret(db.session(), account_id, vault=ctx.vault, now=ctx.now())
    account = auth.find_account_by_id(db.session(), account_id)
    return secret, auth.provisioning_uri(secret, account.user_id, ctx.settings.federation_name)


@blueprint.route("/enrol", methods=["GET", "POST"])
def enrol() -> Page:
    account_id = _pending_id()
    if account_id is None:
        flash(_("Please sign in again."))
        return redirect(url_for(".sign_in"))
    form = CodeForm()
    secret, _uri = _enrolment_uri(account_id)
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    if not form.validate_on_submit():
        return render_template("auth/enrol.html", form=form, secret=grouped, error=None), 200
    ctx = _ctx()
    try:
        auth.confirm_enrolment(
            db.session(),
            account_id,
            form.code.data or "",
            vault=ctx.vault,
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=_source(),
        )
    except AuthenticationFailed as exc:
        return render_template(
            "auth/enrol.html", form=form, secret=grouped, error=exc.localized(text.language())
        ), 401
    except LockedOut as exc:
        return _lockout_page("auth/enrol.html", exc, form=form, secret=grouped)
    return _finish(
        account_id, _("Your authenticator app is set up. From now on, sign in with its codes.")
    )


@blueprint.route("/enrol/qr.svg")
def enrol_qr() -> Response:
    account_id = _pending_id()
    if account_id is None:
        abort(404)
    _secret, uri = _enrolment_uri(account_id)
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=5, border=4, xmldecl=False)
    return Response(out.getvalue(), mimetype="image/svg+xml")


@blueprint.route("/sign-out", methods=["POST"])
def sign_out() -> BaseResponse:
    PlainForm()  # CSRFProtect has checked the token already
    target = sign_in_endpoint(signed_in_account())
    logout_user()
    start_session()
    session.pop("seen", None)
    flash(_("You have signed out."))
    return redirect(url_for(target))


@blueprint.route("/password", methods=["GET", "POST"])
@login_required  # type: ignore[untyped-decorator]  # Flask-Login is untyped
def password() -> Page:
    account = signed_in_account()
    if account is None:  # pragma: no cover - login_required has redirected
        abort(401)
    if account.kind in auth.PORTAL_KINDS:
        # Offices and agents have the portal's page, its rules and its first sign-in.
        return redirect(url_for("portal_password.change"))
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return render_template("auth/password.html", form=form, errors=[]), 200
    if form.new.data != form.confirm.data:
        return render_template(
            "auth/password.html",
            form=form,
            errors=[_("The two new passwords are not the same.")],
        ), 400
    ctx = _ctx()
    try:
        auth.change_own_password(
            db.session(),
            account,
            form.current.data or "",
            form.new.data or "",
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=_source(),
        )
    except AuthenticationFailed as exc:
        return render_template(
            "auth/password.html", form=form, errors=[exc.localized(text.language())]
        ), 401
    except MalformedInput as exc:
        db.roll_back_this_request()
        lang = text.language()
        problems = exc.fields.get("problems") or []
        shown = [p.message_ja if lang == "ja" else p.message for p in problems]
        return render_template(
            "auth/password.html", form=form, errors=shown or [exc.localized(lang)]
        ), 400
    # The epoch moved on: other sessions are over, this one continues under the new epoch.
    start_session()
    login_user(User(account))
    flash(_("Your password was changed. Other sessions have been signed out."))
    return redirect(url_for(home_endpoint()))


def _back() -> BaseResponse:
    target = request.form.get("next", "")
    # Only a path of this site: never another host (an open redirect).
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        target = url_for(".sign_in")
    return redirect(target)


@blueprint.route("/language", methods=["POST"])
def language() -> BaseResponse:
    form = ChoiceForm()
    if form.value.data in text.LANGUAGES:
        session["lang"] = form.value.data
    return _back()


@blueprint.route("/date-style", methods=["POST"])
def date_style() -> BaseResponse:
    form = ChoiceForm()
    if form.value.data in text.DATE_STYLES:
        session["date_style"] = form.value.data
    return _back()
