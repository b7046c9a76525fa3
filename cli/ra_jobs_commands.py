"""``shomei ra scheduler``, ``run-job``, ``register-crl`` and ``link-identity``: RA operations.

Thin commands: load the RA settings (``--settings``), open the database at the edge, call one
function of :mod:`ra.scheduler`, :mod:`ra.crls` or :mod:`ra.identity`, print the outcome.
They are attached to the ``shomei ra`` group through :data:`RA_COMMANDS` (see
:mod:`cli.main`).  Errors become one line and an exit code (:mod:`cli.errors`).
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import handle_errors, language, naming
from ra.jobs import JOBS
from ra.settings import load_ra_settings
from shomei.clock import utcnow
from shomei.errors import MalformedInput, VerificationFailed

settings_option = click.option(
    "--settings",
    "settings_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The RA settings file (ra.toml).",
)


@click.command("run-job")
@click.argument("name", type=click.Choice(sorted(JOBS)))
@settings_option
@handle_errors
def run_job_command(name: str, settings_path: Path) -> None:
    """Run the scheduled job NAME once, now (the scheduler need not be running)."""
    from ra.db import open_database, session_factory
    from ra.scheduler import describe, run_job

    settings = load_ra_settings(settings_path)
    engine = open_database(settings.database_url)
    try:
        summary = run_job(name, session_factory(engine), settings, now=utcnow())
    finally:
        engine.dispose()
    click.echo(f"{name}: {describe(summary)}")


def _holder(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """The lease holder's name: it is stored (128 characters) and shown in the log."""
    if value is not None and (
        not 0 < len(value) <= 128 or not value.isprintable() or value != value.strip()
    ):
        raise click.BadParameter(
            "1 to 128 printable characters"
            if language() != "ja"
            else "表示できる文字 1〜128 文字で指定してください"
        )
    return value


@click.command("scheduler")
@settings_option
@click.option(
    "--holder",
    callback=_holder,
    help="Name of this scheduler in the lease (default: host:pid:random).",
)
@handle_errors
def scheduler_command(settings_path: Path, holder: str | None) -> None:
    """Run the RA's scheduled jobs until interrupted (one active scheduler at a time)."""
    from ra.scheduler import run_scheduler

    settings = load_ra_settings(settings_path)
    click.echo("scheduler starting (Ctrl-C to stop)", err=True)
    run_scheduler(settings, holder=holder)


@click.command("register-crl")
@click.argument("crl_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@settings_option
@handle_errors
def register_crl_command(crl_file: Path, settings_path: Path) -> None:
    """Register a CRL file the CA issued (A6): verified, stored, published, 失効待ち→失効済み."""
    from ra.crls import register_crl_file
    from ra.db import open_database, session_factory

    settings = load_ra_settings(settings_path)
    engine = open_database(settings.database_url)
    try:
        with naming(crl_file, MalformedInput, VerificationFailed):
            result = register_crl_file(session_factory(engine), settings, crl_file, now=utcnow())
    finally:
        engine.dispose()
    if result.registered:
        click.echo(
            f"CRL number {result.number} ({result.entries} entries) registered; "
            f"{len(result.revoked)} applications moved to 失効済み"
        )
    else:
        click.echo(f"CRL number {result.number} was already registered; nothing changed")


@click.command("link-identity")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", required=True, help="The RA's name in the link certificate.")
@handle_errors
def link_identity_command(folder: Path, name: str) -> None:
    """Make the RA's link key (encrypted) and certificate in FOLDER, for the CA to pin."""
    from ra.identity import create_link_identity
    from shomei.files import check_output_folder

    check_output_folder(folder, what="folder", what_ja="フォルダ")
    _, files = create_link_identity(name, folder, now=utcnow())
    click.echo(f"link key: {files.key} (passphrase in {files.passphrase})")
    click.echo(f"link certificate: {files.certificate} (give it to the CA operator to pin)")


RA_COMMANDS = (run_job_command, scheduler_command, register_crl_command, link_identity_command)
ra_jobs = RA_COMMANDS
