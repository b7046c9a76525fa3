"""Entry point of the ``shomei`` command and its sub-groups.

Sub-groups live in their own modules and are registered here: ``shomei ca …`` (CA operator,
:mod:`cli.ca_commands`), ``shomei demo`` (:mod:`cli.demo`); the signer and the RA add theirs.
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
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    import importlib

    for module_name in ("cli.ca_commands", "cli.demo", "cli.sign_commands"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # that part of the product is not built yet
            raise
        for command in getattr(module, "COMMANDS", ()):
            main.add_command(command)


_register()
