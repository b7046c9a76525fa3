"""Who is signed in, for how long, and the headers every response carries.

Flask-Login keeps ``"<account id>:<session epoch>"`` in the signed session cookie.  The
account's epoch is raised when its password changes or it is disabled, so every session
carrying an older epoch is signed out on its next request; a disabled account is never
loaded.  A session unused for ``[ra.web] idle_timeout_minutes`` is signed out as well.

Every response gets the CSP (no inline script or style anywhere: every script and style is
a file of the package), ``nosniff``, ``Referrer-Policy: same-origin``, ``frame-ancestors
'none'``; HTML and anything else personal is ``Cache-Control: no-store``.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, flash, g, redirect, request, session, url_for
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, logout_user
from sqlalchemy import select
from werkzeug.wrappers import Response as BaseResponse

from ra.party import Party, Permission, may, party_of
from ra.store.models import Account
from ra.web import db
from shomei.errors import NotPermitted
from shomei.logs import REQUEST_ID

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)
SEEN = "seen"  # when the session was last used (epoch seconds)


class User(UserMixin):  # type: ignore[misc]  # Flask-Login is untyped
    """The signed-in account as Flask-Login sees it."""

    def __init__(self, account: Account) -> None:
        self.account = account

    def get_id(self) -> str:
        return f"{self.account.id}:{self.account.session_epoch}"


def load_user(user_id: str) -> User | None:
    """The account of a session, unless it was disabled or its epoch has moved on."""
    account_id, _sep, epoch = user_id.partition(":")
    if not (account_id.isdigit() and epoch.isdigit()):
        return None
    account = (
        db.session()
        .execute(select(Account).where(Account.id == int(account_id)))
        .scalar_one_or_none()
    )
    if account is None or not account.active or account.session_epoch != int(epoch):
        return None
    return User(account)


def signed_in_account() -> Account | None:
    """The account signed in for this request, or None."""
    user = current_user
    return user.account if isinstance(user, User) and user.is_authenticated else None


def signed_in_party() -> Party:
    """The party the signed-in account acts as (:func:`ra.party.party_of`), or
    :class:`NotPermitted` when no one is signed in or the account is disabled."""
    account = signed_in_account()
    if account is None:
        raise NotPermitted("not signed in", message_ja="サインインしていません")
    return party_of(account)


def require_console_account() -> Account:
    """The signed-in account if it may use the console, else :class:`NotPermitted`.

    The one place the console decides who may enter; the rule itself is ra.party's (the
    console is for those who may see every application).
    """
    party = signed_in_party()
    if not may(party, Permission.VIEW_ALL_APPLICATIONS):
        raise NotPermitted(
            "only federation staff can use the console",
            message_ja="この操作は連合会職員のみ行えます",
            actor=party.user_id,
        )
    account = signed_in_account()
    assert account is not None  # signed_in_party refused otherwise
    return account


def require_portal_account() -> Account:
    """The signed-in account if it is an office or an agent (the portal's people), else
    :class:`NotPermitted`; the one place the portal decides who may enter."""
    party = signed_in_party()
    if not may(party, Permission.VIEW_OWN_APPLICATIONS):
        raise NotPermitted(
            "only offices and agents can use the portal",
            message_ja="この画面は事業所・代理人の方のみ利用できます",
            actor=party.user_id,
        )
    account = signed_in_account()
    assert account is not None  # signed_in_party refused otherwise
    return account


def home_endpoint() -> str:
    """The endpoint of the signed-in party's home: the console's, or the portal's."""
    account = signed_in_account()
    if account is not None and may(party_of(account), Permission.VIEW_OWN_APPLICATIONS):
        return "portal_home.home"
    return "console.home"


def sign_in_endpoint(account: Account | None) -> str:
    """The sign-in page for ``account``'s kind (the staff's when unknown)."""
    if account is not None and may(party_of(account), Permission.VIEW_OWN_APPLICATIONS):
        return "portal_auth.sign_in"
    return "auth.sign_in"


def now_seconds() -> int:
    return int(current_app.extensions["shomei"].now().timestamp())


def start_session() -> None:
    """A new session for a sign-in: nothing of the session before it is kept."""
    keep = {k: session[k] for k in ("lang", "date_style") if k in session}
    session.clear()
    session.update(keep)
    session.permanent = True
    session[SEEN] = now_seconds()


def _before() -> BaseResponse | None:
    g.request_id = secrets.token_hex(6)
    REQUEST_ID.set(g.request_id)  # every log line of this request names it (shomei.logs)
    if request.endpoint == "static":
        return None
    seen = session.get(SEEN)
    idle = current_app.extensions["shomei"].settings.web.idle_timeout_minutes * 60
    now = now_seconds()
    active = "_user_id" in session or "pending" in session
    if active and isinstance(seen, int) and now - seen > idle:
        logout_user()
        keep = {k: session[k] for k in ("lang", "date_style") if k in session}
        session.clear()
        session.update(keep)
        flash(_("You were signed out after a time without activity. Please sign in again."))
        portal = request.path.startswith("/portal")
        return redirect(url_for("portal_auth.sign_in" if portal else "auth.sign_in"))
    if active:
        session[SEEN] = now
    return None


def _headers(response: Response) -> Response:
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    headers["X-Frame-Options"] = "DENY"
    headers["X-Request-Id"] = g.get("request_id", "-")
    if request.endpoint != "static" and request.blueprint != "publish":
        headers["Cache-Control"] = "no-store"  # the public CRL and CA files set their own
    return response


def init_app(app: Flask) -> None:
    app.before_request(_before)
    app.after_request(_headers)
