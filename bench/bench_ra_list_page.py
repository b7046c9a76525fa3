"""Benchmark 7: the server time of the 証明書一覧 page, 200,000 vs 1,000 applications.

The whole page as the console serves it: a signed-in staff session of the Flask test client
GETs ``/console/list/?...`` (routing, the session, the search, :class:`ra.desk.queries.PlanCache`,
the 選択件数 of the session's selection, the template), over the databases of benchmark 6
(:mod:`bench.bench_ra_console`: the generated federation of :mod:`bench.bench_ra_list` with
its fee rows, SQLite and, when a server answers, PostgreSQL).

The searches are benchmark 6's mix of six.  Each is first paged to its last page, as staff
do after pressing 検索, so its plan (every page's first key and 全件数) is in the app's cache;
then the first page and page jumps deep into the list (60% down, and 最終) are timed, best of
five interleaved rounds.  Figures ``ra_list_page_first_<db>`` and ``ra_list_page_jump_<db>``:
ms per page at 200,000 against ms at 1,000, target ratio <= 1.5.  The press of 検索 itself
(page 1 read by keyset plus the 全件数 count, no plan yet) reads every matching index entry
once, so it grows with the table: it is printed beside the figures, not judged.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

from flask.testing import FlaskClient
from sqlalchemy import func, select

from bench.bench_ra_console import add_fees, searches
from bench.bench_ra_list import (
    BIG,
    ROUNDS,
    SMALL,
    Target,
    make_dataset,
    postgres_reachable,
    postgres_target,
    sqlite_target,
)
from bench.common import Figure, judged
from ra.desk.queries import ApplicantType, ListFilters
from ra.settings import BankAccountSettings, FeeSettings, RASettings, WebSettings
from ra.store.models import Account, AccountKind
from ra.store.vault import create_key_file
from ra.web import create_app
from ra.web.console import list as list_view

NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)  # after every generated application
REPEAT = 3  # times the page mix runs per round


def query(filters: ListFilters) -> str:
    """The list's query string for ``filters``, as its search form sends it."""
    pairs: list[tuple[str, str]] = []
    if filters.applicant_types != frozenset(ApplicantType):
        pairs += [("type", t.value) for t in sorted(filters.applicant_types)]
    if filters.user_id is not None:
        pairs += [("uid", filters.user_id), ("match", filters.user_id_match)]
    pairs += [("st", s.value) for s in filters.statuses] if len(filters.statuses) < 10 else []
    return urlencode(pairs)


@contextmanager
def signed_in(workdir: Path, target: Target) -> Iterator[FlaskClient]:
    """A test client of the console over ``target``, its session that of a staff member."""
    folder = workdir / target.label.replace(" ", "-").replace(",", "")
    folder.mkdir()
    create_key_file(folder / "ra-secrets.key")
    settings = RASettings(
        fees=FeeSettings(
            office_fee_yen=5000,
            agent_fee_yen=5000,
            tax="exempt",
            bank_account=BankAccountSettings(
                bank="ベンチ銀行",
                branch="計測支店",
                account_type="普通",
                number="1111111",
                holder_kana="ベンチマーク",
            ),
        ),
        database_url="sqlite://",  # unused: the app gets the target's session factory
        data_dir=folder / "data",
        secrets_key_file=folder / "ra-secrets.key",
        web=WebSettings(secret_key_file=folder / "ra-web.key"),
    )
    app = create_app(settings, session_factory=target.factory, now=lambda: NOW)
    with target.factory() as session, session.begin():
        # An explicit id: the bulk load wrote ids itself, so PostgreSQL's sequence is behind.
        last = session.scalar(select(func.max(Account.id))) or 0
        staff = Account(
            id=last + 1,
            user_id="BENCHSTAFF",
            kind=AccountKind.STAFF,
            name="ベンチ 職員",
            created_at=NOW,
            failed_logins=0,
            active=True,
        )
        session.add(staff)
        session.flush()
        user = f"{staff.id}:{staff.session_epoch or 0}"
    client = app.test_client()
    # The session of a completed sign-in (password and TOTP are not what is measured).
    with client.session_transaction() as sess:
        sess["_user_id"] = user
        sess["seen"] = int(NOW.timestamp())
    yield client


