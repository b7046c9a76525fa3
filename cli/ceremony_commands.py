"""``shomei ca ceremony`` and ``shomei ca verify-log``: key ceremonies and their transcripts."""

from __future__ import annotations

from pathlib import Path

import click

from ca import ceremony
from ca.ceremony_config import load_ceremony
from ca.custody.shares import Share, parse_share
from ca.transcript import verify_transcript
from cli.errors import handle_errors
from cli.groups import ca_group
from shomei.clock import utcnow
from shomei.errors import NotFound


def read_shares(files: tuple[Path, ...]) -> list[Share]:
    """Custodian shares from files (one share per file, as the ceremony printed it)."""
    return [parse_share(f.read_text(encoding="utf-8")) for f in files]


def read_pin(pin_file: Path | None, *, prompt: bool) -> str | None:
    if pin_file is not None:
        return pin_file.read_text(encoding="utf-8").strip()
    if prompt:
        return str(click.prompt("token PIN", hide_input=True))
    return None


@ca_group.command("ceremony")
@click.argument("config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would happen; change nothing.")
@click.option(
    "--share-file",
    "share_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A custodian share opening an existing CA key (repeat M times).",
)
@click.option(
    "--pin-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="File holding the PKCS#11 token PIN (else asked when needed).",
)
@handle_errors
def ceremony_command(
    config_file: Path, dry_run: bool, share_files: tuple[Path, ...], pin_file: Path | None
) -> None:
    """Run the key ceremony described by CONFIG_FILE (reviewed, strict TOML)."""
    cfg = load_ceremony(config_file)
    steps = ceremony.plan(cfg)
    if dry_run:
        click.echo(
            f"Ceremony {cfg.ceremony.name!r} on CA home {cfg.ceremony.ca_home} "
            "(dry run: nothing is written)"
        )
        click.echo(
            f"operator: {cfg.ceremony.operator}; witnesses: "
            f"{', '.join(cfg.ceremony.witnesses) or '(none)'}"
        )
        for number, step in enumerate(steps, start=1):
            click.echo(f"{number}. {step.action}: {step.description}")
            for out in step.outputs:
                state = "EXISTS - would refuse" if out.suffix and out.exists() else "new"
                click.echo(f"     {out} ({state})")
        return
    needs_pin = any(
        spec is not None and spec.key.backend == "pkcs11" for spec in (cfg.root, cfg.issuing)
    )
    pin = read_pin(pin_file, prompt=needs_pin)
    result = ceremony.run(
        cfg,
        config_path=config_file,
        now=utcnow(),
        shares=read_shares(share_files),
        pin=pin,
        echo=click.echo,
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
    """Check the hash chain and signature of ceremony transcripts (all of them by default)."""
    from cryptography import x509

    trusted = [
        x509.load_pem_x509_certificate(p.read_bytes())
        for p in sorted(ca_home.glob("*/*.pem"))
        if p.parent.name in ("root", "issuing")
    ]
    files = list(transcripts) or sorted((ca_home / "transcripts").glob("*.log"))
    if not files:
        raise NotFound(
            f"no transcripts in {ca_home / 'transcripts'}", message_ja="儀式の記録がありません"
        )
    for path in files:
        report = verify_transcript(path, trusted=trusted)
        click.echo(
            f"OK {path.name}: {report.lines} lines, ceremony {report.ceremony!r}, "
            f"signed by {report.signer.subject.rfc4514_string()}, "
            f"{report.started.isoformat()} .. {report.ended.isoformat()}"
        )


@ca_group.command("trust-ra")
@click.option(
    "--ca-home", required=True, type=click.Path(exists=True, file_okay=False, path_type=Path)
)
@click.argument("certificate", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@handle_errors
def trust_ra_command(ca_home: Path, certificate: Path) -> None:
    """Pin the RA link CERTIFICATE (PEM) so the CA accepts batches it signed."""
    from ca.trust import pin_ra_certificate

    stored = pin_ra_certificate(ca_home, certificate.read_bytes())
    click.echo(f"pinned: {stored}")


@ca_group.command("check-share")
def check_share_command() -> None:
    """A custodian types a share back (stdin); prints OK with its fingerprint, or NG."""
    import sys

    from ca.custody.__main__ import main as check

    sys.exit(check())
