"""The portal home, the office's 証明書 screen: its applications and certificates.

Its blueprint is ``portal_home`` (``/portal/``), behind the portal's gate like every screen of
:mod:`ra.web.portal`. What it lists comes from :func:`ra.workflow.applications.own_applications`
(the party's own account only).
"""

from __future__ import annotations

from flask import render_template
from flask_babel import lazy_gettext as _l

from ra.party import account_of
from ra.store.models import AccountKind
from ra.web import db
from ra.web.portal import nav_item, portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import applications

blueprint = portal_blueprint("portal_home", "/portal")
nav_item("portal_home.home", _l("Certificates"), order=0)


@blueprint.route("/")
def home() -> str:
    session = db.session()
    party = signed_in_party()
    account = account_of(session, party)
    owned = applications.own_applications(session, party)
    balance = (
        applications.fee_balance(session, account) if account.kind is AccountKind.OFFICE else None
    )
    return render_template("portal/home.html", account=account, owned=owned, balance=balance)
