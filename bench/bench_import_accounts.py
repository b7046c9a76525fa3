"""Benchmark 6: ``shomei ra import-accounts``, seconds per account, hashing on every core.

Each account gets two argon2id hashes (RFC 9106 parameters: 64 MiB, 3 passes, 4 lanes), the
slow part of a bulk import by design.  The same CSV of :data:`ROWS` offices is imported into
fresh SQLite databases twice per round, once with the hashing on one worker thread (as before
the import used every core) and once on every core (:func:`ra.people.passwords.hash_passwords`),
best of :data:`ROUNDS` interleaved rounds.

Figure ``ra_import_accounts``: seconds per account on every core, against one worker; target
ratio <= 0.9.  The gain is bounded: one argon2 hash already runs its four lanes on threads,
so one worker keeps about 1.6 of 2 cores busy.  On a machine whose cores are busy with other
work there is nothing to gain, and the figure says so.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from bench.common import Figure, judged
from ra.party import Party
from ra.people.csvimport import import_accounts
from ra.store.db import make_engine, session_factory, transaction, upgrade

ROWS = 60
ROUNDS = 2
NOW = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)


def _csv() -> bytes:
    lines = ["種別,番号,名称,住所,電話番号,メールアドレス"]
    lines += [
        f"事業所,{1300000000 + i},事業所{i},東京都港区1-{i},03-1111-{i:04d},o{i}@example.jp"
        for i in range(ROWS)
    ]
    return ("\n".join(lines) + "\n").encode()


def _import(work: Path, name: str, workers: int | None) -> float:
    url = f"sqlite:///{work / name}.sqlite"
    upgrade(url)
    engine = make_engine(url)
    data = _csv()
    start = time.perf_counter()
    with transaction(session_factory(engine)) as session:
        created = import_accounts(session, Party.operator("bench"), data, now=NOW, workers=workers)
    seconds = time.perf_counter() - start
    engine.dispose()
    assert len(created) == ROWS
    return seconds / ROWS


def run(work: Path) -> list[Figure]:
    one: list[float] = []
    every: list[float] = []
    for i in range(ROUNDS):
        one.append(_import(work, f"one-{i}", 1))
        every.append(_import(work, f"every-{i}", None))
    return [
        judged(
            "ra_import_accounts",
            min(every),
            "s/account",
            "the same import on one worker",
            min(one),
            target_op="<=",
            target=0.9,
        )
    ]
