"""kill -9 at a random point of a result import, 20 times per database, then import again.

Each round makes a few applications, dispatches them (offline mode, so nothing is imported
yet), has the real CA sign the batch, and then forks a child process that imports the result
with a database connection of its own.  The parent kills the child with SIGKILL after a random
delay within the time a whole import takes, imports the same result itself, and checks the
end state: every application of the round issued with exactly one certificate, one notice and
one mail each, the batch marked imported once, and a gapless audit chain (:func:`audit.verify`).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
from pathlib import Path

from sqlalchemy import func, select

from ca.signbatch import sign_batch
from ra.ca_link import link
from ra.ca_link.identity import load_link_identity
from ra.lifecycle import Status
from ra.settings import RASettings
from ra.store import audit
from ra.store.db import make_engine, session_factory
from ra.store.models import Application, CaBatch, Certificate, Notice, OutboxMail
from tests.ra.ca_fixture import CaHome, ca_home_fixture, open_test_ca, ra_settings  # noqa: F401
from tests.ra.ca_link.test_link import requested
from tests.ra.conftest import Database

ROUNDS = 20
PER_ROUND = 4


def _child_import(
    url: str, settings: RASettings, result: bytes, now: dt.datetime, pipe: int
) -> None:
    """In the forked child: import with a fresh engine, then leave without any cleanup.

    It writes ``b`` to ``pipe`` when the import begins and the seconds it took at the end.
    """
    code = 0
    try:
        factory = session_factory(make_engine(url))
        os.write(pipe, b"b")
        started = time.monotonic()
        link.import_result(factory, settings, result, now=now)
        os.write(pipe, f"{time.monotonic() - started:.6f}".encode())
    except BaseException:
        code = 3
    os._exit(code)


def _fork_import(
    url: str, settings: RASettings, result: bytes, now: dt.datetime, kill_after: float | None
) -> tuple[int, float]:
    """Run the import in a child; kill it ``kill_after`` seconds after the import began
    (None: let it finish).  Returns the wait status and the child's own import time."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        _child_import(url, settings, result, now, write_end)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        began = pipe.read(1)
        if kill_after is not None and began:
            time.sleep(kill_after)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        took = pipe.read()
    _, status = os.waitpid(pid, 0)
    return status, float(took) if took else 0.0


def _round(database: Database, settings: RASettings, ca_home: CaHome) -> tuple[list[int], bytes]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        ids = [requested(s, now=now, email=f"o{i}@example.jp") for i in range(PER_ROUND)]
    (request,) = link.dispatch(database.factory, settings, now=now).written
    with open_test_ca(ca_home) as ca:
        return ids, sign_batch(ca, request.read_bytes(), now=now, workers=1)


def _check(database: Database, settings: RASettings, issued: list[int]) -> None:
    with database.factory() as s:
        statuses = s.execute(select(Application.status).where(Application.id.in_(issued))).all()
        assert {st for (st,) in statuses} == {Status.ISSUED}
        per_app = s.execute(
            select(Certificate.application_id, func.count()).group_by(Certificate.application_id)
        ).all()
        assert sorted(a for a, _ in per_app) == sorted(issued)
        assert all(n == 1 for _, n in per_app)
        for model in (Notice, OutboxMail):
            count = s.execute(select(func.count()).select_from(model)).scalar_one()
            assert count == len(issued), model.__name__
        not_imported = s.execute(
            select(func.count()).select_from(CaBatch).where(CaBatch.imported_at.is_(None))
        ).scalar_one()
        assert not_imported == 0
        audit.verify(s, trusted=[load_link_identity(settings.link).certificate])


def test_kill_minus_nine_during_import(database: Database, ca_home: CaHome, tmp_path: Path) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    database.engine.dispose()  # nothing pooled across the forks
    rng = random.Random(20261122)
    issued: list[int] = []
    # Round 0 measures how long a whole import takes in a child (and is the happy path).
    ids, result = _round(database, settings, ca_home)
    now = dt.datetime.now(dt.UTC)
    status, duration = _fork_import(database.url, settings, result, now, None)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and duration > 0
    issued += ids
    _check(database, settings, issued)
    killed = 0
    for _ in range(ROUNDS):
        ids, result = _round(database, settings, ca_home)
        database.engine.dispose()
        status, _ = _fork_import(
            database.url, settings, result, now, rng.uniform(0.0, duration * 1.1)
        )
        killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3), "child import failed"
        summary = link.import_result(database.factory, settings, result, now=now)
        issued += ids
        _check(database, settings, issued)
        # Importing once more is always a no-op.
        assert link.import_result(database.factory, settings, result, now=now).already_imported
        if not summary.already_imported:
            assert summary.issued == PER_ROUND
    assert killed >= ROUNDS // 4, f"only {killed} of {ROUNDS} children were killed mid-way"
