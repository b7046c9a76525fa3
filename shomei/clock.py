"""Time for Shomei: timezone-aware UTC inside, Japan time only for display.

Functions that depend on the current time take a ``now`` argument; the default clock is
:func:`utcnow`.  Certificates and CRLs carry whole seconds (RFC 5280 §4.1.2.5 forbids
fractional seconds), so :func:`utcnow` truncates.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

UTC = dt.UTC
JST = dt.timezone(dt.timedelta(hours=9), name="JST")

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The current time in UTC, truncated to whole seconds."""
    return dt.datetime.now(UTC).replace(microsecond=0)


def require_aware(value: dt.datetime, what: str = "time") -> dt.datetime:
    """Return ``value`` in UTC; a naive datetime is a programming error and is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{what} must be timezone-aware")
    return value.astimezone(UTC)


def to_japan(value: dt.datetime) -> dt.datetime:
    """``value`` shown in Japan Standard Time (UTC+9, no daylight saving)."""
    return require_aware(value).astimezone(JST)
