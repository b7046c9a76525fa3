"""The demo's SMTP sink: every mail the RA sends is kept as a ``.eml`` file in a folder.

The running demo (:mod:`demo.serve`) points ``[ra.mail]`` at this sink, so the scheduler's
``send-mail`` job speaks real SMTP, and the console's demo mailbox page
(:mod:`ra.web.console.mailbox`) reads the folder.  The sink is aiosmtpd in a thread of the
demo's own process, on 127.0.0.1 only; it never relays anything anywhere.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from pathlib import Path
from typing import Any

from shomei.errors import ConfigError


class _Keeper:
    """aiosmtpd handler: write each message's bytes, atomically, to ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        data = envelope.original_content or envelope.content
        if isinstance(data, str):  # pragma: no cover - aiosmtpd gives bytes with decode_data off
            data = data.encode("utf-8")
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"{stamp}-{secrets.token_hex(4)}.eml"
        partial = self.folder / f".{name}.part"
        partial.write_bytes(data)
        os.replace(partial, self.folder / name)  # the console never sees half a mail
        return "250 Message accepted for delivery"


class SmtpSink:
    """A local SMTP server that keeps every message in ``folder`` (start, then stop)."""

    def __init__(self, folder: Path, *, port: int, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self._controller: Any = None

    def start(self) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise ConfigError(
                "the demo's SMTP sink needs aiosmtpd (pip install -e '.[dev]')",
                message_ja="デモのメール受信には aiosmtpd が必要です(pip install -e '.[dev]')",
            ) from exc
        self.folder.mkdir(parents=True, exist_ok=True)
        self._controller = Controller(_Keeper(self.folder), hostname=self.host, port=self.port)
        try:
            self._controller.start()
        except (OSError, RuntimeError) as exc:
            self._controller.loop.close()  # its thread never ran: the loop is ours to close
            self._controller = None
            raise ConfigError(
                f"the demo's SMTP sink cannot listen on {self.host}:{self.port}: {exc}",
                message_ja=f"デモのメール受信を {self.host}:{self.port} で開始できません: {exc}",
            ) from exc

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
