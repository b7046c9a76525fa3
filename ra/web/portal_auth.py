"""The ``portal_auth`` blueprint: the sign-in of offices and agents (``/portal/sign-in``).

The portal's own page, apart from the staff's: its lockout policy is the portal's
(``[ra.signin.portal]``, 3 failures lock for 30 minutes by default) and only office and agent
accounts sign in here; any other account fails exactly as a wrong password does
(:func:`ra.people.auth.check_password`). A sign-in starts a new session (nothing of the session
before is kept but the language and the date style). Sign-in failures are committed
(:mod:`ra.web.db` keeps them): the lockout counts them.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import login_user
from werkzeug.wrappers import Response as BaseResponse

from ra.people import auth
from ra.web import WebContext, db, text
from ra.web.forms import SignInForm
from ra.web.security import User, home_endpoint, signed_in_account, start_session
from shomei.errors import AuthenticationFailed, LockedOut

blueprint = Blueprint("portal_auth", __name__, url_prefix="/portal")

Page = tuple[str, int] | BaseResponse


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


def _next_path() -> str | None:
    """Where the visitor was going, if it is a page of the portal (never another site)."""
    target = request.args.get("next", "")
    if target.startswith("/portal/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@blueprint.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Page:
    if signed_in_account() is not None:
        return redirect(url_for(home_endpoint()))
    form = SignInForm()
    if not form.validate_on_submit():
        return render_template("portal/sign_in.html", form=form, error=None), 200
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
        error = exc.localized(text.language())
        return render_template("portal/sign_in.html", form=form, error=error), 401
    except LockedOut as exc:
        return render_template(
            "portal/sign_in.html",
            form=form,
            error=exc.localized(text.language()),
            locked_until=exc.fields.get("until"),
        ), 423
    start_session()
    login_user(User(checked.account))
    return redirect(_next_path() or url_for("portal_home.home"))
