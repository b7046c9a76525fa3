"""Mails someone is waiting for (a 6-digit code): sent once the response has left.

The outbox row is written in the request's transaction (committed before the response goes,
:mod:`ra.web.db`); :func:`after_response` then asks :func:`ra.mailing.mail.send_soon` to send
it when the response is closed, so the page does not wait for the SMTP server and takes the
same time whether a mail was written or not (the forgotten-password page must not tell).  A
mail that cannot go now stays in the outbox for the scheduled mail job.
"""

from __future__ import annotations

from collections.abc import Collection

from flask import Response, after_this_request, current_app

from ra.mailing import mail
from ra.web import WebContext


def after_response(mail_ids: Collection[int]) -> None:
    """Send the outbox mails ``mail_ids`` after this request's response is closed."""
    ids = list(mail_ids)
    if not ids:
        return
    ctx: WebContext = current_app.extensions["shomei"]

    @after_this_request
    def _send(response: Response) -> Response:
        response.call_on_close(
            lambda: mail.send_soon(ctx.factory, ctx.settings, ids, now=ctx.now())
        )
        return response
