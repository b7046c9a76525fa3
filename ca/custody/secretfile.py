"""Reading a secret the CA is handed in a file: a custodian's share, a token PIN.

Like ssh with a private key ("UNPROTECTED PRIVATE KEY FILE! ... This private key will be
ignored"), the CA refuses a secret file that other users could read or change: the M-of-N
rule rests on each share being seen by its custodian only, and a share or PIN that any
account on the machine could have read must be treated as disclosed, not used quietly.
Refusing costs one ``chmod 600``; accepting would teach everyone to leave shares readable.
(The encrypted key files are not checked: their 128-bit secret, not their mode, protects
them, and they are meant to be copied to backups.)  See docs/key-custody.md.

The file must be a regular file of at most :data:`MAX_SIZE` bytes of UTF-8 text; anything else
is one clear error, never a traceback.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shomei.errors import MalformedInput, NotFound, Refused

# A share is about 80 characters and a PIN a few dozen; this leaves room for comments.
MAX_SIZE = 4096


def read_secret_text(path: Path, *, what: str, what_ja: str) -> str:
    """The text of the secret file ``path`` (``what``: "share file", "PIN file").

    Raises :class:`NotFound` (missing), :class:`Refused` (not a regular file, unreadable,
    open to group or others, too large) or :class:`MalformedInput` (not UTF-8).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError as exc:
        raise NotFound(
            f"{what} not found: {path}", message_ja=f"{what_ja}が見つかりません: {path}"
        ) from exc
    except OSError as exc:
        raise Refused(
            f"cannot read the {what} {path}: {exc.strerror}",
            message_ja=f"{what_ja} {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(
                f"the {what} {path} is not a regular file",
                message_ja=f"{what_ja} {path} は通常のファイルではありません",
                path=str(path),
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise Refused(
                f"the {what} {path} is open to other users (mode {mode:04o}): it may have been "
                f"read; run chmod 600 {path} (see docs/key-custody.md)",
                message_ja=f"{what_ja} {path} は他のユーザーから読めます(モード {mode:04o})。"
                f"chmod 600 {path} を実行してください",
                path=str(path),
                mode=mode,
            )
        if info.st_size > MAX_SIZE:
            raise Refused(
                f"the {what} {path} is {info.st_size} bytes, more than {MAX_SIZE}: not a {what}",
                message_ja=f"{what_ja} {path} が大きすぎます({info.st_size} バイト)",
                path=str(path),
            )
        data = os.read(fd, MAX_SIZE + 1)
    except OSError as exc:
        raise Refused(
            f"cannot read the {what} {path}: {exc.strerror}",
            message_ja=f"{what_ja} {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"the {what} {path} is not UTF-8 text",
            message_ja=f"{what_ja} {path} が UTF-8 のテキストではありません",
            path=str(path),
        ) from exc


def read_share_file(path: Path) -> str:
    """The text of a custodian's share file (see :func:`read_secret_text`)."""
    return read_secret_text(path, what="share file", what_ja="分割鍵ファイル")


def read_pin_file(path: Path) -> str:
    """The token PIN in ``path``: its first line, without surrounding blanks."""
    text = read_secret_text(path, what="PIN file", what_ja="PIN ファイル")
    lines = text.strip().splitlines()
    if not lines or not lines[0].strip():
        raise MalformedInput(
            f"the PIN file {path} is empty", message_ja=f"PIN ファイル {path} が空です"
        )
    return lines[0].strip()


__all__ = ["MAX_SIZE", "read_pin_file", "read_secret_text", "read_share_file"]
