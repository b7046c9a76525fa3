"""The federation console (連合会 管理画面): federation staff and admins only.

An :class:`~ra.web.area.Area`: each screen is a module of this package that defines
``blueprint`` with :func:`console_blueprint` (``/console/<area>``) and its menu entry with
:func:`nav_item`. Every view of every console blueprint is behind :func:`_gate`: an anonymous
visitor is sent to the staff sign-in page, a signed-in account that may not use the console
gets 403 (the rule is :func:`ra.web.security.require_console_account`, one place). What a view
may do beyond entering is decided by the services (:mod:`ra.party`).
"""

from __future__ import annotations

from flask import current_app
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ra.party import Party, Permission, may
from ra.web.area import Area
from ra.web.security import require_console_account


def _gate() -> BaseResponse | None:
    if not current_user.is_authenticated:
        unauthorized: BaseResponse = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return unauthorized
    require_console_account()
    return None


def _belongs(party: Party) -> bool:
    return may(party, Permission.VIEW_ALL_APPLICATIONS)


AREA = Area(__name__, __path__, _gate, _belongs)
console_blueprint = AREA.blueprint
nav_item = AREA.nav_item
menu = AREA.menu
blueprints = AREA.blueprints
