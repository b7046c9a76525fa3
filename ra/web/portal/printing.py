"""印刷: a certificate's details on a page made for paper (``/portal/print/<application_id>``).

The 証明書 screen's 印刷 button opens it for an application whose certificate the CA issued:
the office, the status, the validity, the serial number, the issuer and the SHA-256
fingerprint (:func:`ra.workflow.applications.certificate_card`), for the office's files or for
a phone call with the federation.  It is printed with the browser's own print command (no
script); the style sheet's ``@media print`` rules leave out the menu and the buttons.
"""

from __future__ import annotations

from flask import current_app, render_template

from ra.web import WebContext, db
from ra.web.portal import portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import applications

blueprint = portal_blueprint("portal_print", "/portal/print")


@blueprint.route("/<int:application_id>")
def certificate(application_id: int) -> str:
    ctx: WebContext = current_app.extensions["shomei"]
    card = applications.certificate_card(db.session(), signed_in_party(), application_id)
    return render_template("portal/print/certificate.html", card=card, printed_at=ctx.now())
