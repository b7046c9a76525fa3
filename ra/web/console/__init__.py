"""The federation console (連合会 管理画面): federation staff and admins only.

Each screen is a module of this package that defines ``blueprint`` with
:func:`console_blueprint` (``/console/<area>``); :func:`blueprints` finds them all, so a new
screen is one new module and its templates. Every view of every console blueprint is behind
:func:`_gate`: an anonymous visitor is sent to the sign-in page, a signed-in account that may
not use the console gets 403 (the rule is :func:`ra.web.security.require_console_account`, one
place). What a view may do beyond entering is decided by the services (:mod:`ra.party`).

Navigation: each screen registers its menu entry with :func:`nav_item`; the base template
shows the entries the signed-in party may use, in ``order``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from flask import Blueprint, current_app, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ra.party import Permission, may
from ra.web.security import require_console_account, signed_in_party


@dataclass(frozen=True)
class NavItem:
    """A menu entry: the endpoint it opens, its label (lazy, translated) and who sees it."""

    endpoint: str
    label: object  # a lazy string of Flask-Babel
    order: int
    permission: Permission | None
    # Whether this application shows the entry at all (e.g. by its settings); None: always.
    shown: Callable[[], bool] | None = None


_NAV: dict[str, NavItem] = {}


def nav_item(
    endpoint: str,
    label: object,
    *,
    order: int,
    permission: Permission | None = None,
    shown: Callable[[], bool] | None = None,
) -> None:
    """Show ``endpoint`` in the console menu (to those with ``permission``, if given).

    ``shown``, if given, is asked in the request: a screen that this application's settings
    leave out hides its entry by answering False.
    """
    _NAV[endpoint] = NavItem(endpoint, label, order, permission, shown)


def menu() -> list[tuple[str, object]]:
    """(URL, label) of the menu entries the signed-in party may use, in order."""
    if not current_user.is_authenticated:
        return []
    party = signed_in_party()
    if not may(party, Permission.VIEW_ALL_APPLICATIONS):
        return []  # not a console user: the console's menu is not theirs
    return [
        (url_for(item.endpoint), item.label)
        for item in sorted(_NAV.values(), key=lambda i: (i.order, i.endpoint))
        if (item.permission is None or may(party, item.permission))
        and (item.shown is None or item.shown())
    ]


def _gate() -> BaseResponse | None:
    if not current_user.is_authenticated:
        unauthorized: BaseResponse = current_app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return unauthorized
    require_console_account()
    return None


def console_blueprint(name: str, url_prefix: str) -> Blueprint:
    """A blueprint of the console: every view behind the console's gate."""
    blueprint = Blueprint(name, __name__, url_prefix=url_prefix)
    blueprint.before_request(_gate)
    return blueprint


def blueprints() -> Iterator[Blueprint]:
    """The blueprint of every screen module of this package."""
    for module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
        found = getattr(importlib.import_module(f"{__name__}.{module}"), "blueprint", None)
        if isinstance(found, Blueprint):
            yield found
