"""Entry point of the ``shomei`` command and its sub-groups.

Command modules attach their commands to the groups of :mod:`cli.groups` (``shomei ca …``) or
export top-level commands in a ``COMMANDS`` tuple (``shomei demo``, ``shomei sign``, ...).
"""

from __future__ import annotations

import logging

import click

from shomei import __version__


@click.group()
@click.version_option(__version__, prog_name="shomei")
@click.option("-v", "--verbose", is_flag=True, help="Log details (to stderr).")
def main(verbose: bool) -> None:
    """Shomei (証明): the PKI of a welfare-claims federation."""
    # Third-party libraries (apscheduler, sqlalchemy, pyhanko...) log their details at DEBUG
    # and INFO: only their warnings are shown, -v or not; -v shows Shomei's own details.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("shomei").setLevel(logging.DEBUG if verbose else logging.WARNING)


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
    ):
        module = importlib.import_module(module_name)
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)
        ra_group = main.commands.get("ra")
        if isinstance(ra_group, click.Group):
            for command in getattr(module, "RA_COMMANDS", ()):
                ra_group.add_command(command)


_register()
