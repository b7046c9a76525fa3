"""The office and agent portal (事業所・代理人 画面): offices and agents only.

An :class:`~ra.web.area.Area` like the console: each screen is a module of this package that
defines ``blueprint`` with :func:`portal_blueprint` (``/portal/<area>``) and its menu entry with
:func:`nav_item`. Every view is behind :func:`_gate`: an anonymous visitor is sent to the
portal's sign-in page (:mod:`ra.web.portal_auth`), a signed-in account that is not an office or
an agent gets 403 (:func:`ra.web.security.require_portal_account`, one place). What a view may
do beyond entering, and on which application, is decided by the services (:mod:`ra.party`: an
office never reaches another office's application, it is not found).
"""

from __future__ import annotations

from flask import redirect, request, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ra.party import Party, Permission, may
from ra.web.area import Area
from ra.web.security import require_portal_account


def _gate() -> BaseResponse | None:
    if not current_user.is_authenticated:
        return redirect(url_for("portal_auth.sign_in", next=request.full_path.rstrip("?")))
    require_portal_account()
    return None


def _belongs(party: Party) -> bool:
    return may(party, Permission.VIEW_OWN_APPLICATIONS)


AREA = Area(__name__, __path__, _gate, _belongs)
portal_blueprint = AREA.blueprint
nav_item = AREA.nav_item
menu = AREA.menu
blueprints = AREA.blueprints
