"""連携 (/console/link): the RA↔CA link, the current CRL and the jobs (docs/product.md §8, §10).

Any console user sees the state (:func:`ra.desk.link_desk.overview`); the hand operations of
offline mode (download a request batch, upload a result batch or a CRL), "run now" and
re-request are checked by the services (:mod:`ra.desk.link_desk`, :mod:`ra.ca_link.recovery`),
which
refuse staff.  An upload that is not a verified file of our CA is refused with one Japanese
line and changes nothing; the same result file twice is imported once and says so.
"""

from __future__ import annotations

from flask import Response, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.wrappers import Response as BaseResponse

from ra.ca_link import recovery
from ra.desk import link_desk
from ra.party import Party, Permission, may
from ra.tasks.jobs import RUNS_KEPT
from ra.web import WebContext, db, text
from ra.web.console import console_blueprint, nav_item
from ra.web.forms import PlainForm
from ra.web.security import signed_in_party
from shomei.errors import MalformedInput

blueprint = console_blueprint("console_link", "/console/link")
nav_item("console_link.index", _l("CA link"), order=60)


class UploadForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    file = FileField(_l("File"), validators=[FileRequired()])


def _uploaded(form: UploadForm) -> bytes:
    # CSRFProtect has checked the token before the view: only the file can be missing.
    if not form.validate_on_submit():
        raise MalformedInput("no file was chosen", message_ja="ファイルが選択されていません")
    data: bytes = form.file.data.read()
    return data


def acting_party() -> Party:
    """The signed-in party, with the request's own transaction ended.

    The link, job and mail services open their own transactions (one per item, so one
    failure does not undo the others); the request's session has only read the account so
    far, and on SQLite, which allows one writer, it must not hold the database meanwhile.
    """
    party = signed_in_party()
    db.session().commit()
    return party


def _ctx() -> WebContext:
    found: WebContext = current_app.extensions["shomei"]
    return found


@blueprint.route("/")
def index() -> str:
    ctx = _ctx()
    party = signed_in_party()
    board = link_desk.overview(db.session(), party, ctx.settings, ctx.now())
    return render_template(
        "console/link/index.html",
        board=board,
        now=ctx.now(),
        runs_kept_days=RUNS_KEPT.days,
        may_manage=may(party, Permission.MANAGE_LINK),
        may_run=may(party, Permission.RUN_JOBS),
        may_rerequest=may(party, Permission.REREQUEST_ISSUANCE),
        upload=UploadForm(),
        plain=PlainForm(),
    )


@blueprint.route("/batches/<batch_id>/request")
def request_file(batch_id: str) -> Response:
    name, data = link_desk.request_file(db.session(), signed_in_party(), batch_id)
    return Response(
        data,
        mimetype="application/pkcs7-mime",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@blueprint.route("/result", methods=["POST"])
def upload_result() -> BaseResponse:
    ctx = _ctx()
    data = _uploaded(UploadForm())
    summary = link_desk.upload_result(
        ctx.factory, ctx.settings, acting_party(), data, now=ctx.now()
    )
    if summary.already_imported:
        flash(
            _(
                "This result of batch %(batch)s was imported before: nothing changed.",
                batch=summary.batch_id,
            )
        )
    else:
        flash(
            _(
                "Result of batch %(batch)s imported: %(issued)d issued, %(refused)d refused, "
                "%(abandoned)d abandoned by the CA.",
                batch=summary.batch_id,
                issued=summary.issued,
                refused=summary.refused,
                abandoned=summary.abandoned,
            )
        )
        if summary.crl_refused:
            refused = summary.crl_refused_ja if text.language() == "ja" else summary.crl_refused
            flash(_("The CRL of this result was refused: %(why)s", why=refused))
    return redirect(url_for(".index"))


@blueprint.route("/crl", methods=["POST"])
def upload_crl() -> BaseResponse:
    ctx = _ctx()
    data = _uploaded(UploadForm())
    result = link_desk.upload_crl(ctx.factory, ctx.settings, acting_party(), data, now=ctx.now())
    if result.registered:
        flash(
            _(
                "CRL number %(number)s registered: %(revoked)d application(s) now revoked.",
                number=result.number,
                revoked=len(result.revoked),
            )
        )
    else:
        flash(
            _("CRL number %(number)s was registered before: nothing changed.", number=result.number)
        )
    return redirect(url_for(".index"))


@blueprint.route("/jobs/<name>", methods=["POST"])
def run_job(name: str) -> BaseResponse:
    ctx = _ctx()
    outcome = link_desk.run_job(ctx.factory, ctx.settings, acting_party(), name, now=ctx.now())
    said = outcome.outcome_ja if text.language() == "ja" else outcome.outcome
    if outcome.ok:
        flash(_("Job %(name)s finished: %(outcome)s", name=name, outcome=said))
    else:
        flash(_("Job %(name)s needs attention: %(outcome)s", name=name, outcome=said))
    return redirect(url_for(".index"))


@blueprint.route("/batches/<batch_id>/rerequest", methods=["POST"])
def rerequest(batch_id: str) -> BaseResponse:
    ctx = _ctx()
    done = recovery.rerequest_batch(ctx.factory, acting_party(), batch_id, now=ctx.now())
    flash(
        _(
            "%(count)d application(s) of batch %(batch)s will be sent to the CA again.",
            count=len(done.applications),
            batch=batch_id,
        )
    )
    return redirect(url_for(".index"))
