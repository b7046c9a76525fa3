"""Language and display of the web pages: the locale, Japan time, dates, yen, status names.

Japanese is the default; English is chosen with the header's toggle and kept in the session.
Dates are ``2026/12/01`` or ``令和8年12月1日`` (the setting ``[ra.web] date_style``, or the
header's toggle, also kept in the session); times are always Japan time; amounts ``5,000円``.
The formatting itself is :mod:`shomei.jatext`, shared with the letters and CSV exports.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask, current_app, session

from ra.lifecycle import LABELS_EN, LABELS_JA, NUMBERS, Status
from shomei import jatext

LANGUAGES = ("ja", "en")
DATE_STYLES = ("western", "wareki")


def language() -> str:
    """The reader's language: ``ja`` unless English was chosen."""
    chosen = session.get("lang")
    return chosen if chosen in LANGUAGES else "ja"


def locale() -> str:
    return language()


def date_style() -> str:
    chosen = session.get("date_style")
    if chosen in DATE_STYLES:
        return str(chosen)
    return str(current_app.extensions["shomei"].settings.web.date_style)


def _wareki() -> bool:
    return date_style() == "wareki"


def format_date(value: dt.date | None) -> str:
    return "" if value is None else jatext.format_date(value, wareki=_wareki())


def format_datetime(value: dt.datetime | None) -> str:
    return "" if value is None else jatext.format_datetime(value, wareki=_wareki())


def format_yen(value: int | None) -> str:
    return "" if value is None else jatext.format_yen(value)


def status_label(status: Status) -> str:
    """``3 発行依頼中`` (or ``3 issue requested``): the number and name of a status."""
    labels = LABELS_JA if language() == "ja" else LABELS_EN
    return f"{NUMBERS[status]} {labels[status]}"


def init_app(app: Flask) -> None:
    app.add_template_filter(format_date, "jdate")
    app.add_template_filter(format_datetime, "jtime")
    app.add_template_filter(format_yen, "yen")
    app.add_template_filter(status_label, "status_label")
    app.add_template_global(language, "current_language")
    app.add_template_global(date_style, "current_date_style")
