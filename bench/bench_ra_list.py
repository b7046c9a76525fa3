"""Benchmark 5: the console's certificate list query over 200,000 applications vs over 1,000.

The same mix of list searches (:func:`ra.desk.queries.list_applications`) runs against an RA
database holding 1,000 applications and one holding 200,000, with the same distribution:
one office per ten applications (20,000 offices at 200,000), five agents with a tenth of the
applications between them, 3.5% entered by staff, statuses spread over all ten and mostly
発行済み, certificates for the issued and revoked ones.  The mix: first page and a deep page
(60% down the list, reached by cursor) of 事業所/発行済み, of all types in the work-queue
statuses, and of one agent's issued/revoked/unpaid applications; an office's user ID exactly;
a user ID prefix matching ten offices; 職員 entries only.

Figures (one per database): ``ra_list_query_sqlite`` and ``ra_list_query_postgresql``, time
per query at 200,000 against the time per query at 1,000, best of five interleaved rounds;
target ratio <= 1.5.  PostgreSQL runs when a server answers at :data:`PG_URL`, in a schema of
its own dropped afterwards.  Rows are loaded in bulk (executemany on SQLite, COPY on
PostgreSQL), then ANALYZE (VACUUM ANALYZE on PostgreSQL) as a deployed database would have.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, insert

from bench.common import Figure, judged
from ra.desk.queries import Cursor, count_applications, list_applications
from ra.lifecycle import Status
from ra.party import Party
from ra.store.db import make_engine, session_factory, upgrade
from ra.store.models import Account, Application, Certificate

# The list is the console's; the benchmark reads it as the RA operator would.
BENCH = Party.operator("bench")

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BIG, SMALL = 200_000, 1_000
ROUNDS = 5
REPEAT = 8  # times the mix runs per round
START = dt.datetime(2010, 4, 1, tzinfo=dt.UTC)
S = Status
WEIGHTS = {
    S.AWAITING_ISSUE_REQUEST: 3,  # becomes AWAITING_PAYMENT for agents
    S.ISSUE_REQUESTED: 2,
    S.AWAITING_ISSUANCE: 1,
    S.ISSUED: 72,
    S.REVOCATION_REQUESTED: 1,
    S.AWAITING_REVOCATION: 1,
    S.REVOKED: 12,
    S.REJECTION_PENDING: 1,
    S.REJECTED: 5,
}
WITH_CERTIFICATE = {S.ISSUED, S.REVOCATION_REQUESTED, S.AWAITING_REVOCATION, S.REVOKED}
IN_PROGRESS = {S.AWAITING_ISSUE_REQUEST, S.AWAITING_PAYMENT, S.ISSUE_REQUESTED, S.AWAITING_ISSUANCE}
WORK_QUEUE = {S.AWAITING_ISSUE_REQUEST, S.AWAITING_PAYMENT, S.ISSUE_REQUESTED}
AGENT_SEARCH = {S.ISSUED, S.REVOKED, S.AWAITING_PAYMENT}


@dataclass
class Dataset:
    accounts: list[dict[str, Any]]
    applications: list[dict[str, Any]]
    certificates: list[dict[str, Any]]
    offices: int
    agents: list[str]


def make_dataset(n: int, seed: int = 5) -> Dataset:
    rng = random.Random(seed)
    offices = max(100, n // 10)
    accounts: list[dict[str, Any]] = []
    for i in range(1, offices + 1):
        accounts.append(
            {
                "id": i,
                "user_id": f"HJ{i:09d}",
                "kind": "office",
                "name": f"社会福祉法人 ひかり会 第{i}事業所",
                "office_number": f"{1300000000 + i:010d}",
                "failed_logins": 0,
                "active": True,
                "created_at": START,
            }
        )
    agents = [f"AG{k:04d}" for k in range(1, 6)]
    for k, user_id in enumerate(agents, start=1):
        accounts.append(
            {
                "id": offices + k,
                "user_id": user_id,
                "kind": "agent",
                "name": f"株式会社 代理システム{k}",
                "office_number": None,
                "failed_logins": 0,
                "active": True,
                "created_at": START,
            }
        )
    statuses, weights = list(WEIGHTS), list(WEIGHTS.values())
    step = (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) - START) / n
    applications: list[dict[str, Any]] = []
    certificates: list[dict[str, Any]] = []
    in_progress: set[int] = set()  # offices with an application in statuses 1-4 (one each)
    for i in range(1, n + 1):
        agent = rng.random() < 0.10
        # Agents apply on behalf of offices (docs/product.md §1): the subject is always an office.
        office = rng.randint(1, offices)
        account_id = offices + rng.randint(1, 5) if agent else office
        roll = rng.random()
        entered_by = "staff" if roll < 0.03 else "admin" if roll < 0.035 else None
        status = rng.choices(statuses, weights)[0]
        if agent and status is S.AWAITING_ISSUE_REQUEST:
            status = S.AWAITING_PAYMENT
        if status in IN_PROGRESS:
            if office in in_progress:
                status = S.ISSUED  # the index allows one in progress per office
            in_progress.add(office)
        applied_at = START + step * i + dt.timedelta(seconds=rng.randint(0, 3))
        applications.append(
            {
                "id": i,
                "account_id": account_id,
                "applicant": "agent" if agent else "office",
                "entered_by": entered_by or ("agent" if agent else "office"),
                "status": status.value,
                "version": 1,
                "status_changed_at": applied_at,
                "applied_at": applied_at,
                "fee_yen": 1000,
                "profile": "office",
                "csr_der": b"csr",
                "request_id": f"r{i:012d}",
                "office_number": f"{1300000000 + office:010d}",
                "office_name": f"社会福祉法人 ひかり会 第{office}事業所",
            }
        )
        if status in WITH_CERTIFICATE:
            not_before = applied_at + dt.timedelta(days=5)
            certificates.append(
                {
                    "id": len(certificates) + 1,
                    "application_id": i,
                    "serial_hex": f"{i:040x}",
                    "der": b"der",
                    "not_before": not_before,
                    "not_after": not_before + dt.timedelta(days=1095),
                    "registered_at": not_before,
                    "revoked_at": not_before + dt.timedelta(days=200)
                    if status is S.REVOKED
                    else None,
                    "expiry_notices_sent": [],
                }
            )
    return Dataset(accounts, applications, certificates, offices, agents)


# --- loading ------------------------------------------------------------------------------


def load_sqlite(engine: Engine, data: Dataset) -> None:
    with engine.begin() as conn:
        for table, rows in (
            (Account.__table__, data.accounts),
            (Application.__table__, data.applications),
            (Certificate.__table__, data.certificates),
        ):
            for start in range(0, len(rows), 20_000):
                conn.execute(insert(table), rows[start : start + 20_000])
        conn.exec_driver_sql("ANALYZE")


def load_postgres(engine: Engine, data: Dataset) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        for table, rows in (
            ("accounts", data.accounts),
            ("applications", data.applications),
            ("certificates", data.certificates),
        ):
            columns = list(rows[0])
            with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row([("[]" if isinstance(v, list) else v) for v in row.values()])
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


# --- the query mix -------------------------------------------------------------------------


def _deep_cursor(data: Dataset, keep: Callable[[dict[str, Any]], bool]) -> Cursor:
    """The cursor 60% down the list of rows ``keep`` selects (newest first)."""
    rows = sorted(
        (a for a in data.applications if keep(a)),
        key=lambda a: (a["applied_at"], a["id"]),
        reverse=True,
    )
    row = rows[int(len(rows) * 0.6)]
    return Cursor(row["applied_at"], row["id"])


def make_mix(data: Dataset, rng: random.Random) -> list[dict[str, Any]]:
    """The searches of one run of the mix (keyword arguments of list_applications)."""
    agent_id = data.offices + 1
    office_issued = _deep_cursor(
        data,
        lambda a: (
            a["applicant"] == "office" and a["entered_by"] == "office" and a["status"] == "issued"
        ),
    )
    queue = _deep_cursor(data, lambda a: a["status"] in WORK_QUEUE)
    agent_deep = _deep_cursor(
        data, lambda a: a["account_id"] == agent_id and a["status"] in AGENT_SEARCH
    )
    tens = data.offices // 10
    return [
        {"applicant_types": {"office"}, "statuses": {S.ISSUED}},
        {"applicant_types": {"office"}, "statuses": {S.ISSUED}, "after": office_issued},
        {"statuses": WORK_QUEUE},
        {"statuses": WORK_QUEUE, "after": queue},
        {"user_id": f"HJ{rng.randint(1, data.offices):09d}", "user_id_match": "exact"},
        {"user_id": f"HJ{rng.randint(1, tens - 1):08d}", "statuses": {S.ISSUED, S.REVOKED}},
        {"user_id": data.agents[0], "user_id_match": "exact", "statuses": AGENT_SEARCH},
        {
            "user_id": data.agents[0],
            "user_id_match": "exact",
            "statuses": AGENT_SEARCH,
            "after": agent_deep,
        },
        {"applicant_types": {"staff"}},
    ]


@dataclass
class Target:
    label: str
    factory: Any
    data: Dataset


def run_mix(target: Target, mixes: list[list[dict[str, Any]]]) -> float:
    """Seconds per query over ``mixes``, in one session; checks the pages are not empty."""
    count = 0
    with target.factory() as session:
        start = time.perf_counter()
        for mix in mixes:
            for query in mix:
                page = list_applications(session, BENCH, **query)
                if not page.rows:
                    raise SystemExit(f"{target.label}: empty page for {query}")
                count += 1
        elapsed = time.perf_counter() - start
        session.rollback()
    return elapsed / count


def check_pages(target: Target, mix: list[dict[str, Any]]) -> None:
    """Print what each search returns; 事業所/発行済み must fill its pages at both sizes."""
    with target.factory() as session:
        sizes = [len(list_applications(session, BENCH, **query).rows) for query in mix]
    print(f"  {target.label}: rows per search of the mix: {sizes}", flush=True)
    if sizes[0] != 50 or sizes[1] != 50:
        raise SystemExit(f"{target.label}: 事業所/発行済み pages are not full: {sizes[:2]}")


def compare(db: str, small: Target, big: Target) -> Figure:
    rng = random.Random(11)
    small_mixes = [make_mix(small.data, rng) for _ in range(REPEAT)]
    big_mixes = [make_mix(big.data, rng) for _ in range(REPEAT)]
    check_pages(small, small_mixes[0])
    check_pages(big, big_mixes[0])
    run_mix(small, small_mixes)  # warm caches and compiled statements
    run_mix(big, big_mixes)
    small_times, big_times = [], []
    for _ in range(ROUNDS):
        small_times.append(run_mix(small, small_mixes))
        big_times.append(run_mix(big, big_mixes))
    with big.factory() as session:
        start = time.perf_counter()
        total = count_applications(session, BENCH, statuses={S.ISSUED})
        counted = time.perf_counter() - start
    print(
        f"  {db}: per query {min(small_times) * 1e3:.3f} ms at {SMALL:,}, "
        f"{min(big_times) * 1e3:.3f} ms at {BIG:,}; count of 発行済み at {BIG:,}: "
        f"{total:,} in {counted * 1e3:.1f} ms",
        flush=True,
    )
    return judged(
        f"ra_list_query_{db}",
        min(big_times) * 1e3,
        "ms/query",
        f"the same searches over {SMALL:,} applications ({db})",
        min(small_times) * 1e3,
        target_op="<=",
        target=1.5,
    )


@contextmanager
def sqlite_target(workdir: Path, n: int, data: Dataset) -> Iterator[Target]:
    url = f"sqlite:///{workdir / f'ra-{n}.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    started = time.perf_counter()
    load_sqlite(engine, data)
    print(
        f"  sqlite: {n:,} applications loaded in {time.perf_counter() - started:.1f} s", flush=True
    )
    try:
        yield Target(f"sqlite {n:,}", session_factory(engine), data)
    finally:
        engine.dispose()


def postgres_reachable() -> bool:
    try:
        probe = create_engine(PG_URL)
        with probe.connect():
            pass
        probe.dispose()
        return True
    except Exception:
        return False


@contextmanager
def postgres_target(n: int, data: Dataset) -> Iterator[Target]:
    schema = f"bench_list_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    try:
        upgrade(url)
        engine = make_engine(url)
        started = time.perf_counter()
        load_postgres(engine, data)
        print(
            f"  postgresql: {n:,} applications loaded in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        try:
            yield Target(f"postgresql {n:,}", session_factory(engine), data)
        finally:
            engine.dispose()
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def run(workdir: Path) -> list[Figure]:
    print(f"  generating {BIG:,} and {SMALL:,} applications ...", flush=True)
    small_data, big_data = make_dataset(SMALL), make_dataset(BIG)
    figures: list[Figure] = []
    with (
        sqlite_target(workdir, SMALL, small_data) as small,
        sqlite_target(workdir, BIG, big_data) as big,
    ):
        figures.append(compare("sqlite", small, big))
    if postgres_reachable():
        with postgres_target(SMALL, small_data) as small, postgres_target(BIG, big_data) as big:
            figures.append(compare("postgresql", small, big))
    else:
        print(f"  PostgreSQL not reachable at {PG_URL}: its figure is skipped", flush=True)
    return figures
