"""請求書 (A3): an agent's invoice for an application awaiting payment, as a PDF.

``/portal/invoice/<application_id>``: :func:`ra.workflow.billing.invoice_pdf` prints the fee,
the bank account of ``[ra.fees.bank_account]`` and, framed, the rule that the payer name
(振込人名) is the agent's user ID.  Another account's application is not found; an application
that is not awaiting payment has no invoice (409, one Japanese line).
"""

from __future__ import annotations

from flask import Response, current_app

from ra.web import WebContext, db, text
from ra.web.portal import portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import billing

blueprint = portal_blueprint("portal_invoice", "/portal/invoice")


@blueprint.route("/<int:application_id>")
def pdf(application_id: int) -> Response:
    ctx: WebContext = current_app.extensions["shomei"]
    data = billing.invoice_pdf(
        db.session(),
        signed_in_party(),
        application_id,
        settings=ctx.settings,
        now=ctx.now(),
        wareki=text.date_style() == "wareki",
    )
    return Response(
        data,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="invoice-{application_id}.pdf"'},
    )
