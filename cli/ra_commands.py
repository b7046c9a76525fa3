"""``shomei ra …``: the RA operator's commands (thin: parse, call one service, print).

``init-db`` creates or upgrades the schema (Alembic) and the key that seals the database's
secrets; ``add-staff`` creates a console user (the first admin) and prints its password and
TOTP secret once; ``load-demo`` creates demo accounts and prints their one-time passwords;
``import-accounts`` creates offices and agents from a CSV, with progress on stderr (exit 2 and
a report of every bad row when any row is bad; nothing is imported then);
``show`` prints an application and its history from the audit log in Japan time;
``verify-audit`` walks the hash-chained audit log (exit 1 when it was tampered with).
Every command reads the RA settings file given with ``--settings``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path

import click
from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cli.errors import handle_errors, language, naming
from cli.progress import progress
from ra.lifecycle import LABELS_JA, NUMBERS
from ra.party import Party, application_for
from ra.people.accounts import AccountInput, NewAccount, add_console_user, add_portal_account
from ra.people.csvimport import MAX_BYTES, ImportRefused, import_accounts
from ra.settings import RASettings, load_ra_settings
from ra.store import audit
from ra.store.db import open_database, session_factory, transaction
from ra.store.models import Account, AccountKind
from ra.store.vault import load_vault
from ra.workflow.history import application_history
from shomei.clock import to_japan, utcnow
from shomei.errors import AlreadyExists, MalformedInput
from shomei.files import MAX_OBJECT, read_bytes

ra_group = click.Group("ra", help="RA operator: database, accounts, applications, audit log.")
COMMANDS = (ra_group,)

settings_option = click.option(
    "--settings",
    "settings_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The RA settings file (TOML, table [ra]).",
)

DEMO_OFFICES = (
    AccountInput(
        kind=AccountKind.OFFICE,
        number="1310000001",
        name="証明ケアサービス 中央事業所",
        address="東京都千代田区千代田1-1",
        phone="03-1234-5678",
        email="chuo@office.example",
        postal_code="100-0001",
    ),
    AccountInput(
        kind=AccountKind.OFFICE,
        number="2710000002",
        name="なにわ訪問介護ステーション",
        address="大阪府大阪市北区梅田1-1",
        phone="06-1234-5678",
        email="naniwa@office.example",
        postal_code="530-0001",
    ),
    AccountInput(
        kind=AccountKind.AGENT,
        number="9900000001",
        name="株式会社 請求ソフト",
        address="東京都港区芝公園4-2",
        phone="03-9876-5432",
        email="support@agent.example",
        postal_code="105-0011",
    ),
)


def _factory(settings: RASettings) -> sessionmaker[Session]:
    engine = open_database(settings.database_url)
    context = click.get_current_context(silent=True)
    if context is not None:  # close the connections when the command ends, even on an error
        context.call_on_close(engine.dispose)
    return session_factory(engine)


def _print_new(new: NewAccount, issuer: str = "Shomei") -> None:
    acct = new.account
    click.echo(f"{acct.kind.value}\t{acct.user_id}\t{acct.office_number or '-'}\t{acct.name}")
    if new.issuance_password:
        click.echo(f"  issuance password (証明書発行用パスワード): {new.issuance_password}")
    click.echo(f"  login password: {new.login_password}")
    if new.totp_secret:
        click.echo(f"  TOTP secret: {new.totp_secret}")
        click.echo(f"  TOTP URI (for an authenticator app): {new.otpauth_uri(issuer)}")


@ra_group.command("init-db")
@settings_option
@handle_errors
def init_db(settings_path: Path) -> None:
    """Create or upgrade the RA database schema, and the key that seals its secrets."""
    from ra.store.initdb import init_database

    settings = load_ra_settings(settings_path)
    report = init_database(settings)
    if report.created_database is not None:
        click.echo(f"created the RA database {report.created_database} (mode 0600)")
    if report.created_key is not None:
        click.echo(
            f"created the secrets key {report.created_key} (mode 0600): back it up with the "
            "database; the TOTP secrets cannot be read without it"
        )
    for path in report.restricted:
        click.echo(f"{path} was readable by other users: its mode is now 0600")
    click.echo("RA database is at the newest schema.")


@ra_group.command("load-demo")
@settings_option
@handle_errors
def load_demo(settings_path: Path) -> None:
    """Create demo offices, an agent, staff and an admin; print their one-time passwords."""
    settings = load_ra_settings(settings_path)
    operator = Party.operator("load-demo")
    now = utcnow()
    factory = _factory(settings)
    vault = load_vault(settings.secrets_key_file)
    with transaction(factory) as session:
        taken = session.execute(
            select(Account.user_id).where(
                Account.office_number.in_([o.number for o in DEMO_OFFICES])
            )
        ).first()
        if taken is not None:
            raise AlreadyExists(
                "the demo accounts are already loaded",
                message_ja="デモ用アカウントは登録済みです",
            )
        created = [
            add_console_user(
                session,
                operator,
                kind=AccountKind.ADMIN,
                name="デモ管理者",
                email="admin@federation.example",
                now=now,
                vault=vault,
                rng=secrets.token_bytes,
            ),
            add_console_user(
                session,
                operator,
                kind=AccountKind.STAFF,
                name="デモ職員",
                email="staff@federation.example",
                now=now,
                vault=vault,
                rng=secrets.token_bytes,
            ),
        ]
        created += [add_portal_account(session, operator, o, now=now) for o in DEMO_OFFICES]
    click.echo("Demo accounts (the passwords are shown only now):")
    for new in created:
        _print_new(new, settings.federation_name)


@ra_group.command("add-staff")
@click.argument("user_id")
@click.option("--name", required=True, help="The person's name (氏名).")
@click.option("--email", required=True, help="The person's mail address.")
@click.option("--admin", is_flag=True, help="An administrator (管理者) rather than staff (職員).")
@settings_option
@handle_errors
def add_staff(user_id: str, name: str, email: str, admin: bool, settings_path: Path) -> None:
    """Create a console user USER_ID (staff, or --admin); print its secrets once.

    The way to create the first administrator.  Prints the login password, the TOTP secret
    and its otpauth:// URI (for an authenticator app) only now; a taken USER_ID is refused.
    """
    settings = load_ra_settings(settings_path)
    factory = _factory(settings)
    vault = load_vault(settings.secrets_key_file)
    with transaction(factory) as session:
        new = add_console_user(
            session,
            Party.operator("add-staff"),
            kind=AccountKind.ADMIN if admin else AccountKind.STAFF,
            name=name,
            email=email,
            now=utcnow(),
            vault=vault,
            user_id=user_id,
        )
    click.echo("Created (the password and TOTP secret are shown only now):")
    _print_new(new, settings.federation_name)


@ra_group.command("import-accounts")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@settings_option
@handle_errors
def import_accounts_command(csv_file: Path, settings_path: Path) -> None:
    """Create office and agent accounts from CSV_FILE (UTF-8 or CP932), all or none."""
    settings = load_ra_settings(settings_path)
    data = read_bytes(csv_file, what="CSV file", what_ja="CSV ファイル", limit=MAX_BYTES)
    try:
        with (
            naming(csv_file, MalformedInput),
            transaction(_factory(settings)) as session,
            progress("hashing passwords", unit="accounts") as report,
        ):
            # Every row is checked first; the hashing (the slow part) reports its progress;
            # the accounts are written in one transaction at the end, so all or none.
            created = import_accounts(
                session, Party.operator("import-accounts"), data, now=utcnow(), progress=report
            )
    except ImportRefused as exc:
        lang = language()
        for problem in exc.problems:  # stdout: stderr is for the one line that sums up
            click.echo(problem.line(lang))
        raise
    click.echo(f"Imported {len(created)} account(s) (passwords are shown only now):")
    for new in created:
        _print_new(new)


@ra_group.command("show")
# An application number is a database INTEGER (PostgreSQL: 32 bits).
@click.argument("application_id", type=click.IntRange(1, 2**31 - 1))
@settings_option
@handle_errors
def show(application_id: int, settings_path: Path) -> None:
    """Show an application and its history from the audit log (Japan time)."""
    settings = load_ra_settings(settings_path)
    operator = Party.operator("show")
    with transaction(_factory(settings)) as session:
        app = application_for(session, operator, application_id)
        acct = app.account
        status = app.status
        click.echo(f"application {app.id}: {status.value} ({NUMBERS[status]} {LABELS_JA[status]})")
        click.echo(
            f"  account: {acct.user_id} {acct.kind.value} {acct.office_number or ''} {acct.name}"
        )
        click.echo(f"  for office: {app.office_number} {app.office_name}")
        click.echo(
            f"  entered by: {app.entered_by}  fee: {app.fee_yen:,} yen  profile: {app.profile}"
        )
        click.echo(
            f"  applied: {_jst(app.applied_at)}  status since: {_jst(app.status_changed_at)}"
        )
        if app.status_reason:
            click.echo(f"  reason: {app.status_reason}")
        if app.revocation_reason:
            click.echo(
                f"  revocation: {app.revocation_reason} asked by {app.revocation_requested_by}"
            )
        if app.certificate is not None:
            c = app.certificate
            click.echo(
                f"  certificate: serial {c.serial_hex}, "
                f"valid {_jst(c.not_before)} to {_jst(c.not_after)}"
            )
        click.echo("history:")
        for h in application_history(session, operator, app.id):
            move = f"{h.status_before or '-'} -> {h.status_after or '-'}"
            source = f" from {h.source_address}" if h.source_address else ""
            why = f" ({h.reason})" if h.reason else ""
            click.echo(
                f"  #{h.seq} {_jst(h.at)} {h.action} {move} by {h.actor}:{h.actor_id}{source}"
                f"  {h.action_ja}{why}"
            )


def _jst(value: object) -> str:
    if not isinstance(value, dt.datetime):
        return "-"
    return to_japan(value).strftime("%Y-%m-%d %H:%M:%S JST")


@ra_group.command("verify-audit")
@settings_option
@handle_errors
def verify_audit(settings_path: Path) -> None:
    """Check the hash chain and the signed anchors of the audit log (exit 1 if tampered)."""
    settings = load_ra_settings(settings_path)
    trusted: list[x509.Certificate] = []
    if settings.link.link_certificate is not None:
        pem = read_bytes(
            settings.link.link_certificate,
            what="link certificate",
            what_ja="連携証明書",
            limit=MAX_OBJECT,
        )
        try:
            trusted.append(x509.load_pem_x509_certificate(pem))
        except ValueError as exc:
            raise MalformedInput(
                f"the link certificate {settings.link.link_certificate} (ra.link."
                "link_certificate) is not a PEM certificate",
                message_ja=f"連携証明書 {settings.link.link_certificate}"
                "(ra.link.link_certificate)が PEM 形式の証明書ではありません",
            ) from exc
    with transaction(_factory(settings)) as session:
        report = audit.verify(session, trusted=trusted)
    click.echo(
        f"audit log intact: {report.records} record(s), {report.anchors} signed anchor(s), "
        f"head {report.head_hash[:16]}…"
    )


@ra_group.command("export-list")
@settings_option
@click.argument("out_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--applicant",
    "applicants",
    multiple=True,
    type=click.Choice(["office", "agent", "staff"]),
    help="Applicant type (事業所/代理人/職員); repeat for several. Default: all.",
)
@click.option("--user-id", default=None, help="A user ID, or its beginning.")
@click.option("--exact", is_flag=True, help="Match the user ID exactly, not as a prefix.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    help="A status code (e.g. issued); repeat for several. Default: all.",
)
@click.option(
    "--encoding",
    type=click.Choice(["cp932", "utf-8-sig"]),
    default="cp932",
    show_default=True,
    help="CP932 (what Japanese Excel opens) or UTF-8 with a byte-order mark.",
)
@handle_errors
def export_list(
    settings_path: Path,
    out_file: Path,
    applicants: tuple[str, ...],
    user_id: str | None,
    exact: bool,
    statuses: tuple[str, ...],
    encoding: str,
) -> None:
    """Save the certificate list (証明書一覧) as CSV that Excel opens (CP932 by default)."""
    import io

    from ra.desk.export import export_csv
    from shomei.files import check_new_file, write_new

    check_new_file(out_file, what="certificate list", what_ja="証明書一覧")
    settings = load_ra_settings(settings_path)
    buffer = io.BytesIO()
    with _factory(settings)() as session:
        count = export_csv(
            session,
            Party.operator("export-list"),
            out=buffer,
            applicant_types=applicants or None,
            user_id=user_id,
            user_id_match="exact" if exact else "prefix",
            statuses=statuses or None,
            encoding=encoding,
        )
    write_new(out_file, buffer.getvalue())
    click.echo(f"{count} row(s) written to {out_file}")
