"""The CA ledger: one SQLite file on the CA machine recording everything the CA did.

It records every request batch (id, SHA-256, when received and finished, outcome), every
serial number (reserved, then signed or refused; with request id, batch id, subject,
notAfter, the certificate, and once revoked the revocation time, reason and the DER of its
CRL entry, RFC 5280 §5.3) and every CRL (number, thisUpdate, nextUpdate, SHA-256, entry
count).

Why a ledger: RFC 5280 §4.1.2.2 requires serials unique per CA; the ``serials`` table's
PRIMARY KEY enforces that, and a serial is committed *before* anything is signed with it, so
a crash can leave a serial reserved-but-unsigned (shown by ``shomei ca status``) but never a
certificate the ledger does not know.  A batch is committed as ``processing`` before its
first signature, so a batch that crashed half-way is known and never started afresh.

A batch a crash (or a full disk) left unfinished is taken up again by
:meth:`Ledger.reopen_batch`, only ever by the one process that holds the CA's work lock
(:mod:`ca.batchstore`): the
serials its earlier run reserved but never signed are marked *void* (state ``refused``, code
``void``) so they are never used, and the rest of the batch is resumed, or abandoned
(``abandoned_at``); every such step is kept in ``batch_recoveries``.  A certificate is never
signed twice for one request: what the ledger recorded as signed is answered from the
ledger (docs/ca-operator-guide.md, "When a batch did not finish").

The schema is versioned with ``PRAGMA user_version``; :data:`_MIGRATIONS` holds one step per
version and opening an older file upgrades it in place.  The file runs in WAL mode with
``synchronous=FULL`` so that a commit has reached the disk when it returns.

A ledger is made once, by the ceremony that creates the CA (:meth:`Ledger.create`); opening
never creates one.  A missing, unreadable or damaged file, one that is not a CA ledger, and
one older than the record kept beside it (:mod:`ca.ledger_record`: a ledger restored from an
older backup) are refused with :class:`StateError`, which says what to restore, so that no
CRL or certificate is ever signed from a ledger that forgot what the CA did.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca import ledger_file
from ca.ledger_record import Marks, check_record, record_path, write_record
from shomei.clock import UTC, Clock, require_aware, utcnow
from shomei.errors import AlreadyExists, ConfigError, Conflict, NotFound, Refused, StorageError

log = logging.getLogger("shomei.ca.ledger")

BatchOutcome = Literal["processing", "done", "failed"]
SerialState = Literal["reserved", "signed", "refused"]
RecoveryAction = Literal["resume", "abandon"]
# The refusal code of a serial reserved by a run that stopped before signing it: never used.
VOID = "void"

# Each step upgrades the schema from version i to i + 1 (the list index is the old version).
_MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the core tables.
    """
    CREATE TABLE batches (
        batch_id      TEXT PRIMARY KEY,
        sha256        TEXT NOT NULL UNIQUE,
        ra_name       TEXT NOT NULL,
        request_count INTEGER NOT NULL,
        received_at   TEXT NOT NULL,
        finished_at   TEXT,
        outcome       TEXT NOT NULL CHECK (outcome IN ('processing', 'done', 'failed'))
    );
    CREATE TABLE serials (
        serial             TEXT PRIMARY KEY,
        request_id         TEXT NOT NULL,
        batch_id           TEXT REFERENCES batches (batch_id),
        state              TEXT NOT NULL CHECK (state IN ('reserved', 'signed', 'refused')),
        reserved_at        TEXT NOT NULL,
        signed_at          TEXT,
        subject            TEXT,
        not_after          TEXT,
        certificate        BLOB,
        refusal_code       TEXT,
        refusal_message    TEXT,
        refusal_message_ja TEXT,
        revoked_at         TEXT,
        revocation_reason  TEXT,
        revoke_request_id  TEXT,
        crl_entry          BLOB
    );
    CREATE INDEX serials_request ON serials (request_id);
    CREATE TABLE refusals (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL,
        batch_id   TEXT,
        code       TEXT NOT NULL,
        message    TEXT NOT NULL,
        message_ja TEXT NOT NULL,
        at         TEXT NOT NULL
    );
    CREATE TABLE crls (
        number      INTEGER PRIMARY KEY,
        this_update TEXT NOT NULL,
        next_update TEXT NOT NULL,
        sha256      TEXT NOT NULL,
        entry_count INTEGER NOT NULL
    );
    """,
    # 1 -> 2: batches refused before processing (forged, altered, replayed) are kept for the
    # operator, and revoked serials get an index because every CRL reads them all.
    """
    CREATE TABLE batch_refusals (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        sha256   TEXT NOT NULL,
        batch_id TEXT,
        code     TEXT NOT NULL,
        message  TEXT NOT NULL,
        at       TEXT NOT NULL
    );
    CREATE INDEX serials_revoked ON serials (revoked_at) WHERE revoked_at IS NOT NULL;
    """,
    # 2 -> 3: the ledger's identity, which its record outside the ledger names
    # (ca.ledger_record), and whether such a record is kept ('record' = 'kept').
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO meta (key, value) VALUES ('ledger_id', lower(hex(randomblob(16))));
    """,
    # 3 -> 4: recovering unfinished batches.  When a batch was abandoned, the SHA-256 of the
    # result written for it (a retry writes that very file again), and a record of every
    # resume and abandon with what was found signed and what was voided.
    """
    ALTER TABLE batches ADD COLUMN abandoned_at TEXT;
    ALTER TABLE batches ADD COLUMN result_sha256 TEXT;
    CREATE INDEX serials_batch ON serials (batch_id, state);
    CREATE TABLE batch_recoveries (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id TEXT NOT NULL REFERENCES batches (batch_id),
        action   TEXT NOT NULL CHECK (action IN ('resume', 'abandon')),
        at       TEXT NOT NULL,
        signed   INTEGER NOT NULL,
        voided   INTEGER NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)
_COLLISION_RETRIES = 8


class RefusalLike(Protocol):
    """What :meth:`Ledger.record_refused` needs from a refusal (``ca.issue.Refusal``)."""

    @property
    def code(self) -> str: ...

    @property
    def message(self) -> str: ...

    @property
    def message_ja(self) -> str: ...


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    sha256: str
    ra_name: str
    request_count: int
    received_at: dt.datetime
    finished_at: dt.datetime | None
    outcome: BatchOutcome
    abandoned_at: dt.datetime | None = None
    result_sha256: str | None = None

    @property
    def unfinished(self) -> bool:
        """Begun and never finished: a crash or an error stopped it (see ``reopen_batch``)."""
        return self.outcome != "done"


@dataclass(frozen=True)
class SerialRecord:
    serial: int
    request_id: str
    batch_id: str | None
    state: SerialState
    subject: str | None
    not_after: dt.datetime | None
    certificate_der: bytes | None
    revoked_at: dt.datetime | None
    revocation_reason: str | None
    revoke_request_id: str | None


@dataclass(frozen=True)
class CrlRecord:
    number: int
    this_update: dt.datetime
    next_update: dt.datetime
    sha256: str
    entry_count: int


@dataclass(frozen=True)
class Reopened:
    """What :meth:`Ledger.reopen_batch` found: certificates already signed, serials voided."""

    batch: BatchRecord
    signed: int
    voided: int


@dataclass(frozen=True)
class LedgerStats:
    """Counts for ``shomei ca status``."""

    batches: dict[str, int]
    batch_refusals: int
    signed: int
    refused: int
    revoked: int
    reserved_unsigned: tuple[SerialRecord, ...]
    unfinished_batches: tuple[BatchRecord, ...]
    last_crl: CrlRecord | None
    abandoned: int = 0  # batches abandoned (their outcome is "done": a result was written)


def serial_key(serial: int) -> str:
    """The canonical text of a serial in the ledger: 40 hex digits (20 octets, §4.1.2.2)."""
    return format(serial, "040x")


def _ts(value: dt.datetime) -> str:
    # A fixed-width UTC form, so that SQL string comparison orders times correctly.
    return require_aware(value).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _from_ts(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _default_new_serial() -> int:
    from ca.serials import new_serial

    return new_serial()


class Ledger:
    """The CA ledger in the existing SQLite file ``path`` (upgraded as needed, never created).

    Implements ``ca.issue.SerialStore``: :meth:`reserve`, :meth:`record_signed` and
    :meth:`record_refused`.  Serials reserved while a batch is open (:meth:`begin_batch`)
    are recorded against that batch.  Opening checks the file and compares it with its
    record (see the module docstring); :meth:`create` makes a new one for a ceremony.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = utcnow,
        new_serial: Callable[[], int] = _default_new_serial,
        _create: bool = False,
    ) -> None:
        self.path = Path(path)
        self.record_path = record_path(self.path)
        self._clock = clock
        self._new_serial = new_serial
        self._lock = threading.RLock()
        self._batch_id: str | None = None
        self._db = ledger_file.connect(self.path, create=_create)
        try:
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            if _create:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._migrate(SCHEMA_VERSION)
                with self._tx() as db:
                    db.execute("INSERT INTO meta (key, value) VALUES ('record', 'kept')")
                self._write_record(strict=True)
            else:
                self._open_existing()
        except BaseException:
            self._db.close()
            if _create:
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            raise

    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        clock: Clock = utcnow,
        new_serial: Callable[[], int] = _default_new_serial,
    ) -> Ledger:
        """Make a new, empty ledger at ``path`` and its record (the ceremony that creates a CA).

        Raises :class:`Refused` when a ledger or a record is already there.
        """
        path = Path(path)
        if record_path(path).exists():
            raise AlreadyExists(
                f"{record_path(path)} already exists: a ledger was kept here; restore it "
                "rather than making a new one",
                message_ja=f"{record_path(path)} が既にあります。新しい台帳を作らず、"
                "元の台帳を復元してください",
                path=str(path),
            )
        return cls(path, clock=clock, new_serial=new_serial, _create=True)

    # -- housekeeping -----------------------------------------------------------------------

    def _open_existing(self) -> None:
        try:
            version = ledger_file.check_file(self._db, self.path)
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"the CA ledger {self.path} has schema version {version}, newer than this "
                    f"software ({SCHEMA_VERSION}); upgrade Shomei",
                    message_ja=f"CA 台帳 {self.path} のスキーマ版 {version} はこのソフトウェア"
                    f"({SCHEMA_VERSION})より新しいため使えません",
                    path=str(self.path),
                )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate(SCHEMA_VERSION)
            ledger_file.check_schema(self._db, self.path, _MIGRATIONS)
        except sqlite3.OperationalError as exc:
            raise ConfigError(
                f"cannot open the CA ledger {self.path}: {exc}",
                message_ja=f"CA 台帳 {self.path} を開けません: {exc}",
                path=str(self.path),
            ) from exc
        self._check_record()

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _check_record(self) -> None:
        """Refuse a ledger that knows less than its record says (an older backup)."""
        kept = self._meta("record") == "kept"
        if check_record(self.record_path, self.path, self.marks(), self, kept=kept):
            return
        # A ledger from before records were kept: its record starts now.
        with self._tx() as db:
            db.execute("INSERT INTO meta (key, value) VALUES ('record', 'kept')")
        self._write_record()
        log.info("the CA ledger %s now keeps a record in %s", self.path, self.record_path)

    def _write_record(self, *, strict: bool = False) -> None:
        # After the ledger's commit, so the record is never ahead of the ledger.  A record that
        # cannot be written only lags behind (the next write catches up): the ledger is intact.
        # A new ledger without its record could not be opened, so there it is an error.
        try:
            write_record(self.record_path, self.marks(), now=self._clock())
        except ConfigError as exc:
            if strict:
                raise
            log.warning("%s", exc.message)

    def marks(self) -> Marks:
        """The ledger's high-water marks (what its record keeps)."""
        db = self._db
        last_batch = db.execute("SELECT batch_id FROM batches ORDER BY rowid DESC LIMIT 1")
        batch_row = last_batch.fetchone()
        signed = db.execute("SELECT count(*) FROM serials WHERE state = 'signed'").fetchone()
        revoked = db.execute("SELECT count(*) FROM serials WHERE revoked_at IS NOT NULL")
        last = self.last_crl()
        ledger_id = self._meta("ledger_id")
        assert ledger_id is not None  # made by migration 2 -> 3
        return Marks(
            ledger_id=ledger_id,
            batches=int(db.execute("SELECT count(*) FROM batches").fetchone()[0]),
            last_batch=None if batch_row is None else str(batch_row[0]),
            signed=int(signed[0]),
            revoked=int(revoked.fetchone()[0]),
            crls=int(db.execute("SELECT count(*) FROM crls").fetchone()[0]),
            last_crl_number=None if last is None else last.number,
            last_crl_sha256=None if last is None else last.sha256,
            last_crl_entries=None if last is None else last.entry_count,
        )

    def has_batch(self, batch_id: str) -> bool:
        row = self._db.execute("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,))
        return row.fetchone() is not None

    def crl_sha256(self, number: int) -> str | None:
        row = self._db.execute("SELECT sha256 FROM crls WHERE number = ?", (number,)).fetchone()
        return None if row is None else str(row[0])

    def _migrate(self, target: int) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        while version < target:
            # executescript commits first; the step and its version bump share one transaction.
            self._db.executescript(
                f"BEGIN IMMEDIATE; {_MIGRATIONS[version]} PRAGMA user_version = {version + 1};"
                " COMMIT;"
            )
            version += 1

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tx(self) -> _Transaction:
        return _Transaction(self._db, self._lock)

    # -- batches ----------------------------------------------------------------------------

    def begin_batch(
        self, *, batch_id: str, sha256: str, ra_name: str, request_count: int, now: dt.datetime
    ) -> None:
        """Record that batch ``batch_id`` is being processed; committed before returning.

        Raises :class:`Refused` when the ledger already knows the batch id or its SHA-256
        (a replay, also of a batch whose processing crashed half-way).
        """
        with self._tx() as db:
            row = db.execute(
                "SELECT batch_id, received_at, outcome FROM batches"
                " WHERE batch_id = ? OR sha256 = ?",
                (batch_id, sha256),
            ).fetchone()
            if row is not None:
                raise Conflict(
                    f"batch {batch_id} was already received on {row[1]} (outcome: {row[2]}); "
                    "a batch is never processed twice, ask the RA for a new batch",
                    message_ja=f"バッチ {batch_id} は {row[1]} に受付済みです(結果: {row[2]})。"
                    "同じバッチは二度処理しません。RA に新しいバッチの作成を依頼してください",
                    batch_id=batch_id,
                    previous=row[0],
                )
            db.execute(
                "INSERT INTO batches (batch_id, sha256, ra_name, request_count, received_at,"
                " outcome) VALUES (?, ?, ?, ?, ?, 'processing')",
                (batch_id, sha256, ra_name, request_count, _ts(now)),
            )
        self._batch_id = batch_id
        self._write_record()

    def finish_batch(
        self,
        batch_id: str,
        *,
        outcome: BatchOutcome,
        now: dt.datetime,
        result_sha256: str | None = None,
    ) -> None:
        """Mark batch ``batch_id`` finished with ``outcome`` (and the hash of its result)."""
        with self._tx() as db:
            changed = db.execute(
                "UPDATE batches SET outcome = ?, finished_at = ?,"
                " result_sha256 = coalesce(?, result_sha256) WHERE batch_id = ?",
                (outcome, _ts(now), result_sha256, batch_id),
            ).rowcount
        if self._batch_id == batch_id:
            self._batch_id = None
        if changed == 1:
            self._write_record()
        if changed != 1:
            raise NotFound(
                f"no batch {batch_id} in the ledger",
                message_ja=f"台帳にバッチ {batch_id} がありません",
            )

    def record_batch_refusal(
        self, *, sha256: str, batch_id: str | None, code: str, message: str, now: dt.datetime
    ) -> None:
        """Keep a note of a batch refused before processing (forged, altered, replayed)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO batch_refusals (sha256, batch_id, code, message, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (sha256, batch_id, code, message, _ts(now)),
            )

    def reopen_batch(self, batch_id: str, *, action: RecoveryAction, now: dt.datetime) -> Reopened:
        """Take batch ``batch_id`` up again, to finish it (``resume``) or to ``abandon`` it.

        In one transaction: every serial the batch reserved and never signed is voided (its
        certificate, if one was ever made, died with the process: a certificate leaves the
        CA only in a result written after its serial was recorded as signed), an abandoned
        batch is marked so (for good: a later resume finishes the abandon), the batch is
        ``processing`` again and the step is recorded.  Serials reserved from now on belong
        to the batch.  The caller must hold the CA's work lock, so that no live process is
        still working on the batch.
        """
        with self._tx() as db:
            row = db.execute(_BATCH_SELECT + " WHERE batch_id = ?", (batch_id,)).fetchone()
            if row is None:
                raise NotFound(
                    f"no batch {batch_id} in the ledger",
                    message_ja=f"台帳にバッチ {batch_id} がありません",
                    batch_id=batch_id,
                )
            voided = db.execute(
                "UPDATE serials SET state = 'refused', refusal_code = ?, refusal_message = ?,"
                " refusal_message_ja = ? WHERE batch_id = ? AND state = 'reserved'",
                (
                    VOID,
                    "reserved by a run that stopped before signing; never used",
                    "署名前に停止した処理が確保した番号です(使用しません)",
                    batch_id,
                ),
            ).rowcount
            signed = db.execute(
                "SELECT count(*) FROM serials WHERE batch_id = ? AND state = 'signed'", (batch_id,)
            ).fetchone()[0]
            if action == "abandon":
                db.execute(
                    "UPDATE batches SET abandoned_at = coalesce(abandoned_at, ?)"
                    " WHERE batch_id = ?",
                    (_ts(now), batch_id),
                )
            db.execute(
                "UPDATE batches SET outcome = 'processing', finished_at = NULL WHERE batch_id = ?",
                (batch_id,),
            )
            db.execute(
                "INSERT INTO batch_recoveries (batch_id, action, at, signed, voided)"
                " VALUES (?, ?, ?, ?, ?)",
                (batch_id, action, _ts(now), signed, voided),
            )
            record = _batch(
                db.execute(_BATCH_SELECT + " WHERE batch_id = ?", (batch_id,)).fetchone()
            )
        self._batch_id = batch_id
        return Reopened(record, int(signed), int(voided))

    def refusal_for(self, request_id: str, batch_id: str) -> tuple[str, str, str] | None:
        """The refusal (code, message, message_ja) recorded for ``request_id`` in the batch."""
        row = self._db.execute(
            "SELECT code, message, message_ja FROM refusals WHERE request_id = ? AND batch_id = ?"
            " ORDER BY id LIMIT 1",
            (request_id, batch_id),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]), str(row[2]))

    def signed_in_batch(self, batch_id: str) -> list[SerialRecord]:
        """The certificates signed for batch ``batch_id``, in the order they were signed."""
        rows = self._db.execute(
            _SERIAL_SELECT + " WHERE batch_id = ? AND state = 'signed' ORDER BY signed_at, serial",
            (batch_id,),
        )
        return [_serial(r) for r in rows]

    def revoked_count(self) -> int:
        """How many serials are revoked (a CRL lists at most these)."""
        row = self._db.execute("SELECT count(*) FROM serials WHERE revoked_at IS NOT NULL")
        return int(row.fetchone()[0])

    def find_batch(self, batch_id: str, *, sha256: str | None = None) -> BatchRecord | None:
        """The batch with ``batch_id`` (or, when given, with file hash ``sha256``), if any."""
        row = self._db.execute(
            _BATCH_SELECT + " WHERE batch_id = ? OR sha256 = ?", (batch_id, sha256)
        ).fetchone()
        return None if row is None else _batch(row)

    # -- serials (ca.issue.SerialStore) -----------------------------------------------------

    def reserve(self, request_id: str) -> int:
        """A new serial for ``request_id``, durably recorded before it is returned."""
        return self.reserve_many([request_id])[0]

    def reserve_many(self, request_ids: Sequence[str]) -> list[int]:
        """New serials for ``request_ids``, durably recorded in one transaction, in order.

        One commit (one fsync) for a whole chunk of a batch rather than one per certificate.
        A collision with a serial already in the ledger (2^-127 odds) is caught by the
        PRIMARY KEY and the chunk is simply retried with fresh serials.
        """
        if not request_ids:
            return []
        for _ in range(_COLLISION_RETRIES):
            serials = [self._new_serial() for _ in request_ids]
            if len(set(serials)) != len(serials):
                continue
            reserved_at = _ts(self._clock())
            try:
                with self._tx() as db:
                    db.executemany(
                        "INSERT INTO serials (serial, request_id, batch_id, state, reserved_at)"
                        " VALUES (?, ?, ?, 'reserved', ?)",
                        [
                            (serial_key(serial), request_id, self._batch_id, reserved_at)
                            for serial, request_id in zip(serials, request_ids, strict=True)
                        ],
                    )
            except sqlite3.IntegrityError:
                continue
            return serials
        raise Refused(
            "could not reserve a unique serial number (the serial source repeats itself)",
            message_ja="一意のシリアル番号を確保できません(乱数源が同じ値を返しています)",
        )

    def record_signed(self, serial: int, certificate: x509.Certificate) -> None:
        """Record the certificate signed with reserved ``serial``."""
        if certificate.serial_number != serial:
            raise Refused(
                f"certificate serial {certificate.serial_number:x} is not {serial:x}",
                message_ja="証明書のシリアル番号が確保した番号と一致しません",
            )
        self.record_signed_many([certificate])

    def record_signed_many(self, certificates: Sequence[x509.Certificate]) -> None:
        """Record certificates signed with reserved serials (their own), in one transaction."""
        if not certificates:
            return
        signed_at = _ts(self._clock())
        with self._tx() as db:
            for certificate in certificates:
                changed = db.execute(
                    "UPDATE serials SET state = 'signed', signed_at = ?, subject = ?,"
                    " not_after = ?, certificate = ? WHERE serial = ? AND state = 'reserved'",
                    (
                        signed_at,
                        certificate.subject.rfc4514_string(),
                        _ts(certificate.not_valid_after_utc),
                        certificate.public_bytes(Encoding.DER),
                        serial_key(certificate.serial_number),
                    ),
                ).rowcount
                if changed != 1:
                    serial = certificate.serial_number
                    raise NotFound(
                        f"serial {serial:x} is not reserved in the ledger",
                        message_ja=f"シリアル番号 {serial:x} は台帳で確保されていません",
                        serial=format(serial, "x"),
                    )

    def record_refused(self, request_id: str, serial: int | None, refusal: RefusalLike) -> None:
        """Record that ``request_id`` was refused (and its reserved serial, if any, unused)."""
        with self._tx() as db:
            if serial is not None:
                db.execute(
                    "UPDATE serials SET state = 'refused', refusal_code = ?, refusal_message = ?,"
                    " refusal_message_ja = ? WHERE serial = ? AND state = 'reserved'",
                    (refusal.code, refusal.message, refusal.message_ja, serial_key(serial)),
                )
            db.execute(
                "INSERT INTO refusals (request_id, batch_id, code, message, message_ja, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    request_id,
                    self._batch_id,
                    refusal.code,
                    refusal.message,
                    refusal.message_ja,
                    _ts(self._clock()),
                ),
            )

    def serial(self, serial: int) -> SerialRecord | None:
        row = self._db.execute(_SERIAL_SELECT + " WHERE serial = ?", (serial_key(serial),))
        found = row.fetchone()
        return None if found is None else _serial(found)

    def signed_for_request(
        self, request_id: str, *, include_revoked: bool = False
    ) -> SerialRecord | None:
        """The certificate already signed for ``request_id`` and not revoked, if any.

        A re-sent request is answered with it rather than with a second certificate.  One
        revoked before it reached anybody (``abandon-batch --revoke-signed``) answers nothing
        (unless ``include_revoked``): the request is then signed afresh.
        """
        revoked = "" if include_revoked else " AND revoked_at IS NULL"
        row = self._db.execute(
            _SERIAL_SELECT + f" WHERE request_id = ? AND state = 'signed'{revoked}"
            " ORDER BY signed_at",
            (request_id,),
        ).fetchone()
        return None if row is None else _serial(row)

    # -- revocation -------------------------------------------------------------------------

    def revoke(
        self,
        serial: int,
        *,
        revoked_at: dt.datetime,
        reason: str | None,
        request_id: str,
        crl_entry: bytes,
    ) -> SerialRecord:
        """Mark ``serial`` revoked, keeping ``crl_entry`` (the DER revokedCertificates item).

        Raises :class:`NotFound` for a serial this CA never signed and :class:`Refused` for
        one that is already revoked.
        """
        with self._tx() as db:
            row = db.execute(_SERIAL_SELECT + " WHERE serial = ?", (serial_key(serial),)).fetchone()
            if row is None or row[3] != "signed":
                raise NotFound(
                    f"serial {serial:x} was not issued by this CA",
                    message_ja=f"シリアル番号 {serial:x} はこの CA が発行したものではありません",
                    serial=format(serial, "x"),
                )
            if row[7] is not None:
                raise Conflict(
                    f"serial {serial:x} is already revoked (since {row[7]})",
                    message_ja=f"シリアル番号 {serial:x} は失効済みです({row[7]})",
                    serial=format(serial, "x"),
                )
            db.execute(
                "UPDATE serials SET revoked_at = ?, revocation_reason = ?, revoke_request_id = ?,"
                " crl_entry = ? WHERE serial = ?",
                (_ts(revoked_at), reason, request_id, crl_entry, serial_key(serial)),
            )
        record = self.serial(serial)
        assert record is not None
        return record

    def crl_entries(self, *, now: dt.datetime, keep_after_expiry: dt.timedelta) -> list[bytes]:
        """The stored CRL entries still to be listed at ``now`` (RFC 5280 §3.3).

        An entry is dropped once its certificate expired more than ``keep_after_expiry`` ago.
        """
        return [
            entry for _, entry in self.crl_listing(now=now, keep_after_expiry=keep_after_expiry)
        ]

    def crl_listing(
        self, *, now: dt.datetime, keep_after_expiry: dt.timedelta
    ) -> list[tuple[int, bytes]]:
        """(serial, stored CRL entry) of every serial :meth:`crl_entries` lists, in order."""
        cutoff = _ts(require_aware(now) - keep_after_expiry)
        rows = self._db.execute(
            "SELECT serial, crl_entry FROM serials WHERE revoked_at IS NOT NULL"
            " AND not_after >= ? ORDER BY serial",
            (cutoff,),
        ).fetchall()
        return [(int(str(r[0]), 16), bytes(r[1])) for r in rows]

    def revoked_serials(self) -> set[int]:
        """Every serial this ledger has revoked, listed on a CRL still or not."""
        rows = self._db.execute("SELECT serial FROM serials WHERE revoked_at IS NOT NULL")
        return {int(str(r[0]), 16) for r in rows.fetchall()}

    # -- CRLs -------------------------------------------------------------------------------

    def record_crl(
        self,
        *,
        number: int,
        this_update: dt.datetime,
        next_update: dt.datetime,
        sha256: str,
        entry_count: int,
    ) -> None:
        try:
            with self._tx() as db:
                db.execute(
                    "INSERT INTO crls (number, this_update, next_update, sha256, entry_count)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (number, _ts(this_update), _ts(next_update), sha256, entry_count),
                )
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                f"CRL number {number} is already in the ledger",
                message_ja=f"CRL 番号 {number} は台帳に記録済みです",
            ) from exc
        self._write_record()

    def last_crl(self) -> CrlRecord | None:
        row = self._db.execute(
            "SELECT number, this_update, next_update, sha256, entry_count FROM crls"
            " ORDER BY number DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        this_update, next_update = _from_ts(row[1]), _from_ts(row[2])
        assert this_update is not None and next_update is not None
        return CrlRecord(row[0], this_update, next_update, row[3], row[4])

    # -- status -----------------------------------------------------------------------------

    def stats(self) -> LedgerStats:
        db = self._db
        batches = dict(db.execute("SELECT outcome, count(*) FROM batches GROUP BY outcome"))
        states = dict(db.execute("SELECT state, count(*) FROM serials GROUP BY state"))
        revoked = db.execute("SELECT count(*) FROM serials WHERE revoked_at IS NOT NULL")
        refusals = db.execute("SELECT count(*) FROM batch_refusals").fetchone()[0]
        reserved = db.execute(_SERIAL_SELECT + " WHERE state = 'reserved' ORDER BY reserved_at")
        unfinished = db.execute(_BATCH_SELECT + " WHERE outcome != 'done' ORDER BY received_at")
        abandoned = db.execute("SELECT count(*) FROM batches WHERE abandoned_at IS NOT NULL")
        return LedgerStats(
            batches={str(k): int(v) for k, v in batches.items()},
            batch_refusals=int(refusals),
            signed=int(states.get("signed", 0)),
            # Every refused request, also those refused before a serial was reserved.
            refused=int(db.execute("SELECT count(*) FROM refusals").fetchone()[0]),
            revoked=int(revoked.fetchone()[0]),
            reserved_unsigned=tuple(_serial(r) for r in reserved),
            unfinished_batches=tuple(_batch(r) for r in unfinished),
            last_crl=self.last_crl(),
            abandoned=int(abandoned.fetchone()[0]),
        )


_BATCH_SELECT = (
    "SELECT batch_id, sha256, ra_name, request_count, received_at, finished_at, outcome,"
    " abandoned_at, result_sha256 FROM batches"
)
_SERIAL_SELECT = (
    "SELECT serial, request_id, batch_id, state, subject, not_after, certificate, revoked_at,"
    " revocation_reason, revoke_request_id FROM serials"
)


def _serial(row: Any) -> SerialRecord:
    cert = row[6]
    return SerialRecord(
        serial=int(str(row[0]), 16),
        request_id=str(row[1]),
        batch_id=None if row[2] is None else str(row[2]),
        state=row[3],
        subject=None if row[4] is None else str(row[4]),
        not_after=_from_ts(row[5]),
        certificate_der=None if cert is None else bytes(cert),
        revoked_at=_from_ts(row[7]),
        revocation_reason=None if row[8] is None else str(row[8]),
        revoke_request_id=None if row[9] is None else str(row[9]),
    )


def _batch(row: Any) -> BatchRecord:
    received = _from_ts(row[4])
    assert received is not None
    return BatchRecord(
        batch_id=str(row[0]),
        sha256=str(row[1]),
        ra_name=str(row[2]),
        request_count=int(row[3]),
        received_at=received,
        finished_at=_from_ts(row[5]),
        outcome=row[6],
        abandoned_at=_from_ts(row[7]),
        result_sha256=None if row[8] is None else str(row[8]),
    )


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error), under the ledger lock."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> sqlite3.Connection:
        self._lock.acquire()
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        return self._db

    def __exit__(self, exc_type: object, exc: object, *rest: object) -> None:
        try:
            if exc_type is None:
                try:
                    self._db.execute("COMMIT")
                except sqlite3.OperationalError as failed:
                    self._rollback()
                    raise _storage_error(failed) from failed
                return
            self._rollback()
            if isinstance(exc, sqlite3.OperationalError):
                # A full disk (SQLITE_FULL) or a failing one: nothing of the transaction
                # was kept, so the ledger holds exactly what it held before.
                raise _storage_error(exc) from exc
        finally:
            self._lock.release()

    def _rollback(self) -> None:
        # SQLite may already have rolled back by itself (it does on SQLITE_FULL).
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")


def _storage_error(exc: sqlite3.OperationalError) -> StorageError:
    return StorageError(
        f"the CA ledger could not be written ({exc}); nothing of this step was recorded",
        message_ja=f"CA 台帳に書き込めません({exc})。この処理は記録されていません",
    )


__all__ = [
    "SCHEMA_VERSION",
    "VOID",
    "BatchRecord",
    "CrlRecord",
    "Ledger",
    "LedgerStats",
    "Reopened",
    "SerialRecord",
    "serial_key",
]
