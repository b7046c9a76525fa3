"""``shomei ca sign-batch``, ``shomei ca status`` and ``shomei ca issue-crl``: the CA operator.

(``resume-batch`` and ``abandon-batch``, for a batch a crash left unfinished, are in
:mod:`cli.ca_recovery_commands`.)

Thin commands: read the CA home's ``ca.toml``, open the key with the custodians' shares (from
files, or typed in with hidden input) or the token PIN, call one service function of
:mod:`ca`, and print the outcome.  Errors become one line and an exit code (:mod:`cli.errors`).
The ledger is opened and checked (:func:`ca.context.open_ledger`) before anyone is asked for a
share, so a lost or older ledger stops a command before the custodians gather round.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ca.batchstore import work_lock
from ca.context import CA, load_certificates, open_ca, open_ledger
from ca.crls import crl_status, issue_crl
from ca.custody.secretfile import read_pin_file
from ca.custody.shares import Share, parse_share
from ca.recovery import unfinished_batches
from ca.settings import CASettings, load_ca_settings
from ca.signbatch import answer_batch, check_request
from cli.errors import handle_errors, naming
from cli.groups import ca_group
from cli.prompts import read_hidden, read_shares
from contract.batch import (
    MAX_REQUEST_BYTES,
    Abandoned,
    Issued,
    IssueRefused,
    Revoked,
    RevokeRefused,
    read_result_batch,
)
from shomei.clock import to_japan, utcnow
from shomei.errors import (
    CustodyError,
    MalformedInput,
    Refused,
    ShomeiError,
    StorageError,
    VerificationFailed,
)
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
    if pin_file is not None and settings.key.backend == "file":
        read_pin_file(pin_file)  # a bad file is named as such, before the option is refused
        raise Refused(
            "--pin-file is for a CA key on a PKCS#11 token; this CA's key is opened with "
            "custodian shares (--share-file, or typed when asked)",
            message_ja="--pin-file は PKCS#11 トークン上の鍵の場合に使います。この認証局の鍵は"
            "鍵管理者の分割鍵(--share-file、または入力)で開きます",
        )
    # The ledger first: a lost or older ledger stops here, before anyone types a share.
    ledger = open_ledger(settings)
    try:
        pin: str | None = None
        shares: list[Share] = []
        if settings.key.backend == "file":
            if share_files:
                shares = read_shares(share_files)
            else:
                shares = _prompt_shares(settings)
        elif pin_file is not None:
            pin = read_pin_file(pin_file)
        else:
            pin = read_hidden("token PIN").strip()
    except BaseException:
        ledger.close()
        raise
    return open_ca(settings, shares=shares, pin=pin, ledger=ledger)


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
    """Sign the RA request batch IN_FILE; write the signed result batch to OUT_FILE.

    The same IN_FILE again signs nothing: a finished batch's kept result is written again,
    byte for byte (no shares needed), and a batch a crash left unfinished is finished.
    """
    # Refused before anything is signed: where the result goes must be free and writable.
    refuse_existing(out_file)
    settings = _settings(ca_home)
    data = read_bytes(in_file, what="request batch", what_ja="要求バッチ", limit=MAX_REQUEST_BYTES)
    with naming(in_file, MalformedInput, VerificationFailed):
        checked = check_request(settings, data, now=utcnow(), also=(out_file.parent,))
    request = checked.request
    # stdout: stderr is for the one line that says why a command failed
    if checked.result is not None:
        write_result(out_file, checked.result, batch_id=request.batch_id, kept=checked.kept_at)
        click.echo(
            f"batch {request.batch_id} was signed before; its kept result {checked.kept_at} "
            "was written again (nothing was signed)"
        )
        report_result(checked.result, out_file, settings)
        return
    click.echo(
        f"batch {request.batch_id} from {request.ra_name}: {len(request.requests)} requests, "
        "signature verified"
    )
    if checked.known is not None:
        click.echo(
            f"batch {request.batch_id} was begun {_when(checked.known.received_at)} and never "
            "finished: it is finished now (what the ledger recorded as signed is not signed "
            "again)"
        )
    with _open(settings, share_files, pin_file) as ca, _progress_bar("signing") as bar:
        task = bar.add_task("signing", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        answer = answer_batch(ca, data, now=utcnow(), progress=progress, also=(out_file.parent,))
    write_result(out_file, answer.result, batch_id=request.batch_id, kept=answer.kept_at)
    report_result(answer.result, out_file, settings)


def refuse_existing(out_file: Path) -> None:
    """Refuse an OUT that exists or cannot be written, before anything is signed."""
    check_new_file(out_file, what="result batch", what_ja="結果バッチ")


def write_result(out_file: Path, data: bytes, *, batch_id: str, kept: Path | None) -> None:
    """Write the result to OUT; if that fails, say that the work is done and where it is."""
    try:
        write_new(out_file, data)
    except ShomeiError as exc:
        where = kept or "results/ in the CA home"
        raise StorageError(
            f"batch {batch_id} is signed and its result is kept at {where}, but {out_file} "
            f"could not be written ({exc.message}); copy {where}, or run the same command "
            "again with another OUT: it writes the same result again",
            message_ja=f"バッチ {batch_id} の署名は完了し、結果は {where} に保存されていますが、"
            f"{out_file} を書けませんでした({exc.message_ja})。{where} をコピーするか、"
            "別の出力先で同じコマンドを再実行してください(同じ結果を書き出します)",
            batch_id=batch_id,
        ) from exc


def report_result(data: bytes, out_file: Path, settings: CASettings) -> None:
    """Print what a result batch says, one line per refusal or abandoned request."""
    certificate = load_certificates(settings.certificate)[0]
    result = read_result_batch(data, ca_certificate=certificate)
    counts = {kind: 0 for kind in (Issued, IssueRefused, Revoked, RevokeRefused, Abandoned)}
    for item in result.results:
        counts[type(item)] += 1
    abandoned = f", {counts[Abandoned]} abandoned" if counts[Abandoned] else ""
    click.echo(
        f"batch {result.batch_id}: {counts[Issued]} issued, {counts[IssueRefused]} refused, "
        f"{counts[Revoked]} revoked, {counts[RevokeRefused]} revocations refused{abandoned}"
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
    with _open(settings, share_files, pin_file) as ca, work_lock(settings):
        # Under the work lock: a batch being signed at the same time issues its own CRL.
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
    """Check the ledger, then show the current CRL, batches, serials and anything unfinished.

    Exits 1 when there is no CRL or it has expired, a batch was left unfinished, or the CA
    cannot issue certificates; 2 when the ledger may not be used (lost, damaged, older than its
    record or than the CRL folder: restore it).
    """
    from ca.readiness import issuing_problems
    from ca.staging import leftovers

    for left in leftovers(ca_home):
        click.echo(f"WARNING: {left} holds the output of a ceremony that did not finish")
    settings = _settings(ca_home)
    now = utcnow()
    with open_ledger(settings) as ledger:
        stats = ledger.stats()
    crl = crl_status(stats.last_crl, validity=settings.crl.validity, now=now)
    click.echo(f"CA: {settings.name}")
    click.echo(f"ledger: {settings.ledger} (checked against its record and the CRL folder)")
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
    abandoned = f" ({stats.abandoned} of them abandoned)" if stats.abandoned else ""
    click.echo(
        f"batches: {batches or 'none'}{abandoned}; refused before processing: "
        f"{stats.batch_refusals}"
    )
    click.echo(
        f"serials: {stats.signed} issued, {stats.revoked} revoked, {stats.refused} requests refused"
    )
    for unfinished in unfinished_batches(settings):
        batch = unfinished.batch
        request = "" if unfinished.request_kept else " --request REQUEST.p7m"
        doing = "abandoning" if batch.abandoned_at else "processing"
        click.echo(
            f"WARNING: batch {batch.batch_id} from {batch.ra_name} was received "
            f"{_when(batch.received_at)} and stopped while {doing} ({batch.outcome}); finish "
            f"it: shomei ca resume-batch {batch.batch_id} OUT.p7m --ca-home {ca_home}{request}"
            f" (or abandon it: shomei ca abandon-batch {batch.batch_id} OUT.p7m ...)"
        )
    for record in stats.reserved_unsigned:
        click.echo(
            f"WARNING: serial {record.serial:x} (request {record.request_id}) was reserved "
            "but never signed (it is voided when its batch is resumed or abandoned)"
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
    if crl.state in ("none", "expired") or stats.unfinished_batches or cannot:
        raise SystemExit(1)
