"""The one layer through which Shomei reads the files a user names, and writes new ones.

Reading (:func:`read_bytes`, :func:`read_text`, :func:`sha256_file`, :func:`check_file`): a
file is opened without blocking and checked on the open descriptor before anything is read:
a folder, a FIFO, socket or device, or a file over the cap for its kind of input is one clear
error (exit 2), never a hang or a ``MemoryError``; at most the cap is ever read.  Claims are
hashed in blocks where only their digest is needed.

Writing files that must never be overwritten: keys, certificates, CRLs, batches, reports.
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
import hashlib
import os
import secrets
import stat
from pathlib import Path

from shomei.errors import (
    AlreadyExists,
    ConfigError,
    MalformedInput,
    NotFound,
    Refused,
    StorageError,
)

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


def write_file(path: Path, data: bytes, *, overwrite: bool, mode: int = 0o644) -> None:
    """Write ``data`` to ``path``: a new file, or, with ``overwrite``, in place of a file.

    Without ``overwrite`` this is :func:`write_new`.  With it, an existing regular file is
    replaced whole (written beside it, fsynced, renamed over it), so a crash leaves the old
    file or the new one; anything else at ``path`` (a folder, a FIFO, a device) is refused,
    never opened: writing into a FIFO would wait for a reader for ever.
    """
    if not overwrite:
        write_new(path, data, mode=mode)
        return
    try:
        info = path.lstat()
    except FileNotFoundError:
        write_new(path, data, mode=mode)
        return
    except OSError as exc:
        raise ConfigError(
            f"cannot create {path}: {exc.strerror}",
            message_ja=f"{path} を作成できません: {exc.strerror}",
            path=str(path),
        ) from exc
    if not stat.S_ISREG(info.st_mode):
        raise AlreadyExists(
            f"{path} exists and is not a regular file; it is not replaced",
            message_ja=f"{path} は通常のファイルではないため置き換えません",
            path=str(path),
        )
    replace_file(path, data, mode=mode)


def check_new_file(path: Path, *, what: str, what_ja: str, overwrite: bool = False) -> None:
    """Check, before any work is done, that ``path`` can be written as asked.

    Nothing may be there yet (or, with ``overwrite``, only a regular file), and the nearest
    existing folder above it must be a folder that may be written.  The write itself stays
    exclusive (:func:`write_new`); this moves the refusal before the work, so a command that
    could not save its result refuses before it signs, exports or records anything.
    """
    if path.is_symlink() or path.exists():
        if not overwrite or not path.is_file():
            kind = "" if path.is_file() else " and is not a regular file"
            raise AlreadyExists(
                f"the {what} {path} already exists{kind}; it is never overwritten",
                message_ja=f"{what_ja} {path} は既に存在します(上書きしません)",
                path=str(path),
            )
    _check_writable(path.parent, path, what, what_ja)


def _check_writable(folder: Path, path: Path, what: str, what_ja: str) -> None:
    """The nearest existing folder at or above ``folder`` is a folder that may be written."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(
            f"cannot create the {what} {path}: {folder} is not a folder",
            message_ja=f"{what_ja} {path} を作成できません({folder} はフォルダではありません)",
            path=str(path),
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise Refused(
            f"cannot create the {what} {path}: the folder {folder} may not be written",
            message_ja=f"{what_ja} {path} を作成できません(フォルダ {folder} に書き込めません)",
            path=str(path),
        )


def check_output_folder(path: Path, *, what: str, what_ja: str) -> None:
    """Check, before any work, that files can be made in the folder ``path`` (or in the
    folder it will be): what is there is a folder, and the nearest existing one is writable."""
    if (path.exists() or path.is_symlink()) and not path.is_dir():
        raise Refused(
            f"the {what} {path} exists and is not a folder",
            message_ja=f"{what_ja} {path} はフォルダではありません",
            path=str(path),
        )
    _check_writable(path, path, what, what_ja)


