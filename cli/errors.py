"""The one place that maps Shomei errors to CLI exit codes and a one-line message.

Exit codes: 0 success (valid); 1 checked and found bad: the input is what it should be (a
signature, a CRL, a transcript, an audit log) and a check of it failed (invalid signature,
revoked, tampered, chain broken); 2 could not decide or could not do: bad input (a file that
is missing, empty, unreadable, too large, not of the expected kind), no current CRL, a
refused operation, bad configuration, a disk or database failure, a usage error;
3 an internal error (a bug): one line, the traceback with ``shomei -v``.

The error classes (:mod:`shomei.errors`) say what happened, not how to answer it: the exit
code of an error is looked up in :data:`EXIT_CODES`, the one table of this edge, by the most
specific kind in the error's class hierarchy (:func:`exit_code_of`).  The web edge has a table
of its own, kind to HTTP status and page, in ``ra.web.errors``; the two are kept apart so that
neither edge's convention leaks into the error classes or into the other edge.

Every line shown is printable: the bytes of a file name that is not UTF-8 appear as ``\\xNN``
(:func:`printable`, and the ``shomei.printable`` error handler of the output streams).
"""

from __future__ import annotations

import codecs
import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import click

from shomei.errors import ShomeiError, VerificationFailed

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger("shomei.cli")

INVALID = 1  # checked and found bad
FAILED = 2  # could not decide, could not do
INTERNAL = 3  # a bug: see the traceback with -v

# Kind -> exit code.  The most specific kind listed wins (the class hierarchy is walked from
# the error's own class up), so a new ShomeiError exits 2 without being listed, and an error
# that refines VerificationFailed exits 1.  Anything that is not a ShomeiError is a bug.
EXIT_CODES: Mapping[type[BaseException], int] = MappingProxyType(
    {
        VerificationFailed: INVALID,
        ShomeiError: FAILED,
    }
)


def exit_code_of(exc: BaseException) -> int:
    """The exit code of ``exc``: the entry of :data:`EXIT_CODES` nearest its class, else 3."""
    for kind in type(exc).__mro__:
        code = EXIT_CODES.get(kind)
        if code is not None:
            return code
    return INTERNAL


def _escape(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: a surrogate-escaped byte (PEP 383) as ``\\xNN``, others as
    ``\\uNNNN``; so a file name that is not UTF-8 can always be shown."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = []
    for char in exc.object[exc.start : exc.end]:
        code = ord(char)
        out.append(f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}")
    return "".join(out), exc.end


codecs.register_error("shomei.printable", _escape)


def printable(text: str) -> str:
    """``text`` as one printable line: non-UTF-8 bytes of file names as ``\\xNN``, line
    breaks and tabs folded into spaces."""
    text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    text = "".join(
        " " if c == "\t" else f"\\x{ord(c):02x}" if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c
        for c in text
    )  # control characters (a terminal escape in a file name) are shown, never obeyed
    return text.encode("utf-8", "shomei.printable").decode("utf-8")


def prepare_streams() -> None:
    """Make stdout and stderr print anything: file names that are not UTF-8 never crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="shomei.printable")
            except (ValueError, OSError):  # pragma: no cover - a closed or exotic stream
                pass


def language() -> str:
    """ "ja" when the user's locale is Japanese, else "en" (messages are bilingual)."""
    for var in ("SHOMEI_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "ja" if value.lower().startswith("ja") else "en"
    return "en"


def report(exc: ShomeiError) -> int:
    """Print ``exc`` as one line on stderr and return its exit code."""
    click.echo(f"shomei: {printable(exc.localized(language()))}", err=True)
    log.debug("error details", exc_info=exc)
    return exit_code_of(exc)


def handle_errors(func: F) -> F:
    """Decorator for commands: a ShomeiError becomes one line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ShomeiError as exc:
            sys.exit(report(exc))

    return wrapper  # type: ignore[return-value]


class _OneLine(logging.Formatter):
    """Log records as one line each; tracebacks only when the user asked for details (-v)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if self.verbose:
            return super().format(record)
        return printable(f"{record.levelname} {record.name}: {record.getMessage()}")


def configure_logging(verbose: bool) -> None:
    """Log to stderr: warnings and errors as one line each, everything with tracebacks under
    ``-v``.  Python warnings of libraries (deprecations) are shown only under ``-v``."""
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine(verbose))
    if not verbose:
        handler.addFilter(lambda record: record.name != "py.warnings")
    logging.captureWarnings(True)
    # Third-party libraries (apscheduler, sqlalchemy, pyhanko...) log their details at DEBUG
    # and INFO: only their warnings are shown, -v or not; -v shows Shomei's own details.
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    logging.getLogger("shomei").setLevel(logging.DEBUG if verbose else logging.WARNING)


@contextlib.contextmanager
def naming(path: Path | str, *kinds: type[ShomeiError]) -> Iterator[None]:
    """Errors raised while the content of the file ``path`` is used name the file.

    ``path`` may be a description naming several files ("a.p12 (password in a.txt)").

    A parser says what is wrong ("not a readable certificate") but not which of the files a
    command was given it was; the command knows.  Only errors of ``kinds`` (default: all) are
    named, and a message that names the file already is left as it is.
    """
    try:
        yield
    except ShomeiError as exc:
        if isinstance(exc, kinds or (ShomeiError,)) and str(path) not in exc.message:
            exc.message = f"{path}: {exc.message}"
            exc.message_ja = f"{path}: {exc.message_ja}"
            exc.args = (exc.message,)
        raise
