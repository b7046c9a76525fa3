"""The ledger's record: what the CA had done, kept outside the ledger to catch an older one.

A ledger restored from an older backup is a healthy SQLite file; on its own nothing shows
that it forgot the batches, certificates, revocations and CRLs since the backup.  Signing
with it would be dangerous: a revocation it forgot is left off the next CRL, and a revoked
office's claims verify again.  So the ledger keeps a second memory, a small JSON file beside
it (``ledger-record.json`` for ``ledger.sqlite``), rewritten in one atomic step whenever a
batch is begun or finished and a CRL is issued.  It holds the ledger's identity and its
high-water marks (:class:`Marks`), which only ever grow while the CA works: batches received
and the last one, certificates signed, serials revoked, CRLs issued and the last one's
number, SHA-256 and entry count.

On opening, the ledger must know at least what the record says (:func:`check_record`).  The
record is written after the ledger's commit, so after a crash the ledger may be ahead of the
record, never behind it.  The record carries the SHA-256 of its own contents, so an edited or
truncated record is noticed rather than trusted.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from shomei.clock import require_aware
from shomei.errors import StateError
from shomei.files import replace_file

FORMAT = "shomei-ca-ledger-record/1"
GUIDE = "docs/ca-operator-guide.md, 'Backing up and restoring the CA'"
GUIDE_JA = "docs/ca-operator-guide.md の「CA のバックアップと復元」"


@dataclass(frozen=True)
class Marks:
    """High-water marks of a ledger; each only ever grows while the CA works."""

    ledger_id: str
    batches: int
    last_batch: str | None
    signed: int
    revoked: int
    crls: int
    last_crl_number: int | None
    last_crl_sha256: str | None
    last_crl_entries: int | None


@dataclass(frozen=True)
class Record:
    marks: Marks
    written_at: dt.datetime


class LedgerView(Protocol):
    """What :func:`behind` asks of the ledger besides its marks."""

    def has_batch(self, batch_id: str) -> bool: ...

    def crl_sha256(self, number: int) -> str | None: ...


def record_path(ledger: Path) -> Path:
    """Where the record of the ledger at ``ledger`` is kept: ``<stem>-record.json`` beside it."""
    return ledger.with_name(f"{ledger.stem}-record.json")


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_record(path: Path, marks: Marks, *, now: dt.datetime) -> None:
    """Replace the record at ``path`` with ``marks`` (atomically, fsynced)."""
    body: dict[str, Any] = {
        "format": FORMAT,
        "written_at": require_aware(now).isoformat(),
        **asdict(marks),
    }
    # JSON numbers above 2^53 lose precision in some readers: the CRL number is text.
    if marks.last_crl_number is not None:
        body["last_crl_number"] = str(marks.last_crl_number)
    body["sha256"] = _digest(body)
    text = json.dumps(body, indent=2, sort_keys=True) + "\n"
    replace_file(path, text.encode(), mode=0o644)


def _damaged(path: Path, why: str, why_ja: str) -> StateError:
    return StateError(
        f"the CA ledger's record {path} is {why}; restore it from the same backup as the "
        f"ledger ({GUIDE})",
        message_ja=f"CA 台帳の記録 {path} が{why_ja}。台帳と同じバックアップから復元してください"
        f"({GUIDE_JA})",
        path=str(path),
    )


def read_record(path: Path) -> Record | None:
    """The record at ``path``, or None when there is none.

    Raises :class:`StateError` for a record that cannot be read, is not one, or whose
    contents do not match its own SHA-256.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _damaged(path, f"unreadable ({exc.strerror})", f"読めません({exc.strerror})") from exc
    try:
        body = json.loads(data)
        if not isinstance(body, dict) or body.get("format") != FORMAT:
            raise ValueError("not a ledger record")
        claimed = body.pop("sha256")
        if claimed != _digest(body):
            raise ValueError("digest mismatch")
        number = body["last_crl_number"]
        marks = Marks(
            ledger_id=str(body["ledger_id"]),
            batches=int(body["batches"]),
            last_batch=None if body["last_batch"] is None else str(body["last_batch"]),
            signed=int(body["signed"]),
            revoked=int(body["revoked"]),
            crls=int(body["crls"]),
            last_crl_number=None if number is None else int(number),
            last_crl_sha256=body["last_crl_sha256"],
            last_crl_entries=body["last_crl_entries"],
        )
        written_at = dt.datetime.fromisoformat(body["written_at"])
        require_aware(written_at)
    except (ValueError, KeyError, TypeError) as exc:
        raise _damaged(path, "damaged or altered", "壊れているか書き換えられています") from exc
    return Record(marks, written_at)


def behind(ledger: Marks, view: LedgerView, record: Marks) -> list[str]:
    """What the record says was done that the ledger does not know (empty: not behind)."""
    gaps: list[str] = []
    for field, what in (
        ("batches", "batches"),
        ("signed", "certificates signed"),
        ("revoked", "serials revoked"),
        ("crls", "CRLs"),
    ):
        had, has = getattr(record, field), getattr(ledger, field)
        if has < had:
            gaps.append(f"{what}: {has}, the record {had}")
    if record.last_batch is not None and not view.has_batch(record.last_batch):
        gaps.append(f"batch {record.last_batch} unknown")
    if record.last_crl_number is not None:
        digest = view.crl_sha256(record.last_crl_number)
        if digest is None:
            gaps.append(f"CRL number {record.last_crl_number} unknown")
        elif digest != record.last_crl_sha256:
            gaps.append(f"CRL number {record.last_crl_number} differs")
    return gaps


def check_record(
    path: Path, ledger_path: Path, marks: Marks, view: LedgerView, *, kept: bool
) -> bool:
    """Raise :class:`StateError` unless the ledger (``marks``, ``view``) is not behind the
    record at ``path``.  False when there is no record and the ledger never ``kept`` one (a
    ledger from before records: the caller starts one); True otherwise.
    """
    record = read_record(path)
    if record is None:
        if not kept:
            return False
        raise StateError(
            f"the CA ledger's record {path} is missing, so an older ledger could not be told "
            f"apart; restore the record from the same backup as the ledger ({GUIDE})",
            message_ja=f"CA 台帳の記録 {path} がありません。台帳と同じバックアップから"
            f"復元してください({GUIDE_JA})",
            path=str(path),
        )
    if marks.ledger_id != record.marks.ledger_id:
        gaps = [f"ledger {marks.ledger_id}, the record names {record.marks.ledger_id}"]
    else:
        gaps = behind(marks, view, record.marks)
    if gaps:
        when = f"{record.written_at:%Y-%m-%d %H:%M} UTC"
        raise StateError(
            f"the CA ledger {ledger_path} is older than its record of {when} "
            f"({'; '.join(gaps)}): it was restored from an older backup or lost data; restore "
            f"the newest ledger backup ({GUIDE})",
            message_ja=f"CA 台帳 {ledger_path} は {when} の記録より古い状態です"
            f"({'; '.join(gaps)})。古いバックアップから戻されたか、データが失われています。"
            f"最新の台帳バックアップから復元してください({GUIDE_JA})",
            path=str(ledger_path),
            gaps=gaps,
        )
    return True


__all__ = [
    "GUIDE",
    "GUIDE_JA",
    "LedgerView",
    "Marks",
    "Record",
    "behind",
    "check_record",
    "read_record",
    "record_path",
    "write_record",
]
