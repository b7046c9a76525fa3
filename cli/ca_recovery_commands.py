"""``shomei ca resume-batch`` and ``shomei ca abandon-batch``: a batch a crash left unfinished.

Thin commands around :mod:`ca.recovery`: the batch is named by its id (``shomei ca status``
lists the unfinished ones); the request comes from the copy the CA home kept, or from
``--request`` for a batch begun before copies were kept.  A finished batch needs no key:
its kept result is written again.  docs/ca-operator-guide.md gives the procedure.
"""

from __future__ import annotations

from pathlib import Path

import click

from ca.batchstore import read_kept, request_path
from ca.recovery import abandon_batch, resume_batch
from ca.signbatch import Answer, check_request
from cli.ca_commands import (
    _open,
    _settings,
    ca_home_option,
    pin_option,
    refuse_existing,
    report_result,
    share_option,
    write_result,
)
from cli.errors import handle_errors, naming
from cli.groups import ca_group
from shomei.clock import utcnow
from shomei.errors import MalformedInput, NotFound, VerificationFailed
from shomei.files import read_bytes

request_option = click.option(
    "--request",
    "request_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The request batch file, when the CA home kept no copy of it.",
)


def _request(ca_home: Path, batch_id: str, request_file: Path | None) -> bytes:
    settings = _settings(ca_home)
    if request_file is not None:
        return read_bytes(request_file, what="request batch", what_ja="依頼バッチ")
    kept = read_kept(request_path(settings, batch_id))
    if kept is None:
        raise NotFound(
            f"the CA home keeps no copy of batch {batch_id}; give the request file with --request",
            message_ja=f"バッチ {batch_id} の依頼の控えがありません。--request で指定してください",
            batch_id=batch_id,
        )
    return kept


def _done(answer: Answer, out_file: Path, ca_home: Path) -> None:
    settings = _settings(ca_home)
    write_result(out_file, answer.result, batch_id=answer.batch_id, kept=answer.kept_at)
    if answer.reopened is not None:
        click.echo(
            f"batch {answer.batch_id}: {answer.reopened.signed} certificate(s) were already "
            f"signed (answered from the ledger, not signed again); "
            f"{answer.reopened.voided} reserved serial(s) voided",
            err=True,
        )
    report_result(answer.result, out_file, settings)
    click.echo(f"the result is also kept at {answer.kept_at}")


@ca_group.command("resume-batch")
@click.argument("batch_id")
@click.argument("out_file", type=click.Path(dir_okay=False, path_type=Path))
@ca_home_option
@request_option
@share_option
@pin_option
@handle_errors
def resume_batch_command(
    batch_id: str,
    out_file: Path,
    ca_home: Path,
    request_file: Path | None,
    share_files: tuple[Path, ...],
    pin_file: Path | None,
) -> None:
    """Finish batch BATCH_ID that a crash left unfinished; write its result to OUT_FILE.

    What the ledger recorded as signed is answered from the ledger, never signed twice;
    serials reserved but never signed are voided; the rest is signed now.
    """
    refuse_existing(out_file)
    settings = _settings(ca_home)
    data = _request(ca_home, batch_id, request_file)
    with naming(request_file or "the kept request", MalformedInput, VerificationFailed):
        checked = check_request(settings, data, now=utcnow(), also=(out_file.parent,))
    if checked.request.batch_id != batch_id:
        raise NotFound(
            f"the request file is batch {checked.request.batch_id}, not {batch_id}",
            message_ja=f"依頼ファイルはバッチ {checked.request.batch_id} です",
        )
    if checked.result is not None:
        write_result(out_file, checked.result, batch_id=batch_id, kept=checked.kept_at)
        click.echo(
            f"batch {batch_id} was already finished; its kept result {checked.kept_at} was "
            "written again (nothing was signed)",
            err=True,
        )
        report_result(checked.result, out_file, settings)
        return
    with _open(settings, share_files, pin_file) as ca:
        answer = resume_batch(
            ca, batch_id, now=utcnow(), request_bytes=data, also=(out_file.parent,)
        )
    _done(answer, out_file, ca_home)


@ca_group.command("abandon-batch")
@click.argument("batch_id")
@click.argument("out_file", type=click.Path(dir_okay=False, path_type=Path))
@ca_home_option
@request_option
@click.option(
    "--revoke-signed",
    is_flag=True,
    help="Revoke the certificates already signed for the batch instead of delivering them.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@share_option
@pin_option
@handle_errors
def abandon_batch_command(
    batch_id: str,
    out_file: Path,
    ca_home: Path,
    request_file: Path | None,
    revoke_signed: bool,
    yes: bool,
    share_files: tuple[Path, ...],
    pin_file: Path | None,
) -> None:
    """Abandon batch BATCH_ID for good; write the result to OUT_FILE for the RA.

    Certificates already signed for it are delivered in the result (or revoked, with
    --revoke-signed, and listed on its CRL); its revocations are applied; every other issue
    request is answered "abandoned", and the RA may send it again (shomei ra re-request).
    """
    refuse_existing(out_file)
    settings = _settings(ca_home)
    data = _request(ca_home, batch_id, request_file)
    if not yes:
        click.confirm(
            f"Abandon batch {batch_id} for good? Nothing more will be signed for it",
            abort=True,
            err=True,
        )
    with (
        _open(settings, share_files, pin_file) as ca,
        naming(request_file or "the kept request", MalformedInput, VerificationFailed),
    ):
        answer = abandon_batch(
            ca,
            batch_id,
            now=utcnow(),
            request_bytes=data,
            revoke_signed=revoke_signed,
            also=(out_file.parent,),
        )
    if answer.how == "kept":
        click.echo(f"batch {batch_id} had already been answered; its kept result was written")
    _done(answer, out_file, ca_home)


COMMANDS: tuple[click.Command, ...] = ()
