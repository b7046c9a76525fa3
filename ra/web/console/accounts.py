"""事業所管理: offices and agents — search, create, CSV import, letters, resets, reminders.

Screens (``/console/accounts``), staff and admins (the services check
:attr:`~ra.party.Permission.MANAGE_PORTAL_ACCOUNTS`):

* the list: search by user ID prefix, office or agent number prefix, or name; accounts that
  have not signed in within three days of creation are highlighted (:mod:`ra.people.account_admin`);
* a new account (:func:`ra.people.accounts.add_portal_account`);
* a CSV upload (:mod:`ra.people.csvimport`).  The file is kept server-side under
  ``<data_dir>/uploads/<token>.csv`` (the token is random and also stored in the signed
  session, so only the session that uploaded it can import it) and the preview shows every
  row and every problem; "create all" re-reads that file, checks it again and queues its rows
  as a background import run (:mod:`ra.people.import_runs`: the scheduler process hashes the
  passwords and creates all accounts or none; a file of :data:`~ra.people.import_runs.SMALL`
  rows or fewer is run at once, in the request, by the same code).  The run's page shows its
  progress, reloading itself (``<meta http-equiv="refresh">``, no script), and when it is done
  the letters.  Nothing of the file travels in a form field;
* an account's page: reset the issuance password (the phone path of A7) or the login password
  (also the phone path of a forgotten password without a confirmed mail address), remove a
  lost authenticator app, lift a lockout, disable, send the sign-in reminder.  The resets,
  the removal and disabling ask first (:mod:`ra.web.confirm`: a page saying what will happen,
  実行 or キャンセル).

Passwords exist in clear only in the request (or the import run) that makes them.  The letters
that carry them are sealed for a few minutes for the PDF download (:mod:`ra.web.letter_drop`),
for the staff member who made them, then gone.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any

from flask import Response, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.wrappers import Response as BaseResponse
from wtforms import SelectChoice, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from ra.mailing import notices, texts
from ra.party import Permission
from ra.people import account_admin, accounts, auth, csvimport, import_runs
from ra.store import letter_drops
from ra.store.models import Account, AccountKind, ImportStatus
from ra.web import WebContext, confirm, db, letter_drop, text
from ra.web.console import console_blueprint, nav_item
from ra.web.forms import PlainForm
from ra.web.notice_kinds import kind_label
from ra.web.security import signed_in_account, signed_in_party
from shomei.errors import MalformedInput, NotFound, StorageError

blueprint = console_blueprint("console_accounts", "/console/accounts")
nav_item(
    "console_accounts.index",
    _l("Offices and agents"),
    order=40,
    permission=Permission.MANAGE_PORTAL_ACCOUNTS,
)

UPLOAD_TOKEN = re.compile(r"[0-9a-f]{32}")
UPLOAD_SESSION_KEY = "csv_upload"
UPLOAD_KEPT_SECONDS = 3600  # an upload nobody imported is deleted after an hour
REFRESH_SECONDS = 3  # an import run's page reloads itself this often while it runs


class AccountForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    kind = SelectField(
        _l("Kind"),
        choices=[SelectChoice("office", _l("Office")), SelectChoice("agent", _l("Agent"))],
        validators=[DataRequired()],
    )
    number = StringField(_l("Office or agent number (10 digits)"), validators=[DataRequired()])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=64)])
    name_kana = StringField(_l("Name in kana (optional)"), validators=[Optional(), Length(max=100)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=8)])
    address = StringField(_l("Address"), validators=[DataRequired(), Length(max=300)])
    phone = StringField(_l("Phone"), validators=[DataRequired(), Length(max=20)])
    representative_number = StringField(
        _l("Representative number"), validators=[Optional(), Length(max=20)]
    )
    email = StringField(_l("Mail address"), validators=[DataRequired(), Length(max=254)])
    submit = SubmitField(_l("Create the account"))


class UploadForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    file = FileField(_l("CSV file (UTF-8 or Shift_JIS)"), validators=[FileRequired()])
    submit = SubmitField(_l("Check the file"))


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _owner() -> int:
    account = signed_in_account()
    if account is None:  # pragma: no cover - the console's gate has sent it to sign in
        raise NotFound("not signed in", message_ja="サインインしていません")
    return account.id


def portal_url() -> str:
    """Where letters and reminder mails send offices: the portal's sign-in, not the site's root
    (which answers nothing: the console and the portal have their own paths)."""
    return texts.portal_url(_ctx().settings)


def _page(account: Account, **passwords: str) -> dict[str, Any]:
    return letter_drops.account_page(account, **passwords)


def _drop(kind: str, pages: list[dict[str, Any]]) -> BaseResponse:
    ctx = _ctx()
    letter_drop.issuer(ctx.settings)  # refuse now, not at the download, if it cannot print
    token = letter_drop.put(
        ctx.settings.data_dir, ctx.vault, owner=_owner(), kind=kind, pages=pages, now=ctx.now()
    )
    return redirect(url_for(".letters", token=token))


@blueprint.route("/")
def index() -> str:
    ctx = _ctx()
    query = request.args.get("q", "")[:100]
    overdue = request.args.get("overdue") == "1"
    rows, more = account_admin.search(
        db.session(), signed_in_party(), query, now=ctx.now(), overdue_only=overdue
    )
    return render_template(
        "console/accounts/index.html",
        rows=rows,
        more=more,
        query=query,
        overdue=overdue,
        limit=account_admin.SEARCH_LIMIT,
        reminder_days=account_admin.REMINDER_AFTER.days,
        form=PlainForm(),
    )


@blueprint.route("/new", methods=["GET", "POST"])
def new() -> tuple[str, int] | BaseResponse:
    form = AccountForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        return render_template("console/accounts/new.html", form=form, problems=[]), status
    data = accounts.AccountInput(
        kind=AccountKind(form.kind.data),
        number=(form.number.data or "").strip(),
        name=(form.name.data or "").strip(),
        address=(form.address.data or "").strip(),
        phone=(form.phone.data or "").strip(),
        email=(form.email.data or "").strip(),
        representative_number=(form.representative_number.data or "").strip(),
        postal_code=(form.postal_code.data or "").strip(),
        name_kana=(form.name_kana.data or "").strip(),
    )
    ctx = _ctx()
    try:
        created = accounts.add_portal_account(
            db.session(), signed_in_party(), data, now=ctx.now(), source_address=request.remote_addr
        )
    except MalformedInput as exc:
        db.roll_back_this_request()
        lang = text.language()
        found = exc.fields.get("problems") or []
        shown = [p.message_ja if lang == "ja" else p.message for p in found]
        return render_template(
            "console/accounts/new.html", form=form, problems=shown or [exc.localized(lang)]
        ), 400
    return _drop(
        "accounts",
        [
            _page(
                created.account,
                login_password=created.login_password,
                issuance_password=created.issuance_password or "",
            )
        ],
    )


def _uploads() -> Path:
    return _ctx().settings.data_dir / "uploads"


def _purge_uploads(folder: Path) -> None:
    oldest = _ctx().now().timestamp() - UPLOAD_KEPT_SECONDS
    for path in folder.glob("*.csv"):
        try:
            if path.stat().st_mtime < oldest:
                path.unlink()
        except FileNotFoundError:
            continue  # another worker removed it first


def _upload_path(token: str) -> Path:
    # Only the session that uploaded the file may see or import it.
    if not UPLOAD_TOKEN.fullmatch(token) or session.get(UPLOAD_SESSION_KEY) != token:
        raise NotFound(
            "this upload is not available (upload the file again)",
            message_ja="このアップロードは見つかりません。ファイルをもう一度アップロードしてください",
        )
    path = _uploads() / f"{token}.csv"
    if not path.is_file():
        raise NotFound(
            "this upload is not available (upload the file again)",
            message_ja="このアップロードは見つかりません。ファイルをもう一度アップロードしてください",
        )
    return path


@blueprint.route("/import", methods=["GET", "POST"])
def upload() -> tuple[str, int] | BaseResponse:
    form = UploadForm()
    if not form.validate_on_submit():
        status = 400 if request.method == "POST" else 200
        runs = import_runs.recent(db.session(), signed_in_party())
        return render_template("console/accounts/upload.html", form=form, runs=runs), status
    data = form.file.data.read(csvimport.MAX_BYTES + 1)
    folder = _uploads()
    token = secrets.token_hex(16)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _purge_uploads(folder)
        fd = os.open(folder / f"{token}.csv", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
    except OSError as exc:
        raise StorageError(
            f"cannot keep the upload in {folder}: {exc.strerror}",
            message_ja=f"アップロードしたファイルを {folder} に保存できません",
        ) from exc
    session[UPLOAD_SESSION_KEY] = token
    return redirect(url_for(".preview", token=token))


def _raw_rows(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and every non-empty row of the file as typed, with its line number."""
    reader = csv.reader(io.StringIO(csvimport.decode(data), newline=""))
    header: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            if not header:
                header = cells
            elif any(cell.strip() for cell in cells):
                rows.append((reader.line_num, cells))
    except csv.Error:
        pass  # csvimport.check names the line that cannot be read
    return header, rows


