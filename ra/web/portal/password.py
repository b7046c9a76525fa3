"""パスワード変更: an office or agent changes its own login password while signed in.

Blueprint ``portal_password`` (``/portal/password/``), the portal's version of the staff's page
(:mod:`ra.web.auth_views`): the current password, then a new one under the portal's rules
(:data:`ra.people.password_rules.PORTAL`), each broken rule on its own line.  The account's
other sessions end; this one goes on.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import login_user
from werkzeug.wrappers import Response as BaseResponse

from ra.people import auth
from ra.people.password_rules import PORTAL
from ra.web import WebContext, db, text
from ra.web.forms import PasswordChangeForm
from ra.web.portal import portal_blueprint
from ra.web.security import User, require_portal_account, start_session
from shomei.errors import AuthenticationFailed, LockedOut, MalformedInput

blueprint = portal_blueprint("portal_password", "/portal/password")

Page = tuple[str, int] | BaseResponse


def _page(form: PasswordChangeForm, errors: list[str], status: int = 200) -> tuple[str, int]:
    rules = PORTAL.rules_ja() if text.language() == "ja" else PORTAL.rules_en()
    return render_template("portal/password.html", form=form, errors=errors, rules=rules), status


@blueprint.route("/", methods=["GET", "POST"])
def change() -> Page:
    account = require_portal_account()
    form = PasswordChangeForm()
    if not form.validate_on_submit():
        return _page(form, [], 400 if request.method == "POST" else 200)
    if form.new.data != form.confirm.data:
        return _page(form, [_("The two new passwords are not the same.")], 400)
    ctx: WebContext = current_app.extensions["shomei"]
    try:
        auth.change_own_password(
            db.session(),
            account,
            form.current.data or "",
            form.new.data or "",
            settings=ctx.settings.signin,
            now=ctx.now(),
            source_address=request.remote_addr,
            policy=PORTAL,
        )
    except (AuthenticationFailed, LockedOut) as exc:
        return _page(form, [exc.localized(text.language())], 401)
    except MalformedInput as exc:
        db.roll_back_this_request()
        lang = text.language()
        problems = exc.fields.get("problems") or []
        shown = [p.message_ja if lang == "ja" else p.message for p in problems]
        return _page(form, shown or [exc.localized(lang)], 400)
    start_session()
    login_user(User(account))
    flash(_("Your password was changed. Other sessions have been signed out."))
    return redirect(url_for("portal_home.home"))
