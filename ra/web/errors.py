"""The web edge's one error table: each kind of :mod:`shomei.errors` to an HTTP status.

Every error a view lets through is shown as a page in the reader's language with the error's
own message (``ShomeiError.localized``), the status of the table and the request id; the log
gets the cause with the same request id, and a traceback is never shown.  The request's
database work is rolled back, except after a failed sign-in (its counters and audit records
are the point).  404, 405 and a missing or stale CSRF token (400) get pages too.
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, render_template
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ra.web import db, text
from ra.web.api import problems
from shomei.errors import (
    AlreadyExists,
    AuthenticationFailed,
    Conflict,
    DatabaseFailure,
    LockedOut,
    MalformedInput,
    NotFound,
    NotPermitted,
    Refused,
    ShomeiError,
    StateError,
    StorageError,
    Undecided,
    VerificationFailed,
)

log = logging.getLogger("shomei.ra.web")

# The most specific kind in an error's class hierarchy decides (AlreadyExists before
# Conflict before Refused).
STATUS: dict[type[ShomeiError], int] = {
    MalformedInput: 400,
    AuthenticationFailed: 401,
    NotPermitted: 403,
    NotFound: 404,
    AlreadyExists: 409,
    Conflict: 409,
    LockedOut: 423,
    Refused: 422,
    Undecided: 422,
    VerificationFailed: 422,
    DatabaseFailure: 503,
    StorageError: 503,
    StateError: 503,
}
# Errors whose database writes are kept: the failure itself is recorded.
KEEP_WRITES = (AuthenticationFailed, LockedOut)


def status_of(error: BaseException) -> int:
    """The HTTP status of ``error`` after the table (500 for anything not in it)."""
    for cls in type(error).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def _page(status: int, message: str) -> tuple[str, int]:
    return render_template(
        "error.html", status=status, message=message, request_id=g.get("request_id", "-")
    ), status


def _shomei_error(error: ShomeiError) -> tuple[str, int] | Response:
    status = status_of(error)
    if not isinstance(error, KEEP_WRITES):
        db.roll_back_this_request()
    level = logging.ERROR if status >= 500 else logging.INFO
    log.log(
        level,
        "request %s: %s %s",
        g.get("request_id", "-"),
        error.code,
        error.message,
        exc_info=error if status >= 500 else None,
    )
    if problems.is_api_request():
        return problems.from_error(error, status)
    return _page(status, error.localized(text.language()))


def _unexpected(error: Exception) -> tuple[str, int] | Response:
    if isinstance(error, HTTPException):
        return _http(error)
    db.roll_back_this_request()
    log.error("request %s: unexpected error", g.get("request_id", "-"), exc_info=error)
    if problems.is_api_request():
        return problems.unexpected()
    return _page(500, _("Something went wrong on our side. Please try again later."))


def _http(error: HTTPException) -> tuple[str, int] | Response:
    db.roll_back_this_request()
    if problems.is_api_request():
        return problems.from_http(error)
    status = error.code or 500
    messages = {
        400: _("The request could not be understood."),
        404: _("This page does not exist."),
        405: _("This page cannot be used that way."),
        413: _("The file is too large."),
    }
    return _page(status, messages.get(status, _("The request could not be handled.")))


def _csrf(error: CSRFError) -> tuple[str, int]:
    db.roll_back_this_request()
    log.info("request %s: CSRF check failed: %s", g.get("request_id", "-"), error.description)
    return _page(
        400,
        _(
            "The form had expired or did not come from this site. "
            "Please open the page again and resend it."
        ),
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf)
    app.register_error_handler(ShomeiError, _shomei_error)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