@blueprint.route("/import/<token>", methods=["GET"])
def preview(token: str) -> tuple[str, int]:
    data = _upload_path(token).read_bytes()
    lang = text.language()
    problems: list[csvimport.RowProblem] = []
    failure: str | None = None
    try:
        csvimport.check(db.session(), signed_in_party(), data)
    except csvimport.ImportRefused as exc:
        problems = exc.problems
    except MalformedInput as exc:
        failure = exc.localized(lang)
    header, rows = _safe_rows(data)
    by_line: dict[int, list[str]] = {}
    for problem in problems:
        # The Japanese message names its field itself; the column key is for the English page.
        by_line.setdefault(problem.row, []).append(
            problem.message_ja if lang == "ja" else f"{problem.column}: {problem.message}"
        )
    return render_template(
        "console/accounts/preview.html",
        token=token,
        header=header,
        rows=rows,
        by_line=by_line,
        problem_count=len(problems),
        failure=failure,
        form=PlainForm(),
    ), (200 if not problems and not failure else 422)


def _safe_rows(data: bytes) -> tuple[list[str], list[tuple[int, list[str]]]]:
    try:
        return _raw_rows(data)
    except MalformedInput:
        return [], []


@blueprint.route("/import/<token>", methods=["POST"])
def import_file(token: str) -> BaseResponse:
    """Create all: queue the checked rows as a background run (a small file runs at once)."""
    PlainForm()  # CSRFProtect has checked the token already
    path = _upload_path(token)
    ctx = _ctx()
    letter_drop.issuer(ctx.settings)  # refuse now, not after the hashing, if it cannot print
    run = import_runs.start(
        db.session(),
        signed_in_party(),
        path.read_bytes(),
        now=ctx.now(),
        source_address=request.remote_addr,
    )
    db.session().commit()  # queued; on SQLite the worker below must be able to write
    path.unlink(missing_ok=True)
    session.pop(UPLOAD_SESSION_KEY, None)
    if run.total <= import_runs.SMALL:
        import_runs.work(
            ctx.factory,
            holder=f"web:{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}",
            vault=ctx.vault,
            data_dir=ctx.settings.data_dir,
            clock=ctx.now,
            lease=ctx.settings.schedule.lock_lease,
            run_id=run.id,
        )
        done = import_runs.get(db.session(), signed_in_party(), run.id)
        if done.status is ImportStatus.DONE and done.letters_token:
            flash(_("%(count)d accounts were created.", count=done.total))
            return redirect(url_for(".letters", token=done.letters_token))
    return redirect(url_for(".import_run", run_id=run.id))


