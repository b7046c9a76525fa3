"""Staff management (職員管理): the console's staff and admin users, admins only.

``/console/staff``: the list, a new staff member or admin
(:func:`ra.people.accounts.add_console_user`), disable, reset the authenticator
(:func:`ra.people.account_admin.reset_totp`: the user enrols again at the next sign-in).
Disabling and the reset ask first (:mod:`ra.web.confirm`).  Every service checks
:attr:`~ra.party.Permission.MANAGE_STAFF`, so a staff member gets 403 on each of these pages.

The new user's login password and TOTP secret are shown once, in the response to the form that
created them (as text, an ``otpauth://`` URI and a QR code made by segno, inline SVG): they are
not stored in clear anywhere, and reloading the page does not show them again.  The secret is
kept sealed (:mod:`ra.store.vault`); the user may scan it now or at the first sign-in.
"""

from __future__ import annotations

import io

import segno
from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from ra.party import Permission
from ra.people import account_admin, accounts
from ra.store.models import AccountKind
from ra.web import WebContext, confirm, db, text
from ra.web.console import console_blueprint, nav_item
from ra.web.forms import PlainForm
from ra.web.security import signed_in_party
from shomei.errors import AlreadyExists, MalformedInput

blueprint = console_blueprint("console_staff", "/console/staff")
nav_item(
    "console_staff.index", _l("Staff management"), order=80, permission=Permission.MANAGE_STAFF
)


class StaffForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    kind = SelectField(
        _l("Role"),
        choices=[SelectChoice("staff", _l("Staff")), SelectChoice("admin", _l("Admin"))],
        validators=[DataRequired()],
    )
    name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    email = StringField(_l("Mail address"), validators=[DataRequired(), Length(max=254)])
    user_id = StringField(
        _l("User ID (optional: drawn when empty)"), validators=[Optional(), Length(max=32)]
    )
    submit = SubmitField(_l("Add"))


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


@blueprint.route("/")
def index() -> str:
    rows = account_admin.console_users(db.session(), signed_in_party(), now=_ctx().now())
    return render_template("console/staff/index.html", rows=rows, form=StaffForm(formdata=None))


def qr_svg(uri: str) -> Markup:
    """The QR code of ``uri`` as an inline SVG element (no script, no style: CSP allows it)."""
    out = io.BytesIO()
    segno.make(uri, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=False)
    return Markup(out.getvalue().decode("utf-8"))  # noqa: S704 (segno's own markup)


@blueprint.route("/", methods=["POST"])
def add() -> tuple[str, int]:
    form = StaffForm()
    party = signed_in_party()
    if not form.validate_on_submit():
        rows = account_admin.console_users(db.session(), party, now=_ctx().now())
        return render_template("console/staff/index.html", rows=rows, form=form), 400
    ctx = _ctx()
    try:
        created = accounts.add_console_user(
            db.session(),
            party,
            kind=AccountKind(form.kind.data),
            name=(form.name.data or "").strip(),
            email=(form.email.data or "").strip(),
            now=ctx.now(),
            vault=ctx.vault,
            user_id=(form.user_id.data or "").strip() or None,
            source_address=request.remote_addr,
        )
    except (MalformedInput, AlreadyExists) as exc:
        db.roll_back_this_request()
        rows = account_admin.console_users(db.session(), party, now=ctx.now())
        return render_template(
            "console/staff/index.html",
            rows=rows,
            form=form,
            error=exc.localized(text.language()),
        ), (400 if isinstance(exc, MalformedInput) else 409)
    uri = created.otpauth_uri(ctx.settings.federation_name) or ""
    secret = created.totp_secret or ""
    return render_template(
        "console/staff/created.html",
        created=created,
        uri=uri,
        secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        qr=qr_svg(uri),
    ), 200


def _ask(user_id: str, title: str, consequences: list[str]) -> str:
    """The confirmation page of an action on staff member ``user_id`` (admins only)."""
    account = account_admin.account_row(
        db.session(), signed_in_party(), user_id, now=_ctx().now()
    ).account
    return confirm.page(
        title=title % {"name": account.name, "user_id": account.user_id},
        consequences=consequences,
        back=url_for(".index"),
    )


@blueprint.route("/<user_id>/disable", methods=["POST"])
def disable(user_id: str) -> str | BaseResponse:
    PlainForm()  # CSRFProtect has checked the token already
    if not confirm.confirmed():
        return _ask(user_id, _("Disable %(name)s (%(user_id)s)?"), confirm.disabling())
    account = account_admin.disable(
        db.session(),
        signed_in_party(),
        user_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    flash(_("%(user_id)s was disabled: it can no longer sign in.", user_id=account.user_id))
    return redirect(url_for(".index"))


@blueprint.route("/<user_id>/totp", methods=["POST"])
def reset_totp(user_id: str) -> str | BaseResponse:
    PlainForm()
    if not confirm.confirmed():
        return _ask(
            user_id,
            _("Reset the authenticator of %(name)s (%(user_id)s)?"),
            [
                _("Codes from the current authenticator app stop working, and the sessions end."),
                _(
                    "At the next sign-in the user sets up an authenticator again; "
                    "the password does not change."
                ),
            ],
        )
    account = account_admin.reset_totp(
        db.session(),
        signed_in_party(),
        user_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    flash(
        _(
            "The authenticator of %(user_id)s was reset: a new one is set up at the next sign-in.",
            user_id=account.user_id,
        )
    )
    return redirect(url_for(".index"))
