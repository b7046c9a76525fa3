"""失効依頼 (/console/revocation-requests): the holders' open revocation requests.

Offices and agents ask for revocation from the portal (:mod:`ra.web.portal.revocation`); this
page lists the requests staff have not answered yet, oldest first, each linked to its detail
page, where the 失効申請 form starts from the request (B4).  Registering the revocation closes
the request (:func:`ra.workflow.revocations.register_revocation`).  The certificate list marks
the same applications.
"""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l

from ra.party import Permission
from ra.web import db
from ra.web.console import console_blueprint, nav_item
from ra.web.console.detail import REQUESTER_LABELS, revocation_reason_label
from ra.web.security import signed_in_party
from ra.workflow import revocation_requests

blueprint = console_blueprint("console_revocation_requests", "/console/revocation-requests")
nav_item(
    "console_revocation_requests.index",
    _l("Revocation requests"),
    order=15,
    permission=Permission.REGISTER_REVOCATION,
)


@blueprint.route("/")
def index() -> str:
    rows = revocation_requests.open_requests(db.session(), signed_in_party())
    return render_template(
        "console/revocation_requests/index.html",
        rows=rows,
        reason_label=revocation_reason_label,
        requester_labels=REQUESTER_LABELS,
    )
