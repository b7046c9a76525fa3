"""The CA ledger: serial reservation, batches, revocations, CRL records, schema migration."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ca import ledger as ledger_mod
from ca.ledger import SCHEMA_VERSION, Ledger
from shomei.errors import ConfigError, NotFound, Refused, StateError
from tests.pki import Pki

NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class _Refusal:
    request_id: str
    code: str
    message: str
    message_ja: str


def _serials(*values: int) -> Iterator[int]:
    yield from values


def _ledger(path: Path, *serials: int) -> Ledger:
    source = _serials(*serials)
    return Ledger.create(path, clock=lambda: NOW, new_serial=lambda: next(source))


def test_reserve_is_durable_before_returning(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 0x1234)
    assert ledger.reserve("req-1") == 0x1234
    # A second connection (another process after a crash) already sees the reservation.
    other = sqlite3.connect(tmp_path / "l.sqlite")
    row = other.execute("SELECT request_id, state FROM serials").fetchone()
    assert row == ("req-1", "reserved")
    assert ledger.stats().reserved_unsigned[0].serial == 0x1234
    other.close()
    ledger.close()


def test_serial_collision_is_retried(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 7, 7, 8)
    assert ledger.reserve("a") == 7
    assert ledger.reserve("b") == 8  # 7 again collided with the PRIMARY KEY
    ledger.close()


def test_serial_source_that_only_repeats_is_refused(tmp_path: Path) -> None:
    ledger = Ledger.create(tmp_path / "l.sqlite", new_serial=lambda: 5)
    ledger.reserve("a")
    with pytest.raises(Refused):
        ledger.reserve("b")
    ledger.close()


def test_record_signed_and_revoke(tmp_path: Path, pki: Pki) -> None:
    cert = pki.certs["office"]
    ledger = _ledger(tmp_path / "l.sqlite", cert.serial_number)
    serial = ledger.reserve("req-1")
    ledger.record_signed(serial, cert)
    record = ledger.serial(serial)
    assert record is not None and record.state == "signed"
    assert record.not_after == cert.not_valid_after_utc
    assert ledger.signed_for_request("req-1") == record
    revoked = ledger.revoke(
        serial, revoked_at=NOW, reason="keyCompromise", request_id="rv-1", crl_entry=b"\x30\x00"
    )
    assert revoked.revoked_at == NOW and revoked.revocation_reason == "keyCompromise"
    assert ledger.crl_entries(now=NOW, keep_after_expiry=dt.timedelta(days=30)) == [b"\x30\x00"]
    # Long after the certificate's notAfter + keep_after_expiry, the entry is dropped.
    later = cert.not_valid_after_utc + dt.timedelta(days=31)
    assert ledger.crl_entries(now=later, keep_after_expiry=dt.timedelta(days=30)) == []
    with pytest.raises(Refused):
        ledger.revoke(serial, revoked_at=NOW, reason=None, request_id="rv-2", crl_entry=b"")
    stats = ledger.stats()
    assert (stats.signed, stats.revoked, stats.reserved_unsigned) == (1, 1, ())
    ledger.close()


def test_revoke_unknown_or_unsigned_serial(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 99)
    with pytest.raises(NotFound):
        ledger.revoke(1, revoked_at=NOW, reason=None, request_id="r", crl_entry=b"")
    ledger.reserve("x")  # reserved but never signed: cannot be revoked either
    with pytest.raises(NotFound):
        ledger.revoke(99, revoked_at=NOW, reason=None, request_id="r", crl_entry=b"")
    ledger.close()


def test_record_signed_needs_a_reserved_matching_serial(tmp_path: Path, pki: Pki) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 3)
    serial = ledger.reserve("r")
    with pytest.raises(Refused):
        ledger.record_signed(serial, pki.certs["office"])  # another serial
    with pytest.raises(NotFound):
        ledger.record_signed(pki.certs["office"].serial_number, pki.certs["office"])
    ledger.close()


def test_record_refused(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 11)
    serial = ledger.reserve("r1")
    ledger.record_refused("r1", serial, _Refusal("r1", "weak_key", "weak", "弱い鍵"))
    ledger.record_refused("r2", None, _Refusal("r2", "bad_csr", "bad", "不正"))
    record = ledger.serial(serial)
    assert record is not None and record.state == "refused"
    stats = ledger.stats()
    assert stats.refused == 2 and stats.reserved_unsigned == ()
    ledger.close()


def test_batches_are_never_begun_twice(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 21)
    ledger.begin_batch(batch_id="b1", sha256="aa", ra_name="ra", request_count=1, now=NOW)
    assert ledger.reserve("r") == 21
    assert ledger.serial(21).batch_id == "b1"  # type: ignore[union-attr]
    # Not finished (as after a crash): the same id or the same bytes are still refused.
    with pytest.raises(Refused):
        ledger.begin_batch(batch_id="b1", sha256="bb", ra_name="ra", request_count=1, now=NOW)
    with pytest.raises(Refused):
        ledger.begin_batch(batch_id="b2", sha256="aa", ra_name="ra", request_count=1, now=NOW)
    assert [b.batch_id for b in ledger.stats().unfinished_batches] == ["b1"]
    ledger.finish_batch("b1", outcome="done", now=NOW)
    record = ledger.find_batch("b1")
    assert record is not None and record.outcome == "done" and record.finished_at == NOW
    assert ledger.stats().batches == {"done": 1}
    with pytest.raises(NotFound):
        ledger.finish_batch("nope", outcome="done", now=NOW)
    ledger.record_batch_refusal(sha256="cc", batch_id=None, code="forged", message="x", now=NOW)
    assert ledger.stats().batch_refusals == 1
    ledger.close()


def test_crl_records(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite")
    assert ledger.last_crl() is None
    for number in (5, 9):
        ledger.record_crl(
            number=number,
            this_update=NOW,
            next_update=NOW + dt.timedelta(days=7),
            sha256="ab",
            entry_count=0,
        )
    last = ledger.last_crl()
    assert last is not None and last.number == 9 and last.next_update == NOW + dt.timedelta(7)
    with pytest.raises(Refused):
        ledger.record_crl(number=9, this_update=NOW, next_update=NOW, sha256="", entry_count=0)
    ledger.close()


def test_old_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(ledger_mod._MIGRATIONS[0] + "PRAGMA user_version = 1;")
    db.execute(
        "INSERT INTO serials (serial, request_id, state, reserved_at) VALUES (?, 'r', 'reserved',"
        " '2026-01-01T00:00:00.000000Z')",
        (ledger_mod.serial_key(42),),
    )
    db.close()
    ledger = Ledger(path)
    assert ledger.schema_version == SCHEMA_VERSION >= 3
    assert ledger.serial(42) is not None  # data survives the upgrade
    assert ledger.stats().batch_refusals == 0  # the table of version 2 exists
    assert len(ledger.marks().ledger_id) == 32  # version 3: the ledger has an identity
    assert ledger.record_path.is_file()  # ... and from now on a record outside it
    assert ledger.stats().abandoned == 0  # the column of version 3 exists
    ledger.close()


def test_newer_or_broken_ledger_is_refused(tmp_path: Path) -> None:
    newer = tmp_path / "newer.sqlite"
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(ConfigError, match="newer than this software"):
        Ledger(newer)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="damaged"):
        Ledger(garbage)


def test_reserve_many_is_one_durable_transaction_in_order(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "l.sqlite", 11, 12, 13, 12, 20, 21, 22)
    assert ledger.reserve_many(["a", "b", "c"]) == [11, 12, 13]
    # The next chunk draws 12 (taken) and 20: the whole chunk is retried with fresh serials.
    assert ledger.reserve_many(["d", "e"]) == [21, 22]
    other = sqlite3.connect(tmp_path / "l.sqlite")
    rows = other.execute("SELECT request_id FROM serials ORDER BY serial").fetchall()
    assert [r for (r,) in rows] == ["a", "b", "c", "d", "e"]
    other.close()
    assert ledger.reserve_many([]) == []
    ledger.close()


def test_record_signed_many_is_all_or_nothing(tmp_path: Path, pki: Pki) -> None:
    good = pki.certs["office"]
    ledger = _ledger(tmp_path / "l.sqlite", good.serial_number)
    ledger.reserve_many(["r1"])
    with pytest.raises(NotFound):
        ledger.record_signed_many([good, pki.certs["revoked"]])  # the second was never reserved
    record = ledger.serial(good.serial_number)
    assert record is not None and record.state == "reserved"  # rolled back with the bad one
    ledger.record_signed_many([good])
    record = ledger.serial(good.serial_number)
    assert record is not None and record.state == "signed"
    ledger.close()
