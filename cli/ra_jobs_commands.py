"""``shomei ra scheduler``, ``run-job``, ``register-crl`` and ``link-identity``: RA operations.

``link-status``, ``re-request`` and ``resend-batch`` bring back what a crash or an abandoned
batch left between the RA and the CA (:mod:`ra.ca_link.recovery`).

Thin commands: load the RA settings (``--settings``), open the database at the edge, call one
function of :mod:`ra.tasks.scheduler`, :mod:`ra.ca_link.crls` or :mod:`ra.ca_link.identity`, print
the outcome.
They are attached to the ``shomei ra`` group through :data:`RA_COMMANDS` (see
:mod:`cli.main`).  Errors become one line and an exit code (:mod:`cli.errors`).
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import click

from cli.errors import handle_errors, language, naming
from ra.settings import load_ra_settings
from ra.tasks.jobs import JOBS
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
    """Run the scheduled job NAME once, now (the scheduler need not be running).

    Exits 2 when the job left work it could not finish, and says what to do about it; 1 when
    a CRL from the CA was checked and refused (it would lose a revocation).
    """
    from ra.ca_link.link_import import refused_crls
    from ra.ca_link.stuck import attention_of
    from ra.store.db import open_database, session_factory
    from ra.tasks.jobs import RunBy
    from ra.tasks.scheduler import describe, run_job

    settings = load_ra_settings(settings_path)
    engine = open_database(settings.database_url)
    try:
        summary = run_job(
            name, session_factory(engine), settings, now=utcnow(), by=RunBy.cli(_login())
        )
    finally:
        engine.dispose()
    click.echo(f"{name}: {describe(summary)}")
    lang = language()
    refused = refused_crls(summary)
    for english, japanese in refused:
        click.echo(f"shomei: {japanese if lang == 'ja' else english}", err=True)
    stuck = attention_of(summary)
    if stuck:
        what = "; ".join(a.localized(lang) for a in stuck)
        line = f"{name} に未完了の作業があります: " if lang == "ja" else f"{name} left work stuck: "
        click.echo(f"shomei: {line}{what}", err=True)
        sys.exit(2)
    if refused:
        sys.exit(1)  # the certificates are in; the CRL was checked and found bad


def _login() -> str:
    """The operator's login name on the RA host, recorded with the job runs they start."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment
        return "operator"


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
    from ra.tasks.scheduler import run_scheduler

    settings = load_ra_settings(settings_path)
    _log_events()
    click.echo("scheduler starting (Ctrl-C to stop)", err=True)
    run_scheduler(settings, holder=holder)


def _log_events() -> None:
    """A service logs what happens (INFO) even without -v, as JSON lines (shomei.logs)."""
    import logging

    from shomei.logs import JsonFormatter

    root = logging.getLogger()
    if not root.handlers:  # called without `shomei` (tests, an embedding program)
        logging.basicConfig(level=logging.WARNING)
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    shomei = logging.getLogger("shomei")
    if shomei.getEffectiveLevel() > logging.INFO:
        shomei.setLevel(logging.INFO)


@click.command("register-crl")
@click.argument("crl_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@settings_option
@handle_errors
def register_crl_command(crl_file: Path, settings_path: Path) -> None:
    """Register a CRL file the CA issued (A6): verified, stored, published, 失効待ち→失効済み."""
    from ra.ca_link.crls import register_crl_file
    from ra.store.db import open_database, session_factory

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
    from ra.ca_link.identity import create_link_identity
    from shomei.files import check_output_folder

    check_output_folder(folder, what="folder", what_ja="フォルダ")
    _, files = create_link_identity(name, folder, now=utcnow())
    click.echo(f"link key: {files.key} (passphrase in {files.passphrase})")
    click.echo(f"link certificate: {files.certificate} (give it to the CA operator to pin)")


@click.command("link-status")
@settings_option
@handle_errors
def link_status_command(settings_path: Path) -> None:
    """List the batches the CA has not answered yet and the applications it abandoned.

    Exits 1 when applications wait to be sent again (shomei ra re-request).
    """
    from ra.ca_link.recovery import link_status
    from ra.store.db import open_database, session_factory

    settings = load_ra_settings(settings_path)
    engine = open_database(settings.database_url)
    try:
        status = link_status(session_factory(engine))
    finally:
        engine.dispose()
    if not status.pending:
        click.echo("no batch waits for the CA")
    for batch in status.pending:
        click.echo(
            f"waiting for the CA: batch {batch.batch_id} ({batch.kind}, {batch.applications} "
            f"applications), sent {batch.created_at:%Y-%m-%d %H:%M:%S} UTC"
            + (f", outbox file {batch.outbox_file}" if settings.link.mode == "offline" else "")
        )
    for batch_id, ids in status.left_out.items():
        click.echo(
            f"abandoned by the CA: batch {batch_id}, applications {', '.join(map(str, ids))} "
            f"at 発行待ち; send them again: shomei ra re-request {batch_id}"
        )
    if status.left_out:
        sys.exit(1)


@click.command("re-request")
@click.argument("batch_id")
@settings_option
@handle_errors
def rerequest_command(batch_id: str, settings_path: Path) -> None:
    """Send again the applications the CA abandoned in BATCH_ID (発行待ち → 発行依頼中).

    Audited; the next dispatch puts them into a new batch.
    """
    from ra.ca_link.recovery import rerequest_batch
    from ra.party import Party
    from ra.store.db import open_database, session_factory

    settings = load_ra_settings(settings_path)
    engine = open_database(settings.database_url)
    try:
        done = rerequest_batch(
            session_factory(engine), Party.operator("re-request"), batch_id, now=utcnow()
        )
    finally:
        engine.dispose()
    ids = ", ".join(map(str, done.applications))
    click.echo(
        f"batch {batch_id}: {len(done.applications)} application(s) ({ids}) moved back to "
        "発行依頼中; the next dispatch sends them"
        + (f"; {done.lost_races} changed by someone else first" if done.lost_races else "")
    )


@click.command("resend-batch")
@click.argument("batch_id")
@settings_option
@handle_errors
def resend_batch_command(batch_id: str, settings_path: Path) -> None:
    """Offline mode: write the request file of BATCH_ID (not yet answered) to the outbox again."""
    from ra.ca_link.recovery import resend_batch
    from ra.store.db import open_database, session_factory

    settings = load_ra_settings(settings_path)
    engine = open_database(settings.database_url)
    try:
        path = resend_batch(session_factory(engine), settings, batch_id)
    finally:
        engine.dispose()
    click.echo(f"batch {batch_id} written to {path}; carry it to the CA")


RA_COMMANDS = (
    run_job_command,
    scheduler_command,
    register_crl_command,
    link_identity_command,
    link_status_command,
    rerequest_command,
    resend_batch_command,
)
ra_jobs = RA_COMMANDS
