"""入金登録 from the bank passbook (B3, docs/product.md §6).

Staff type the payer name as the passbook prints it (振込人名: half-width, upper case, with
the bank's spaces); :func:`ra.desk.passbook.search_by_payer` folds it and finds the agent's
applications awaiting payment, with their fee balance (手数料残高) to compare with the
amount in the passbook.  Staff tick the applications the transfer pays and register the
date and amount: each row goes through :func:`ra.desk.bulk.bulk_register_payment`, so a row whose
fee is not the amount, or that someone else registered first, is refused with its reason on
the result page while the others are registered.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from ra.desk import bulk, passbook
from ra.web import db
from ra.web.console import console_blueprint, nav_item
from ra.web.console.list import JST, ListActionForm, parse_ids
from ra.web.security import signed_in_party
from ra.web.text import language
from shomei.errors import MalformedInput

blueprint = console_blueprint("console_payments", "/console/payments")
nav_item("console_payments.index", _l("Payments from the passbook"), order=20)


@blueprint.route("/")
def index() -> str:
    ctx = current_app.extensions["shomei"]
    payer = request.args.get("payer", "")
    rows = None
    if payer.strip():
        found = passbook.search_by_payer(db.session(), signed_in_party(), payer)
        rows = [(row, row.applied_at.astimezone(JST).date()) for row in found]
    return render_template(
        "console/payments/index.html",
        payer=payer,
        rows=rows,
        form=ListActionForm(),
        today=ctx.now().astimezone(JST).date(),
    )


@blueprint.route("/register", methods=["POST"])
def register() -> str:
    ctx = current_app.extensions["shomei"]
    form = ListActionForm()
    if not form.validate_on_submit():
        raise MalformedInput(
            "the form is incomplete: " + "; ".join(f"{k}: {v}" for k, v in form.errors.items()),
            message_ja="入力内容が正しくありません。入金日・金額・振込人名を確かめてください",
        )
    ids = parse_ids(request.form.getlist("row"), "row")
    if not ids:
        raise MalformedInput(
            "tick the applications the transfer pays",
            message_ja="入金を登録する申請を選んでください",
            field="row",
        )
    paid_on, amount, payer = form.payment()
    result = bulk.bulk_register_payment(
        db.session(),
        signed_in_party(),
        ids,
        paid_on=paid_on,
        amount_yen=amount,
        payer_name=payer,
        now=ctx.now(),
        source_address=request.remote_addr,
    )
    return render_template(
        "console/list/result.html",
        result=result,
        title=_("Payment registration"),
        back="/console/payments/?payer=" + quote(payer, safe=""),
        lang=language(),
    )
