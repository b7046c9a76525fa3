"""Entry point of the ``shomei`` command and its sub-groups.

Command modules attach their commands to the groups of :mod:`cli.groups` (``shomei ca …``) or
export top-level commands in a ``COMMANDS`` tuple (``shomei demo``, ``shomei sign``, ...).

:class:`ShomeiGroup` is the top of the tree and the last word on every outcome: a Shomei
error, a usage error of click's, an interruption, an error of the system (disk) and an
unexpected exception (a bug) each end as one line on stderr, in the user's language, and the
exit code of :mod:`cli.errors`; a traceback is shown only under ``-v``.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cli import i18n
from cli.errors import (
    FAILED,
    INTERNAL,
    configure_logging,
    language,
    prepare_streams,
    printable,
    report,
)
from shomei import __version__
from shomei.errors import ShomeiError

log = logging.getLogger("shomei.cli")
_ROOT = Path(__file__).resolve().parents[1]  # the source tree: where a bug's line is named
# click 8.2+ shows a group's help, as an error, when it is called without a command.
_NO_ARGS: tuple[type[click.UsageError], ...] = tuple(
    getattr(click.exceptions, name)
    for name in ("NoArgsIsHelpError",)
    if hasattr(click.exceptions, name)
)


class _PipeClosed(Exception):
    """The reader of our output went away: carried past click, which would exit 1 for it
    (and 1 means "checked and found bad" here)."""


class ShomeiGroup(click.Group):
    """The ``shomei`` group: runs a command and turns whatever ends it into an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise _PipeClosed from exc
            raise

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        sys.exit(self.run(args, prog_name, complete_var, **extra))

    def run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> int:
        """Run the command line ``args``; the exit code (see :mod:`cli.errors`)."""
        prepare_streams()
        lang = language()
        i18n.apply(self, lang)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS as exc:  # `shomei ca` alone: its help, as click shows it
            click.echo(exc.format_message(), err=True)
            return FAILED
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "shomei"
            _line(f"{where}: {exc.format_message()} {i18n.help_hint(where, lang)}")
            return FAILED
        except click.ClickException as exc:
            _line(f"shomei: {exc.format_message()}")
            return FAILED
        except click.exceptions.Abort:
            _line("shomei: " + i18n.text("interrupted: nothing more was done", lang))
            return FAILED
        except ShomeiError as exc:
            return report(exc)
        except MemoryError as exc:
            log.debug("out of memory", exc_info=exc)
            _line("shomei: " + i18n.text("not enough memory to do this", lang))
            return FAILED
        except _PipeClosed:
            # The reader of our output went away (`shomei … | head`): stop quietly.
            _silence_stdout()
            return FAILED
        except OSError as exc:
            # The system refused (disk full, I/O error) where no check foresaw it.
            log.debug("system error", exc_info=exc)
            _line(f"shomei: {_system_error(exc, lang)}")
            return FAILED
        except Exception as exc:
            log.debug("internal error", exc_info=exc)
            _line(f"shomei: {_internal_error(exc, lang)}")
            return INTERNAL
        return result if isinstance(result, int) else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the final flush at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):
        pass  # not a real file (a test runner's buffer): nothing will be flushed there


def _line(text: str) -> None:
    click.echo(printable(text), err=True)


def _system_error(exc: OSError, lang: str) -> str:
    what = exc.strerror or type(exc).__name__
    where = f": {exc.filename}" if exc.filename else ""
    return i18n.text("the system refused: {what}{where}", lang).format(what=what, where=where)


def _internal_error(exc: BaseException, lang: str) -> str:
    """What a bug report needs (the kind of error and the line of ours it came from)."""
    place = ""
    frame = exc.__traceback__
    while frame is not None:
        path = Path(frame.tb_frame.f_code.co_filename)
        if path.is_relative_to(_ROOT) and ".venv" not in path.parts:
            place = f" at {path.relative_to(_ROOT).as_posix()}:{frame.tb_lineno}"
        frame = frame.tb_next
    return i18n.text(
        "internal error ({kind}{place}): this is a bug; run the command again with -v "
        "for the details, and report it",
        lang,
    ).format(kind=type(exc).__name__, place=place)


def _version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        line = i18n.text("shomei, version {version}", language())
        click.echo(line.format(version=__version__))
        ctx.exit()


@click.group("shomei", cls=ShomeiGroup)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version,
    help="Show the version and exit.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log details (to stderr).")
def main(verbose: bool) -> None:
    """Shomei (証明): the PKI of a welfare-claims federation."""
    configure_logging(verbose)


def _register() -> None:
    import importlib

    from cli.groups import ca_group

    main.add_command(ca_group)
    for module_name in (
        "cli.ca_commands",
        "cli.ca_recovery_commands",
        "cli.ceremony_commands",
        "cli.demo",
        "cli.sign_commands",
        "cli.ra_commands",
        "cli.ra_jobs_commands",
        "cli.ra_serve_command",
    ):
        module = importlib.import_module(module_name)
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)
        ra_group = main.commands.get("ra")
        if isinstance(ra_group, click.Group):
            for command in getattr(module, "RA_COMMANDS", ()):
                ra_group.add_command(command)


_register()
