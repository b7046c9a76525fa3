"""Logs of the long-running services as one JSON object a line, with the request id.

``shomei ra serve`` and ``shomei ra scheduler`` log this way (a log shipper reads each line as
one event; nothing has to parse free text): ``time`` (UTC, ISO 8601), ``level``, ``logger``,
``message``, ``request_id`` when the line was written while a web request was being answered
(the same id the error page shows the clerk and the ``X-Request-Id`` header carries, so a phone
call can be matched to its lines), and ``exception`` with the traceback when there is one.

What is logged is chosen where it is logged: messages carry ids, codes and counts, never a
password, a code, a key or a request body; :class:`JsonFormatter` also drops any extra field
whose name says it holds a secret, as a second line of defence.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("shomei_request_id", default=None)
# Attributes every LogRecord has: not copied as extra fields.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_SECRET_WORDS = ("password", "secret", "token", "passphrase", "pin", "key", "code")


class JsonFormatter(logging.Formatter):
    """One JSON object per record (UTF-8 text, Japanese kept as it is)."""

    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            event["request_id"] = request_id
        for name, value in vars(record).items():
            if name in _STANDARD or name == "request_id" or name.startswith("_"):
                continue
            if any(word in name.lower() for word in _SECRET_WORDS):
                continue
            event[name] = value if isinstance(value, (str, int, float, bool)) else repr(value)
        if record.exc_info:
            event["exception"] = self.formatException(record.exc_info)
        return json.dumps(event, ensure_ascii=False)


def gunicorn_config() -> dict[str, Any]:
    """gunicorn's ``logconfig_dict`` and ``access_log_format``: every line JSON.

    The access line is JSON made by gunicorn itself (path without the query string, which may
    carry a searched user ID; the request id from our response header).
    """
    access = (
        '{"time": "%(t)s", "logger": "access", "request_id": "%({x-request-id}o)s", '
        '"method": "%(m)s", "path": "%(U)s", "status": %(s)s, "bytes": "%(B)s", '
        '"duration_ms": %(M)s, "remote": "%(h)s"}'
    )
    handlers = {
        "events": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "raw",
            "stream": "ext://sys.stdout",
        },
    }
    return {
        "access_log_format": access,
        "logconfig_dict": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {"()": "shomei.logs.JsonFormatter"},
                "raw": {"format": "%(message)s"},
            },
            "handlers": handlers,
            "root": {"level": "WARNING", "handlers": ["events"]},
            "loggers": {
                "shomei": {"level": "INFO"},
                "gunicorn.error": {"level": "INFO", "handlers": ["events"], "propagate": False},
                "gunicorn.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
            },
        },
    }


def configure_json(level: int = logging.INFO) -> None:
    """Log JSON lines to stderr: Shomei's events from ``level``, other libraries' warnings."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logging.getLogger("shomei").setLevel(level)
