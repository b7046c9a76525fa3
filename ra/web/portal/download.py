"""証明書ダウンロード (A5): the issued certificate, with the issuance password.

``/portal/applications/<id>/download`` (``portal_download.form``) asks for the issuance
password and the encryption (AES by default; the legacy 3DES for old Windows) and posts to
``.../download/pkcs12``, which answers with the PKCS#12 file
(:func:`ra.workflow.downloads.download_pkcs12`: the key, the certificate and the CA chain under
the password in its printed form).  An office that brought its own CSR (the RA holds no key)
gets its certificate with the chain as PEM or as ``.p7b`` instead (``.../download/certificate``).
The file is named after the office (RFC 6266 ``filename*``, RFC 5987 UTF-8) with an ASCII
fallback for older browsers, both safe on Windows and macOS
(:func:`ra.workflow.downloads.download_names`).  Every download is audited by the service; a
revoked, being-revoked or expired certificate is refused by the service with one line (409),
which this page shows instead of the form.  ``/portal/install/<platform>`` explains the
installation step by step (:mod:`ra.web.portal.install`).
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, current_app, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, SelectChoice
from wtforms.validators import DataRequired, Length

from ra.ca_link.identity import load_ca_chain
from ra.crypto import pkcs12
from ra.people.passwords import WrongPassword
from ra.web import WebContext, db, errors, text
from ra.web.forms import PlainForm
from ra.web.portal import portal_blueprint
from ra.web.security import signed_in_party
from ra.workflow import downloads, inquiry
from shomei.errors import Conflict, MalformedInput, ShomeiError

blueprint = portal_blueprint("portal_download", "/portal/applications")

MEDIA_TYPES = {
    "p12": "application/x-pkcs12",
    "pem": "application/x-pem-file",
    "p7b": "application/x-pkcs7-certificates",
}


class DownloadForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF is untyped
    """The PKCS#12 download: the issuance password and the encryption."""

    issuance_password = PasswordField(
        _l("Issuance password"), validators=[DataRequired(), Length(max=200)]
    )
    encryption = RadioField(
        _l("Encryption of the file"),
        choices=[
            SelectChoice("aes", _l("Standard (AES): Windows 10 and 11, macOS, Firefox")),
            SelectChoice(
                "legacy", _l("Older method (3DES): only when an older Windows cannot read the file")
            ),
        ],
        default="aes",
        validators=[DataRequired()],
    )


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


def _page(
    application_id: int,
    *,
    form: DownloadForm | None = None,
    problem: str | None = None,
    status: int = 200,
) -> tuple[str, int]:
    ctx = _ctx()
    session, party = db.session(), signed_in_party()
    view = inquiry.application_status(
        session, party, application_id, settings=ctx.settings, now=ctx.now()
    )
    refused = view.download_refused
    if refused is not None and status == 200:
        status = errors.status_of(refused)  # 409: the page says why instead of a form
    if form is None:
        form = DownloadForm()
        form.encryption.data = ctx.settings.pkcs12_encryption
    return render_template(
        "portal/download/form.html",
        a=view,
        file_name=downloads.file_names(session, party, application_id, "p12")[0],
        form=form,
        plain=PlainForm(),
        refused=refused.localized(text.language()) if refused is not None else None,
        problem=problem,
    ), status


@blueprint.route("/<int:application_id>/download")
def form(application_id: int) -> tuple[str, int]:
    return _page(application_id)


def _attachment(data: bytes, own: str, ascii_name: str, suffix: str) -> Response:
    """The file as an attachment: the ASCII name, and the office's own name (RFC 5987)."""
    response = Response(data, mimetype=MEDIA_TYPES[suffix])
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(own, safe='')}"
    )
    return response


def _refused(application_id: int, error: ShomeiError, form: DownloadForm | None) -> tuple[str, int]:
    """Nothing of the request is kept; the page again, with the error's one line."""
    db.session().rollback()
    db.roll_back_this_request()
    return _page(
        application_id,
        form=form,
        problem=error.localized(text.language()),
        status=errors.status_of(error),
    )


@blueprint.route("/<int:application_id>/download/pkcs12", methods=["POST"])
def pkcs12_file(application_id: int) -> Response | tuple[str, int]:
    ctx = _ctx()
    session = db.session()
    party = signed_in_party()
    # The application first: another office's is "not found" whatever was sent.
    inquiry.application_status(session, party, application_id, settings=ctx.settings, now=ctx.now())
    sent = DownloadForm()
    if not sent.validate_on_submit():
        problems = [f"{sent[f].label.text}: {e}" for f, es in sent.errors.items() for e in es]
        return _page(application_id, form=sent, problem="\n".join(problems), status=400)
    encryption: pkcs12.Encryption = "legacy" if sent.encryption.data == "legacy" else "aes"
    try:
        data = downloads.download_pkcs12(
            session,
            party,
            application_id,
            issuance_password=sent.issuance_password.data or "",
            chain=load_ca_chain(ctx.settings.link),
            now=ctx.now(),
            encryption=encryption,
            source_address=request.remote_addr,
        )
    except (Conflict, MalformedInput, WrongPassword) as error:
        sent.issuance_password.data = ""
        return _refused(application_id, error, sent)
    own, ascii_name = downloads.file_names(session, party, application_id, "p12")
    return _attachment(data, own, ascii_name, "p12")


@blueprint.route("/<int:application_id>/download/certificate", methods=["POST"])
def certificate_file(application_id: int) -> Response | tuple[str, int]:
    ctx = _ctx()
    session = db.session()
    party = signed_in_party()
    inquiry.application_status(session, party, application_id, settings=ctx.settings, now=ctx.now())
    sent = PlainForm()
    if not sent.validate_on_submit():
        return _page(application_id, status=400)
    form_name = request.form.get("format", "")
    try:
        data = downloads.download_certificate(
            session,
            party,
            application_id,
            chain=load_ca_chain(ctx.settings.link),
            now=ctx.now(),
            form=form_name,
            source_address=request.remote_addr,
        )
    except (Conflict, MalformedInput) as error:
        return _refused(application_id, error, None)
    own, ascii_name = downloads.file_names(session, party, application_id, form_name)
    return _attachment(data, own, ascii_name, form_name)