def replace_file(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Put ``data`` at ``path`` in one step: the old contents or the new, never half of either.

    A temporary file beside ``path`` is written and fsynced, renamed over ``path`` (atomic on
    POSIX) and the folder fsynced, so the new name survives a power cut.  For files that are
    meant to change (a published CRL, the CA ledger's record); evidence uses :func:`write_new`.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        fsync_folder(path.parent)
    except OSError as exc:
        raise write_failed(path, exc) from exc
    finally:
        temp.unlink(missing_ok=True)


# --- reading what the user names -----------------------------------------------------------

MiB = 1 << 20
# Caps by kind of input, each far above the largest legitimate file of its kind and far below
# what would exhaust memory when read whole.  The size is checked on the open file before a
# byte is read, and at most the cap (plus one byte, to notice growth) is ever read.
MAX_INPUT = 512 * MiB  # the largest of any kind: a claim, a CRL of ten million entries
MAX_OBJECT = 16 * MiB  # certificates and bundles, keys, PKCS#12, signatures, sealed notices
MAX_TEXT = 1 * MiB  # settings, ceremony files, profiles
MAX_SECRET = 4096  # a password or PIN file
_BLOCK = 1 * MiB


def _size(n: int) -> str:
    return f"{n} bytes" if n < MiB else f"{n / MiB:.1f} MiB ({n} bytes)"


def _open_regular(path: Path, what: str, what_ja: str, limit: int) -> int:
    """A descriptor of the regular file ``path`` of at most ``limit`` bytes, opened for reading.

    Opened without blocking, so a FIFO without a writer is refused here instead of hanging the
    command; the checks are made on the open file (``fstat``), so what is read is what passed.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(path, flags)
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
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise Refused(
                f"the {what} {path} is a folder, not a file",
                message_ja=f"{what_ja} {path} はフォルダです(ファイルを指定してください)",
                path=str(path),
            )
        if not stat.S_ISREG(info.st_mode):
            # A FIFO, socket or device could block or never end: never read.
            raise Refused(
                f"the {what} {path} is not a regular file (a FIFO, socket or device)",
                message_ja=f"{what_ja} {path} は通常のファイルではありません",
                path=str(path),
            )
        if info.st_size > limit:
            raise _too_large(path, what, what_ja, info.st_size, limit)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _too_large(path: Path, what: str, what_ja: str, size: int, limit: int) -> Refused:
    return Refused(
        f"the {what} {path} is {_size(size)}, more than the {_size(limit)} a {what} may be",
        message_ja=f"{what_ja} {path} が大きすぎます({_size(size)}、上限 {_size(limit)})",
        path=str(path),
        size=size,
        limit=limit,
    )


def read_bytes(path: Path, *, what: str, what_ja: str, limit: int = MAX_INPUT) -> bytes:
    """The contents of ``path``, an input the user named (``what``: "CRL file", ...).

    A missing file is :class:`~shomei.errors.NotFound`; a folder, a FIFO or device, a file
    larger than ``limit`` bytes (checked before reading), a file without read permission or
    any other I/O failure is :class:`~shomei.errors.Refused` with the reason.
    """
    fd = _open_regular(path, what, what_ja, limit)
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= limit:
            chunk = os.read(fd, min(_BLOCK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise Refused(
            f"cannot read the {what} {path}: {exc.strerror}",
            message_ja=f"{what_ja} {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc
    finally:
        os.close(fd)
    if total > limit:  # it grew after the check
        raise _too_large(path, what, what_ja, total, limit)
    return b"".join(chunks)


def read_head(path: Path, size: int, *, what: str, what_ja: str, limit: int = MAX_INPUT) -> bytes:
    """The first ``size`` bytes of ``path`` (checked as :func:`read_bytes` checks it)."""
    fd = _open_regular(path, what, what_ja, limit)
    try:
        return os.read(fd, size)
    except OSError as exc:
        raise Refused(
            f"cannot read the {what} {path}: {exc.strerror}",
            message_ja=f"{what_ja} {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc
    finally:
        os.close(fd)


def read_text(path: Path, *, what: str, what_ja: str, limit: int = MAX_TEXT) -> str:
    """:func:`read_bytes`, decoded as UTF-8: :class:`MalformedInput` when it is not."""
    data = read_bytes(path, what=what, what_ja=what_ja, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedInput(
            f"the {what} {path} is not UTF-8 text (byte {exc.start + 1})",
            message_ja=f"{what_ja} {path} が UTF-8 のテキストではありません"
            f"({exc.start + 1} バイト目)",
            path=str(path),
        ) from exc


def sha256_file(path: Path, *, what: str, what_ja: str, limit: int = MAX_INPUT) -> bytes:
    """The SHA-256 digest of ``path``, read in blocks: the file is never held whole."""
    fd = _open_regular(path, what, what_ja, limit)
    digest = hashlib.sha256()
    total = 0
    try:
        while chunk := os.read(fd, _BLOCK):
            total += len(chunk)
            if total > limit:
                raise _too_large(path, what, what_ja, total, limit)
            digest.update(chunk)
    except OSError as exc:
        raise Refused(
            f"cannot read the {what} {path}: {exc.strerror}",
            message_ja=f"{what_ja} {path} を読めません: {exc.strerror}",
            path=str(path),
        ) from exc
    finally:
        os.close(fd)
    return digest.digest()


def check_file(path: Path, *, what: str, what_ja: str, limit: int = MAX_INPUT) -> None:
    """Check that ``path`` is a readable regular file within ``limit``, without reading it.

    For files another library opens itself (a PKCS#11 module is loaded by the dynamic linker,
    which would block on a FIFO just as a read would).
    """
    os.close(_open_regular(path, what, what_ja, limit))