def get(client: FlaskClient, url: str) -> None:
    answer = client.get(url)
    if answer.status_code != 200 or b'name="row"' not in answer.data:
        raise SystemExit(f"GET {url}: {answer.status_code} {answer.data[:300]!r}")


def pages(client: FlaskClient, mix: list[str], counts: list[int], deep: bool) -> float:
    """Seconds per page: page 1 of each search, or its 60% page and its last page."""
    urls: list[str] = []
    for q, count in zip(mix, counts, strict=True):
        numbers = [max(1, int(count * 0.6)), count] if deep else [1]
        urls += [f"/console/list/?{q}&page={n}" for n in numbers]
    start = time.perf_counter()
    for _ in range(REPEAT):
        for url in urls:
            get(client, url)
    return (time.perf_counter() - start) / (REPEAT * len(urls))


def plan(client: FlaskClient, mix: list[str]) -> tuple[list[int], float]:
    """Press 検索 for each search (timed) and page to its end; the page counts."""
    counts: list[int] = []
    pressed = 0.0
    get(client, "/console/list/?st=issued")  # warm: the first request compiles the templates
    for q in mix:
        start = time.perf_counter()
        get(client, f"/console/list/?{q}&search=1")
        pressed += time.perf_counter() - start
        answer = client.get(f"/console/list/?{q}&page=999999")  # 最終: plans the search
        text = answer.get_data(as_text=True)
        marker = text.index('name="page" id="jump-page"')
        counts.append(int(text[marker:].split('max="', 1)[1].split('"', 1)[0]))
    return counts, pressed / len(mix)


def compare(db: str, workdir: Path, small: Target, big: Target) -> list[Figure]:
    rng = random.Random(13)
    small_mix = [query(f) for f in searches(small.data, rng)]
    big_mix = [query(f) for f in searches(big.data, rng)]
    figures: list[Figure] = []
    with signed_in(workdir, small) as small_client, signed_in(workdir, big) as big_client:
        small_counts, small_search = plan(small_client, small_mix)
        big_counts, big_search = plan(big_client, big_mix)
        print(
            f"  {db}: pages per search at {BIG:,}: {big_counts}; pressing 検索 (page 1 + "
            f"全件数, unplanned): {small_search * 1e3:.1f} ms at {SMALL:,}, "
            f"{big_search * 1e3:.1f} ms at {BIG:,}",
            flush=True,
        )
        for name, deep in (("first", False), ("jump", True)):
            pages(small_client, small_mix, small_counts, deep)  # warm
            pages(big_client, big_mix, big_counts, deep)
            small_times, big_times = [], []
            for _ in range(ROUNDS):
                small_times.append(pages(small_client, small_mix, small_counts, deep))
                big_times.append(pages(big_client, big_mix, big_counts, deep))
            print(
                f"  {db}: list page, {name}: {min(small_times) * 1e3:.2f} ms at {SMALL:,}, "
                f"{min(big_times) * 1e3:.2f} ms at {BIG:,}",
                flush=True,
            )
            figures.append(
                judged(
                    f"ra_list_page_{name}_{db}",
                    min(big_times) * 1e3,
                    "ms/page",
                    f"the same pages over {SMALL:,} applications ({db}, whole page, "
                    f"{list_view.PAGE_SIZE} rows)",
                    min(small_times) * 1e3,
                    target_op="<=",
                    target=1.5,
                )
            )
    return figures


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
        figures.extend(compare("sqlite", workdir, small, big))
    if postgres_reachable():
        with postgres_target(SMALL, small_data) as small, postgres_target(BIG, big_data) as big:
            add_fees(small, small_data, postgres=True)
            add_fees(big, big_data, postgres=True)
            figures.extend(compare("postgresql", workdir, small, big))
    else:
        print("  PostgreSQL not reachable: its figures are skipped", flush=True)
    return figures
