"""見積書 (A2): a form for the addressee, then the quote as a PDF to print.

``/portal/quote``: the form starts with the account as registered (住所, 事業所名 or 法人名 for
an agent) and asks for 氏名 and 敬称 (様 / 御中); sending it returns the PDF
(:func:`ra.workflow.billing.quote_pdf`: the federation's name and address from the settings,
the date, the fee and its total, the Japanese font embedded).  Bad input is the form again with
one Japanese line; while the federation's address is not set the page says so and offers no
button.
"""

from __future__ import annotations

from flask import Response, current_app, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as BaseResponse
from wtforms import RadioField, SelectChoice, StringField
from wtforms.validators import DataRequired, Length, Optional

from ra.party import Permission, account_of
from ra.store.models import AccountKind
from ra.web import WebContext, db, text
from ra.web.errors import status_of
from ra.web.portal import nav_item, portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import billing
from shomei.clock import to_japan
from shomei.errors import ShomeiError

blueprint = portal_blueprint("portal_quote", "/portal/quote")
nav_item("portal_quote.form", _l("Quote"), order=20, permission=Permission.APPLY)


class QuoteForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=8)])
    address = StringField(_l("Address"), validators=[Optional(), Length(max=300)])
    organization = StringField(_l("Office name"), validators=[DataRequired(), Length(max=200)])
    person = StringField(_l("Name of the person"), validators=[Optional(), Length(max=100)])
    honorific = RadioField(
        _l("Honorific"),
        choices=[
            SelectChoice("御中", _l("御中 (to the office)")),
            SelectChoice("様", _l("様 (to a person)")),
        ],
        default="御中",
        validators=[DataRequired()],
    )


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


def _page(form: QuoteForm, *, error: str | None = None, status: int = 200) -> tuple[str, int]:
    s = db.session()
    party = signed_in_party()
    settings = _ctx().settings
    start = billing.quote_form(s, party, settings=settings)
    agent = account_of(s, party).kind is AccountKind.AGENT
    if agent:
        form.organization.label.text = _("Corporation name")
    return render_template(
        "portal/quote/form.html",
        form=form,
        fee=start.fee_yen,
        tax=settings.fees.tax,
        printable=billing.printable(settings),
        error=error,
    ), status


@blueprint.route("/", methods=["GET"])
def form() -> tuple[str, int]:
    s = db.session()
    start = billing.quote_form(s, signed_in_party(), settings=_ctx().settings)
    return _page(
        QuoteForm(
            postal_code=start.postal_code,
            address=start.address,
            organization=start.organization,
            person=start.person,
            honorific=start.honorific,
        )
    )


@blueprint.route("/", methods=["POST"])
def pdf() -> tuple[str, int] | BaseResponse:
    form = QuoteForm()
    if not form.validate_on_submit():
        error = (
            _("Enter the office name (or corporation name).")
            if "organization" in form.errors
            else _(
                "Check what you entered: the address has at most 300 characters, the name at "
                "most 100, and the honorific is 様 or 御中."
            )
        )
        return _page(form, error=error, status=400)
    ctx = _ctx()
    try:
        data = billing.quote_pdf(
            db.session(),
            signed_in_party(),
            settings=ctx.settings,
            organization=form.organization.data or "",
            address=form.address.data or "",
            postal_code=form.postal_code.data or "",
            person=form.person.data or "",
            honorific=form.honorific.data or "",
            now=ctx.now(),
            wareki=text.date_style() == "wareki",
        )
    except ShomeiError as exc:
        db.roll_back_this_request()
        return _page(form, error=exc.localized(text.language()), status=status_of(exc))
    day = to_japan(ctx.now()).strftime("%Y%m%d")
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="quote-{day}.pdf"'},
    )
