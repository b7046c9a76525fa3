"""An area of the web application: the console or the portal.

An area is a package whose every module may define a ``blueprint`` (one screen, made with
:meth:`Area.blueprint` so every view is behind the area's gate); :meth:`Area.blueprints` finds
them all, so a new screen is one new module and its templates.  Each screen registers its menu
entry with :meth:`Area.nav_item`; the base template shows the entries of the area the signed-in
party belongs to (:meth:`Area.menu`), those it may use, in ``order``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from flask import Blueprint, url_for
from flask_login import current_user
from werkzeug.wrappers import Response as BaseResponse

from ra.party import Party, Permission, may
from ra.web.security import signed_in_party


@dataclass(frozen=True)
class NavItem:
    """A menu entry: the endpoint it opens, its label (lazy, translated) and who sees it."""

    endpoint: str
    label: object  # a lazy string of Flask-Babel
    order: int
    permission: Permission | None
    # Whether this application shows the entry at all (e.g. by its settings); None: always.
    shown: Callable[[], bool] | None = None


@dataclass
class Area:
    """One area: its package (where its screens live), its gate and who belongs to it."""

    package: str  # the dotted name of the package holding the screen modules
    path: Iterable[str]  # the package's __path__
    gate: Callable[[], BaseResponse | None]  # run before every view of the area
    belongs: Callable[[Party], bool]  # whether the party is one of this area's people
    _nav: dict[str, NavItem] = field(default_factory=dict)

    def nav_item(
        self,
        endpoint: str,
        label: object,
        *,
        order: int,
        permission: Permission | None = None,
        shown: Callable[[], bool] | None = None,
    ) -> None:
        """Show ``endpoint`` in the area's menu (to those with ``permission``, if given).

        ``shown``, if given, is asked in the request: a screen that this application's
        settings leave out hides its entry by answering False.
        """
        self._nav[endpoint] = NavItem(endpoint, label, order, permission, shown)

    def menu(self) -> list[tuple[str, object]]:
        """(URL, label) of the entries the signed-in party may use, in order; [] for others."""
        if not current_user.is_authenticated:
            return []
        party = signed_in_party()
        if not self.belongs(party):
            return []
        return [
            (url_for(item.endpoint), item.label)
            for item in sorted(self._nav.values(), key=lambda i: (i.order, i.endpoint))
            if (item.permission is None or may(party, item.permission))
            and (item.shown is None or item.shown())
        ]

    def blueprint(self, name: str, url_prefix: str) -> Blueprint:
        """A blueprint of this area: every view behind the area's gate."""
        blueprint = Blueprint(name, self.package, url_prefix=url_prefix)
        blueprint.before_request(self.gate)
        return blueprint

    def blueprints(self) -> Iterator[Blueprint]:
        """The blueprint of every screen module of the area's package."""
        for module in sorted(m.name for m in pkgutil.iter_modules(self.path)):
            found = getattr(importlib.import_module(f"{self.package}.{module}"), "blueprint", None)
            if isinstance(found, Blueprint):
                yield found
