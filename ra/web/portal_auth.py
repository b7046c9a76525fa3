"""The ``portal_auth`` blueprint: offices and agents signing in, and a forgotten password.

The portal's own pages, apart from the staff's: its lockout policy is the portal's
(``[ra.signin.portal]``, 3 failures lock for 30 minutes by default) and only office and agent
accounts sign in here; any other account fails exactly as a wrong password does
(:func:`ra.people.auth.check_password`).  A sign-in starts a new session (nothing of the
session before is kept but the language and the date style).  Sign-in failures are committed
(:mod:`ra.web.db` keeps them): the lockout counts them.

* ``/portal/sign-in`` — user ID and password; then, when the portal asks for TOTP
  (``[ra.signin] portal_totp``) and the account has enrolled, ``/portal/totp``.  An account
  that has not finished its first sign-in is then taken through it by the portal's gate
  (:mod:`ra.web.portal.first_sign_in`).
* ``/portal/password/forgot`` — a forgotten password (:mod:`ra.people.password_reset`): the
  user ID, a 6-digit code mailed to the confirmed address, a new password.  The pages never
  say whether an ID exists; each explains the phone path for those without a confirmed address.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse
from wtforms import PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from ra.people import auth, mail_codes, password_reset
from ra.people.password_rules import PORTAL
from ra.store.models import Account
from ra.web import WebContext, db, send_soon, text
from ra.web.forms import CodeForm, PlainForm, SignInForm
from ra.web.security import User, home_endpoint, signed_in_account, start_session
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput, Refused
from shomei.jatext import fold_user_id

blueprint = Blueprint("portal_auth", __name__, url_prefix="/portal")

Page = tuple[str, int] | BaseResponse
PENDING = "portal_pending"  # between the password and the TOTP code
PENDING_SECONDS = 300
RESET = "portal_reset"  # the forgotten password: which ID, since when, how many wrong codes
RESET_OK = "portal_reset_ok"  # the code was right: whose password may be set, until when


class ForgotForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    user_id = StringField(_l("User ID"), validators=[DataRequired(), Length(max=200)])
    submit = SubmitField(_l("Send a confirmation code"))


class ResetCodeForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    code = StringField(
        _l("Confirmation code (6 digits)"), validators=[DataRequired(), Length(max=40)]
    )
    submit = SubmitField(_l("Confirm"))


class NewPasswordForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(
        _l("New password (again)"), validators=[DataRequired(), Length(max=200)]
    )
    submit = SubmitField(_l("Set the new password"))


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


def _now_seconds() -> int:
    return int(_ctx().now().timestamp())


def _next_path() -> str | None:
    """Where the visitor was going, if it is a page of the portal (never another site)."""
    target = request.args.get("next", "")
    if target.startswith("/portal/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


def _sign_in_page(status: int, **context: Any) -> tuple[str, int]:
    context.setdefault("form", SignInForm())
    context.setdefault("error", None)
    return render_template("portal/sign_in.html", **context), status


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Page:
    if signed_in_account() is not None:
        return redirect(url_for(home_endpoint()))
    form = SignInForm()
    if not form.validate_on_submit():
        return _sign_in_page(200, form=form)
    ctx = _ctx()
    try:
        checked = auth.check_password(
            db.session(),
            form.user_id.data or "",
            form.password.data or "",
            settings=ctx.settings.signin,
            now=ctx.now(),
            kinds=auth.PORTAL_KINDS,
            source_address=request.remote_addr,
        )
    except AuthenticationFailed as exc:
        return _sign_in_page(401, form=form, error=exc.localized(text.language()))
    except LockedOut as exc:
        return _sign_in_page(
            423,
            form=form,
            error=exc.localized(text.language()),
            locked_until=exc.fields.get("until"),
        )
    start_session()
    if checked.needs_totp:
        session[PENDING] = {
            "id": checked.account.id,
            "epoch": checked.account.session_epoch,
            "at": _now_seconds(),
            "next": _next_path(),
        }
        return redirect(url_for(".totp"))
    login_user(User(checked.account))
    return redirect(_next_path() or url_for("portal_home.home"))


def _pending() -> dict[str, Any] | None:
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or not isinstance(pending.get("id"), int):
        return None
    if _now_seconds() - int(pending.get("at", 0)) > PENDING_SECONDS:
        session.pop(PENDING, None)
        return None
    epoch = db.session().scalar(select(Account.session_epoch).where(Account.id == pending["id"]))
    if epoch is None or epoch != pending.get("epoch"):
        session.pop(PENDING, None)  # the password changed since the first step
        return None
    return pending


@blueprint.route("/totp", methods=["GET", "POST"])
def totp() -> Page:
    pending = _pending()
    if pending is None:
        flash(_("Please sign in again."))
        return redirect(url_for(".sign_in"))
    form = CodeForm()
    if not form.validate_on_submit():
        return render_template("portal/totp.html", form=form, error=None), 200
    ctx = _ctx()
    try:
        account = auth.check_totp(
            db.session(),
            pending["id"],
            form.code.data or "",
            vault=ctx.vault,
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=request.remote_addr,
        )
    except AuthenticationFailed as exc:
        return render_template(
            "portal/totp.html", form=form, error=exc.localized(text.language())
        ), 401
    except LockedOut as exc:
        session.pop(PENDING, None)
        return _sign_in_page(
            423,
            form=SignInForm(formdata=None),
            error=exc.localized(text.language()),
            locked_until=exc.fields.get("until"),
        )
    target = pending.get("next")
    start_session()
    login_user(User(account))
    return redirect(target if isinstance(target, str) else url_for("portal_home.home"))


# --- a forgotten password --------------------------------------------------------------------


def _rules() -> list[str]:
    return PORTAL.rules_ja() if text.language() == "ja" else PORTAL.rules_en()


def _request_code(user_id: str) -> None:
    """Mail a reset code if the ID may get one; the visitor is told the same either way."""
    ctx = _ctx()
    mail_id = password_reset.request_code(
        db.session(),
        user_id,
        vault=ctx.vault,
        now=ctx.now(),
        message_id_domain=ctx.settings.mail.message_id_domain,
        federation_name=ctx.settings.federation_name,
        source_address=request.remote_addr,
    )
    if mail_id is not None:
        send_soon.after_response([mail_id])
    session[RESET] = {"user_id": fold_user_id(user_id)[:64], "at": _now_seconds(), "tries": 0}


@blueprint.route("/password/forgot", methods=["GET", "POST"])
def forgot() -> Page:
    if signed_in_account() is not None:
        return redirect(url_for(home_endpoint()))
    form = ForgotForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("portal/forgot/start.html", form=form), status
    _request_code(form.user_id.data or "")
    return redirect(url_for(".forgot_code"))


def _reset_state() -> dict[str, Any] | None:
    state = session.get(RESET)
    if not isinstance(state, dict) or not isinstance(state.get("user_id"), str):
        return None
    return state


def _code_page(form: ResetCodeForm, state: dict[str, Any], error: str | None, status: int) -> Page:
    return render_template(
        "portal/forgot/code.html",
        form=form,
        user_id=state["user_id"],
        resend=PlainForm(),
        error=error,
        minutes=int(mail_codes.CODE_TTL.total_seconds() // 60),
        tries=mail_codes.CODE_TRIES,
    ), status


@blueprint.route("/password/forgot/code", methods=["GET", "POST"])
def forgot_code() -> Page:
    state = _reset_state()
    if state is None:
        return redirect(url_for(".forgot"))
    form = ResetCodeForm()
    if not form.validate_on_submit():
        return _code_page(form, state, None, 400 if request.method == "POST" else 200)
    ctx = _ctx()
    try:
        account = password_reset.check_code(
            db.session(),
            state["user_id"],
            form.code.data or "",
            requested_at=dt.datetime.fromtimestamp(int(state["at"]), dt.UTC),
            tries=int(state.get("tries", 0)),
            vault=ctx.vault,
            now=ctx.now(),
            source_address=request.remote_addr,
        )
    except (AuthenticationFailed, Refused) as exc:
        state["tries"] = int(state.get("tries", 0)) + 1
        session[RESET] = state
        form.code.data = ""
        return _code_page(form, state, exc.localized(text.language()), 401)
    session.pop(RESET, None)
    session[RESET_OK] = {"id": account.id, "epoch": account.session_epoch, "at": _now_seconds()}
    return redirect(url_for(".forgot_new"))


@blueprint.route("/password/forgot/resend", methods=["POST"])
def forgot_resend() -> BaseResponse:
    PlainForm()  # CSRFProtect has checked the token already
    state = _reset_state()
    if state is None:
        return redirect(url_for(".forgot"))
    _request_code(state["user_id"])
    flash(_("If the user ID has a confirmed mail address, a new code was sent to it."))
    return redirect(url_for(".forgot_code"))


@blueprint.route("/password/forgot/new", methods=["GET", "POST"])
def forgot_new() -> Page:
    state = session.get(RESET_OK)
    if not isinstance(state, dict) or not isinstance(state.get("id"), int):
        return redirect(url_for(".forgot"))
    form = NewPasswordForm()

    def page(errors: list[str], status: int) -> tuple[str, int]:
        return render_template(
            "portal/forgot/new.html", form=form, errors=errors, rules=_rules()
        ), status

    if not form.validate_on_submit():
        return page([], 400 if request.method == "POST" else 200)
    if form.new.data != form.confirm.data:
        return page([_("The two new passwords are not the same.")], 400)
    ctx = _ctx()
    try:
        password_reset.set_new_password(
            db.session(),
            state["id"],
            int(state.get("epoch", -1)),
            form.new.data or "",
            verified_at=dt.datetime.fromtimestamp(int(state.get("at", 0)), dt.UTC),
            now=ctx.now(),
            source_address=request.remote_addr,
        )
    except MalformedInput as exc:
        db.roll_back_this_request()
        lang = text.language()
        problems = exc.fields.get("problems") or []
        return page([p.message_ja if lang == "ja" else p.message for p in problems], 400)
    except Refused as exc:
        session.pop(RESET_OK, None)
        flash(exc.localized(text.language()))
        return redirect(url_for(".forgot"))
    session.pop(RESET_OK, None)
    flash(_("Your new password is set. Sign in with your user ID and the new password."))
    return redirect(url_for(".sign_in"))
