"""Benchmark 6: the console list's numbered pages and its CSV export, 200,000 vs 1,000 rows.

Same databases as benchmark 5 (:mod:`bench.bench_ra_list`: the same generated federation,
1,000 and 200,000 applications, SQLite and, when a server answers, PostgreSQL), plus a fee
charge for every office application so the 手数料残高 column reads real rows.

Pages (:func:`ra.desk.queries.list_page`): for a mix of six searches (everything; 事業所/発行済み;
the work-queue statuses; a user ID prefix matching ten offices; one agent exactly; 職員
entries), the search is planned once (:func:`ra.desk.queries.plan_pages`, as the screen's 検索
does), then the time of the first page and of page-number jumps deep into the list (60%
down, and 最終) is measured, best of five interleaved rounds.  Figures
``ra_list_first_page_<db>`` and ``ra_list_page_jump_<db>``: ms per page at 200,000 against
ms at 1,000, target ratio <= 1.5.  What a search costs once (the plan: every page's first
key and the total, one pass), and the bare count (全件数), are printed beside them: both read
every matching index entry, so they grow with the table.

Export (:func:`ra.desk.export.csv_stream`, CP932): every one of the 200,000 rows, streamed and
discarded as a web response would send it.  ``ra_export_csv_rate_<db>``: rows/s against a
plain ``csv.writer`` writing the same rows, already in memory as Python lists, to an
in-memory buffer encoded CP932 (the floor of any CSV writer in Python; target ratio >= 0.05:
the export also reads the database 500 rows at a time and builds each row).
``ra_export_csv_memory_<db>``: the peak of Python allocations during the export
(tracemalloc), against the 100 MB budget (target ratio <= 1), with the peak of building the
same file in memory (what a non-streamed export holds) printed as the reference.
"""

from __future__ import annotations

import csv
import gc
import io
import random
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench.bench_ra_list import (
    AGENT_SEARCH,
    BIG,
    ROUNDS,
    SMALL,
    WORK_QUEUE,
    Dataset,
    Target,
    make_dataset,
    postgres_reachable,
    postgres_target,
    sqlite_target,
)
from bench.common import Figure, judged
from ra.desk.export import HEADERS, csv_stream
from ra.desk.queries import ListFilters, PagePlan, list_page, make_filters, plan_pages
from ra.lifecycle import Status as S
from ra.party import Party
from ra.store.models import FeeEntry

PAGE_SIZE = 50
REPEAT = 4  # times the page mix runs per round
MEMORY_BUDGET_MB = 100.0


def fee_rows(data: Dataset) -> list[dict[str, Any]]:
    """A charge of the fee for every office application (as apply writes it)."""
    return [
        {
            "id": n,
            "account_id": a["account_id"],
            "application_id": a["id"],
            "amount_yen": a["fee_yen"],
            "kind": "charge",
            "created_at": a["applied_at"],
            "exported_in": None,
        }
        for n, a in enumerate((a for a in data.applications if a["applicant"] == "office"), 1)
    ]


def add_fees(target: Target, data: Dataset, postgres: bool) -> None:
    rows = fee_rows(data)
    with target.factory() as session:
        conn = session.connection()
        if postgres:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            with raw.cursor() as cur:
                columns = list(rows[0])
                with cur.copy(f"COPY fee_entries ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in rows:
                        copy.write_row(list(row.values()))
        else:
            for start in range(0, len(rows), 20_000):
                conn.execute(insert(FeeEntry.__table__), rows[start : start + 20_000])
        session.commit()
        session.connection().exec_driver_sql("ANALYZE")
        session.commit()


def searches(data: Dataset, rng: random.Random) -> list[ListFilters]:
    tens = data.offices // 10
    return [
        make_filters(),
        make_filters(applicant_types={"office"}, statuses={S.ISSUED}),
        make_filters(statuses=WORK_QUEUE),
        make_filters(user_id=f"HJ{rng.randint(1, tens - 1):08d}", statuses={S.ISSUED, S.REVOKED}),
        make_filters(user_id=data.agents[0], user_id_match="exact", statuses=AGENT_SEARCH),
        make_filters(applicant_types={"staff"}),
    ]


def plan_all(target: Target, mix: list[ListFilters]) -> tuple[list[PagePlan], float, float]:
    """Plan every search of the mix; seconds per plan and per bare count (best of three)."""
    from ra.desk.queries import count_matching

    plans: list[PagePlan] = []
    plan_best = count_best = float("inf")
    with target.factory() as session:
        for _ in range(3):
            start = time.perf_counter()
            plans = [plan_pages(session, f, page_size=PAGE_SIZE) for f in mix]
            plan_best = min(plan_best, (time.perf_counter() - start) / len(mix))
            start = time.perf_counter()
            for f in mix:
                count_matching(session, f)
            count_best = min(count_best, (time.perf_counter() - start) / len(mix))
        session.rollback()
    return plans, plan_best, count_best


def time_pages(
    target: Target, plans: list[PagePlan], pick: Callable[[PagePlan], list[int]]
) -> float:
    """Seconds per page for the pages ``pick`` chooses in each plan; checks they are full."""
    count = 0
    with target.factory() as session:
        start = time.perf_counter()
        for _ in range(REPEAT):
            for plan in plans:
                for number in pick(plan):
                    page = list_page(
                        session, plan.filters, page=number, page_size=PAGE_SIZE, plan=plan
                    )
                    if page.stale or not page.rows:
                        raise SystemExit(f"{target.label}: page {number} of {plan.filters}")
                    count += 1
        elapsed = time.perf_counter() - start
        session.rollback()
    return elapsed / count


def first(plan: PagePlan) -> list[int]:
    return [1]


def deep(plan: PagePlan) -> list[int]:
    return [max(1, int(plan.page_count * 0.6)), plan.page_count]


def compare_pages(db: str, small: Target, big: Target) -> list[Figure]:
    rng = random.Random(13)
    small_mix, big_mix = searches(small.data, rng), searches(big.data, rng)
    small_plans, small_plan_s, small_count_s = plan_all(small, small_mix)
    big_plans, big_plan_s, big_count_s = plan_all(big, big_mix)
    print(
        f"  {db}: pages per search at {BIG:,}: {[p.page_count for p in big_plans]}; "
        f"once per search: plan {small_plan_s * 1e3:.1f} ms at {SMALL:,}, "
        f"{big_plan_s * 1e3:.1f} ms at {BIG:,}; bare count (全件数) "
        f"{small_count_s * 1e3:.2f} ms at {SMALL:,}, {big_count_s * 1e3:.2f} ms at {BIG:,}",
        flush=True,
    )
    figures: list[Figure] = []
    for name, pick in (("first_page", first), ("page_jump", deep)):
        time_pages(small, small_plans, pick)  # warm caches and compiled statements
        time_pages(big, big_plans, pick)
        small_times, big_times = [], []
        for _ in range(ROUNDS):
            small_times.append(time_pages(small, small_plans, pick))
            big_times.append(time_pages(big, big_plans, pick))
        print(
            f"  {db}: {name}: {min(small_times) * 1e3:.3f} ms at {SMALL:,}, "
            f"{min(big_times) * 1e3:.3f} ms at {BIG:,}",
            flush=True,
        )
        figures.append(
            judged(
                f"ra_list_{name}_{db}",
                min(big_times) * 1e3,
                "ms/page",
                f"the same pages over {SMALL:,} applications ({db})",
                min(small_times) * 1e3,
                target_op="<=",
                target=1.5,
            )
        )
    return figures


def export_all(target: Target) -> tuple[int, int]:
    """Stream the whole list as CP932 CSV and discard it; rows and bytes."""
    size = 0
    with target.factory() as session, session.begin():
        stream = csv_stream(session, Party.operator("bench"), make_filters())
        for chunk in stream:
            size += len(chunk)
    return stream.rows, size


def reference_rows(data: Dataset) -> list[list[str]]:
    return [
        [
            str(a["id"]),
            f"HJ{a['account_id']:09d}",
            a["office_name"],
            a["office_number"],
            a["status"],
            a["applied_at"].strftime("%Y/%m/%d"),
            "1000",
            a["applicant"],
            "5",
            "",
            "",
            "",
        ]
        for a in data.applications
    ]


def reference_write(rows: list[list[str]]) -> int:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADERS)
    writer.writerows(rows)
    return len(buffer.getvalue().encode("cp932"))


