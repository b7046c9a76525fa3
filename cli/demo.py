"""``shomei demo DIR``: the demonstration federation (see :mod:`demo.federation`), made in DIR."""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import handle_errors
from demo.federation import build_demo
from shomei.files import check_output_folder


@click.command("demo")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Replace an earlier demo folder.")
@handle_errors
def demo_command(folder: Path, fresh: bool) -> None:
    """Build a complete demonstration federation in FOLDER through the real code paths."""
    check_output_folder(folder, what="demo folder", what_ja="デモ用フォルダ")
    result = build_demo(folder, fresh=fresh, echo=click.echo)
    click.echo(f"\nMade in {result.folder}:")
    for name, what in result.files.items():
        click.echo(f"  {name:<26} {what}")
    f = result.folder
    click.echo(
        "\nTry (with .venv/bin on your PATH):\n"
        f"  shomei verify {f}/claim.txt --signature {f}/claim.txt.p7s "
        f"--trust {f}/root.pem --crl {f}/issuing.crl\n"
        f"  shomei verify {f}/revoked-claim.txt --signature {f}/revoked-claim.txt.p7s "
        f"--trust {f}/root.pem --crl {f}/issuing.crl\n"
        f"  shomei ra show 1 --settings {f}/ra.toml\n"
        f"  shomei ra verify-audit --settings {f}/ra.toml\n"
        f"  shomei ca status --ca-home {f}/ca-home\n"
        f"  shomei ca verify-log --ca-home {f}/ca-home"
    )


COMMANDS = (demo_command,)
