"""The certificate list (証明書一覧, docs/product.md §8): search, numbered pages, selection,
bulk actions and 一覧保存 (CSV).

The search is a GET form, so a page of a search is a plain URL (bookmarks, the back
button).  Pages are cut by :class:`ra.desk.queries.PlanCache` (one per worker process): the
検索 button sends ``search=1``, which plans the search anew (fresh 全件数 and page
boundaries); paging and jumping reuse the plan (one cache per application, so per worker).

Selection lives in the signed session cookie, so it survives paging without any script:
the rows shown on a page are posted with the ticked ones (選択を反映 or any bulk button), and
the ones shown but not ticked are taken out.  Rows ticked one by one are kept as their ids,
at most :data:`TICK_LIMIT` (a cookie holds about 4 KB); 全選択 keeps the search itself and the
rows unticked afterwards (:func:`ra.desk.bulk.select_all`), so it covers every page.

A bulk action answers with its result page directly (every row done and every row refused,
with the reason): the result of one press is shown once, and up to 2,000 rows do not fit in
a cookie for a redirect.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from flask import (
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response as BaseResponse
from wtforms import DateField, IntegerField, StringField
from wtforms.validators import Length, NumberRange, Optional

from ra.desk import bulk, export
from ra.desk.queries import ApplicantType, ListFilters, ListRow, PlanCache, make_filters
from ra.lifecycle import Status
from ra.party import Permission, may
from ra.web import db
from ra.web.console import console_blueprint, nav_item
from ra.web.security import signed_in_party
from ra.web.text import language
from shomei.errors import MalformedInput, Refused
from shomei.jatext import fold_user_id

blueprint = console_blueprint("console_list", "/console/list")
nav_item("console_list.index", _l("Certificate list"), order=10)

PAGE_SIZE = 50
TICK_LIMIT = 300  # rows ticked one by one that the session cookie keeps (see the module)
JST = dt.timezone(dt.timedelta(hours=9), "JST")
SELECTION = "list_selection"
PLANS = "console_list_plans"  # app.extensions key of the app's PlanCache
# The query arguments of a search (the GET form's fields), in the order of the form.
SEARCH_ARGS = ("type", "uid", "match", "st")


def search_args(args: MultiDict[str, str]) -> dict[str, list[str]]:
    """The search part of a query string, as lists (kept in links and in the selection)."""
    found = {k: [v for v in args.getlist(k) if v.strip()] for k in SEARCH_ARGS}
    return {k: v for k, v in found.items() if v}


def filters_of(args: Mapping[str, list[str]]) -> ListFilters:
    """The search of ``args``; a user ID typed in full-width characters is folded (NFKC)."""
    uid = (args.get("uid") or [""])[0]
    return make_filters(
        applicant_types=args.get("type"),
        user_id=fold_user_id(uid) if uid else None,
        user_id_match=(args.get("match") or ["prefix"])[0],
        statuses=args.get("st"),
    )


def parse_ids(values: list[str], field: str) -> list[int]:
    if not all(v.isascii() and v.isdigit() and len(v) <= 18 for v in values):
        raise MalformedInput(
            f"malformed application numbers in {field}",
            message_ja="申請番号の指定が正しくありません",
            field=field,
        )
    return [int(v) for v in values]


def _page_number(raw: str | None) -> int:
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise MalformedInput(
            "the page number must be a whole number from 1",
            message_ja="ページ番号は1以上の数で指定してください",
            field="page",
        )
    return int(raw)


class ListActionForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    """The list's POST form: the CSRF token and 入金登録's fields (the rest is read by hand:
    row check boxes and the button pressed)."""

    paid_on = DateField(_l("Payment date"), validators=[Optional()])
    amount_yen = IntegerField(
        _l("Amount (yen)"), validators=[Optional(), NumberRange(min=1, max=10_000_000)]
    )
    payer_name = StringField(_l("Payer name"), validators=[Optional(), Length(max=100)])

    def payment(self) -> tuple[dt.date, int, str]:
        """The payment's date, amount and payer, or :class:`MalformedInput` if one is missing."""
        if self.paid_on.data is None or self.amount_yen.data is None or not self.payer_name.data:
            raise MalformedInput(
                "payment registration needs the payment date, the amount and the payer name",
                message_ja="入金登録には入金日・金額・振込人名をすべて入力してください",
                field="payment",
            )
        return self.paid_on.data, int(self.amount_yen.data), str(self.payer_name.data).strip()


