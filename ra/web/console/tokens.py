"""API tokens (API トークン): the tokens the federation's other systems call the JSON API with.

``/console/tokens``: the list (name, the token's first characters, scopes, who made it, last
use, revoked), a new token (:func:`ra.people.api_tokens.create_token`) and revoking one
(:func:`ra.people.api_tokens.revoke_token`).  Every service checks
:attr:`~ra.party.Permission.MANAGE_API_TOKENS` (admins), so a staff member gets 403 here.

The new token is shown once, in the response to the form that made it: only its SHA-256 is
stored, and reloading the page does not show it again.
"""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectMultipleField, StringField, SubmitField
from wtforms.validators import DataRequired, Length
from wtforms.widgets import CheckboxInput, ListWidget

from ra.party import Permission, Scope
from ra.people import api_tokens
from ra.web import WebContext, db, text
from ra.web.console import console_blueprint, nav_item
from ra.web.forms import PlainForm
from ra.web.security import signed_in_party
from shomei.errors import AlreadyExists, MalformedInput

blueprint = console_blueprint("console_tokens", "/console/tokens")
nav_item(
    "console_tokens.index",
    _l("API tokens"),
    order=85,
    permission=Permission.MANAGE_API_TOKENS,
)

SCOPE_LABELS = {
    Scope.READ_APPLICATIONS: _l("Read applications and certificates"),
    Scope.VERIFY_CLAIMS: _l("Verify claims"),
    Scope.REGISTER_CRLS: _l("Register CRLs"),
}


class TokenForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    name = StringField(
        _l("Name (the system that uses it)"),
        validators=[DataRequired(), Length(max=api_tokens.NAME_MAX)],
    )
    scopes = SelectMultipleField(
        _l("What it may do"),
        choices=[SelectChoice(s.value, SCOPE_LABELS[s]) for s in Scope],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
        # No DataRequired: it would mark every box "required" in the browser; the service
        # refuses a token without a scope, with its own message.
    )
    submit = SubmitField(_l("Make the token"))


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _page(form: TokenForm, error: str | None = None) -> str:
    rows = api_tokens.list_tokens(db.session(), signed_in_party())
    return render_template(
        "console/tokens/index.html",
        rows=rows,
        form=form,
        error=error,
        scope_labels=SCOPE_LABELS,
        scopes_of=api_tokens.scopes_of,
    )


@blueprint.route("/")
def index() -> str:
    return _page(TokenForm(formdata=None))


@blueprint.route("/", methods=["POST"])
def add() -> tuple[str, int]:
    form = TokenForm()
    if not form.validate_on_submit():
        return _page(form), 400
    ctx = _ctx()
    try:
        created = api_tokens.create_token(
            db.session(),
            signed_in_party(),
            name=form.name.data or "",
            scopes=form.scopes.data or [],
            now=ctx.now(),
            source_address=request.remote_addr,
        )
    except (MalformedInput, AlreadyExists) as exc:
        db.roll_back_this_request()
        return _page(form, exc.localized(text.language())), (
            400 if isinstance(exc, MalformedInput) else 409
        )
    return render_template(
        "console/tokens/created.html",
        created=created,
        scope_labels=SCOPE_LABELS,
        scopes=api_tokens.scopes_of(created.row),
    ), 200


@blueprint.route("/<int:token_id>/revoke", methods=["POST"])
def revoke(token_id: int) -> BaseResponse:
    PlainForm()  # CSRFProtect has checked the token already
    row = api_tokens.revoke_token(
        db.session(),
        signed_in_party(),
        token_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    flash(_("The API token %(name)s was revoked: it is refused from now on.", name=row.name))
    return redirect(url_for(".index"))
