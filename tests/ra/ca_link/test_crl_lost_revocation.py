"""The RA never registers or publishes a CRL that loses a revocation (issue 7).

A CRL genuinely signed by the CA but leaving out a serial the RA knows was revoked (its
application 失効済み, or listed on the last registered CRL) and not yet expired is what a CA
with a ledger restored from an older backup would issue.  Built here with the issuing key
directly, it is refused by ``register_crl``, the A6 upload and its command, and, inside a
result batch, its certificates are imported while the CRL is not.  SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select

import ca.signbatch
from ca.context import CA
from ca.crls import time_number
from ca.signbatch import sign_batch
from cli.errors import exit_code_of
from cli.ra_jobs_commands import register_crl_command, run_job_command
from crl.builder import RevokedEntry, build_crl
from crl.reader import load_crl
from ra.ca_link import crls, link
from ra.ca_link.link_import import refused_crls
from ra.lifecycle import Status
from ra.store.models import AuditRecord, Certificate, CrlRecord
from shomei.errors import ConfigError
from tests.pki import Pki
from tests.ra.ca_fixture import (  # noqa: F401
    CDP_FILE,
    CaHome,
    ca_home_fixture,
    make_application,
    open_test_ca,
    ra_settings,
)
from tests.ra.ca_link.test_link import request_revocation, requested, status_of
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _signed_crl(
    ca: CA, at: dt.datetime, entries: tuple[RevokedEntry, ...] = (), *, bump: int = 0
) -> bytes:
    """A CRL signed with the issuing key directly, numbered above anything the CA issued."""
    return build_crl(
        issuer=ca.certificate,
        key=ca.key,
        number=time_number(at) + 10**15 + bump,
        this_update=at,
        next_update=at + dt.timedelta(days=7),
        entries=entries,
    )


def _revoked_office(database: Database, ca_home: CaHome, tmp_path: Path) -> tuple[int, int, int]:
    """Through the inline link: one office issued, one issued and revoked (8).

    Returns (kept application, revoked application, revoked serial).
    """
    settings = ra_settings(ca_home, database.url, tmp_path / "data")
    now = _now()
    with database.factory() as s, s.begin():
        kept = requested(s, now=now)
        gone = requested(s, now=now)
    link.dispatch(database.factory, settings, now=now)
    with database.factory() as s, s.begin():
        request_revocation(s, gone, now=now)
    link.dispatch(database.factory, settings, now=now + dt.timedelta(seconds=1))
    with database.factory() as s:
        assert status_of(s, gone) is Status.REVOKED
        serial = s.execute(
            select(Certificate.serial_hex).where(Certificate.application_id == gone)
        ).scalar_one()
    return kept, gone, int(serial, 16)


def _crl_count(database: Database) -> int:
    with database.factory() as s:
        return s.execute(select(func.count()).select_from(CrlRecord)).scalar_one()


def _toml(database: Database, ca_home: CaHome, tmp_path: Path) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(
        "[ra]\n"
        f'database_url = "{database.url}"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        f"{RA_REQUIRED}\n"
        "[ra.link]\n"
        'mode = "offline"\n'
        f'ca_certificate = "{ca_home.issuing_cert}"\n'
        f'inbox = "{tmp_path / "inbox"}"\n',
        encoding="utf-8",
    )
    return path


def test_a_crl_leaving_out_a_revoked_serial_is_refused(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    _, gone, serial = _revoked_office(database, ca_home, tmp_path)
    published = tmp_path / "data" / "publish" / CDP_FILE
    before = published.read_bytes()
    count = _crl_count(database)
    now = _now() + dt.timedelta(minutes=1)
    with open_test_ca(ca_home) as ca:
        empty = _signed_crl(ca, now)
    with pytest.raises(crls.LostRevocation) as caught, database.factory() as s, s.begin():
        crls.register_crl(s, empty, ca_certificate=ca_home.ca_certificate, now=now)
    assert f"leaves out 1 revoked serial(s) whose certificates have not expired ({serial:x})" in (
        caught.value.message
    )
    assert caught.value.fields["serials"] == [format(serial, "x")]
    assert exit_code_of(caught.value) == 1 and "登録も公開もしません" in caught.value.message_ja

    # The A6 upload and its command: refused, nothing registered, nothing published.
    upload = tmp_path / "upload.crl"
    upload.write_bytes(empty)
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    with pytest.raises(crls.LostRevocation):
        crls.register_crl_file(database.factory, settings, upload, now=now)
    outcome = CliRunner().invoke(
        register_crl_command, [str(upload), "--settings", str(_toml(database, ca_home, tmp_path))]
    )
    assert outcome.exit_code == 1, outcome.output
    assert outcome.stderr.count("\n") == 1 and f"({serial:x})" in outcome.stderr
    assert _crl_count(database) == count and published.read_bytes() == before
    with database.factory() as s:
        assert status_of(s, gone) is Status.REVOKED


def test_an_expired_certificate_may_drop_off(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    _, gone, serial = _revoked_office(database, ca_home, tmp_path)
    with database.factory() as s:
        not_after = s.execute(
            select(Certificate.not_after).where(Certificate.application_id == gone)
        ).scalar_one()
    # RFC 5280 §3.3: once the certificate expired the CA may leave the entry off.
    after = not_after + dt.timedelta(days=31)
    with open_test_ca(ca_home) as ca:
        dropped = _signed_crl(ca, after)
    with database.factory() as s, s.begin():
        result = crls.register_crl(s, dropped, ca_certificate=ca_home.ca_certificate, now=after)
    assert (
        result.registered and serial not in load_crl(dropped, issuer=ca_home.ca_certificate).index
    )
    with database.factory() as s:
        assert status_of(s, gone) is Status.REVOKED


def test_a_serial_on_the_last_registered_crl_stays_required(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    # The CA revoked an issued certificate on its own (the RA never asked): the application
    # stays 発行済み, but the CRL that listed it is registered, so the RA knows.
    settings = ra_settings(ca_home, database.url, tmp_path / "data")
    now = _now()
    with database.factory() as s, s.begin():
        held = requested(s, now=now)
    link.dispatch(database.factory, settings, now=now)
    with database.factory() as s:
        serial = int(
            s.execute(
                select(Certificate.serial_hex).where(Certificate.application_id == held)
            ).scalar_one(),
            16,
        )
    later = now + dt.timedelta(minutes=1)
    with open_test_ca(ca_home) as ca:
        listing = _signed_crl(ca, later, (RevokedEntry(serial, now),))
        leaving = _signed_crl(ca, later + dt.timedelta(minutes=1), bump=1)
    with database.factory() as s, s.begin():
        assert crls.register_crl(s, listing, ca_certificate=ca_home.ca_certificate, now=later)
    with pytest.raises(crls.LostRevocation, match=f"{serial:x}"), database.factory() as s:
        with s.begin():
            crls.register_crl(s, leaving, ca_certificate=ca_home.ca_certificate, now=later)
    with database.factory() as s:
        assert status_of(s, held) is Status.ISSUED


def test_a_result_whose_crl_loses_a_revocation_brings_its_certificates_only(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, serial = _revoked_office(database, ca_home, tmp_path)
    published = tmp_path / "data" / "publish" / CDP_FILE
    before = published.read_bytes()
    count = _crl_count(database)
    # A CA that signs a batch but whose CRL forgot the revocation (an older ledger).
    monkeypatch.setattr(
        ca.signbatch, "issue_crl", lambda opened, *, now: _signed_crl(opened, now, bump=7)
    )
    offline = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now() + dt.timedelta(minutes=2)
    with database.factory() as s, s.begin():
        fresh = requested(s, now=now)
    (request,) = link.dispatch(database.factory, offline, now=now).written
    with open_test_ca(ca_home) as opened:
        result = sign_batch(opened, request.read_bytes(), now=now, workers=1)
    summary = link.import_result(database.factory, offline, result, now=now)
    assert summary.issued == 1 and not summary.crl_registered
    assert summary.crl_refused is not None and f"({serial:x})" in summary.crl_refused
    assert refused_crls(summary) == ((summary.crl_refused, summary.crl_refused_ja),)
    with database.factory() as s:
        assert status_of(s, fresh) is Status.ISSUED  # the certificate is in
        actions = s.execute(select(AuditRecord.action)).scalars().all()
        assert actions.count("crl_refused") == 1
    assert _crl_count(database) == count and published.read_bytes() == before

    # The scheduled job says so and exits non-zero; importing the same result is a no-op.
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "again.p7m").write_bytes(result)
    toml = _toml(database, ca_home, tmp_path)
    quiet = CliRunner().invoke(run_job_command, ["import-results", "--settings", str(toml)])
    assert quiet.exit_code == 0, quiet.output  # already imported: nothing refused again
    with database.factory() as s, s.begin():
        other = requested(s, now=now)
    (request,) = link.dispatch(database.factory, offline, now=now).written
    with open_test_ca(ca_home) as opened:
        (inbox / "new.p7m").write_bytes(
            sign_batch(opened, request.read_bytes(), now=now, workers=1)
        )
    loud = CliRunner().invoke(run_job_command, ["import-results", "--settings", str(toml)])
    assert loud.exit_code == 1, loud.output
    assert loud.stderr.startswith("shomei: CRL number") and f"({serial:x})" in loud.stderr
    with database.factory() as s:
        assert status_of(s, other) is Status.ISSUED
    assert _crl_count(database) == count and published.read_bytes() == before


def test_a_missing_offline_folder_is_never_made_on_the_spot(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    # The outbox lives on the medium carried to the CA; unmounted, its folder is missing.
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    assert settings.link.outbox is not None and settings.link.inbox is not None
    settings.link.outbox.rmdir()
    settings.link.inbox.rmdir()
    now = _now()
    with database.factory() as s, s.begin():
        app = requested(s, now=now)
    with pytest.raises(ConfigError, match=r"outbox folder .* does not exist"):
        link.dispatch(database.factory, settings, now=now)
    with pytest.raises(ConfigError, match=r"inbox folder .* does not exist"):
        link.import_inbox(database.factory, settings, now=now)
    assert not settings.link.outbox.exists() and not settings.link.inbox.exists()
    with database.factory() as s:
        assert status_of(s, app) is Status.ISSUE_REQUESTED  # not sent anywhere
    settings.link.outbox.mkdir()
    assert len(link.dispatch(database.factory, settings, now=now).written) == 1


def test_only_this_cas_revocations_are_required(
    database: Database, ca_home: CaHome, tmp_path: Path, pki: Pki
) -> None:
    # A revoked certificate of another CA (an earlier issuing CA) is not this CA's to list;
    # a certificate row that cannot be read is required rather than dropped on a doubt.
    now = _now()
    foreign = pki.certs["revoked"]
    with database.factory() as s, s.begin():
        for der, serial in (
            (foreign.public_bytes(Encoding.DER), foreign.serial_number),
            (b"\x30\x03\x02\x01\x01", 0x5EED),
        ):
            app = make_application(s, status=Status.REVOKED, now=now)
            s.add(
                Certificate(
                    application_id=app.id,
                    serial_hex=format(serial, "x"),
                    der=der,
                    not_before=now - dt.timedelta(days=1),
                    not_after=now + dt.timedelta(days=300),
                    registered_at=now,
                    revoked_at=now,
                    expiry_notices_sent=[],
                )
            )
    with open_test_ca(ca_home) as ca:
        empty = _signed_crl(ca, now)
    with pytest.raises(crls.LostRevocation) as caught, database.factory() as s, s.begin():
        crls.register_crl(s, empty, ca_certificate=ca_home.ca_certificate, now=now)
    assert caught.value.fields["serials"] == ["5eed"]
