"""Taking up a batch the CA began and never finished: resume, abandon, the work lock.

The crash is made by a signing key that fails after a number of signatures (as a kill would
stop the process: what was recorded stays, nothing else); the ledger then says which
certificates were signed, and the recovery must answer those from the ledger, void what was
only reserved, and sign each remaining request exactly once, or nothing more when abandoned.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509

from ca.batchstore import Busy, request_path, result_path, work_lock
from ca.context import CA
from ca.recovery import abandon_batch, resume_batch, unfinished_batches
from ca.signbatch import answer_batch, sign_batch
from contract.batch import (
    Abandoned,
    Issued,
    IssueItem,
    IssueRefused,
    Revoked,
    RevokeItem,
    read_result_batch,
)
from crl.reader import load_crl
from shomei.errors import NotFound, Refused
from tests.ca.test_batch_home import NOW, CaHome, build_ca_home
from tests.ca.test_signbatch import CountingKey, issue, request_batch
from tests.pki import Pki


@pytest.fixture
def home(tmp_path: Path, pki: Pki) -> CaHome:
    return build_ca_home(tmp_path / "home", pki)


def _crash(home: CaHome, data: bytes, *, after: int) -> None:
    """Sign ``data`` with a key that fails after ``after`` signatures (the process "dies")."""
    with home.open(CountingKey(home.key, fail_after=after)) as ca:
        with pytest.raises(RuntimeError):
            sign_batch(ca, data, now=NOW, workers=1)


def _signed_per_request(ca: CA) -> dict[str, int]:
    db = sqlite3.connect(ca.settings.ledger)
    rows = db.execute(
        "SELECT request_id, count(*) FROM serials WHERE state = 'signed' GROUP BY request_id"
    ).fetchall()
    db.close()
    return dict(rows)


def _batch_id(data: bytes, ca: CA) -> str:
    from contract.batch import read_request_batch

    return read_request_batch(data, trusted=ca.trusted_ra).batch_id


def test_resume_by_id_signs_each_request_once(home: CaHome) -> None:
    data = request_batch(home, [issue(1), issue(2), issue(3), issue(4)])
    _crash(home, data, after=2)
    with home.open() as ca:
        batch_id = _batch_id(data, ca)
        (left,) = unfinished_batches(ca.settings)
        assert left.batch.batch_id == batch_id and left.request_kept
        assert request_path(ca.settings, batch_id).read_bytes() == data
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        answer = resume_batch(ca, batch_id, now=NOW, workers=1)
        assert answer.how == "resumed" and answer.reopened is not None
        assert answer.reopened.signed == 2  # recorded before the "crash": not signed again
        assert counter.count == 2 + 2  # the two others, the CRL, the result
        result = read_result_batch(answer.result, ca_certificate=ca.certificate)
        assert [type(r) for r in result.results] == [Issued] * 4
        assert _signed_per_request(ca) == {f"iss-{n}": 1 for n in range(1, 5)}
        stats = ca.ledger.stats()
        assert not stats.unfinished_batches and not stats.reserved_unsigned
        assert result_path(ca.settings, batch_id).read_bytes() == answer.result
        # Once finished, asking again writes the very same result and signs nothing.
        assert resume_batch(ca, batch_id, now=NOW, workers=1).result == answer.result
        assert counter.count == 4
        db = sqlite3.connect(ca.settings.ledger)
        recovery = db.execute("SELECT action, signed FROM batch_recoveries").fetchall()
        db.close()
        assert recovery == [("resume", 2)]


def test_resume_of_a_batch_never_begun_is_refused(home: CaHome) -> None:
    data = request_batch(home, [issue(1)])
    with home.open() as ca, pytest.raises(NotFound, match="never began it"):
        resume_batch(ca, _batch_id(data, ca), now=NOW, request_bytes=data)


def test_abandon_delivers_what_was_signed_and_applies_revocations(home: CaHome) -> None:
    with home.open() as ca:
        earlier = read_result_batch(
            sign_batch(ca, request_batch(home, [issue(9)]), now=NOW, workers=1),
            ca_certificate=ca.certificate,
        )
    victim = earlier.results[0].certificate.serial_number  # type: ignore[union-attr]
    garbage = IssueItem("garbage", b"\x30\x03\x02\x01\x00", "1310000002", "ゴミ")
    revoke = RevokeItem("rv-1", victim, "keyCompromise", NOW, "office")
    data = request_batch(home, [issue(1), garbage, issue(2), issue(3), revoke])
    _crash(home, data, after=1)  # iss-1 signed, garbage refused; iss-2 reserved at most
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        batch_id = _batch_id(data, ca)
        answer = abandon_batch(ca, batch_id, now=NOW)
        assert answer.how == "abandoned" and counter.count == 2  # the CRL and the result
        result = read_result_batch(answer.result, ca_certificate=ca.certificate)
        kinds = {r.request_id: type(r) for r in result.results}
        assert kinds == {
            "iss-1": Issued,
            "garbage": IssueRefused,
            "iss-2": Abandoned,
            "iss-3": Abandoned,
            "rv-1": Revoked,
        }
        assert victim in load_crl(result.crl_der, issuer=ca.certificate).index
        record = ca.ledger.find_batch(batch_id)
        assert record is not None and record.outcome == "done" and record.abandoned_at
        assert not ca.ledger.stats().reserved_unsigned
        assert ca.ledger.stats().abandoned == 1
        # The same file, or a resume, never signs the abandoned requests: the kept result.
        assert sign_batch(ca, data, now=NOW, workers=1) == answer.result
        assert resume_batch(ca, batch_id, now=NOW).result == answer.result
        assert counter.count == 2
        # Abandoning a batch that finished normally is refused.
        done = request_batch(home, [issue(5)])
        sign_batch(ca, done, now=NOW, workers=1)
        with pytest.raises(Refused, match="nothing to abandon"):
            abandon_batch(ca, _batch_id(done, ca), now=NOW)


def test_abandon_with_revoke_signed_lists_them_on_the_crl(home: CaHome) -> None:
    data = request_batch(home, [issue(1), issue(2), issue(3)])
    _crash(home, data, after=2)
    with home.open() as ca:
        batch_id = _batch_id(data, ca)
        signed = [r.serial for r in ca.ledger.signed_in_batch(batch_id)]
        assert len(signed) == 2
        answer = abandon_batch(ca, batch_id, now=NOW, revoke_signed=True)
        result = read_result_batch(answer.result, ca_certificate=ca.certificate)
        assert all(isinstance(r, Abandoned) for r in result.results)
        crl = load_crl(result.crl_der, issuer=ca.certificate)
        assert all(s in crl.index for s in signed)
        entry = x509.load_der_x509_crl(result.crl_der).get_revoked_certificate_by_serial_number(
            signed[0]
        )
        assert entry is not None
        assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason is (
            x509.ReasonFlags.superseded
        )
        # The RA sends the requests again in a new batch: each is signed afresh, once.
        again = read_result_batch(
            sign_batch(ca, request_batch(home, [issue(1), issue(2), issue(3)]), now=NOW),
            ca_certificate=ca.certificate,
        )
        fresh = [r.certificate.serial_number for r in again.results if isinstance(r, Issued)]
        assert len(fresh) == 3 and not set(fresh) & set(signed)


def test_abandon_a_batch_never_begun_from_its_file(home: CaHome) -> None:
    data = request_batch(home, [issue(1), issue(2)])
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        batch_id = _batch_id(data, ca)
        with pytest.raises(NotFound, match="--request"):
            abandon_batch(ca, batch_id, now=NOW)
        answer = abandon_batch(ca, batch_id, now=NOW, request_bytes=data)
        result = read_result_batch(answer.result, ca_certificate=ca.certificate)
        assert [type(r) for r in result.results] == [Abandoned, Abandoned]
        assert counter.count == 2
        # Carried in later, the file is answered with that result: nothing is signed.
        assert sign_batch(ca, data, now=NOW) == answer.result
        assert ca.ledger.stats().signed == 0


def test_a_finished_batch_whose_kept_result_was_lost_is_rebuilt_from_the_ledger(
    home: CaHome,
) -> None:
    data = request_batch(home, [issue(1), issue(2)])
    with home.open() as ca:
        first = read_result_batch(sign_batch(ca, data, now=NOW), ca_certificate=ca.certificate)
        result_path(ca.settings, first.batch_id).unlink()
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        answer = answer_batch(ca, data, now=NOW + dt.timedelta(minutes=1))
        assert answer.how == "rebuilt" and counter.count == 2  # no certificate
        again = read_result_batch(answer.result, ca_certificate=ca.certificate)
        assert again.results == first.results
        assert result_path(ca.settings, first.batch_id).read_bytes() == answer.result


def test_a_run_stopped_after_writing_its_result_is_answered_with_it(home: CaHome) -> None:
    data = request_batch(home, [issue(1)])
    with home.open() as ca:
        result = sign_batch(ca, data, now=NOW)
        batch_id = _batch_id(data, ca)
        # What a kill between "result kept" and "batch done" leaves.
        db = sqlite3.connect(ca.settings.ledger)
        db.execute(
            "UPDATE batches SET outcome = 'processing', result_sha256 = NULL, finished_at = NULL"
        )
        db.commit()
        db.close()
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        assert sign_batch(ca, data, now=NOW) == result and counter.count == 0
        record = ca.ledger.find_batch(batch_id)
        assert record is not None and record.outcome == "done" and record.result_sha256
    # A damaged copy (an older version could leave one) is set aside, and the batch rebuilt.
    kept = result_path(home.settings, batch_id)
    kept.write_bytes(result[:100])
    with home.open() as ca:
        rebuilt = sign_batch(ca, data, now=NOW)
        assert rebuilt != result[:100]
        assert list(kept.parent.glob(f"{batch_id}.p7m.damaged-*"))


def _hold_lock(settings_path: str, ready: object, release: object) -> None:
    from ca.settings import load_ca_settings

    with work_lock(load_ca_settings(settings_path)):
        ready.set()  # type: ignore[attr-defined]
        release.wait(30)  # type: ignore[attr-defined]


def test_a_batch_another_process_is_signing_is_left_alone(home: CaHome) -> None:
    data = request_batch(home, [issue(1)])
    _crash(home, data, after=0)
    context = multiprocessing.get_context("fork")
    ready, release = context.Event(), context.Event()
    holder = context.Process(target=_hold_lock, args=(str(home.folder / "ca.toml"), ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        counter = CountingKey(home.key)
        with home.open(counter) as ca:
            with pytest.raises(Busy, match=f"process {holder.pid}"):
                sign_batch(ca, data, now=NOW)
            with pytest.raises(Busy):
                abandon_batch(ca, _batch_id(data, ca), now=NOW)
            assert counter.count == 0 and len(ca.ledger.stats().unfinished_batches) == 1
    finally:
        release.set()
        holder.join(30)
    # Its holder gone (as after a kill -9), the batch is taken up.
    with home.open() as ca:
        assert read_result_batch(sign_batch(ca, data, now=NOW), ca_certificate=ca.certificate)
        # Threads of one process are kept apart too.
        with work_lock(ca.settings), pytest.raises(Busy, match="another thread"):
            sign_batch(ca, data, now=NOW)
