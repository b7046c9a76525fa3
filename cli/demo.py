"""``shomei demo DIR``: the demonstration federation (see :mod:`demo.federation`), made in DIR.

With ``--serve`` (what ``make run`` runs) the federation is then run: the web application, the
scheduler and a local SMTP sink, until Ctrl-C (see :mod:`demo.serve`).
"""

from __future__ import annotations

from pathlib import Path

import click

from cli.errors import handle_errors
from demo.federation import build_demo
from shomei.files import check_output_folder


@click.command("demo")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--fresh", is_flag=True, help="Replace an earlier demo folder.")
@click.option(
    "--serve",
    is_flag=True,
    help="Then run it (web application, scheduler, SMTP sink) until Ctrl-C; "
    "an earlier demo in FOLDER is reused unless --fresh.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="With --serve: the web application's port on 127.0.0.1.",
)
@click.option(
    "--smtp-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="With --serve: the SMTP sink's port on 127.0.0.1 (default: a free one).",
)
@handle_errors
def demo_command(folder: Path, fresh: bool, serve: bool, port: int, smtp_port: int | None) -> None:
    """Build a complete demonstration federation in FOLDER through the real code paths."""
    check_output_folder(folder, what="demo folder", what_ja="デモ用フォルダ")
    if serve:
        from demo.serve import serve_demo

        code = serve_demo(folder, fresh=fresh, port=port, smtp_port=smtp_port, echo=click.echo)
        raise SystemExit(code)
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