# --- the selection, kept in the session ---------------------------------------------------


def _stored() -> dict[str, Any]:
    found = session.get(SELECTION)
    return found if isinstance(found, dict) else {"ids": []}


def current_selection() -> bulk.Selection:
    """The selection kept in the session, as :mod:`ra.desk.bulk` takes it."""
    stored = _stored()
    if "all" in stored:
        return bulk.select_all(filters_of(stored["all"]), excluded=stored.get("excluded", []))
    return bulk.select_rows(stored.get("ids", []), limit=TICK_LIMIT)


def _save(stored: dict[str, Any]) -> None:
    session[SELECTION] = stored


def apply_ticks(shown: list[int], ticked: list[int]) -> None:
    """Take the ticks of the rows shown on a page into the selection (see the module)."""
    stored = _stored()
    ticked_set = set(ticked)
    if "all" in stored:
        excluded = set(stored.get("excluded", []))
        excluded |= {i for i in shown if i not in ticked_set}
        excluded -= ticked_set
        _save({"all": stored["all"], "excluded": sorted(excluded)})
        return
    shown_set = set(shown)
    ids = [i for i in stored.get("ids", []) if i not in shown_set or i in ticked_set]
    ids.extend(i for i in ticked if i not in set(ids))
    if len(ids) > TICK_LIMIT:
        raise Refused(
            f"at most {TICK_LIMIT} rows can be ticked one by one; "
            "narrow the search and use select all",
            message_ja=(
                f"一件ずつ選択できるのは{TICK_LIMIT}件までです。"
                "それより多いときは検索条件で絞り込んでから全選択を使ってください"
            ),
            selected=len(ids),
            limit=TICK_LIMIT,
        )
    _save({"ids": ids})


def is_selected(row: ListRow, selection: bulk.Selection, search: ListFilters) -> bool:
    if selection.search is None:
        return row.application_id in selection.ids
    return selection.search == search and row.application_id not in selection.excluded


def _plans() -> PlanCache:
    # One cache per application (so per worker process), never shared between databases.
    found = current_app.extensions.get(PLANS)
    if not isinstance(found, PlanCache):
        found = current_app.extensions[PLANS] = PlanCache()
    return found


# --- views ----------------------------------------------------------------------------------


@blueprint.route("/")
def index() -> str:
    ctx = current_app.extensions["shomei"]
    party = signed_in_party()
    args = search_args(request.args)
    search = filters_of(args)
    number = _page_number(request.args.get("page"))
    s = db.session()
    page = _plans().page(
        s,
        party,
        search,
        page=number,
        page_size=PAGE_SIZE,
        now=ctx.now(),
        refresh=request.args.get("search") == "1",
    )
    selection = current_selection()
    if selection.search is not None and selection.search != search and "search" in request.args:
        # 全選択 belongs to the search it was pressed on; a new search starts a new selection.
        session.pop(SELECTION, None)
        selection = current_selection()
    rows = [
        (row, row.applied_at.astimezone(JST).date(), is_selected(row, selection, search))
        for row in page.rows
    ]
    return render_template(
        "console/list/index.html",
        page=page,
        rows=rows,
        args=args,
        search=search,
        statuses=list(Status),
        types=list(ApplicantType),
        selected_count=bulk.selection_count(s, selection),
        whole_search=selection.is_whole_search,
        form=ListActionForm(),
        may_undo=may(party, Permission.UNDO),
        back=request.full_path,
        today=ctx.now().astimezone(JST).date(),
        page_url=lambda n: _page_url(args, n),
        type_labels={
            ApplicantType.OFFICE: _("Office"),
            ApplicantType.AGENT: _("Agent"),
            ApplicantType.STAFF: _("Staff"),
        },
    )


