"""The portal home, the office's 証明書 screen: its applications and certificates.

Its blueprint is ``portal_home`` (``/portal/``), behind the portal's gate like every screen of
:mod:`ra.web.portal`.  The table lists the party's own applications
(:func:`ra.workflow.applications.certificate_screen`): 有効開始年月日, 有効終了年月日, 状況,
発行手数料残高 (offices), what to do next, and the buttons the application allows:

* 状況照会 and ダウンロード open the pages of :mod:`ra.web.portal` that show an application and
  give its certificate (endpoints ``portal_status.detail`` and ``portal_download.form``); they
  are shown only when this application has those pages (:func:`ra.web.links.optional_url`), and
  ダウンロード only when :func:`ra.party.allowed_actions` allows the download (発行済み);
* 請求書 (an agent's application awaiting payment) and 印刷 (the certificate's details on a
  page for paper, once the CA issued it).

For the account: 見積書表示 always, 発行申請 while :func:`ra.workflow.applications.apply_state`
allows it (an office: no application of its office in progress), otherwise a sentence that says
why not.
"""

from __future__ import annotations

from flask import current_app, render_template
from flask_babel import lazy_gettext as _l

from ra.party import Permission, account_of
from ra.store.models import AccountKind
from ra.web import WebContext, db
from ra.web.portal import nav_item, portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import applications, billing

blueprint = portal_blueprint("portal_home", "/portal")
nav_item("portal_home.home", _l("Certificates"), order=0)


@blueprint.route("/")
def home() -> str:
    ctx: WebContext = current_app.extensions["shomei"]
    session = db.session()
    party = signed_in_party()
    account = account_of(session, party)
    office = account.kind is AccountKind.OFFICE
    return render_template(
        "portal/home.html",
        account=account,
        office=office,
        rows=applications.certificate_screen(session, party),
        state=applications.apply_state(session, party),
        balance=applications.fee_balance(session, account) if office else None,
        printable=billing.printable(ctx.settings),
        download=Permission.DOWNLOAD,
    )
