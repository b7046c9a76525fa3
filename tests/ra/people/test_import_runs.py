"""Background CSV imports (ra.people.import_runs): one worker per run, all accounts or none.

On both databases: a queued run is carried out with its letters sealed for the starter; a
worker killed half-way (a real process, SIGKILL) or stopped just before its commit leaves no
account and the run is taken again after its lease; of two workers asking at once one gets
the run, and a worker whose lease was taken over writes nothing; a row registered since the
check fails the run and creates nothing; a run interrupted too often is failed.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ra.party import party_of
from ra.people import accounts, csvimport, import_runs
from ra.people.passwords import check_issuance_password, check_password
from ra.store import letter_drops
from ra.store.models import Account, AccountKind, AuditRecord, ImportRun, ImportStatus
from ra.store.vault import create_key_file
from shomei.errors import NotPermitted
from tests.ra import factories
from tests.ra.conftest import VAULT, Database

HEADER = "種別,番号,名称,郵便番号,住所,電話番号,代表者番号,メールアドレス\r\n"
LEASE = dt.timedelta(minutes=2)
REPO = Path(__file__).resolve().parents[3]


def _csv(count: int, first: int = 1) -> bytes:
    rows = [
        f"事業所,{1400000000 + n:010d},テスト事業所{n},100-0001,東京都千代田区{n},03-1234-5678,,"
        f"o{n}@example.jp"
        for n in range(first, first + count)
    ]
    return (HEADER + "\r\n".join(rows) + "\r\n").encode("utf-8")


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _staff(database: Database, now: dt.datetime) -> Account:
    with database.factory() as s, s.begin():
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        s.expunge(staff)
        return staff


def _start(database: Database, staff: Account, data: bytes, now: dt.datetime) -> int:
    with database.factory() as s, s.begin():
        return import_runs.start(s, party_of(staff), data, now=now).id


def _imported(database: Database) -> int:
    with database.factory() as s:
        return int(
            s.scalar(
                select(func.count()).select_from(Account).where(Account.office_number.like("14%"))
            )
            or 0
        )


def _run(database: Database, run_id: int) -> ImportRun:
    with database.factory() as s:
        run = s.get(ImportRun, run_id)
        assert run is not None
        s.expunge(run)
        return run


def _work(
    database: Database, tmp_path: Path, clock: Callable[[], dt.datetime], holder: str, **kw: object
) -> list[tuple[int, ImportStatus]]:
    return import_runs.work(
        database.factory,
        holder=holder,
        vault=VAULT,
        data_dir=tmp_path / "data",
        clock=clock,
        lease=LEASE,
        **kw,  # type: ignore[arg-type]
    )


def test_a_queued_run_creates_every_account_and_seals_the_letters(
    database: Database, now: dt.datetime, tmp_path: Path
) -> None:
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(3), now)
    queued = _run(database, run_id)
    assert (queued.status, queued.total, queued.done) == (ImportStatus.QUEUED, 3, 0)
    assert queued.rows and queued.rows[0]["number"] == "1400000001"
    assert _imported(database) == 0  # queued: nothing created yet

    assert _work(database, tmp_path, Clock(now), "w1") == [(run_id, ImportStatus.DONE)]
    done = _run(database, run_id)
    assert (done.status, done.done, done.rows, done.holder) == (ImportStatus.DONE, 3, None, None)
    assert done.letters_token and _imported(database) == 3
    drop = letter_drops.get(tmp_path / "data", VAULT, done.letters_token, owner=staff.id, now=now)
    assert [p["number"] for p in drop.pages] == ["1400000001", "1400000002", "1400000003"]
    with pytest.raises(Exception, match="not available"):
        letter_drops.get(tmp_path / "data", VAULT, done.letters_token, owner=staff.id + 1, now=now)
    with database.factory() as s:
        first = accounts.get_account(s, drop.pages[0]["user_id"])
        check_issuance_password(first.issuance_password_hash, drop.pages[0]["issuance_password"])
        check_password(first.password_hash, drop.pages[0]["login_password"], what="", what_ja="")
        actions = list(
            s.scalars(select(AuditRecord.action).where(AuditRecord.object_type == "import_run"))
        )
        created_by = set(
            s.scalars(select(AuditRecord.actor_id).where(AuditRecord.action == "create_account"))
        )
    assert actions == ["import_accounts_queued", "import_accounts_done"]
    assert created_by == {staff.user_id}  # the accounts are the starter's doing
    assert _work(database, tmp_path, Clock(now), "w1") == []  # nothing left to do


def test_a_file_with_problems_is_never_queued(database: Database, now: dt.datetime) -> None:
    staff = _staff(database, now)
    bad = _csv(2) + "事業所,123,ほし,,東京都,03-1234-5678,,x@example.jp\r\n".encode()
    with database.factory() as s, s.begin(), pytest.raises(csvimport.ImportRefused):
        import_runs.start(s, party_of(staff), bad, now=now)
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_a_number_registered_meanwhile_fails_the_run_and_creates_nothing(
    database: Database, now: dt.datetime, tmp_path: Path
) -> None:
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(3), now)
    with database.factory() as s, s.begin():  # someone registers row 2's number by hand
        accounts.add_portal_account(
            s,
            party_of(staff),
            accounts.AccountInput(
                kind=AccountKind.OFFICE,
                number="1400000002",
                name="先に登録",
                address="東京都",
                phone="03-1111-2222",
                email="x@example.jp",
            ),
            now=now,
        )
    assert _work(database, tmp_path, Clock(now), "w1") == [(run_id, ImportStatus.FAILED)]
    failed = _run(database, run_id)
    assert failed.status is ImportStatus.FAILED and failed.rows is None
    assert failed.error_ja and "1400000002" in failed.error_ja and not failed.letters_token
    assert _imported(database) == 1  # only the one registered by hand
    assert not list((tmp_path / "data" / "letters").glob("*.sealed"))


def test_stopped_just_before_the_commit_creates_nothing_and_is_taken_again(
    database: Database, now: dt.datetime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(4), now)
    real_end = import_runs._audit_end

    def dies(*args: object) -> None:
        if "import_accounts_done" in args:  # accounts added and letters sealed, not committed
            raise SystemExit("killed")
        real_end(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(import_runs, "_audit_end", dies)
    with pytest.raises(SystemExit):
        _work(database, tmp_path, Clock(now), "dies")
    monkeypatch.undo()
    assert _imported(database) == 0
    assert not list((tmp_path / "data" / "letters").glob("*.sealed"))  # its letters went too
    stuck = _run(database, run_id)
    assert (stuck.status, stuck.holder, stuck.attempts) == (ImportStatus.RUNNING, "dies", 1)

    assert _work(database, tmp_path, Clock(now + LEASE / 2), "w2") == []  # lease still held
    later = Clock(now + LEASE + dt.timedelta(seconds=1))
    assert _work(database, tmp_path, later, "w2") == [(run_id, ImportStatus.DONE)]
    assert _imported(database) == 4 and _run(database, run_id).attempts == 2


def test_a_worker_process_killed_half_way_creates_nothing(
    database: Database, now: dt.datetime, tmp_path: Path
) -> None:
    """A real worker process, SIGKILLed once it has reported progress, then taken over."""
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(8), now)
    key = tmp_path / "secrets.key"
    create_key_file(key)
    code = (
        "import datetime as dt, sys\n"
        "from pathlib import Path\n"
        "from ra.people import import_runs\n"
        "from ra.store.db import make_engine, session_factory\n"
        "from ra.store.vault import load_vault\n"
        "factory = session_factory(make_engine(sys.argv[1]))\n"
        "import_runs.work(factory, holder='doomed', vault=load_vault(Path(sys.argv[2])),\n"
        "    data_dir=Path(sys.argv[3]), clock=lambda: dt.datetime.now(dt.UTC),\n"
        "    lease=dt.timedelta(seconds=3), workers=1)\n"
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", code, database.url, str(key), str(tmp_path / "data")],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = _run(database, run_id)
            if run.done > 0 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text(errors="replace")
        assert run.status is ImportStatus.RUNNING and run.holder == "doomed"
        assert 0 < run.done < run.total
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert _imported(database) == 0
    # Its lease runs out; the next worker takes the run and creates every account, once.
    time.sleep(3.2)
    clock = lambda: dt.datetime.now(dt.UTC)  # noqa: E731
    assert _work(database, tmp_path, clock, "heir") == [(run_id, ImportStatus.DONE)]
    assert _imported(database) == 8
    done = _run(database, run_id)
    assert done.attempts == 2 and done.done == 8


def test_two_workers_asking_at_once_get_one_run_once(database: Database, now: dt.datetime) -> None:
    staff = _staff(database, now)
    runs = [_start(database, staff, _csv(1, first=n), now) for n in (1, 2, 3)]
    for run_id in runs:
        barrier = threading.Barrier(2)
        got: dict[str, int | None] = {}

        def ask(
            holder: str,
            run_id: int = run_id,
            barrier: threading.Barrier = barrier,
            got: dict[str, int | None] = got,
        ) -> None:
            barrier.wait()
            got[holder] = import_runs.claim(
                database.factory, holder=holder, now=now, lease=LEASE, run_id=run_id
            )

        threads = [threading.Thread(target=ask, args=(h,)) for h in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(got.values(), key=str) == [run_id, None], got
        winner = next(h for h, v in got.items() if v == run_id)
        taken = _run(database, run_id)
        assert (taken.status, taken.holder, taken.attempts) == (ImportStatus.RUNNING, winner, 1)


def test_a_worker_whose_lease_was_taken_over_writes_nothing(
    database: Database, now: dt.datetime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A is slow: its lease runs out while it hashes, B takes the run; A's commit is
    refused (it no longer holds the lease) and B creates every account, once."""
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(3), now)
    slow = Clock(now)
    assert import_runs.claim(database.factory, holder="a", now=now, lease=LEASE) == run_id
    real = csvimport.passwords_for

    def hashed_while_b_takes_over(count: int, **kw: object) -> list[accounts.PortalPasswords]:
        found = real(count, **kw)  # type: ignore[arg-type]
        later = now + LEASE + dt.timedelta(seconds=1)
        assert import_runs.claim(database.factory, holder="b", now=later, lease=LEASE) == run_id
        slow.now = later
        return found

    monkeypatch.setattr(csvimport, "passwords_for", hashed_while_b_takes_over)
    status = import_runs.execute(
        database.factory,
        run_id,
        holder="a",
        vault=VAULT,
        data_dir=tmp_path / "data",
        clock=slow,
        lease=LEASE,
    )
    monkeypatch.undo()
    assert status is ImportStatus.RUNNING  # lost: another worker has it
    assert _imported(database) == 0 and _run(database, run_id).holder == "b"
    assert not list((tmp_path / "data" / "letters").glob("*.sealed"))
    # A's progress reports are refused too, so it stops hashing as soon as it reports.
    later = now + LEASE + dt.timedelta(seconds=1)
    status = import_runs.execute(
        database.factory,
        run_id,
        holder="b",
        vault=VAULT,
        data_dir=tmp_path / "data",
        clock=Clock(later),
        lease=LEASE,
    )
    assert status is ImportStatus.DONE and _imported(database) == 3


