"""Writing files that must never be overwritten: keys, certificates, CRLs, batches, reports.

Outputs of the CA and the RA are evidence; replacing one silently could lose what was signed.
:func:`write_new` writes the data under a temporary name in the same folder, fsyncs it, and
only then gives it its final name with a hard link, which fails rather than replace an
existing file; the folder is fsynced last.  So the final name holds either nothing or the
whole file, also after a kill -9 or a full disk half-way (a full disk is
:class:`~shomei.errors.StorageError`, with nothing left behind), and an existing file is
refused with a clear message.  On a file system without hard links (a FAT-formatted USB stick
that carries batches) the temporary file is renamed instead, after checking that the name is
free.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from shomei.errors import ConfigError, NotFound, Refused, StorageError

# link(2) is not supported there: rename instead (FAT, exFAT, some network file systems).
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS})
# The write itself failed for want of room or of a working disk: try again later, elsewhere.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _exists(path: Path) -> Refused:
    return Refused(
        f"{path} already exists; it is never overwritten",
        message_ja=f"{path} は既に存在します(上書きしません)",
        path=str(path),
    )


def write_failed(path: Path, exc: OSError) -> StorageError | ConfigError:
    """The error for an ``OSError`` while writing ``path``: no room (or a failing disk) is a
    :class:`StorageError`; anything else (permissions, a read-only disk) a ConfigError."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_ROOM:
        return StorageError(
            f"cannot write {path}: {reason}; nothing was written",
            message_ja=f"{path} を書き込めません: {reason}(何も書き込んでいません)",
            path=str(path),
        )
    return ConfigError(
        f"cannot create {path}: {reason}",
        message_ja=f"{path} を作成できません: {reason}",
        path=str(path),
    )


def fsync_folder(folder: Path) -> None:
    """Make a new or renamed name in ``folder`` durable (POSIX needs the folder fsynced)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Create ``path`` holding ``data``, whole or not at all (see the module docstring).

    Raises :class:`Refused` if it exists (nothing is touched), :class:`StorageError` when the
    disk is full and :class:`ConfigError` when the place cannot be written.
    """
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as exc:
        raise ConfigError(
            f"cannot create {path}: {folder} is not a folder",
            message_ja=f"{path} を作成できません({folder} はフォルダではありません)",
            path=str(path),
        ) from exc
    except OSError as exc:
        raise write_failed(path, exc) from exc
    if os.path.lexists(path):
        raise _exists(path)
    temp = folder / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            # The umask may have narrowed the mode; make it exactly what was asked for.
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _give_name(temp, path)
        fsync_folder(folder)
    except FileExistsError as exc:
        raise _exists(path) from exc
    except OSError as exc:
        raise write_failed(path, exc) from exc
    finally:
        temp.unlink(missing_ok=True)


def _give_name(temp: Path, path: Path) -> None:
    try:
        os.link(temp, path)
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from exc
        os.rename(temp, path)


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
