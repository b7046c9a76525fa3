"""Opening the CA ledger: never created by opening, checked before trusted, never older than
its record (issue 7, "a revocation is never lost")."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from ca import ledger_file
from ca.ledger import Ledger
from ca.ledger_record import read_record, record_path
from shomei.errors import ConfigError, Refused, StateError

NOW = dt.datetime(2026, 11, 1, 9, 0, tzinfo=dt.UTC)


def _new(path: Path) -> Ledger:
    return Ledger.create(path, clock=lambda: NOW)


def _backup(ledger: Path, copy: Path) -> None:
    source, target = sqlite3.connect(ledger), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()


def _put_back(copy: Path, ledger: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ledger}{suffix}").unlink(missing_ok=True)
    shutil.copy(copy, ledger)


def _batch(ledger: Ledger, name: str) -> None:
    ledger.begin_batch(batch_id=name, sha256=name * 8, ra_name="RA", request_count=1, now=NOW)
    ledger.finish_batch(name, outcome="done", now=NOW)


def test_opening_never_creates_a_ledger(tmp_path: Path) -> None:
    path = tmp_path / "home" / "ledger.sqlite"
    path.parent.mkdir()
    with pytest.raises(StateError, match="is missing; restore it from the newest ledger backup"):
        Ledger(path)
    assert list(path.parent.iterdir()) == []  # no ledger, no record, no WAL


def test_create_makes_the_ledger_and_its_record_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with _new(path) as ledger:
        marks = ledger.marks()
    record = read_record(record_path(path))
    assert record is not None and record.marks == marks
    assert (marks.batches, marks.signed, marks.last_crl_number) == (0, 0, None)
    with pytest.raises(Refused, match="already exists"):
        _new(path)
    # A record without its ledger: a ledger was kept here; it is restored, not made anew.
    path.unlink()
    with pytest.raises(Refused, match="restore it"):
        _new(path)
    assert not path.exists()
    Ledger.create(tmp_path / "other.sqlite").close()
    assert (tmp_path / "other-record.json").is_file()


def test_an_empty_or_foreign_file_is_not_a_ledger(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(StateError, match="not a CA ledger"):
        Ledger(empty)
    assert empty.read_bytes() == b""  # not made into a ledger
    foreign = tmp_path / "ra.sqlite"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not a CA ledger"):
        Ledger(foreign)
    db = sqlite3.connect(foreign)
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"accounts"}
    folder = tmp_path / "folder.sqlite"
    folder.mkdir()
    with pytest.raises(StateError, match="not a file"):
        Ledger(folder)


def test_a_ledger_with_other_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _new(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE batch_refusals")
    db.commit()
    db.close()
    with pytest.raises(StateError, match="not the expected tables: batch_refusals"):
        Ledger(path)


def _garble(path: Path, page: int, at: int = 100) -> None:
    size = 4096  # SQLite's default page size; pages count from 1
    with path.open("r+b") as f:
        f.seek((page - 1) * size + at)
        f.write(b"\xa5\x5a" * 1000)


def _filled(path: Path) -> None:
    with _new(path) as ledger:
        for i in range(40):
            ledger.begin_batch(
                batch_id=f"batch-{i:04d}-" + "x" * 200,
                sha256=f"{i:064x}",
                ra_name="RA " * 50,
                request_count=1,
                now=NOW,
            )


def test_a_garbled_page_is_one_clear_error_before_anything_is_done(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _filled(path)
    assert path.stat().st_size > 5 * 4096
    _garble(path, 4)
    with pytest.raises(StateError, match=r"is damaged .*restore it from the newest ledger backup"):
        Ledger(path)
    with pytest.raises(StateError) as caught:
        Ledger(path)
    assert "\n" not in caught.value.message


def test_damage_met_while_reading_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _filled(path)
    _garble(path, 2, at=0)  # the root page of the batches table
    # Past the opening checks (as if the page went bad while the CA was working): every
    # statement of the ledger's connection reports it as StateError, never a traceback.
    db = ledger_file.connect(path)
    with pytest.raises(StateError, match="damaged"):
        db.execute("SELECT * FROM batches").fetchall()
    with pytest.raises(StateError, match="damaged"):
        list(db.execute("SELECT * FROM batches"))
    # Other SQLite errors keep their meaning.
    with pytest.raises(sqlite3.OperationalError):
        db.execute("SELECT nothing FROM nowhere")
    db.close()


def test_a_newer_schema_is_still_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    _new(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.commit()
    db.close()
    with pytest.raises(ConfigError, match="newer than this software"):
        Ledger(path)


def test_a_ledger_older_than_its_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    backup = tmp_path / "backup.sqlite"
    with _new(path) as ledger:
        _batch(ledger, "b-1")
        _backup(path, backup)
        shutil.copy(record_path(path), tmp_path / "backup-record.json")
        _batch(ledger, "b-2")
        ledger.record_crl(
            number=5, this_update=NOW, next_update=NOW, sha256="aa" * 32, entry_count=0
        )
    _put_back(backup, path)
    with pytest.raises(StateError) as caught:
        Ledger(path)
    message = caught.value.message
    assert "older than its record" in message and "restore the newest ledger backup" in message
    assert "batches: 1, the record 2" in message and "batch b-2 unknown" in message
    assert "CRL number 5 unknown" in message
    assert "台帳" in caught.value.message_ja
    # Restored together with the record of the same backup, it opens (and is as it was).
    shutil.copy(tmp_path / "backup-record.json", record_path(path))
    with Ledger(path) as ledger:
        assert ledger.marks().batches == 1


def test_a_ledger_ahead_of_its_record_opens(tmp_path: Path) -> None:
    # A crash after the ledger's commit and before the record was rewritten.
    path = tmp_path / "ledger.sqlite"
    with _new(path) as ledger:
        _batch(ledger, "b-1")
        before = record_path(path).read_bytes()
        _batch(ledger, "b-2")
    record_path(path).write_bytes(before)
    with Ledger(path) as ledger:
        ledger.record_crl(number=1, this_update=NOW, next_update=NOW, sha256="ab", entry_count=0)
    record = read_record(record_path(path))
    assert record is not None and record.marks.batches == 2 and record.marks.last_crl_number == 1


def test_a_missing_altered_or_foreign_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    with _new(path) as ledger:
        _batch(ledger, "b-1")
    record = record_path(path)
    text = record.read_text()
    record.unlink()
    with pytest.raises(StateError, match=r"record .* is missing"):
        Ledger(path)
    body = json.loads(text)
    body["batches"] = 0
    record.write_text(json.dumps(body))
    with pytest.raises(StateError, match="damaged or altered"):
        Ledger(path)
    record.write_text(text[: len(text) // 2])
    with pytest.raises(StateError, match="damaged or altered"):
        Ledger(path)
    # The record of another CA's ledger.
    other = tmp_path / "other" / "ledger.sqlite"
    _new(other).close()
    shutil.copy(record_path(other), record)
    with pytest.raises(StateError, match="the record names"):
        Ledger(path)
    record.write_text(text)
    Ledger(path).close()


def test_the_ceremony_that_creates_the_ca_makes_its_ledger_and_record(tmp_path: Path) -> None:
    from ca import ceremony
    from ca.ceremony_config import load_ceremony
    from tests.ca.test_ceremony import write_ceremony
    from tests.pki import NOW as PKI_NOW

    path = write_ceremony(tmp_path, actions=["create-root"], issuing=None)  # single tier
    cfg = load_ceremony(path)
    planned = ceremony.plan(cfg, now=PKI_NOW).settings
    home = cfg.ceremony.ca_home
    assert home / "ledger.sqlite" in planned and home / "ledger-record.json" in planned
    done = ceremony.run(cfg, config_path=path, now=PKI_NOW, echo=lambda _: None)
    assert home / "ledger.sqlite" in done.written and home / "ledger-record.json" in done.written
    with Ledger(home / "ledger.sqlite") as ledger:
        ledger_id = ledger.marks().ledger_id
    assert done.transcript is not None
    lines = [json.loads(line) for line in done.transcript.read_text().splitlines()]
    created = [line for line in lines if line.get("event") == "ledger-created"]
    assert len(created) == 1 and created[0]["details"]["ledger_id"] == ledger_id