def test_a_run_interrupted_too_often_is_failed(
    database: Database, now: dt.datetime, tmp_path: Path
) -> None:
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(2), now)
    with database.factory() as s, s.begin():
        run = s.get(ImportRun, run_id)
        assert run is not None
        run.status = ImportStatus.RUNNING
        run.holder = "died"
        run.attempts = import_runs.MAX_ATTEMPTS
        run.lease_until = now - dt.timedelta(seconds=1)
    assert _work(database, tmp_path, Clock(now), "w") == []
    failed = _run(database, run_id)
    assert failed.status is ImportStatus.FAILED and failed.rows is None
    assert failed.error_ja and "中断" in failed.error_ja and _imported(database) == 0


def test_only_console_users_start_runs(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        office = factories.account(s, kind=AccountKind.OFFICE, now=now)
        with pytest.raises(NotPermitted):
            import_runs.start(s, party_of(office), _csv(1), now=now)
    with database.factory() as s:
        assert s.scalar(select(func.count()).select_from(ImportRun)) == 0


def test_a_starter_disabled_meanwhile_fails_the_run(
    database: Database, now: dt.datetime, tmp_path: Path
) -> None:
    staff = _staff(database, now)
    run_id = _start(database, staff, _csv(2), now)
    with database.factory() as s, s.begin():
        found = s.get(Account, staff.id)
        assert found is not None
        found.active = False
    assert _work(database, tmp_path, Clock(now), "w") == [(run_id, ImportStatus.FAILED)]
    assert _imported(database) == 0
    assert "利用停止中" in (_run(database, run_id).error_ja or "")


def test_hashing_stops_when_progress_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that lost its lease does not hash the rest of a large file first."""
    from ra.people import passwords

    calls: list[int] = []

    def slow(password: str) -> str:
        time.sleep(0.05)
        calls.append(1)
        return f"hash:{password}"

    def stop(done: int) -> None:
        raise import_runs.LeaseLost(1)

    monkeypatch.setattr(passwords, "hash_password", slow)
    with pytest.raises(import_runs.LeaseLost):
        passwords.hash_passwords([str(n) for n in range(200)], workers=2, progress=stop)
    time.sleep(0.2)  # what was already running ends; nothing else starts
    assert len(calls) <= 4
