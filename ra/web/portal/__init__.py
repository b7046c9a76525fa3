"""The office and agent portal (事業所・代理人 画面): offices and agents only.

An :class:`~ra.web.area.Area` like the console: each screen is a module of this package that
defines ``blueprint`` with :func:`portal_blueprint` (``/portal/<area>``) and its menu entry with
:func:`nav_item`. Every view is behind :func:`_gate`: an anonymous visitor is sent to the
portal's sign-in page (:mod:`ra.web.portal_auth`), a signed-in account that is not an office or
an agent gets 403 (:func:`ra.web.security.require_portal_account`, one place). What a view may
do beyond entering, and on which application, is decided by the services (:mod:`ra.party`: an
office never reaches another office's application, it is not found).  An office or agent
that has not finished its first sign-in (:mod:`ra.people.first_sign_in`) is sent to those
pages (:mod:`ra.web.portal.first_sign_in`) from every other page of the portal.
"""

from __future__ import annotations

from flask import current_app, redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ra.party import Party, Permission, may
from ra.people import first_sign_in
from ra.web.area import Area
from ra.web.security import require_portal_account, signed_in_account

FIRST_SIGN_IN = "portal_first"  # the blueprint of the first sign-in's pages


def first_sign_in_pending() -> bool:
    """Whether the signed-in office or agent still has steps of its first sign-in to do."""
    account = signed_in_account()
    if account is None:
        return False
    return bool(first_sign_in.steps_left(account, current_app.extensions["shomei"].settings.signin))


def _gate() -> BaseResponse | None:
    if not current_user.is_authenticated:
        return redirect(url_for("portal_auth.sign_in", next=request.full_path.rstrip("?")))
    require_portal_account()
    # Until the first sign-in is done (docs/office-guide.md), its pages are the only ones.
    if request.blueprint != FIRST_SIGN_IN and first_sign_in_pending():
        return redirect(url_for(f"{FIRST_SIGN_IN}.index"))
    return None


def _belongs(party: Party) -> bool:
    return may(party, Permission.VIEW_OWN_APPLICATIONS)


AREA = Area(__name__, __path__, _gate, _belongs)
portal_blueprint = AREA.blueprint
nav_item = AREA.nav_item
menu = AREA.menu
blueprints = AREA.blueprints