@blueprint.route("/imports/<int:run_id>")
def import_run(run_id: int) -> str:
    """A background import: progress while it runs, then its letters or why it failed."""
    ctx = _ctx()
    run = import_runs.get(db.session(), signed_in_party(), run_id)
    expires = None
    if run.letters_token:
        try:
            drop = letter_drop.get(
                ctx.settings.data_dir, ctx.vault, run.letters_token, owner=_owner(), now=ctx.now()
            )
        except NotFound:
            pass  # kept 15 minutes: the passwords are gone
        else:
            expires = drop.made_at + letter_drop.TTL
    return render_template(
        "console/accounts/import_run.html",
        run=run,
        expires=expires,
        refresh_seconds=REFRESH_SECONDS,
    )


@blueprint.route("/letters/<token>")
def letters(token: str) -> str:
    ctx = _ctx()
    drop = letter_drop.get(ctx.settings.data_dir, ctx.vault, token, owner=_owner(), now=ctx.now())
    return render_template(
        "console/accounts/letters.html",
        token=token,
        drop=drop,
        expires=drop.made_at + letter_drop.TTL,
    )


@blueprint.route("/letters/<token>.pdf")
def letters_pdf(token: str) -> Response:
    ctx = _ctx()
    drop = letter_drop.get(ctx.settings.data_dir, ctx.vault, token, owner=_owner(), now=ctx.now())
    pdf = letter_drop.render(
        drop, ctx.settings, portal_url=portal_url(), wareki=text.date_style() == "wareki"
    )
    name = f"letters-{drop.made_at.strftime('%Y%m%d-%H%M')}.pdf"
    return Response(
        pdf,
        mimetype="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@blueprint.route("/<user_id>")
def show(user_id: str) -> str:
    session = db.session()
    party = signed_in_party()
    row = account_admin.account_row(session, party, user_id, now=_ctx().now())
    portal = row.account.kind in account_admin.PORTAL_KINDS
    return render_template(
        "console/accounts/show.html",
        row=row,
        form=PlainForm(),
        reminder_days=account_admin.REMINDER_AFTER.days,
        # Which notices the office or agent was sent and whether it opened them.
        notices=notices.account_notices(session, party, row.account) if portal else None,
        notice_kind=kind_label,
    )


def _back(account: Account) -> BaseResponse:
    return redirect(url_for(".show", user_id=account.user_id))


def _who(account: Account) -> dict[str, str]:
    return {"name": account.name, "user_id": account.user_id}


def _ask(user_id: str, title: str, *consequences: str) -> str:
    """The confirmation page of an action on ``user_id`` (its permission checked first)."""
    row = account_admin.account_row(db.session(), signed_in_party(), user_id, now=_ctx().now())
    return confirm.page(
        title=title % _who(row.account),
        consequences=consequences,
        back=url_for(".show", user_id=row.account.user_id),
    )


@blueprint.route("/<user_id>/issuance-password", methods=["POST"])
def reset_issuance(user_id: str) -> str | BaseResponse:
    PlainForm()
    if not confirm.confirmed():
        return _ask(
            user_id,
            _("Reset the issuance password of %(name)s (%(user_id)s)?"),
            _("A new issuance password is made, with its letter to post."),
            _(
                "The current issuance password no longer works for new applications; "
                "certificates applied for before keep the password they were applied with."
            ),
        )
    ctx = _ctx()
    reissued = accounts.reset_issuance_password(
        db.session(),
        signed_in_party(),
        user_id,
        now=ctx.now(),
        federation_name=ctx.settings.federation_name,
        source_address=request.remote_addr,
    )
    flash(_("A new issuance password was issued. Print the letter and post it."))
    return _drop(
        "issuance", [_page(reissued.account, issuance_password=reissued.issuance_password)]
    )


@blueprint.route("/<user_id>/login-password", methods=["POST"])
def reset_login(user_id: str) -> str | BaseResponse:
    PlainForm()
    if not confirm.confirmed():
        return _ask(
            user_id,
            _("Reset the login password of %(name)s (%(user_id)s)?"),
            _("A new login password is made, with its letter to post."),
            _("The current login password stops working and the account's sessions end."),
            _("A lockout of the account is lifted."),
        )
    ctx = _ctx()
    party = signed_in_party()
    account = account_admin.account_row(db.session(), party, user_id, now=ctx.now()).account
    password = accounts.reset_login_password(
        db.session(), party, account.user_id, now=ctx.now(), source_address=request.remote_addr
    )
    flash(_("A new login password was set. Print the letter and post it."))
    return _drop("login", [_page(account, login_password=password)])


@blueprint.route("/<user_id>/totp", methods=["POST"])
def reset_totp(user_id: str) -> str | BaseResponse:
    PlainForm()
    if not confirm.confirmed():
        return _ask(
            user_id,
            _("Reset the authenticator of %(name)s (%(user_id)s)?"),
            _("Codes from the current authenticator app stop working, and the sessions end."),
            _("The account sets up a new authenticator app at its next sign-in."),
        )
    account = account_admin.reset_totp(
        db.session(),
        signed_in_party(),
        user_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    flash(
        _(
            "The authenticator app of %(user_id)s was removed: it sets up a new one at its "
            "next sign-in.",
            user_id=account.user_id,
        )
    )
    return _back(account)


@blueprint.route("/<user_id>/unlock", methods=["POST"])
def unlock(user_id: str) -> BaseResponse:
    PlainForm()
    account = auth.unlock(
        db.session(),
        signed_in_party(),
        user_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    flash(_("The lockout of %(user_id)s was lifted.", user_id=account.user_id))
    return _back(account)


@blueprint.route("/<user_id>/disable", methods=["POST"])
def disable(user_id: str) -> str | BaseResponse:
    PlainForm()
    if not confirm.confirmed():
        return _ask(user_id, _("Disable %(name)s (%(user_id)s)?"), *confirm.disabling())
    account = account_admin.disable(
        db.session(),
        signed_in_party(),
        user_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    flash(_("%(user_id)s was disabled: it can no longer sign in.", user_id=account.user_id))
    return _back(account)


@blueprint.route("/<user_id>/remind", methods=["POST"])
def remind(user_id: str) -> BaseResponse:
    PlainForm()
    ctx = _ctx()
    account = account_admin.remind(
        db.session(),
        signed_in_party(),
        user_id,
        now=ctx.now(),
        portal_url=portal_url(),
        federation_name=ctx.settings.federation_name,
        message_id_domain=ctx.settings.mail.message_id_domain,
        source_address=request.remote_addr,
    )
    flash(_("A reminder mail to %(user_id)s is queued.", user_id=account.user_id))
    return _back(account)
