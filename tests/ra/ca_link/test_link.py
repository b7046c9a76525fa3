"""The RA↔CA link in inline mode: dispatch, issuance, refusal, revocation, CRL, re-import.

A real CA home (:mod:`tests.ra.ca_fixture`) signs every batch; applications carry real CSRs
and move through :func:`ra.lifecycle.apply` up to 発行依頼中, then only the jobs move them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ca.signbatch import results_dir, sign_batch
from crl.reader import load_crl
from ra import lifecycle
from ra.ca_link import link
from ra.ca_link.identity import load_link_identity
from ra.lifecycle import Actor, Event, Status
from ra.store import audit
from ra.store.models import Application, AuditRecord, CaBatch, Certificate, Notice, OutboxMail
from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed
from tests.ra.ca_fixture import (  # noqa: F401
    CDP_FILE,
    CaHome,
    ca_home_fixture,
    make_application,
    open_test_ca,
    ra_settings,
)
from tests.ra.conftest import Database

STAFF = {"actor": Actor.STAFF, "actor_id": "staff1"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def requested(
    session: Session, *, now: dt.datetime, email: str | None = None, csr: bytes | None = None
) -> int:
    """An office application at 発行依頼待ち moved to 発行依頼中 by staff."""
    app = make_application(
        session, status=Status.AWAITING_ISSUE_REQUEST, now=now, email=email, csr=csr
    )
    lifecycle.apply(session, app, Event.REGISTER_ISSUE_REQUEST, now=now, **STAFF)  # type: ignore[arg-type]
    return app.id


def request_revocation(session: Session, app_id: int, *, now: dt.datetime) -> None:
    app = session.get(Application, app_id)
    assert app is not None
    # The services module owns these fields in the product; tests set them directly.
    app.revocation_reason = "keyCompromise"
    app.revocation_requested_by = "office"
    app.revocation_requested_at = now
    session.flush()
    lifecycle.apply(session, app, Event.REGISTER_REVOCATION, now=now, **STAFF)  # type: ignore[arg-type]


def counts(session: Session) -> dict[str, int]:
    return {
        name: session.execute(select(func.count()).select_from(model)).scalar_one()
        for name, model in (
            ("certificates", Certificate),
            ("notices", Notice),
            ("mails", OutboxMail),
            ("audit", AuditRecord),
            ("batches", CaBatch),
        )
    }


def status_of(session: Session, app_id: int) -> Status:
    app = session.get(Application, app_id, populate_existing=True)
    assert app is not None
    return app.status


def test_inline_round_trip_issue_refuse_revoke_crl(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data")
    now = _now()
    with database.factory() as s, s.begin():
        good = requested(s, now=now, email="good@example.jp")
        other = requested(s, now=now)
        bad = requested(s, now=now, email="bad@example.jp", csr=b"\x30\x03\x02\x01\x00")
        waiting_app = make_application(s, status=Status.AWAITING_ISSUE_REQUEST, now=now)
        # Its APPLY record, so verify-audit finds the status the log says.
        lifecycle.create(s, waiting_app, actor=Actor.OFFICE, actor_id="office", now=now)
        waiting = waiting_app.id

    summary = link.dispatch(database.factory, settings, now=now)
    assert summary.batch_id is not None and summary.issue == 3 and summary.revoke == 0
    assert len(summary.imported) == 1
    result = summary.imported[0]
    assert (result.issued, result.refused, result.already_imported) == (2, 1, False)
    assert result.crl_registered and result.published == tmp_path / "data" / "publish" / CDP_FILE

    with database.factory() as s:
        assert status_of(s, good) is Status.ISSUED
        assert status_of(s, other) is Status.ISSUED
        assert status_of(s, waiting) is Status.AWAITING_ISSUE_REQUEST
        refused = s.get(Application, bad)
        assert refused is not None and refused.status is Status.REJECTION_PENDING
        assert refused.status_reason and refused.status_reason.startswith("認証局が発行を拒否")
        cert_row = s.execute(
            select(Certificate).where(Certificate.application_id == good)
        ).scalar_one()
        cert = x509.load_der_x509_certificate(cert_row.der)
        cert.verify_directly_issued_by(ca_home.ca_certificate)
        assert format(cert.serial_number, "x") == cert_row.serial_hex
        app = s.get(Application, good)
        assert app is not None and app.issue_batch_id == summary.batch_id
        mails = s.execute(select(OutboxMail)).scalars().all()
        assert [m.to_address for m in mails] == ["good@example.jp"]
        assert mails[0].subject == "証明書が発行されました"
        notices = s.execute(select(Notice.application_id, Notice.kind)).all()
        assert sorted(notices) == sorted(
            [(good, "certificate_issued"), (other, "certificate_issued")]
        )
        before = counts(s)

    # The same result again (the copy the CA kept): a no-op.
    kept = (results_dir_of(ca_home) / f"{summary.batch_id}.p7m").read_bytes()
    again = link.import_result(database.factory, settings, kept, now=now)
    assert again.already_imported and again.issued == 0
    with database.factory() as s:
        assert counts(s) == before

    # Revocation: 5 -> 6 (staff) -> 7 (dispatch) -> 8 (the result's CRL lists it).
    later = now + dt.timedelta(seconds=5)
    with database.factory() as s, s.begin():
        request_revocation(s, good, now=later)
    revoke = link.dispatch(database.factory, settings, now=later)
    assert (revoke.issue, revoke.revoke) == (0, 1)
    (imported,) = revoke.imported
    assert imported.revoked == 1 and imported.moved_to_revoked == 1
    with database.factory() as s:
        assert status_of(s, good) is Status.REVOKED
        assert status_of(s, other) is Status.ISSUED
        cert_row = s.execute(
            select(Certificate).where(Certificate.application_id == good)
        ).scalar_one()
        assert cert_row.revoked_at is not None and cert_row.revocation_crl_number is not None
        published = load_crl(
            (tmp_path / "data" / "publish" / CDP_FILE).read_bytes(),
            issuer=ca_home.ca_certificate,
        )
        assert str(published.number) == cert_row.revocation_crl_number
        assert int(cert_row.serial_hex, 16) in published.index
        report = audit.verify(s, trusted=[load_link_identity(settings.link).certificate])
        assert report.records == counts(s)["audit"]


def results_dir_of(home: CaHome) -> Path:
    from ca.settings import load_ca_settings

    return results_dir(load_ca_settings(home.home / "ca.toml"))


def test_dispatch_with_nothing_waiting_makes_no_batch(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data")
    summary = link.dispatch(database.factory, settings, now=_now())
    assert summary.batch_id is None and summary.imported == ()
    with database.factory() as s:
        assert counts(s)["batches"] == 0


def test_an_undo_that_wins_keeps_the_application_out_of_the_batch(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        undone = requested(s, now=now)
        kept = requested(s, now=now)
    with database.factory() as s, s.begin():  # the admin's undo commits first
        app = s.get(Application, undone)
        assert app is not None
        lifecycle.apply(s, app, Event.UNDO_APPROVAL, actor=Actor.ADMIN, actor_id="a", now=now)
    with database.factory() as stale_session:  # an undo that read the app before dispatch
        with stale_session.begin():
            stale = stale_session.get(Application, kept)
        assert stale is not None
        summary = link.dispatch(database.factory, settings, now=now)
        assert summary.issue == 1 and len(summary.written) == 1
        with pytest.raises(lifecycle.ChangedMeanwhile), stale_session.begin():
            lifecycle.apply(
                stale_session, stale, Event.UNDO_APPROVAL, actor=Actor.ADMIN, actor_id="a", now=now
            )
    with database.factory() as s:
        assert status_of(s, undone) is Status.AWAITING_ISSUE_REQUEST
        assert status_of(s, kept) is Status.AWAITING_ISSUANCE


def test_an_application_without_office_number_is_held(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    from ra.lifecycle import Applicant

    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        app = make_application(s, status=Status.ISSUE_REQUESTED, now=now, applicant=Applicant.AGENT)
        app.office_number = ""  # no office to name in the certificate: never sent to the CA
        app_id = app.id
    summary = link.dispatch(database.factory, settings, now=now)
    assert summary.batch_id is None and summary.held == (app_id,)
    with database.factory() as s:
        assert status_of(s, app_id) is Status.ISSUE_REQUESTED


def test_import_refuses_unknown_truncated_and_tampered_results(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        requested(s, now=now)
    summary = link.dispatch(database.factory, settings, now=now)
    (request_file,) = summary.written
    with open_test_ca(ca_home) as ca:
        result = sign_batch(ca, request_file.read_bytes(), now=now, workers=1)
    with database.factory() as s:
        before = counts(s)
    with pytest.raises(MalformedInput):
        link.import_result(database.factory, settings, result[:-10], now=now)
    tampered = result.replace(b'"issued"', b'"isSued"')
    with pytest.raises((VerificationFailed, MalformedInput)):
        link.import_result(database.factory, settings, tampered, now=now)
    # A result for a batch this RA never sent (from a second, empty RA database).
    with database.factory() as s, s.begin():
        s.query(CaBatch).update({CaBatch.batch_id: "00000000-0000-4000-8000-000000000000"})
    with pytest.raises(NotFound):
        link.import_result(database.factory, settings, result, now=now)
    with database.factory() as s:
        assert counts(s) == before


def test_a_different_result_for_an_imported_batch_is_refused(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data")
    now = _now()
    with database.factory() as s, s.begin():
        requested(s, now=now)
    summary = link.dispatch(database.factory, settings, now=now)
    assert summary.imported[0].issued == 1
    with database.factory() as s, s.begin():
        batch = s.execute(select(CaBatch)).scalar_one()
        batch.result_sha256 = "0" * 64
    kept = (results_dir_of(ca_home) / f"{summary.batch_id}.p7m").read_bytes()
    with pytest.raises(Refused):
        link.import_result(database.factory, settings, kept, now=now)


def test_undos_racing_a_dispatch_either_win_first_or_are_refused(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    """8 admins undo 8 approvals while the dispatch runs: the batch holds exactly the losers."""
    import threading
    import time

    from contract.batch import read_request_batch

    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        ids = [requested(s, now=now) for _ in range(8)]
    barrier = threading.Barrier(len(ids) + 1)
    outcomes: dict[int, str] = {}
    written: list[Path] = []

    identity = load_link_identity(settings.link)
    delays = {app_id: 0.015 * n for n, app_id in enumerate(ids)}

    def undo(app_id: int) -> None:
        with database.factory() as s:
            with s.begin():
                app = s.get(Application, app_id)
            assert app is not None
            barrier.wait()
            time.sleep(delays[app_id])  # spread the undos over the dispatch
            try:
                with s.begin():
                    lifecycle.apply(
                        s, app, Event.UNDO_APPROVAL, actor=Actor.ADMIN, actor_id="a", now=now
                    )
                outcomes[app_id] = "undone"
            except (lifecycle.ChangedMeanwhile, lifecycle.TransitionRefused) as exc:
                assert exc.message_ja
                outcomes[app_id] = "refused"

    def run_dispatch() -> None:
        barrier.wait()
        written.extend(
            link.dispatch(database.factory, settings, now=now, identity=identity).written
        )

    threads = [threading.Thread(target=undo, args=(i,)) for i in ids]
    threads.append(threading.Thread(target=run_dispatch))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(outcomes) == len(ids)
    in_batch: set[str] = set()
    for path in written:
        batch = read_request_batch(
            path.read_bytes(), trusted=[load_link_identity(settings.link).certificate]
        )
        in_batch |= {item.request_id for item in batch.requests}
    with database.factory() as s:
        for app_id in ids:
            app = s.get(Application, app_id)
            assert app is not None
            if outcomes[app_id] == "undone":
                assert app.status is Status.AWAITING_ISSUE_REQUEST
                assert app.request_id not in in_batch
            else:
                assert app.status is Status.AWAITING_ISSUANCE
                assert app.request_id in in_batch
        audit.verify(s, trusted=[load_link_identity(settings.link).certificate])
