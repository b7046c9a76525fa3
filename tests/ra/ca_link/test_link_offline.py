"""Offline mode: batch files carried by hand through ``shomei ca sign-batch``.

The RA writes the signed request batch to its outbox; the CA operator's command (the real
click command, as on the CA machine) signs it; the result file is dropped into the RA's inbox
and the import job takes it from there.  Forged and foreign results end in ``failed/`` with
the reason and change nothing.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from cli.main import main
from ra.ca_link import link
from ra.lifecycle import Status
from ra.settings import RASettings
from ra.store.models import Application, Certificate, CrlRecord
from ra.tasks import jobs
from tests.ra.ca_fixture import (  # noqa: F401
    CDP_FILE,
    CaHome,
    ca_home_fixture,
    ra_settings,
)
from tests.ra.ca_link.test_link import counts, request_revocation, requested, status_of
from tests.ra.conftest import Database


def sign_with_cli(ca: CaHome, request: Path, result: Path) -> None:
    shares = [arg for p in ca.shares for arg in ("--share-file", str(p))]
    outcome = CliRunner().invoke(
        main, ["ca", "sign-batch", str(request), str(result), "--ca-home", str(ca.home), *shares]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "signature verified" in outcome.output


def carry(ca: CaHome, settings: RASettings, request: Path) -> Path:
    """What the operator does: outbox → CA machine → ``sign-batch`` → RA inbox."""
    assert settings.link.inbox is not None
    settings.link.inbox.mkdir(parents=True, exist_ok=True)
    result = settings.link.inbox / request.name.replace(".request.", ".result.")
    sign_with_cli(ca, request, result)
    return result


def test_offline_round_trip_through_sign_batch(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = ra_settings(ca_home, database.url, data, mode="offline")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        office = requested(s, now=now, email="o@example.jp")

    dispatched = jobs.dispatch(database.factory, settings, now)
    (request,) = dispatched.written
    assert request.parent == settings.link.outbox and request.name.endswith(".request.p7m")
    with database.factory() as s:
        assert status_of(s, office) is Status.AWAITING_ISSUANCE
    # A second dispatch writes nothing new and never touches the file already written.
    again = jobs.dispatch(database.factory, settings, now)
    assert again.batch_id is None and again.written == ()

    result = carry(ca_home, settings, request)
    inbox = jobs.import_results(database.factory, settings, now)
    assert isinstance(inbox, link.InboxSummary)
    assert inbox.failed == () and inbox.imported[0].issued == 1
    assert not result.exists() and (data / "link" / "imported" / result.name).exists()
    with database.factory() as s:
        assert status_of(s, office) is Status.ISSUED
        before = counts(s)

    # The same result dropped in again: imported as a no-op.
    (data / "link" / "imported" / result.name).rename(result)
    repeat = link.import_inbox(database.factory, settings, now=now)
    assert repeat.imported[0].already_imported
    with database.factory() as s:
        assert counts(s) == before

    later = now + dt.timedelta(seconds=3)
    with database.factory() as s, s.begin():
        request_revocation(s, office, now=later)
    (revoke_request,) = jobs.dispatch(database.factory, settings, later).written
    with database.factory() as s:
        assert status_of(s, office) is Status.AWAITING_REVOCATION
    carry(ca_home, settings, revoke_request)
    inbox = link.import_inbox(database.factory, settings, now=later)
    assert inbox.imported[0].revoked == 1 and inbox.imported[0].moved_to_revoked == 1
    with database.factory() as s:
        assert status_of(s, office) is Status.REVOKED
        cert = s.execute(select(Certificate)).scalar_one()
        assert cert.revoked_at is not None
        assert s.execute(select(CrlRecord)).scalars().all()
    assert (data / "publish" / CDP_FILE).is_file()


def test_a_forged_result_goes_to_failed_and_changes_nothing(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = ra_settings(ca_home, database.url, data, mode="offline")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        office = requested(s, now=now)
    (request,) = jobs.dispatch(database.factory, settings, now).written
    result = carry(ca_home, settings, request)
    forged = bytearray(result.read_bytes())
    forged[len(forged) // 2] ^= 0x01
    result.write_bytes(bytes(forged))
    with database.factory() as s:
        before = counts(s)
    summary = link.import_inbox(database.factory, settings, now=now)
    assert summary.imported == () and [name for name, _ in summary.failed] == [result.name]
    assert (data / "link" / "failed" / f"{result.name}.reason.txt").is_file()
    with database.factory() as s:
        assert counts(s) == before
        app = s.get(Application, office)
        assert app is not None and app.status is Status.AWAITING_ISSUANCE


def test_a_lost_outbox_write_is_redone_and_an_existing_file_never_overwritten(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    settings = ra_settings(ca_home, database.url, data, mode="offline")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        requested(s, now=now)
    (request,) = jobs.dispatch(database.factory, settings, now).written
    content = request.read_bytes()
    # A crash after the commit, before the file: simulated by removing file and marker.
    request.unlink()
    next((data / "link" / "sent").iterdir()).unlink()
    redone = link.deliver_pending(database.factory, settings, now=now)
    assert redone.written == (request,) and request.read_bytes() == content
    # A different file in its place is refused, not overwritten.
    next((data / "link" / "sent").iterdir()).unlink()
    request.write_bytes(b"something else")
    from shomei.errors import Refused

    try:
        link.deliver_pending(database.factory, settings, now=now)
    except Refused as exc:
        assert "never overwritten" in exc.message and exc.message_ja
    else:  # pragma: no cover - the assertion is the point
        raise AssertionError("an existing outbox file was overwritten")
    assert request.read_bytes() == b"something else"
