"""``shomei ra serve``: the RA's web application under gunicorn, for production.

The settings are read and checked once, in the master process (a wrong setting stops the
start with one line), and the session key is created there if missing, so all workers sign
cookies with the same key; each worker then builds its own application and database engine
after the fork (a connection pool must not be shared across processes).  The scheduler is
not started here: it runs as its own process (``shomei ra scheduler``).  Behind a TLS reverse
proxy, set ``[ra.web] behind_tls = true`` and bind to 127.0.0.1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click

from cli.errors import handle_errors
from ra.settings import RASettings, load_ra_settings
from ra.store.vault import ensure_session_key, load_vault
from shomei.errors import ConfigError
from shomei.logs import gunicorn_config


def _application(settings: RASettings, options: dict[str, Any]) -> Any:
    from gunicorn.app.base import BaseApplication

    class Server(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
        def load_config(self) -> None:
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            from ra.web import create_app

            return create_app(settings)

    return Server()


def _metrics_folder(settings: RASettings) -> None:
    """Where the workers keep their request counters for ``/metrics`` (ra.web.metrics).

    ``PROMETHEUS_MULTIPROC_DIR`` as the environment gives it, else ``data_dir/metrics``;
    emptied at each start, since counters of a server no longer running must not be summed.
    """
    folder = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or settings.data_dir / "metrics")
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def _worker_exited_hook() -> Any:
    """gunicorn's ``child_exit``: forget a dead worker's live gauges.

    prometheus-client is imported here, in the master before it serves, never inside the hook:
    the hook runs in a signal handler, where a first import can meet a half-imported module.
    """
    from prometheus_client import multiprocess

    def worker_exited(_server: Any, worker: Any) -> None:
        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]

    return worker_exited


@click.command("serve")
@click.option(
    "--settings",
    "settings_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The RA settings file (TOML, table [ra]).",
)
@click.option(
    "--bind",
    default="127.0.0.1:8000",
    show_default=True,
    help="Address and port to listen on (HOST:PORT).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=2,
    show_default=True,
    help="Number of worker processes.",
)
@handle_errors
def serve(settings_path: Path, bind: str, workers: int) -> None:
    """Serve the RA web application (console) under gunicorn until stopped (Ctrl-C)."""
    settings = load_ra_settings(settings_path)
    if settings.web.secret_key_file is None:  # pragma: no cover - load_ra_settings sets it
        raise ConfigError(
            "no [ra.web] secret_key_file", message_ja="[ra.web] secret_key_file がありません"
        )
    ensure_session_key(settings.web.secret_key_file)
    load_vault(settings.secrets_key_file)  # a missing or shared key stops the start here
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"--bind must be HOST:PORT, not {bind!r}",
            message_ja=f"--bind は HOST:PORT の形式で指定してください({bind!r})",
        )
    _metrics_folder(settings)
    options = {
        "child_exit": _worker_exited_hook(),
        "bind": bind,
        "workers": workers,
        "accesslog": "-",
        "errorlog": "-",
        "proc_name": "shomei-ra-web",
        # Every line JSON, with the request id the error page shows (shomei.logs).
        **gunicorn_config(),
        # Behind a proxy, trust its X-Forwarded-* only from the proxy on this host.
        "forwarded_allow_ips": "127.0.0.1",
    }
    _application(settings, options).run()


RA_COMMANDS = (serve,)