def peak_mb(func: Callable[[], Any]) -> float:
    gc.collect()
    tracemalloc.start()
    try:
        func()
        return tracemalloc.get_traced_memory()[1] / 1e6
    finally:
        tracemalloc.stop()


def compare_export(db: str, big: Target) -> list[Figure]:
    rows = reference_rows(big.data)
    export_s = reference_s = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        written, size = export_all(big)
        export_s = min(export_s, time.perf_counter() - start)
        start = time.perf_counter()
        reference_write(rows)
        reference_s = min(reference_s, time.perf_counter() - start)
    if written != BIG:
        raise SystemExit(f"{big.label}: exported {written} rows, not {BIG}")
    streamed_mb = peak_mb(lambda: export_all(big))
    in_memory_mb = peak_mb(lambda: reference_write(reference_rows(big.data)))
    rate, reference_rate = written / export_s, written / reference_s
    print(
        f"  {db}: export of {written:,} rows ({size / 1e6:.1f} MB CP932) in {export_s:.2f} s, "
        f"{rate:,.0f} rows/s; csv.writer on the rows in memory {reference_rate:,.0f} rows/s; "
        f"peak {streamed_mb:.1f} MB streamed, {in_memory_mb:.1f} MB building it in memory",
        flush=True,
    )
    return [
        judged(
            f"ra_export_csv_rate_{db}",
            rate,
            "rows/s",
            "csv.writer over the same rows already in memory",
            reference_rate,
            target_op=">=",
            target=0.05,
        ),
        Figure(
            name=f"ra_export_csv_memory_{db}",
            value=round(streamed_mb, 2),
            unit="MB peak",
            reference=(
                f"budget {MEMORY_BUDGET_MB:g} MB; the same file built in memory: "
                f"{in_memory_mb:.4g} MB"
            ),
            ratio=round(streamed_mb / MEMORY_BUDGET_MB, 4),
            target="ratio <= 1",
            ok=streamed_mb <= MEMORY_BUDGET_MB,
        ),
    ]


def run(workdir: Path) -> list[Figure]:
    print(f"  generating {BIG:,} and {SMALL:,} applications ...", flush=True)
    small_data, big_data = make_dataset(SMALL), make_dataset(BIG)
    figures: list[Figure] = []
    with (
        sqlite_target(workdir, SMALL, small_data) as small,
        sqlite_target(workdir, BIG, big_data) as big,
    ):
        add_fees(small, small_data, postgres=False)
        add_fees(big, big_data, postgres=False)
        figures.extend(compare_pages("sqlite", small, big))
        figures.extend(compare_export("sqlite", big))
    if postgres_reachable():
        with postgres_target(SMALL, small_data) as small, postgres_target(BIG, big_data) as big:
            add_fees(small, small_data, postgres=True)
            add_fees(big, big_data, postgres=True)
            figures.extend(compare_pages("postgresql", small, big))
            figures.extend(compare_export("postgresql", big))
    else:
        print("  PostgreSQL not reachable: its figures are skipped", flush=True)
    return figures
