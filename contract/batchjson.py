"""Strict reading of the JSON documents inside RA↔CA batches (docs/batch-format.md).

A batch is evidence of what the RA asked and the CA did, so its JSON is read strictly: UTF-8
only (RFC 8259 §8.1), no duplicate keys (§4 leaves them undefined), no NaN or Infinity, every
object with exactly the keys the format names, every value of the expected type and shape.
Any deviation is :class:`shomei.errors.MalformedInput` with an English and a Japanese message
that name the field.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any

from shomei.errors import MalformedInput

# Base64 fields carry at most a whole result batch's CRL or certificate.
MAX_FIELD_BYTES = 512 * 1024 * 1024
HEX_SERIAL = re.compile(r"[0-9a-f]{1,40}")


def malformed(message: str, message_ja: str, **fields: Any) -> MalformedInput:
    return MalformedInput(
        f"malformed batch: {message}",
        message_ja=f"バッチの形式が正しくありません: {message_ja}",
        **fields,
    )


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise malformed(f"key {name!r} appears twice", f"キー {name!r} が重複しています")
        result[name] = value
    return result


def no_constants(name: str) -> Any:
    raise malformed(f"{name} is not allowed", f"{name} は使えません")


def load_json(data: bytes) -> dict[str, Any]:
    try:
        document = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=no_duplicate_keys,
            parse_constant=no_constants,
        )
    except UnicodeDecodeError as exc:
        raise malformed("not UTF-8", "UTF-8 ではありません") from exc
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, MalformedInput):
            raise
        raise malformed(f"not JSON ({exc})", "JSON として読めません") from exc
    if not isinstance(document, dict):
        raise malformed("the document is not a JSON object", "JSON オブジェクトではありません")
    return document


class Fields:
    """Typed, strict access to one JSON object whose keys must be exactly ``keys``."""

    def __init__(self, value: Any, where: str, keys: set[str]) -> None:
        if not isinstance(value, dict):
            raise malformed(
                f"{where} must be an object", f"{where} はオブジェクトでなければなりません"
            )
        unknown = sorted(set(value) - keys)
        missing = sorted(keys - set(value))
        if unknown:
            raise malformed(
                f"{where}: unknown key {unknown[0]!r}", f"{where}: 不明なキー {unknown[0]!r}"
            )
        if missing:
            raise malformed(
                f"{where}: missing key {missing[0]!r}", f"{where}: キー {missing[0]!r} がありません"
            )
        self._value = value
        self._where = where

    def _type(self, name: str, kind: type, kind_ja: str) -> Any:
        value = self._value[name]
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise malformed(
                f"{self._where}.{name} must be {kind.__name__}",
                f"{self._where}.{name} は{kind_ja}でなければなりません",
            )
        return value

    def text(self, name: str, *, pattern: re.Pattern[str] | None = None, limit: int = 1024) -> str:
        value: str = self._type(name, str, "文字列")
        if (
            not value
            or len(value) > limit
            or (pattern is not None and not pattern.fullmatch(value))
        ):
            raise malformed(
                f"{self._where}.{name} is not a valid value: {value[:60]!r}",
                f"{self._where}.{name} の値が正しくありません: {value[:60]!r}",
            )
        return value

    def array(self, name: str) -> list[Any]:
        value: list[Any] = self._type(name, list, "配列")
        return value

    def choice(self, name: str, allowed: frozenset[str]) -> str:
        value = self.text(name)
        if value not in allowed:
            raise malformed(
                f"{self._where}.{name}: {value!r} is not one of {', '.join(sorted(allowed))}",
                f"{self._where}.{name}: {value!r} は使えません({', '.join(sorted(allowed))})",
            )
        return value

    def time(self, name: str) -> dt.datetime:
        value = self.text(name, limit=40)
        try:
            parsed = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError as exc:
            raise malformed(
                f"{self._where}.{name} must be a UTC time like 2026-04-01T00:00:00Z",
                f"{self._where}.{name} は 2026-04-01T00:00:00Z 形式の UTC 時刻でなければなりません",
            ) from exc
        return parsed.replace(tzinfo=dt.UTC)

    def b64(self, name: str, *, limit: int = MAX_FIELD_BYTES) -> bytes:
        value = self.text(name, limit=limit)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise malformed(
                f"{self._where}.{name} is not base64",
                f"{self._where}.{name} が base64 ではありません",
            ) from exc

    def serial(self, name: str) -> int:
        value = self.text(name, pattern=HEX_SERIAL, limit=40)
        serial = int(value, 16)
        if serial == 0:
            raise malformed(f"{self._where}.{name} is zero", f"{self._where}.{name} が 0 です")
        return serial
