"""Strict, typed loading of TOML configuration into frozen dataclasses.

Settings, certificate profiles and ceremony files are all loaded through :func:`load`, once,
at start-up.  A key the dataclass does not declare is an error that names the key (with its
dotted path), as is a missing required key or a value of the wrong type.  Supported field
types: ``str``, ``int``, ``float``, ``bool``, :class:`pathlib.Path`, :class:`datetime.timedelta`
(given as whole days, ``"7d"``, or hours, ``"36h"``), ``Literal[...]``, ``X | None``,
``list[X]``, ``tuple[X, ...]`` and nested dataclasses (TOML tables).  Relative paths are made
absolute against the folder of the file they were read from.  A field declared with
:func:`derived` is not read from the file at all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from shomei.errors import ConfigError, NotFound, ShomeiError
from shomei.files import MAX_TEXT, read_bytes

T = TypeVar("T")

_DURATION = re.compile(r"^\s*(\d+)\s*([dhms])\s*$")
# Field metadata of a value the loader computes from other keys (see :func:`derived`).
DERIVED = "shomei.config.derived"


def derived(default: Any) -> Any:
    """A dataclass field that no file may set: the code fills it in after loading (for example
    what the files a setting names contain).  A key of that name is an unknown key."""
    return dataclasses.field(default=default, metadata={DERIVED: True})


def load(path: str | Path, cls: type[T], *, section: str | None = None) -> T:
    """Read ``path`` (TOML) and build ``cls`` from it, or from its table ``section``."""
    path = Path(path)
    try:
        # The input layer refuses a folder, a FIFO or an oversized file before reading it.
        data = read_bytes(path, what="configuration file", what_ja="設定ファイル", limit=MAX_TEXT)
    except NotFound as exc:
        raise ConfigError(
            f"configuration file not found: {path}",
            message_ja=f"設定ファイルが見つかりません: {path}",
            path=str(path),
        ) from exc
    except ShomeiError as exc:
        raise ConfigError(exc.message, message_ja=exc.message_ja, path=str(path)) from exc
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start + 1}); save it as UTF-8",
            message_ja=f"{path}: UTF-8 のテキストではありません({exc.start + 1} バイト目)。"
            "UTF-8 で保存してください",
            path=str(path),
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}",
            message_ja=f"{path}: TOML として読めません: {exc}",
            path=str(path),
        ) from exc
    if section is not None:
        if section not in raw:
            raise ConfigError(
                f"{path}: missing table [{section}]",
                message_ja=f"{path}: [{section}] がありません",
            )
        raw = raw[section]
    return build(cls, raw, where=str(path), base=path.parent)


def loads(text: str, cls: type[T], *, where: str, base: Path) -> T:
    """Build ``cls`` from the TOML ``text`` as if read from the file ``where`` in ``base``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{where}: not valid TOML: {exc}",
            message_ja=f"{where}: TOML として読めません: {exc}",
            path=where,
        ) from exc
    return build(cls, raw, where=where, base=base)


def build(cls: type[T], raw: Any, *, where: str = "config", base: Path | None = None) -> T:
    """Build dataclass ``cls`` from an already-parsed mapping, strictly."""
    return typing.cast(T, _convert(cls, raw, where, "", base or Path.cwd()))


def _fail(where: str, key: str, problem: str, problem_ja: str) -> ConfigError:
    name = key or "(top level)"
    return ConfigError(
        f"{where}: {name}: {problem}",
        message_ja=f"{where}: {name}: {problem_ja}",
        key=key,
    )


def _convert(tp: Any, value: Any, where: str, key: str, base: Path) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _convert_dataclass(tp, value, where, key, base)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors: list[ConfigError] = []
        for option in options:
            try:
                return _convert(option, value, where, key, base)
            except ConfigError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        if value not in args:
            allowed = ", ".join(repr(a) for a in args)
            raise _fail(
                where,
                key,
                f"must be one of {allowed}, not {value!r}",
                f"{allowed} のいずれかでなければなりません({value!r})",
            )
        return value
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise _fail(where, key, "must be a list", "リストでなければなりません")
        item_tp = args[0] if args else Any
        items = [_convert(item_tp, v, where, f"{key}[{i}]", base) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(where, key, "must be true or false", "true か false でなければなりません")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(where, key, "must be a whole number", "整数でなければなりません")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(where, key, "must be a number", "数値でなければなりません")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(where, key, "must be a string", "文字列でなければなりません")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise _fail(where, key, "must be a path", "パスでなければなりません")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base / p).resolve()
    if tp is dt.timedelta:
        return _duration(value, where, key)
    raise _fail(where, key, f"unsupported field type {tp!r}", f"未対応の型 {tp!r}")


def _duration(value: Any, where: str, key: str) -> dt.timedelta:
    try:
        if isinstance(value, int) and not isinstance(value, bool):
            return dt.timedelta(days=value)
        if isinstance(value, str):
            m = _DURATION.match(value)
            if m:
                n, unit = int(m.group(1)), m.group(2)
                return {
                    "d": dt.timedelta(days=n),
                    "h": dt.timedelta(hours=n),
                    "m": dt.timedelta(minutes=n),
                    "s": dt.timedelta(seconds=n),
                }[unit]
    except (OverflowError, ValueError) as exc:
        # Beyond what a timedelta (or Python's int parser) holds: far out of any range.
        raise _fail(
            where, key, f"duration {value!r} is out of range", f"期間 {value!r} が大きすぎます"
        ) from exc
    raise _fail(
        where,
        key,
        'must be a duration such as 7 (days), "7d" or "36h"',
        '期間(例: 7、"7d"、"36h")でなければなりません',
    )


def _convert_dataclass(cls: type, value: Any, where: str, key: str, base: Path) -> Any:
    if not isinstance(value, dict):
        raise _fail(where, key, "must be a table", "テーブルでなければなりません")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get(DERIVED)}
    for name in value:
        if name not in fields:
            full = f"{key}.{name}" if key else name
            known = ", ".join(sorted(fields))
            raise _fail(
                where,
                full,
                f"unknown key (known keys: {known})",
                f"不明なキーです(使えるキー: {known})",
            )
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        full = f"{key}.{name}" if key else name
        if name in value:
            kwargs[name] = _convert(hints[name], value[name], where, full, base)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise _fail(where, full, "required key is missing", "必須のキーがありません")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise _fail(where, key, str(exc), str(exc)) from exc
