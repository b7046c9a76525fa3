"""``shomei ca sign-batch``, ``shomei ca status`` and ``shomei ca issue-crl``: the CA operator.

Thin commands: read the CA home's ``ca.toml``, open the key with the custodians' shares (from
files, or typed in with hidden input) or the token PIN, call one service function of
:mod:`ca`, and print the outcome.  Errors become one line and an exit code (:mod:`cli.errors`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ca.batch import (
    MAX_REQUEST_BYTES,
    Issued,
    IssueRefused,
    Revoked,
    RevokeRefused,
    read_result_batch,
)
from ca.context import CA, open_ca
from ca.crls import crl_status, issue_crl
from ca.custody.secretfile import read_pin_file
from ca.custody.shares import Share, parse_share
from ca.ledger import Ledger
from ca.settings import CASettings, load_ca_settings
from ca.signbatch import check_request, results_dir, sign_batch
from cli.errors import handle_errors, naming
from cli.groups import ca_group
from cli.prompts import read_hidden, read_shares
from shomei.clock import to_japan, utcnow
from shomei.errors import CustodyError, MalformedInput, NotFound, Refused, VerificationFailed
from shomei.files import check_new_file, read_bytes, write_new

_TRIES = 3

ca_home_option = click.option(
    "--ca-home",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="The CA home folder (its settings are DIR/ca.toml).",
)
share_option = click.option(
    "--share-file",
    "share_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A custodian share (repeat M times); without it each custodian types a share.",
)
pin_option = click.option(
    "--pin-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the PKCS#11 token PIN (else asked, hidden).",
)


def _settings(ca_home: Path) -> CASettings:
    return load_ca_settings(ca_home / "ca.toml")


def _prompt_shares(settings: CASettings) -> list[Share]:
    """Ask each custodian in turn for a share, hidden; a typo may be retyped."""
    from ca.custody.keyfile import key_file_info

    assert settings.key.path is not None  # KeyRef guarantees it for the file backend
    needed = key_file_info(settings.key.path).m
    click.echo(f"{needed} custodians must each type their share (input is hidden).", err=True)
    shares: list[Share] = []
    while len(shares) < needed:
        for attempt in range(1, _TRIES + 1):
            text = read_hidden(f"custodian {len(shares) + 1} of {needed}: share")
            try:
                share = parse_share(text)
            except CustodyError as exc:
                if attempt == _TRIES:
                    raise
                click.echo(f"  {exc.message} (try again)", err=True)
                continue
            if any(s == share for s in shares):
                click.echo("  this share was already given; the next custodian please", err=True)
                continue
            shares.append(share)
            break
    return shares


def _open(settings: CASettings, share_files: tuple[Path, ...], pin_file: Path | None) -> CA:
    pin: str | None = None
    shares: list[Share] = []
    if pin_file is not None and settings.key.backend == "file":
        read_pin_file(pin_file)  # a bad file is named as such, before the option is refused
        raise Refused(
            "--pin-file is for a CA key on a PKCS#11 token; this CA's key is opened with "
            "custodian shares (--share-file, or typed when asked)",
            message_ja="--pin-file は PKCS#11 トークン上の鍵の場合に使います。この認証局の鍵は"
            "鍵管理者の分割鍵(--share-file、または入力)で開きます",
        )
    if settings.key.backend == "file":
        if share_files:
            shares = read_shares(share_files)
        else:
            shares = _prompt_shares(settings)
    elif pin_file is not None:
        pin = read_pin_file(pin_file)
    else:
        pin = read_hidden("token PIN").strip()
    return open_ca(settings, shares=shares, pin=pin)


@contextmanager
def _progress_bar(label: str) -> Iterator[Progress]:
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # gone when done: stderr keeps only a failure's one line
        disable=not console.is_terminal,  # elsewhere it would leave a blank line
    ) as bar:
        yield bar


def _span(delta: dt.timedelta) -> str:
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86400)
    return f"{days} d {rest // 3600} h {rest % 3600 // 60} min"


def _entries(count: int) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


def _when(value: dt.datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC ({to_japan(value):%Y-%m-%d %H:%M} JST)"


@ca_group.command("sign-batch")
@click.argument("in_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("out_file", type=click.Path(dir_okay=False, path_type=Path))
@ca_home_option
@share_option
@pin_option
@handle_errors
def sign_batch_command(
    in_file: Path,
    out_file: Path,
    ca_home: Path,
    share_files: tuple[Path, ...],
    pin_file: Path | None,
) -> None:
    """Sign the RA request batch IN_FILE; write the signed result batch to OUT_FILE."""
    # Refused before anything is signed: where the result goes must be free and writable.
    check_new_file(out_file, what="result batch", what_ja="結果バッチ")
    settings = _settings(ca_home)
    data = read_bytes(in_file, what="request batch", what_ja="要求バッチ", limit=MAX_REQUEST_BYTES)
    with naming(in_file, MalformedInput, VerificationFailed):
        request = check_request(settings, data, now=utcnow())
    click.echo(  # stdout: stderr is for the one line that says why a command failed
        f"batch {request.batch_id} from {request.ra_name}: {len(request.requests)} requests, "
        "signature verified"
    )
    with _open(settings, share_files, pin_file) as ca, _progress_bar("signing") as bar:
        task = bar.add_task("signing", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result_bytes = sign_batch(ca, data, now=utcnow(), progress=progress)
        result = read_result_batch(result_bytes, ca_certificate=ca.certificate)
        try:
            write_new(out_file, result_bytes)
        except (Refused, OSError) as exc:
            kept = results_dir(ca) / f"{result.batch_id}.p7m"
            raise Refused(
                f"the batch was signed but {out_file} could not be written; copy {kept}",
                message_ja=f"署名は完了しましたが {out_file} を書けません。{kept} を使ってください",
            ) from exc
    counts = {kind: 0 for kind in (Issued, IssueRefused, Revoked, RevokeRefused)}
    for item in result.results:
        counts[type(item)] += 1
    click.echo(
        f"batch {result.batch_id}: {counts[Issued]} issued, {counts[IssueRefused]} refused, "
        f"{counts[Revoked]} revoked, {counts[RevokeRefused]} revocations refused"
    )
    for item in result.results:
        if isinstance(item, IssueRefused | RevokeRefused):
            click.echo(f"  {item.request_id}: {item.code}: {item.message}")
    click.echo(f"result written to {out_file}")


@ca_group.command("issue-crl")
@ca_home_option
@share_option
@pin_option
@handle_errors
def issue_crl_command(ca_home: Path, share_files: tuple[Path, ...], pin_file: Path | None) -> None:
    """Issue a CRL now (on demand, or on schedule before the current one is due)."""
    settings = _settings(ca_home)
    with _open(settings, share_files, pin_file) as ca:
        issue_crl(ca, now=utcnow())
        last = ca.ledger.last_crl()
        assert last is not None
        click.echo(
            f"CRL number {last.number} with {_entries(last.entry_count)} written to "
            f"{ca.crl_dir / f'{last.number}.crl'}; next update {_when(last.next_update)}"
        )


@ca_group.command("status")
@ca_home_option
@handle_errors
def status_command(ca_home: Path) -> None:
    """Show the current CRL, batches, serials, and anything left unfinished.

    Exits 1 when there is no CRL or it has expired, or the CA cannot issue certificates.
    """
    from ca.readiness import issuing_problems
    from ca.staging import leftovers

    for left in leftovers(ca_home):
        click.echo(f"WARNING: {left} holds the output of a ceremony that did not finish")
    settings = _settings(ca_home)
    if not settings.ledger.exists():
        raise NotFound(
            f"no CA ledger at {settings.ledger}",
            message_ja=f"CA 台帳 {settings.ledger} がありません",
        )
    now = utcnow()
    with Ledger(settings.ledger) as ledger:
        stats = ledger.stats()
    crl = crl_status(stats.last_crl, validity=settings.crl.validity, now=now)
    click.echo(f"CA: {settings.name}")
    if crl.last is None or crl.remaining is None:
        click.echo("CRL: none issued yet (run shomei ca issue-crl)")
    else:
        click.echo(
            f"CRL: number {crl.last.number}, {_entries(crl.last.entry_count)}, "
            f"issued {_when(crl.last.this_update)}"
        )
        if crl.state == "expired":
            click.echo(f"CRL expired {_span(crl.remaining)} ago, at {_when(crl.last.next_update)}")
        else:
            click.echo(f"CRL expires in {_span(crl.remaining)}, at {_when(crl.last.next_update)}")
    batches = ", ".join(f"{n} {outcome}" for outcome, n in sorted(stats.batches.items()))
    click.echo(f"batches: {batches or 'none'}; refused before processing: {stats.batch_refusals}")
    click.echo(
        f"serials: {stats.signed} issued, {stats.revoked} revoked, {stats.refused} requests refused"
    )
    for batch in stats.unfinished_batches:
        click.echo(
            f"WARNING: batch {batch.batch_id} from {batch.ra_name} was received "
            f"{_when(batch.received_at)} and never finished (crashed?); it will not be "
            "processed again: ask the RA to send its requests in a new batch"
        )
    for record in stats.reserved_unsigned:
        click.echo(
            f"WARNING: serial {record.serial:x} (request {record.request_id}) was reserved "
            "but never signed"
        )
    if crl.state == "none":
        click.echo("WARNING: no CRL has been issued", err=True)
    elif crl.state == "expired":
        click.echo(
            "WARNING: the CRL has EXPIRED: relying parties cannot check revocation; "
            "issue one now (shomei ca issue-crl)",
            err=True,
        )
    elif crl.state == "due":
        click.echo("WARNING: the CRL is due; issue a new one (shomei ca issue-crl)", err=True)
    cannot = issuing_problems(settings, now=now)
    for problem in cannot:
        click.echo(f"CANNOT ISSUE: {problem}")
    if crl.state in ("none", "expired") or cannot:
        raise SystemExit(1)
