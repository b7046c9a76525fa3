"""The demo mailbox (デモ用メールボックス): the mails the demo's SMTP sink received.

Only in the running demo (``make run``): its settings name the sink's folder
(``[ra.web] demo_mailbox``), where each mail the RA sent is a ``.eml`` file.  Without that
setting the screen does not exist (404) and its menu entry is hidden.  Admins only, like the
audit log: the mails carry the applicants' names and addresses.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

from flask import abort, current_app, render_template
from flask_babel import lazy_gettext as _l

from ra.party import Party, Permission, require
from ra.web.console import console_blueprint, nav_item
from ra.web.security import signed_in_party

blueprint = console_blueprint("console_mailbox", "/console/mailbox")
NAME = re.compile(r"^[0-9]{8}T[0-9]{12}Z-[0-9a-f]{8}\.eml$")  # what demo.mailbox writes
MAX_LISTED = 500
MAX_BYTES = 1 << 20  # a mail the RA sends is a few KB; never read a huge file into a page


@dataclass(frozen=True)
class Mail:
    name: str
    received: dt.datetime
    sender: str
    to: str
    subject: str
    body: str


def _folder() -> Path | None:
    folder: Path | None = current_app.extensions["shomei"].settings.web.demo_mailbox
    return folder


def _shown() -> bool:
    return _folder() is not None


nav_item(
    "console_mailbox.index",
    _l("Demo mailbox"),
    order=90,
    permission=Permission.VIEW_AUDIT,
    shown=_shown,
)


def _received(name: str) -> dt.datetime:
    return dt.datetime.strptime(name[:22], "%Y%m%dT%H%M%S%fZ").replace(tzinfo=dt.UTC)


def _read(path: Path) -> Mail | None:
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        data = path.read_bytes()
    except OSError:  # removed meanwhile, or unreadable: not a mail to show
        return None
    message = email.message_from_bytes(data, policy=email.policy.default)
    body = ""
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain",))
        if part is not None:
            try:
                body = str(part.get_content())
            except (LookupError, ValueError):  # an unknown charset: show the mail without it
                body = ""
    return Mail(
        name=path.name,
        received=_received(path.name),
        sender=str(message.get("From", "")),
        to=str(message.get("To", "")),
        subject=str(message.get("Subject", "")),
        body=body,
    )


def list_mails(party: Party, folder: Path) -> list[Mail]:
    """The newest :data:`MAX_LISTED` mails of ``folder``, newest first (admins only)."""
    require(party, Permission.VIEW_AUDIT)
    if not folder.is_dir():
        return []
    names = sorted((p.name for p in folder.iterdir() if NAME.match(p.name)), reverse=True)
    found = (_read(folder / name) for name in names[:MAX_LISTED])
    return [mail for mail in found if mail is not None]


def get_mail(party: Party, folder: Path, name: str) -> Mail | None:
    """The mail ``name`` of ``folder`` (admins only); None if there is no such mail."""
    require(party, Permission.VIEW_AUDIT)
    if not NAME.match(name):  # a file name of the sink's own form only: no path ever
        return None
    return _read(folder / name)


@blueprint.route("/")
def index() -> str:
    folder = _folder()
    if folder is None:
        abort(404)
    mails = list_mails(signed_in_party(), folder)
    return render_template("console/mailbox/index.html", mails=mails, limit=MAX_LISTED)


@blueprint.route("/<name>")
def show(name: str) -> str:
    folder = _folder()
    if folder is None:
        abort(404)
    mail = get_mail(signed_in_party(), folder, name)
    if mail is None:
        abort(404)
    return render_template("console/mailbox/show.html", mail=mail)
