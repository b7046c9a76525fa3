"""The one place that maps Shomei errors to CLI exit codes and a one-line message.

Exit codes: 0 success (valid), 1 checked and found bad (invalid, revoked, tampered),
2 could not decide or could not do (bad input, missing CRL, refused operation, bad config).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from shomei.errors import ShomeiError

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("shomei.cli")


def language() -> str:
    """ "ja" when the user's locale is Japanese, else "en" (messages are bilingual)."""
    for var in ("SHOMEI_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def report(exc: ShomeiError) -> int:
    """Print ``exc`` as one line on stderr and return its exit code."""
    click.echo(f"shomei: {exc.localized(language())}", err=True)
    log.debug("error details", exc_info=exc)
    return exc.exit_code


def handle_errors(func: F) -> F:
    """Decorator for commands: a ShomeiError becomes one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ShomeiError as exc:
            sys.exit(report(exc))

    return wrapper  # type: ignore[return-value]
