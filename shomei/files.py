"""Writing files that must never be overwritten: keys, certificates, CRLs, batches, reports.

Outputs of the CA and the RA are evidence; replacing one silently could lose what was signed.
:func:`write_new` creates the file exclusively (``O_EXCL``), with the mode asked for, and
fsyncs it before returning, so a crash never leaves a half-written file under the final name
unnoticed and an existing file is refused with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path

from shomei.errors import ConfigError, NotFound, Refused


def write_new(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` holding ``data``; :class:`Refused` if it exists (nothing is touched)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError as exc:
        if not path.parent.is_dir():
            raise ConfigError(
                f"cannot create {path}: {path.parent} is not a folder",
                message_ja=f"{path} を作成できません({path.parent} はフォルダではありません)",
                path=str(path),
            ) from exc
        raise Refused(
            f"{path} already exists; it is never overwritten",
            message_ja=f"{path} は既に存在します(上書きしません)",
            path=str(path),
        ) from exc
    except OSError as exc:
        raise ConfigError(
            f"cannot create {path}: {exc.strerror}",
            message_ja=f"{path} を作成できません: {exc.strerror}",
            path=str(path),
        ) from exc
    try:
        # The umask may have narrowed the mode; make it exactly what was asked for.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def read_bytes(path: Path, *, what: str, what_ja: str) -> bytes:
    """The contents of ``path``, an input the user named (``what``: "CRL file", ...).

    A missing file is :class:`~shomei.errors.NotFound`; a folder, a file without read
    permission or any other I/O failure is :class:`~shomei.errors.Refused` with the reason.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise NotFound(
            f"{what} not found: {path}",
            message_ja=f"{what_ja}が見つかりません: {path}",
            path=str(path),
        ) from exc
    except OSError as exc:
        raise Refused(
            f"cannot read the {what} {path}: {exc.strerror}",
            message_ja=f"{what_ja} {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc


def replace_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Put ``data`` at ``path`` in one step: the old contents or the new, never half of either.

    A temporary file beside ``path`` is written and fsynced, renamed over ``path`` (atomic on
    POSIX) and the folder fsynced, so the new name survives a power cut.  For files that are
    meant to change (a published CRL, the CA ledger's record); evidence uses :func:`write_new`.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        os.replace(temp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write {path}: {exc.strerror}",
            message_ja=f"{path} を書き込めません: {exc.strerror}",
            path=str(path),
        ) from exc
