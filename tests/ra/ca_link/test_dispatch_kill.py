"""kill -9 of ``shomei ra run-job dispatch`` with the CA inline, at 20 random points per database.

Each round makes a few applications at 発行依頼中 and forks a child that runs the real command
(``cli.main.main``, as the shell would, with a database connection of its own).  The parent
kills the child with SIGKILL after a random delay: every other round anywhere within the time
a whole job takes (measured in round 0, the happy path), the others a little after the
child's CA began to sign (the child says so on a pipe), so that kills land among the CA's
ledger commits as often as around the RA's transactions.  It notes
what the kill left (a CA batch ``processing``, an RA batch not imported), and runs the
job's next run, the same command, in-process.  That run must exit 0 and leave every
application of every round 発行済み with exactly one certificate, the CA ledger with exactly
one signed serial per request (none signed twice), every signed serial in the RA (none
lost), nothing reserved, unfinished or pending, and a whole audit chain
(:func:`tests.ra.recovery_fixture.check_ca_and_ra`).

Before the recovery of docs/batch-link-operations.md a kill while the CA was signing left the
batch ``processing`` and the applications at 発行待ち for good: the next run logged "stuck"
and exited 0.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from ca import signbatch
from cli.main import main
from ra.store.models import CaBatch
from tests.forkkill import fork_command, signalling_run_batch
from tests.ra.ca_fixture import CaHome, ca_home_fixture, ra_settings  # noqa: F401
from tests.ra.ca_link.test_link import requested
from tests.ra.conftest import Database
from tests.ra.recovery_fixture import (
    check_ca_and_ra,
    ledger_facts,
    private_ca_home,
    write_ra_toml,
)

ROUNDS = 20
PER_ROUND = 3


def _argv(toml: Path) -> list[str]:
    return ["ra", "run-job", "dispatch", "--settings", str(toml)]


def _new_round(database: Database) -> list[int]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        return [requested(s, now=now, email=f"k{i}@example.jp") for i in range(PER_ROUND)]


def _next_run(toml: Path) -> str:
    outcome = CliRunner().invoke(main, ["ra", "run-job", "dispatch", "--settings", str(toml)])
    assert outcome.exit_code == 0, outcome.output
    return outcome.output


def test_kill_minus_nine_during_inline_dispatch(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = private_ca_home(ca_home, tmp_path / "ca")
    settings = ra_settings(ca, database.url, tmp_path / "data")
    toml = write_ra_toml(settings, tmp_path / "ra.toml")
    rng = random.Random(20261124)
    issued: list[int] = []
    # Round 0 measures how long a whole job, and the CA's part of it, take in a child (and is
    # the happy path).
    monkeypatch.setattr(signbatch, "run_batch", signalling_run_batch(signbatch.run_batch))
    issued += _new_round(database)
    database.engine.dispose()  # nothing pooled across the forks
    first = fork_command(_argv(toml), None)
    assert os.WIFEXITED(first.status) and os.WEXITSTATUS(first.status) == 0
    assert first.signing is not None and 0 < first.signing < first.duration
    check_ca_and_ra(database, settings, ca, issued)
    killed = ca_unfinished = ra_pending = 0
    for n in range(ROUNDS):
        issued += _new_round(database)
        database.engine.dispose()
        if n % 2:
            # Aimed at the CA: within its signing (three requests, the CRL, the result).
            run = fork_command(_argv(toml), rng.uniform(0.0, first.signing), at_signing=True)
        else:
            run = fork_command(_argv(toml), rng.uniform(0.0, first.duration * 1.1))
        status = run.status
        assert not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 3), "child job failed"
        killed += os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        facts = ledger_facts(ca)
        ca_unfinished += facts.unfinished > 0
        with database.factory() as s:
            ra_pending += bool(
                s.execute(
                    select(func.count()).select_from(CaBatch).where(CaBatch.imported_at.is_(None))
                ).scalar_one()
            )
        # The job's next run finishes whatever the kill left: the CA side too.
        _next_run(toml)
        check_ca_and_ra(database, settings, ca, issued)
    assert killed >= ROUNDS // 4, f"only {killed} of {ROUNDS} jobs were killed mid-way"
    # The kills landed where it matters: while the CA was signing, and before the import.
    assert ca_unfinished >= ROUNDS // 4, f"only {ca_unfinished} kills left a CA batch unfinished"
    assert ra_pending >= ROUNDS // 4, f"only {ra_pending} kills left an RA batch pending"
