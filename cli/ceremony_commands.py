"""``shomei ca ceremony``, ``verify-log``, ``trust-ra``, ``check-share``: ceremonies, custody."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ca import ceremony, ceremony_check
from ca.ceremony_config import CeremonyConfig, load_ceremony
from ca.custody.secretfile import read_pin_file
from ca.custody.shares import Share
from cli.errors import handle_errors, naming
from cli.groups import ca_group
from cli.prompts import read_hidden, read_shares
from shomei.clock import utcnow
from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed


def read_pin(pin_file: Path | None, *, prompt: bool) -> str | None:
    if pin_file is not None:
        return read_pin_file(pin_file)
    if prompt:
        return read_hidden("token PIN (input is hidden)").strip()
    return None


def _show(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return "(none)" if value is None else f'"{value}"'


def _dry_run(cfg: CeremonyConfig, config_file: Path, shares: list[Share], pin: str | None) -> None:
    now = utcnow()
    the_plan = ceremony.plan(cfg, now=now)
    state = (
        "exists"
        if the_plan.home.is_dir() and any(the_plan.home.iterdir())
        else "new: it will be created"
    )
    click.echo(f"Ceremony {cfg.ceremony.name!r} (dry run: nothing is written)")
    click.echo(f"  ceremony file: {config_file.resolve()}")
    click.echo(f"  CA home:       {the_plan.home} ({state})")
    if cfg.ceremony.shares_dir is not None:
        click.echo(f"  shares folder: {cfg.ceremony.shares_dir}")
    if cfg.ceremony.profiles is not None:
        click.echo(f"  profiles from: {cfg.ceremony.profiles}")
    click.echo("  (relative paths in the ceremony file are relative to the file's folder)")
    click.echo(
        f"operator: {cfg.ceremony.operator}; witnesses: "
        f"{', '.join(cfg.ceremony.witnesses) or '(none)'}"
    )
    for number, step in enumerate(the_plan.steps, start=1):
        click.echo(f"{number}. {step.action}: {step.description}")
        for out in step.outputs:
            marker = "EXISTS - would refuse" if out.suffix and out.exists() else "new"
            click.echo(f"     {out} ({marker})")
    if the_plan.settings:
        click.echo("then: the settings of the CA that issues office certificates, and its ledger")
        for out in the_plan.settings:
            click.echo(f"     {out} ({'EXISTS - would refuse' if out.exists() else 'new'})")
    for copy in the_plan.profiles:
        click.echo(f"     {copy.target} (new), from {copy.source}, with these values set:")
        for change in copy.changes:
            was = "" if change.old == change.new else f" (was {_show(change.old)})"
            click.echo(f"         {change.key} = {_show(change.new)}{was}")
    previous = f", linked to {the_plan.previous.name}" if the_plan.previous else ""
    click.echo(f"transcript: {the_plan.transcript} (+ .p7s){previous}")
    report = ceremony_check.check(cfg, now=now, shares=shares, pin=pin)
    for note in report.notes:
        click.echo(f"note: {note}")
    click.echo("checks:")
    for finding in report.findings:
        click.echo(f"  {'ok' if finding.ok else 'PROBLEM'}: {finding.message}")
    problems = report.problems
    if problems:
        raise Refused(
            f"the dry run found {len(problems)} problem(s), listed above; the ceremony would "
            "refuse to start",
            message_ja=f"ドライランで {len(problems)} 件の問題が見つかりました(上記)。"
            "この儀式は開始できません",
        )
    click.echo("The ceremony can run: nothing it needs is missing.")


@ca_group.command("ceremony")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print the plan and check it; change nothing.")
@click.option(
    "--share-file",
    "share_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="A custodian share opening an existing CA key (repeat M times).",
)
@click.option(
    "--pin-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="File holding the PKCS#11 token PIN (else asked when needed).",
)
@handle_errors
def ceremony_command(
    config_file: Path, dry_run: bool, share_files: tuple[Path, ...], pin_file: Path | None
) -> None:
    """Run the key ceremony described by CONFIG_FILE (reviewed, strict TOML)."""
    cfg = load_ceremony(config_file)
    shares = read_shares(share_files)
    if dry_run:
        _dry_run(cfg, config_file, shares, read_pin(pin_file, prompt=False))
        return
    needs_pin = any(spec.key.backend == "pkcs11" for spec in cfg.new_cas().values())
    pin = read_pin(pin_file, prompt=needs_pin)
    result = ceremony.run(
        cfg, config_path=config_file, now=utcnow(), shares=shares, pin=pin, echo=click.echo
    )
    click.echo("written:")
    for path in result.written:
        click.echo(f"  {path}")
    if result.share_files:
        click.echo("custodian shares (print each one for its custodian, then delete the file):")
        for path in result.share_files:
            click.echo(f"  {path}")


@ca_group.command("verify-log")
@click.option(
    "--ca-home", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.argument("transcripts", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def verify_log_command(ca_home: Path, transcripts: tuple[Path, ...]) -> None:
    """Check the ceremony transcripts: each one's hash chain and signature, and their links.

    Without TRANSCRIPTS, all of them in order: a missing, moved or replaced transcript is
    reported, as is a CA certificate or root CRL that no transcript records.
    """
    from ca.context import load_certificates
    from ca.staging import leftovers
    from ca.transcript import transcripts_in, unrecorded_files, verify_chain, verify_transcript

    trusted = [
        c
        for which in ("root", "issuing")
        if (ca_home / which / f"{which}.pem").is_file()
        for c in load_certificates(ca_home / which / f"{which}.pem")
    ]
    for left in leftovers(ca_home):
        click.echo(f"NOTE: {left} holds the output of a ceremony that did not finish", err=True)
    if not trusted and not transcripts_in(ca_home / "transcripts"):
        # Nothing to check against or to check: a wrong folder, not a tampered CA home.
        raise NotFound(
            f"{ca_home} is not a CA home: it holds no CA certificate (root/root.pem, "
            "issuing/issuing.pem) and no transcripts/",
            message_ja=f"{ca_home} は認証局のホームフォルダではありません"
            "(CA 証明書も transcripts/ もありません)",
        )
    if transcripts:
        reports = [verify_transcript(p, trusted=trusted) for p in transcripts]
    elif trusted and not transcripts_in(ca_home / "transcripts"):
        raise VerificationFailed(
            f"{ca_home} holds CA certificates but no ceremony transcript: they were deleted",
            message_ja=f"{ca_home} に CA 証明書はありますが儀式の記録がありません(削除)",
        )
    else:
        reports = verify_chain(ca_home / "transcripts", trusted=trusted)
    for report in reports:
        link = (
            f", follows {report.previous['file']}"
            if report.previous
            else (", first" if report.format.endswith("/2") else ", unlinked (format 1)")
        )
        click.echo(
            f"OK {report.path.name}: {report.lines} lines, ceremony {report.ceremony!r}, "
            f"signed by {report.signer.subject.rfc4514_string()}, "
            f"{report.started.isoformat()} .. {report.ended.isoformat()}{link}"
        )
    if not transcripts:
        missing = unrecorded_files(ca_home, reports)
        if missing:
            raise VerificationFailed(
                f"{missing[0]} is not recorded by any transcript: the transcript of the "
                "ceremony that made it is missing",
                message_ja=f"{missing[0]} を記録した儀式の記録がありません(記録の欠落)",
            )


@ca_group.command("trust-ra")
@click.option(
    "--ca-home", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.argument("certificate", type=click.Path(dir_okay=False, path_type=Path))
@handle_errors
def trust_ra_command(ca_home: Path, certificate: Path) -> None:
    """Pin the RA link CERTIFICATE (PEM) so the CA accepts batches it signed."""
    from ca.trust import pin_ra_certificate
    from shomei.files import read_bytes

    data = read_bytes(certificate, what="link certificate", what_ja="連携証明書")
    with naming(certificate, MalformedInput, Refused):
        stored = pin_ra_certificate(ca_home, data, now=utcnow())
    click.echo(f"pinned: {stored}")


@ca_group.command("check-share")
@handle_errors
def check_share_command() -> None:
    """A custodian types a share back (hidden); prints OK with its fingerprint, or NG."""
    from ca.custody.__main__ import check_text

    code, report = check_text(read_hidden("share (input is hidden)"))
    click.echo(report, nl=False)
    if code:
        sys.exit(code)
