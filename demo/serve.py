"""``make run`` / ``shomei demo serve``: the demonstration federation, running.

Builds the demo federation (:func:`demo.federation.build_demo`) unless the folder already
holds one (``--fresh`` rebuilds it), then runs it as a federation would, each part on its own:

- an SMTP sink (:mod:`demo.mailbox`) in a thread of this process, on a free local port that is
  written into the demo's ``ra.toml`` (``[ra.mail] smtp_port``); it keeps every mail in
  ``mailbox/``, which admins read at ``/console/mailbox``;
- ``shomei ra serve`` (the web application under gunicorn) and ``shomei ra scheduler`` (the
  jobs: dispatch to the inline CA, rejections, mail), each its own process and process group.

It prints the URLs and the demo logins (the TOTP secrets as otpauth URIs) and runs until
SIGINT (Ctrl-C) or SIGTERM; then it stops both processes (SIGTERM, then SIGKILL of the whole
group after a grace period, so no worker is left behind) and the sink.  If either process
ends by itself, everything stops and the exit status says so.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from demo.federation import MARKER, build_demo
from demo.mailbox import SmtpSink
from shomei.errors import ConfigError, StateError

Echo = Callable[[str], None]
GRACE_SECONDS = 15  # how long a stopped process may take before its group is killed


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def has_demo(folder: Path) -> bool:
    """Whether ``folder`` holds a complete demo federation (made by ``shomei demo``)."""
    return all((folder / name).is_file() for name in (MARKER, "ra.toml", "demo-accounts.txt"))


def set_smtp_port(settings_file: Path, port: int) -> None:
    """Point the demo's ``[ra.mail]`` at the sink's port (the one line the demo wrote)."""
    text = settings_file.read_text(encoding="utf-8")
    new, found = re.subn(r"(?m)^smtp_port\s*=.*$", f"smtp_port = {port}", text, count=1)
    if not found:
        raise ConfigError(
            f"{settings_file} has no smtp_port line; rebuild the demo with --fresh",
            message_ja=f"{settings_file} に smtp_port がありません(--fresh で作り直してください)",
        )
    settings_file.write_text(new, encoding="utf-8")


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals


def _start(name: str, args: list[str], log: Path, stop_signal: signal.Signals) -> Child:
    shomei = Path(sys.executable).with_name("shomei")
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(shomei), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group: Ctrl-C reaches this process only, which stops the children
            # in order, and killpg reaches gunicorn's workers too.
            start_new_session=True,
        )
    return Child(name, process, stop_signal)


def _stop(children: list[Child]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(child.stop_signal)
    deadline = time.monotonic() + GRACE_SECONDS
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:  # the group too: a worker whose master died must not outlive the demo
            os.killpg(child.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        child.process.wait()


def _wait_for_site(url: str, web: Child, log: Path, stop: threading.Event) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not stop.is_set():
        if web.process.poll() is not None:
            raise StateError(
                f"the web server stopped at its start; see {log}",
                message_ja=f"Web サーバーが起動時に停止しました({log} を参照)",
            )
        try:
            with urllib.request.urlopen(url + "/auth/sign-in", timeout=2) as answer:  # noqa: S310
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    if not stop.is_set():
        raise StateError(
            f"the web server did not answer within 60 s; see {log}",
            message_ja=f"Web サーバーが 60 秒以内に応答しませんでした({log} を参照)",
        )


def serve_demo(
    folder: Path,
    *,
    fresh: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    smtp_port: int | None = None,
    echo: Echo = print,
) -> int:
    """Build (or reuse) the demo in ``folder`` and run it until a signal; the exit status."""
    folder = folder.resolve()
    if fresh or not has_demo(folder):
        started = time.monotonic()
        build_demo(folder, fresh=fresh, echo=echo)
        echo(f"\nThe demo federation was built in {time.monotonic() - started:.0f} s.")
    else:
        echo(f"Reusing the demo federation in {folder} (make run FRESH=1 rebuilds it).")
        if "demo_mailbox" not in (folder / "ra.toml").read_text(encoding="utf-8"):
            echo("This demo was made by an older Shomei: FRESH=1 adds the mailbox and the crowd.")
    settings_file = folder / "ra.toml"
    mailbox = folder / "mailbox"
    sink = SmtpSink(mailbox, port=smtp_port or free_port())
    set_smtp_port(settings_file, sink.port)

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    logs = folder / "logs"
    logs.mkdir(exist_ok=True)
    children: list[Child] = []
    url = f"http://{host}:{port}"
    try:
        sink.start()
        settings = ["--settings", str(settings_file)]
        web_log = logs / "web.log"
        children.append(
            _start(
                "web",
                ["ra", "serve", *settings, "--bind", f"{host}:{port}", "--workers", "2"],
                web_log,
                signal.SIGTERM,  # gunicorn: graceful stop of the workers
            )
        )
        # The mails the build queued go out now rather than at the scheduler's first minute,
        # so the mailbox has something to show at once (the same job the scheduler runs).
        subprocess.run(
            [
                str(Path(sys.executable).with_name("shomei")),
                "ra",
                "run-job",
                "send-mail",
                *settings,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            timeout=120,
        )
        children.append(
            _start(
                "scheduler", ["ra", "scheduler", *settings], logs / "scheduler.log", signal.SIGTERM
            )
        )
        _wait_for_site(url, children[0], web_log, stop)
        if not stop.is_set():
            echo(_banner(folder, url, sink.port))
        while not stop.wait(0.5):
            ended = [c for c in children if c.process.poll() is not None]
            if ended:
                echo(f"{ended[0].name} stopped by itself (see {logs}); stopping the demo")
                return 1
        echo(f"\n{received[0] if received else 'signal'}: stopping the demo")
        return 0
    finally:
        _stop(children)
        sink.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _banner(folder: Path, url: str, smtp_port: int) -> str:
    accounts = (folder / "demo-accounts.txt").read_text(encoding="utf-8").rstrip()
    return (
        "\nThe demo federation is running (Ctrl-C stops it):\n"
        f"  console          {url}/console/\n"
        f"  portal           {url}/portal/  (offices and the agent below)\n"
        f"  sign-in          {url}/auth/sign-in\n"
        f"  demo mailbox     {url}/console/mailbox  (admins; SMTP sink on 127.0.0.1:{smtp_port})\n"
        f"  logs             {folder}/logs/\n\n"
        f"Demo logins ({folder}/demo-accounts.txt):\n{accounts}\n\n"
        "Console users sign in with the user ID, the login password and a code from the TOTP\n"
        'secret (add the otpauth URI to an authenticator app, or: python -c "import pyotp; '
        "print(pyotp.parse_uri('URI').now())\")."
    )
