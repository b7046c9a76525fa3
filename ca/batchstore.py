"""What the CA keeps beside its ledger for each batch, and the lock for working on batches.

- ``requests/BATCH_ID.p7m``: a copy of every request batch the CA began, written before the
  ledger records the batch, so that a batch a crash left unfinished can be resumed or
  abandoned without the file the operator carried in (docs/ca-operator-guide.md).
- ``results/BATCH_ID.p7m``: every result batch written, so that a lost copy can be carried
  again and the same input is answered with the very same bytes.

Both are written whole or not at all (:func:`shomei.files.write_new`) and checked against the
ledger's hashes when read back.

The *work lock* (``batch.lock`` beside the ledger) is a POSIX record lock
(:func:`fcntl.lockf`) held while a batch is signed, resumed or abandoned.  The kernel drops it
when its process dies, kill -9 included, so a batch the ledger still calls ``processing``
while nobody holds the lock was left by a dead process and may safely be taken up again;
while it is held, another process is at work and :class:`Busy` says so.  Record locks are not
inherited across ``fork``, so a preparation worker (:mod:`ca.issuebatch`) orphaned by a killed
parent never keeps the CA locked; threads of one process are kept apart by a lock of their own.

:func:`check_space` refuses to begin, before anything is signed, when a generous estimate of
what a batch writes (certificates in the ledger and its write-ahead log, the CRL, the result
and its kept copy, the request copy, the operator's output file) does not fit on the disks.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ca.settings import CASettings
from contract.batch import IssueItem, RequestBatch
from shomei.errors import Refused, StorageError
from shomei.files import write_failed, write_new

# An office certificate in DER is 1-1.5 KB (RSA-3072 with every extension); count 2 KB.
CERT_BYTES = 2048
# A CRL entry with a reasonCode is about 40 bytes of DER; count 64.
CRL_ENTRY_BYTES = 64
# Free space asked for beyond the estimate: twice the estimate and one MiB more.
MARGIN_FACTOR = 2
MARGIN_BYTES = 1024 * 1024

_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()


class Busy(Refused):
    """Another process (or thread) holds the CA's work lock: it is working on a batch now."""

    code = "busy"


def home_dir(settings: CASettings) -> Path:
    return settings.ledger.parent


def results_dir(settings: CASettings) -> Path:
    """Where a copy of every result batch is kept (``results/`` beside the ledger)."""
    return home_dir(settings) / "results"


def requests_dir(settings: CASettings) -> Path:
    """Where a copy of every request batch the CA began is kept (``requests/``)."""
    return home_dir(settings) / "requests"


def result_path(settings: CASettings, batch_id: str) -> Path:
    return results_dir(settings) / f"{batch_id}.p7m"


def request_path(settings: CASettings, batch_id: str) -> Path:
    return requests_dir(settings) / f"{batch_id}.p7m"


