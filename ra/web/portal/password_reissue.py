"""証明書発行用パスワード再発行 (A7): ``/portal/password-reissue``.

With a current certificate (issued, not expired, not revoked; an RSA key) the office asks here
or from the notices page (a POST): :func:`ra.workflow.reissue.reissue_sealed` makes a new
issuance password, seals it to the certificate and delivers it as a sealed notice, and the
office is taken to that notice's page, which offers the file and the steps to open it.
Without one the page explains the phone path: the federation resets the password in its
console and posts a letter (:func:`ra.people.accounts.reset_issuance_password`).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.wrappers import Response as BaseResponse

from ra.mailing import texts
from ra.store.models import Certificate
from ra.web import WebContext, db, errors, text
from ra.web.forms import PlainForm
from ra.web.portal import portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import reissue
from shomei.errors import NotFound, Refused

blueprint = portal_blueprint("portal_password_reissue", "/portal/password-reissue")

Page = tuple[str, int] | BaseResponse


@dataclass(frozen=True)
class Offer:
    """What the page can offer the signed-in office: the sealed path or the phone path."""

    certificate: Certificate | None  # the certificate a new password is sealed to; None: phone
    phone: str  # the federation's phone number (may be empty when not configured)
    user_id: str


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def reissue_offer() -> Offer:
    """The offer for the signed-in party (the notices page shows it too)."""
    ctx = _ctx()
    party = signed_in_party()
    return Offer(
        certificate=reissue.sealable_certificate(db.session(), party, ctx.now()),
        phone=ctx.settings.documents.issuer_phone,
        user_id=party.user_id,
    )


def _render(status: int = 200, problem: str | None = None) -> tuple[str, int]:
    return render_template(
        "portal/password_reissue.html", offer=reissue_offer(), form=PlainForm(), problem=problem
    ), status


@blueprint.route("", methods=["GET"])
def index() -> Page:
    return _render()


@blueprint.route("", methods=["POST"])
def request_reissue() -> Page:
    ctx = _ctx()
    session = db.session()
    try:
        notice = reissue.reissue_sealed(
            session,
            signed_in_party(),
            now=ctx.now(),
            message_id_domain=ctx.settings.mail.message_id_domain,
            source_address=request.remote_addr,
            footer=texts.signature(ctx.settings),
        )
    except (NotFound, Refused) as error:
        # No certificate to seal to (any more): nothing changed; the page shows the phone path.
        session.rollback()
        db.roll_back_this_request()
        return _render(errors.status_of(error), error.localized(text.language()))
    flash(
        _(
            "A new issuance password was sealed to your certificate. Download the file below "
            "and open it as the steps say."
        )
    )
    return redirect(url_for("portal_notices.show", notice_id=notice.id), code=303)
