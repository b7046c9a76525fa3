"""Links to pages that may not be part of this application: a URL only if the page exists.

Screens are found module by module (:mod:`ra.web.area`), so a page may link to a screen that a
given build does not have yet (the portal's 状況照会 and ダウンロード).  Templates call
``optional_url(endpoint, **values)``: the URL when ``endpoint`` is a view of this application,
else None, and show the link only then, so a missing screen never turns into a broken link.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, url_for


def optional_url(endpoint: str, **values: Any) -> str | None:
    """``url_for(endpoint, **values)`` if this application has the view, else None."""
    if endpoint not in current_app.view_functions:
        return None
    return url_for(endpoint, **values)


def init_app(app: Flask) -> None:
    app.add_template_global(optional_url, "optional_url")