def keep(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` once; the same bytes already there are fine, others are not."""
    try:
        write_new(path, data)
    except Refused:
        if not path.is_file() or hashlib.sha256(path.read_bytes()).digest() != _sha(data):
            raise
        # Already kept (an earlier run wrote it before it stopped): nothing to do.


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def read_kept(path: Path) -> bytes | None:
    """The bytes of a kept copy, or None when there is none (or it cannot be read)."""
    try:
        return path.read_bytes()
    except OSError:
        return None


# -- the work lock -------------------------------------------------------------------------


@contextmanager
def work_lock(settings: CASettings) -> Iterator[None]:
    """Hold the CA's work lock for the duration, or raise :class:`Busy` at once."""
    path = home_dir(settings) / "batch.lock"
    with _THREAD_LOCKS_GUARD:
        in_process = _THREAD_LOCKS.setdefault(str(path.absolute()), threading.Lock())
    if not in_process.acquire(blocking=False):
        raise _busy(path, "another thread of this process", "このプロセスの別スレッド")
    try:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise write_failed(path, exc) from exc
        try:
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EAGAIN):
                    raise write_failed(path, exc) from exc
                raise _busy(path, *_holder(fd)) from exc
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass  # the pid is only a hint for the message of a waiting process
            yield
        finally:
            os.close(fd)  # releases the record lock
    finally:
        in_process.release()


def _holder(fd: int) -> tuple[str, str]:
    try:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        pid = ""
    if pid.isdigit():
        return f"process {pid}", f"プロセス {pid}"
    return "another process", "別のプロセス"


def _busy(path: Path, who: str, who_ja: str) -> Busy:
    return Busy(
        f"the CA is working on a batch in {who} (lock {path}); try again when it has finished",
        message_ja=f"CA は{who_ja}でバッチを処理中です(ロック {path})。終了後にやり直してください",
        path=str(path),
    )


# -- free space ----------------------------------------------------------------------------


def estimate(request: RequestBatch, *, request_size: int, revoked: int) -> dict[str, int]:
    """Bytes a batch will write, by purpose (a generous estimate; see the module docstring)."""
    issues = sum(1 for item in request.requests if isinstance(item, IssueItem))
    revokes = len(request.requests) - issues
    crl = 4096 + CRL_ENTRY_BYTES * (revoked + revokes)
    # Base64 of each certificate plus its JSON, the CRL in base64, the chain, the envelope.
    result = 32 * 1024 + issues * (CERT_BYTES * 2) + crl * 2 + revokes * 256
    return {
        # Each certificate goes into its row, into the write-ahead log (a page per chunk
        # commit, then the checkpoint) and into an index; revocations store their entry.
        "ledger": 256 * 1024 + issues * CERT_BYTES * 4 + revokes * 1024,
        "crl": crl,
        "result": result,
        "request": request_size,
    }


def check_space(
    settings: CASettings,
    request: RequestBatch,
    *,
    request_size: int,
    revoked: int,
    crl_dir: Path,
    also: Iterable[Path] = (),
) -> None:
    """Raise :class:`StorageError` unless the batch fits, with margin, on every disk it uses.

    ``also`` are further folders that receive a copy of the result (the operator's OUT).
    """
    need = estimate(request, request_size=request_size, revoked=revoked)
    places: list[tuple[Path, int]] = [
        (home_dir(settings), need["ledger"]),
        (crl_dir, need["crl"]),
        (results_dir(settings), need["result"]),
        (requests_dir(settings), need["request"]),
        *((folder, need["result"]) for folder in also),
    ]
    by_disk: dict[int, tuple[Path, int]] = {}
    for folder, size in places:
        existing = _existing(folder)
        device = existing.stat().st_dev
        first, total = by_disk.get(device, (existing, 0))
        by_disk[device] = (first, total + size)
    for folder, size in by_disk.values():
        wanted = size * MARGIN_FACTOR + MARGIN_BYTES
        stat = os.statvfs(folder)
        free = stat.f_bavail * stat.f_frsize
        if free < wanted:
            raise StorageError(
                f"not enough free space for batch {request.batch_id} in {folder}: about "
                f"{_mb(wanted)} needed, {_mb(free)} free; nothing was signed. Make room and "
                "run the same command again",
                message_ja=f"{folder} の空き容量が足りません(バッチ {request.batch_id}: 約 "
                f"{_mb(wanted)} 必要、空き {_mb(free)})。何も署名していません。"
                "容量を空けてから同じコマンドをもう一度実行してください",
                path=str(folder),
                needed=wanted,
                free=free,
            )


def _existing(folder: Path) -> Path:
    """``folder`` or its nearest existing parent (where it will be created)."""
    folder = folder.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


__all__ = [
    "Busy",
    "check_space",
    "estimate",
    "keep",
    "read_kept",
    "request_path",
    "requests_dir",
    "result_path",
    "results_dir",
    "work_lock",
]
