"""kill -9 of ``shomei ca sign-batch`` (the offline operator's command) at random points.

Each round forks a child that runs the real command on a new request batch and kills it
after a random delay, within the time a whole run takes or aimed at the CA's signing
(:mod:`tests.forkkill`); the operator then runs the same
command again, as docs/ca-operator-guide.md says.  It must exit 0 and write a result that
answers every request, the ledger must hold exactly one signed serial per request and
nothing reserved or unfinished, and a third run must write the very same bytes.
"""

from __future__ import annotations

import os
import random
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from ca import signbatch
from cli.main import main
from contract.batch import Issued, read_result_batch
from tests.ca.test_batch_home import CaHome, build_ca_home
from tests.ca.test_signbatch import issue, request_batch
from tests.forkkill import fork_command, signalling_run_batch
from tests.pki import Pki

ROUNDS = 6
PER_ROUND = 4


def _args(home: CaHome, request: Path, out: Path) -> list[str]:
    shares: list[str] = []
    for i in (0, 2):
        path = home.folder.parent / f"share-{i}.txt"
        if not path.exists():
            path.write_text(home.shares[i].encode() + "\n", encoding="utf-8")
            path.chmod(0o600)  # a share file open to others is refused
        shares += ["--share-file", str(path)]
    return ["ca", "sign-batch", str(request), str(out), "--ca-home", str(home.folder), *shares]


def _ledger_rows(home: CaHome, query: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(home.folder / "ledger.sqlite")
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


@pytest.fixture
def home(tmp_path: Path, pki: Pki) -> CaHome:
    return build_ca_home(tmp_path / "home", pki)


def test_kill_minus_nine_during_sign_batch_then_the_same_command(
    home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(signbatch, "run_batch", signalling_run_batch(signbatch.run_batch))
    rng = random.Random(20261125)
    first_request = tmp_path / "r0.p7m"
    first_request.write_bytes(request_batch(home, [issue(n) for n in range(PER_ROUND)]))
    first = fork_command(_args(home, first_request, tmp_path / "o0.p7m"), None)
    assert os.WIFEXITED(first.status) and os.WEXITSTATUS(first.status) == 0
    assert first.signing is not None
    killed = unfinished = 0
    for r in range(1, ROUNDS + 1):
        request = tmp_path / f"r{r}.p7m"
        request.write_bytes(request_batch(home, [issue(r * 100 + n) for n in range(PER_ROUND)]))
        out = tmp_path / f"o{r}.p7m"
        if r % 2:  # aimed at the signing, or anywhere in the run
            run = fork_command(
                _args(home, request, out), rng.uniform(0.0, first.signing), at_signing=True
            )
        else:
            run = fork_command(_args(home, request, out), rng.uniform(0.0, first.duration))
        assert not (os.WIFEXITED(run.status) and os.WEXITSTATUS(run.status) == 3), "failed"
        killed += os.WIFSIGNALED(run.status)
        unfinished += bool(_ledger_rows(home, "SELECT 1 FROM batches WHERE outcome != 'done'"))
        out.unlink(missing_ok=True)  # a run killed after writing OUT left it whole: start afresh
        again = CliRunner().invoke(main, _args(home, request, out), catch_exceptions=False)
        assert again.exit_code == 0, again.output
        with home.open() as ca:
            result = read_result_batch(out.read_bytes(), ca_certificate=ca.certificate)
        assert [type(x) for x in result.results] == [Issued] * PER_ROUND
        third = tmp_path / f"o{r}-again.p7m"
        assert CliRunner().invoke(main, _args(home, request, third)).exit_code == 0
        assert third.read_bytes() == out.read_bytes()
    per_request = _ledger_rows(
        home, "SELECT request_id, count(*) FROM serials WHERE state = 'signed' GROUP BY 1"
    )
    assert len(per_request) == PER_ROUND * (ROUNDS + 1)
    assert {n for _, n in per_request} == {1}
    assert not _ledger_rows(home, "SELECT 1 FROM serials WHERE state = 'reserved'")
    assert not _ledger_rows(home, "SELECT 1 FROM batches WHERE outcome != 'done'")
    assert killed >= ROUNDS // 2 and unfinished >= ROUNDS // 3, (killed, unfinished)
