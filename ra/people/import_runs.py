"""Background CSV imports of office and agent accounts (事業所管理, docs/ra-operator-guide.md).

Hashing the two argon2id passwords of an account costs a few tenths of a CPU second by design,
so a file of thousands of rows cannot be imported inside a web request.  The console checks the
file in the request (:func:`ra.people.csvimport.check`: every row, every problem, nothing
created) and :func:`start` stores the checked rows as an :class:`~ra.store.models.ImportRun`,
``queued``.  A worker carries it out (:func:`work`): the scheduler process polls for queued runs
every few seconds, and the console runs a small file (:data:`SMALL` rows or fewer) at once
in the request, through the same code.

- **One worker per run.**  :func:`claim` takes a run with a lease (``holder``,
  ``lease_until``) in one conditional UPDATE, so of two workers asking at once one gets it;
  the worker renews the lease as it reports progress (``done`` of ``total``), and a worker
  that finds its lease taken stops without writing anything.
- **All or nothing.**  The passwords are hashed first; the accounts are then created in the one
  transaction that marks the run ``done`` (and only while the worker still holds the lease), so
  a crash at any point leaves no account.  A run whose worker died is taken again once its
  lease ran out, with new passwords, at most :data:`MAX_ATTEMPTS` times; after that it is
  ``failed``.  A row refused at creation (a number registered since the check, the starter's
  account disabled) fails the run with its reason and creates nothing.
- **Letters.**  The letters with the new passwords are sealed for the staff member who started
  the run (:mod:`ra.store.letter_drops`, the same drop and 15 minutes as an import in the
  request) inside that transaction; the run keeps only the drop's token.

The checked rows (no passwords) are kept in the run until it ends.  Finished runs are deleted
after 90 days by the ``deletion`` job (:func:`ra.tasks.jobs.prune_runs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from ra.party import Party, Permission, account_of, party_of, require
from ra.people import csvimport
from ra.people.accounts import AccountInput, PortalPasswords
from ra.people.passwords import Rng
from ra.store import audit, letter_drops
from ra.store.models import Account, AccountKind, ImportRun, ImportStatus
from ra.store.vault import Vault
from shomei.errors import NotFound, ShomeiError

log = logging.getLogger("shomei.ra.imports")

Factory = sessionmaker[Session]
Clock = Callable[[], dt.datetime]

SMALL = 20  # rows the console imports at once, in the request
MAX_ATTEMPTS = 3  # runs whose worker died are taken again this many times in all
PROGRESS_SECONDS = 1.0  # at most one progress write (and lease renewal) a second
RECENT = 10  # runs listed on the upload page
FIELDS = tuple(f.name for f in dataclasses.fields(AccountInput))


class LeaseLost(Exception):
    """Another worker holds the run now (this one was too slow to renew): stop, write nothing."""


@dataclass(frozen=True)
class RunView:
    """An import run as the console shows it."""

    id: int
    status: ImportStatus
    total: int
    done: int
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    started_by: str  # the user ID of the staff member who started it
    started_by_id: int
    error: str | None
    error_ja: str | None
    letters_token: str | None  # only for the staff member who started it

    @property
    def active(self) -> bool:
        return self.status in (ImportStatus.QUEUED, ImportStatus.RUNNING)


def _stored(line: int, row: AccountInput) -> dict[str, Any]:
    values = {name: getattr(row, name) for name in FIELDS}
    values["kind"] = row.kind.value
    return {"line": line, **values}


def _input(stored: dict[str, Any]) -> AccountInput:
    values = {name: stored[name] for name in FIELDS}
    values["kind"] = AccountKind(values["kind"])
    return AccountInput(**values)


def start(
    session: Session,
    party: Party,
    data: bytes,
    *,
    now: dt.datetime,
    source_address: str | None = None,
) -> RunView:
    """Check the CSV ``data`` again and queue its accounts for a worker; creates none.

    Raises what :func:`ra.people.csvimport.check` raises (a file with any problem is never
    queued).  Only a console user may start a run: the letters are sealed for that account.
    """
    rows = csvimport.check(session, party, data)
    account = account_of(session, party)
    run = ImportRun(
        status=ImportStatus.QUEUED,
        total=len(rows),
        done=0,
        started_by=account.id,
        source_address=source_address,
        rows=[_stored(line, row) for line, row in rows],
        created_at=now,
        attempts=0,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor=party.actor.value,
        actor_id=party.audit_id,
        action="import_accounts_queued",
        object_type="import_run",
        object_id=str(run.id),
        now=now,
        source_address=source_address,
        details={"rows": len(rows)},
    )
    return _view(run, account, viewer=account.id)


def _view(run: ImportRun, starter: Account, *, viewer: int | None) -> RunView:
    return RunView(
        run.id,
        run.status,
        run.total,
        run.done,
        run.created_at,
        run.started_at,
        run.finished_at,
        starter.user_id,
        starter.id,
        run.error,
        run.error_ja,
        run.letters_token if viewer == starter.id else None,
    )


def get(session: Session, party: Party, run_id: int) -> RunView:
    """One run (staff and admins)."""
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    found = session.execute(
        select(ImportRun, Account)
        .join(Account, Account.id == ImportRun.started_by)
        .where(ImportRun.id == run_id)
    ).one_or_none()
    if found is None:
        raise NotFound(
            f"there is no import run {run_id}", message_ja=f"一括登録 {run_id} はありません"
        )
    run, starter = found
    return _view(run, starter, viewer=party.account_id)


def recent(session: Session, party: Party, limit: int = RECENT) -> list[RunView]:
    """The latest runs, newest first (staff and admins)."""
    require(party, Permission.MANAGE_PORTAL_ACCOUNTS)
    found = session.execute(
        select(ImportRun, Account)
        .join(Account, Account.id == ImportRun.started_by)
        .order_by(ImportRun.id.desc())
        .limit(limit)
    ).all()
    return [_view(run, starter, viewer=party.account_id) for run, starter in found]


def waiting(factory: Factory, *, now: dt.datetime) -> bool:
    """Whether any run waits for a worker (queued, or its worker's lease ran out)."""
    with factory() as session:
        return (
            session.execute(select(ImportRun.id).where(_claimable(now)).limit(1)).first()
            is not None
        )


def _claimable(now: dt.datetime) -> Any:
    return or_(
        ImportRun.status == ImportStatus.QUEUED,
        and_(ImportRun.status == ImportStatus.RUNNING, ImportRun.lease_until < now),
    )


GAVE_UP = (
    f"the import was interrupted {MAX_ATTEMPTS} times (the worker stopped); nothing was created",
    f"一括登録が {MAX_ATTEMPTS} 回中断されました(処理が停止しました)。1 件も登録していません",
)


def claim(
    factory: Factory,
    *,
    holder: str,
    now: dt.datetime,
    lease: dt.timedelta,
    run_id: int | None = None,
) -> int | None:
    """Take the oldest run waiting for a worker (or run ``run_id``) for ``holder``.

    One conditional UPDATE per candidate: when two workers ask at once, the second finds the
    run no longer claimable (PostgreSQL re-reads the row after the first commits; SQLite
    runs one writer at a time) and takes nothing.  A run already interrupted
    :data:`MAX_ATTEMPTS` times is marked failed instead.
    """
    with factory() as session, session.begin():
        query = select(ImportRun.id, ImportRun.status, ImportRun.attempts).where(_claimable(now))
        if run_id is not None:
            query = query.where(ImportRun.id == run_id)
        for found_id, status, attempts in session.execute(query.order_by(ImportRun.id).limit(5)):
            still = and_(ImportRun.id == found_id, _claimable(now))
            if status is ImportStatus.RUNNING and attempts >= MAX_ATTEMPTS:
                gave_up = session.execute(
                    update(ImportRun)
                    .where(still)
                    .values(
                        status=ImportStatus.FAILED,
                        finished_at=now,
                        rows=None,
                        holder=None,
                        lease_until=None,
                        error=GAVE_UP[0],
                        error_ja=GAVE_UP[1],
                    )
                    .execution_options(synchronize_session=False)
                )
                if gave_up.rowcount:  # type: ignore[attr-defined]
                    _audit_end(session, found_id, holder, now, "import_accounts_failed", GAVE_UP[0])
                continue
            taken = session.execute(
                update(ImportRun)
                .where(still)
                .values(
                    status=ImportStatus.RUNNING,
                    holder=holder,
                    lease_until=now + lease,
                    attempts=ImportRun.attempts + 1,
                    started_at=now,
                    done=0,
                )
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                return int(found_id)
    return None


def _mine(run_id: int, holder: str) -> Any:
    return and_(
        ImportRun.id == run_id,
        ImportRun.holder == holder,
        ImportRun.status == ImportStatus.RUNNING,
    )


class _Progress:
    """Writes ``done`` and renews the lease, at most once a second; raises :class:`LeaseLost`."""

    def __init__(
        self, factory: Factory, run_id: int, holder: str, clock: Clock, lease: dt.timedelta
    ) -> None:
        self.factory = factory
        self.run_id = run_id
        self.holder = holder
        self.clock = clock
        self.lease = lease
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if done < total and time.monotonic() - self.last < PROGRESS_SECONDS:
            return
        self.last = time.monotonic()
        with self.factory() as session, session.begin():
            renewed = session.execute(
                update(ImportRun)
                .where(_mine(self.run_id, self.holder))
                .values(done=done, lease_until=self.clock() + self.lease)
                .execution_options(synchronize_session=False)
            )
            if renewed.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(self.run_id)


def _audit_end(
    session: Session, run_id: int, holder: str, now: dt.datetime, action: str, detail: str
) -> None:
    job = Party.job(f"import:{holder}"[:64])
    audit.record(
        session,
        actor=job.actor.value,
        actor_id=job.audit_id,
        action=action,
        object_type="import_run",
        object_id=str(run_id),
        now=now,
        details={"outcome": detail[:2000]},
    )


def _create(
    factory: Factory,
    run_id: int,
    rows: Sequence[AccountInput],
    passwords: Sequence[PortalPasswords],
    *,
    holder: str,
    vault: Vault,
    data_dir: Path,
    now: dt.datetime,
    rng: Rng,
) -> None:
    """Create every account and seal the letters in one transaction, while holding the lease."""
    token: str | None = None
    try:
        with factory() as session, session.begin():
            marked = session.execute(
                update(ImportRun)
                .where(_mine(run_id, holder))
                .values(
                    status=ImportStatus.DONE,
                    done=len(rows),
                    finished_at=now,
                    rows=None,
                    holder=None,
                    lease_until=None,
                )
                .execution_options(synchronize_session=False)
            )
            if marked.rowcount != 1:  # type: ignore[attr-defined]
                raise LeaseLost(run_id)
            run = session.get(ImportRun, run_id)
            assert run is not None
            starter = session.get(Account, run.started_by)
            assert starter is not None
            party = party_of(starter)  # a starter disabled since is refused
            created = csvimport.create_accounts(
                session,
                party,
                rows,
                passwords,
                now=now,
                rng=rng,
                source_address=run.source_address,
            )
            token = letter_drops.put(
                data_dir,
                vault,
                owner=starter.id,
                kind="accounts",
                pages=[
                    letter_drops.account_page(
                        c.account,
                        login_password=c.login_password,
                        issuance_password=c.issuance_password or "",
                    )
                    for c in created
                ],
                now=now,
            )
            run.letters_token = token
            _audit_end(session, run_id, holder, now, "import_accounts_done", f"{len(created)}")
    except BaseException:
        if token is not None:  # the accounts were not committed: their letters go too
            letter_drops.discard(data_dir, token)
        raise


def _fail(factory: Factory, run_id: int, holder: str, exc: Exception, now: dt.datetime) -> None:
    if isinstance(exc, ShomeiError):
        english, japanese = exc.message, exc.message_ja
    else:
        english = japanese = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    with factory() as session, session.begin():
        failed = session.execute(
            update(ImportRun)
            .where(_mine(run_id, holder))
            .values(
                status=ImportStatus.FAILED,
                finished_at=now,
                rows=None,
                holder=None,
                lease_until=None,
                error=english[:2000],
                error_ja=japanese[:2000],
            )
            .execution_options(synchronize_session=False)
        )
        if failed.rowcount == 1:  # type: ignore[attr-defined]
            _audit_end(session, run_id, holder, now, "import_accounts_failed", english)


def execute(
    factory: Factory,
    run_id: int,
    *,
    holder: str,
    vault: Vault,
    data_dir: Path,
    clock: Clock,
    lease: dt.timedelta,
    rng: Rng = secrets.token_bytes,
    workers: int | None = None,
) -> ImportStatus:
    """Carry out the run ``run_id`` that ``holder`` claimed; the status it ended in.

    ``RUNNING`` means the lease was lost to another worker, which carries the run on: this
    one wrote nothing.
    """
    with factory() as session:
        run = session.get(ImportRun, run_id)
        if run is None or run.holder != holder or run.status is not ImportStatus.RUNNING:
            return ImportStatus.RUNNING if run is not None else ImportStatus.FAILED
        rows = [_input(stored) for stored in run.rows or []]
    try:
        progress = _Progress(factory, run_id, holder, clock, lease)
        passwords = csvimport.passwords_for(len(rows), rng=rng, workers=workers, progress=progress)
        _create(
            factory,
            run_id,
            rows,
            passwords,
            holder=holder,
            vault=vault,
            data_dir=data_dir,
            now=clock(),
            rng=rng,
        )
    except LeaseLost:
        log.warning("account import %s: %s lost its lease; another worker has it", run_id, holder)
        return ImportStatus.RUNNING
    except Exception as exc:
        _fail(factory, run_id, holder, exc, clock())
        log.error("account import %s failed: %s", run_id, exc)
        return ImportStatus.FAILED
    log.info("account import %s done: %d account(s) created", run_id, len(rows))
    return ImportStatus.DONE


def work(
    factory: Factory,
    *,
    holder: str,
    vault: Vault,
    data_dir: Path,
    clock: Clock,
    lease: dt.timedelta,
    run_id: int | None = None,
    rng: Rng = secrets.token_bytes,
    workers: int | None = None,
) -> list[tuple[int, ImportStatus]]:
    """Claim and carry out waiting runs until none is left (only ``run_id``, when given)."""
    finished: list[tuple[int, ImportStatus]] = []
    while True:
        claimed = claim(factory, holder=holder, now=clock(), lease=lease, run_id=run_id)
        if claimed is None:
            return finished
        log.info("account import %s taken by %s", claimed, holder)
        status = execute(
            factory,
            claimed,
            holder=holder,
            vault=vault,
            data_dir=data_dir,
            clock=clock,
            lease=lease,
            rng=rng,
            workers=workers,
        )
        finished.append((claimed, status))
        if run_id is not None:
            return finished


__all__ = [
    "MAX_ATTEMPTS",
    "SMALL",
    "LeaseLost",
    "RunView",
    "claim",
    "execute",
    "get",
    "recent",
    "start",
    "waiting",
    "work",
]
