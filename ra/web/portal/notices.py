"""お知らせ (notices, A7 list): ``/portal/notices``, the office's or agent's own notices.

* the list: 通知種別, 件名, 情報年月日, 開封日; the unopened ones are marked, and the menu
  entry shows how many there are (:class:`UnreadLabel`);
* a notice's page: opening it records the first opening date (a plain notice), or, for a
  sealed notice, offers its file and says step by step how to open it with ``shomei notice
  open`` on Windows and macOS;
* the sealed notice's file (``.p7m``): downloading it records the first opening date.

Everything is read and recorded by :mod:`ra.mailing.notices` (the party's own notices only:
another account's notice is not found, 404).  The A7 reissue request is
:mod:`ra.web.portal.password_reissue`; the notices page carries its button too.
"""

from __future__ import annotations

from flask import Response, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from ra.mailing import notices
from ra.web import WebContext, db
from ra.web.forms import PlainForm
from ra.web.notice_kinds import kind_label
from ra.web.portal import nav_item, portal_blueprint
from ra.web.portal.password_reissue import reissue_offer
from ra.web.security import signed_in_party

blueprint = portal_blueprint("portal_notices", "/portal/notices")


class UnreadLabel:
    """The menu entry お知らせ with the number of unopened notices, read when it is shown."""

    def _count(self) -> int:
        return notices.unread_count(db.session(), signed_in_party())

    def __str__(self) -> str:
        count = self._count()
        label = str(_l("Notices"))
        return f"{label} ({count})" if count else label

    def __html__(self) -> Markup:
        count = self._count()
        label = str(_l("Notices"))
        if not count:
            return escape(label)
        unread = _("%(count)d unread", count=count)
        # Markup.format escapes both arguments.
        return Markup('{} <span class="portal-unread">{}</span>').format(label, unread)


nav_item("portal_notices.index", UnreadLabel(), order=50)


def _ctx() -> WebContext:
    ctx: WebContext = current_app.extensions["shomei"]
    return ctx


@blueprint.route("/")
def index() -> str:
    session = db.session()
    party = signed_in_party()
    lines = notices.own_notices(session, party)
    return render_template(
        "portal/notices/index.html",
        lines=lines,
        unread=sum(1 for n in lines if n.read_at is None),
        kind_label=kind_label,
        offer=reissue_offer(),
        form=PlainForm(),
    )


@blueprint.route("/<int:notice_id>")
def show(notice_id: int) -> str:
    notice = notices.read_notice(
        db.session(),
        signed_in_party(),
        notice_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    return render_template(
        "portal/notices/show.html",
        notice=notice,
        kind_label=kind_label,
        filename=notices.sealed_filename(notice.id) if notice.sealed is not None else None,
    )


@blueprint.route("/<int:notice_id>/download")
def download(notice_id: int) -> Response:
    sealed = notices.download_sealed(
        db.session(),
        signed_in_party(),
        notice_id,
        now=_ctx().now(),
        source_address=request.remote_addr,
    )
    return Response(
        sealed.data,
        content_type="application/pkcs7-mime; smime-type=authEnveloped-data",
        headers={"Content-Disposition": f'attachment; filename="{sealed.filename}"'},
    )
