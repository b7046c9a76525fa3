"""One SQLAlchemy session per request, opened when a view first asks for it.

The work of a request is committed once its response is ready and rolled back otherwise: a
view that raised, or an error page (:mod:`ra.web.errors` marks those, except for sign-in
failures, whose counters and audit records must be kept).  The commit runs before the
response leaves (an ``after_request`` hook) so that a failed commit becomes an error page
instead of a page that claims success; the session is closed at teardown, rolled back if it
was not committed.
"""

from __future__ import annotations

from typing import cast

from flask import Flask, Response, current_app, g
from sqlalchemy.orm import Session

ROLLBACK = "db_rollback"


def session() -> Session:
    """The request's database session (opened on first use)."""
    if "db" not in g:
        factory = current_app.extensions["shomei"].factory
        g.db = factory()
    return cast(Session, g.db)


def roll_back_this_request() -> None:
    """Mark the request's work to be rolled back (an error page is being shown)."""
    setattr(g, ROLLBACK, True)


def _commit(response: Response) -> Response:
    db = g.get("db")
    if db is not None:
        if g.get(ROLLBACK):
            db.rollback()
        else:
            db.commit()
    return response


def _close(exc: BaseException | None) -> None:
    db = g.pop("db", None)
    if db is not None:
        try:
            if exc is not None or g.get(ROLLBACK) or db.in_transaction():
                db.rollback()
        finally:
            db.close()


def init_app(app: Flask) -> None:
    app.after_request(_commit)
    app.teardown_request(_close)