def _page_url(args: Mapping[str, list[str]], number: int) -> str:
    # url_for repeats a list argument (?st=a&st=b), as the search form sends it.
    values: dict[str, Any] = {**args, "page": number}
    return url_for(".index", **values)


def _back() -> str:
    back = request.form.get("back", "")
    # Only a page of this list: the field comes from the form, never from elsewhere.
    return back if back.startswith("/console/list/") and "//" not in back else "/console/list/"


@blueprint.route("/act", methods=["POST"])
def act() -> BaseResponse | str:
    form = ListActionForm()
    if not form.validate_on_submit():
        raise MalformedInput(
            "the form is incomplete: " + "; ".join(f"{k}: {v}" for k, v in form.errors.items()),
            message_ja="入力内容が正しくありません。入金日・金額・振込人名を確かめてください",
        )
    op = request.form.get("op", "apply")
    shown = parse_ids(request.form.getlist("shown"), "shown")
    ticked = parse_ids(request.form.getlist("row"), "row")
    if op == "all":
        args = search_args(request.form)
        filters_of(args)  # a malformed search is refused before it is kept
        _save({"all": args, "excluded": []})
        flash(_("Every row of the search is selected, on every page."))
        return redirect(_back())
    if op == "none":
        session.pop(SELECTION, None)
        flash(_("The selection was cleared."))
        return redirect(_back())
    apply_ticks(shown, ticked)
    if op == "apply":
        flash(_("The selection was updated."))
        return redirect(_back())
    return run_bulk(op, form, current_selection())


def run_bulk(op: str, form: ListActionForm, selection: bulk.Selection) -> str:
    """Run the bulk action ``op`` on ``selection``; the result page (see the module)."""
    ctx = current_app.extensions["shomei"]
    party, s, now = signed_in_party(), db.session(), ctx.now()
    source = request.remote_addr
    if op == "issue":
        result = bulk.bulk_issue_request(s, party, selection, now=now, source_address=source)
        title = _("Issue request")
    elif op == "payment":
        paid_on, amount, payer = form.payment()
        result = bulk.bulk_register_payment(
            s,
            party,
            selection,
            paid_on=paid_on,
            amount_yen=amount,
            payer_name=payer,
            now=now,
            source_address=source,
        )
        title = _("Payment registration")
    elif op == "undo":
        result = bulk.bulk_undo_issue_request(s, party, selection, now=now, source_address=source)
        title = _("Withdraw issue request")
    else:
        raise MalformedInput(
            f"unknown action {op[:20]!r}", message_ja="操作の指定が正しくありません"
        )
    session.pop(SELECTION, None)
    return render_template(
        "console/list/result.html", result=result, title=title, back=_back(), lang=language()
    )


def content_disposition(stem: str, day: dt.date) -> str:
    """``attachment`` with an ASCII filename and the Japanese one (RFC 6266 ``filename*``)."""
    ascii_name = f"certificates-{day:%Y%m%d}.csv"
    # Windows forbids \\ / : * ? " < > | in file names: the stem uses none of them.
    japanese = quote(f"{stem}_{day:%Y%m%d}.csv", safe="")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{japanese}"


@blueprint.route("/csv")
def csv() -> Response:
    ctx = current_app.extensions["shomei"]
    search = filters_of(search_args(request.args))
    encoding = "utf-8-sig" if request.args.get("enc") == "utf-8" else "cp932"
    # The stream outlives the request's own session (committed before the body is sent):
    # it reads through a session of its own, closed when the download ends or is cut off.
    own = ctx.factory()
    try:
        stream = export.csv_stream(own, signed_in_party(), search, encoding=encoding)
    except BaseException:
        own.close()
        raise

    def body() -> Iterator[bytes]:
        try:
            yield from stream
        finally:
            own.close()

    charset = "Shift_JIS" if encoding == "cp932" else "utf-8"
    response = Response(body(), mimetype="text/csv")
    response.headers["Content-Type"] = f"text/csv; charset={charset}"
    response.headers["Content-Disposition"] = content_disposition(
        "証明書一覧", ctx.now().astimezone(JST).date()
    )
    return response
