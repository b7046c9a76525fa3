"""CRL registration (A6/B10): verified, never backwards, only listed 失効待ち move, published."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, select, update

from ca.crls import issue_crl
from ca.signbatch import sign_batch
from cli.ra_jobs_commands import register_crl_command
from contract.batch import read_result_batch
from crl.reader import load_crl
from ra.ca_link import crls, link
from ra.lifecycle import Status
from ra.store.models import Application, Certificate, CrlRecord
from shomei.errors import MalformedInput, NotFound, Refused, VerificationFailed
from tests.pki import Pki
from tests.ra.ca_fixture import (  # noqa: F401
    CDP_FILE,
    CaHome,
    ca_home_fixture,
    open_test_ca,
    ra_settings,
)
from tests.ra.ca_link.test_link import counts, request_revocation, requested, status_of
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def fresh_crl(ca_home: CaHome, at: dt.datetime) -> bytes:
    with open_test_ca(ca_home) as ca:
        return issue_crl(ca, now=at)


def test_only_listed_applications_awaiting_revocation_move(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        listed = requested(s, now=now)
        unlisted = requested(s, now=now)
    (issue_file,) = link.dispatch(database.factory, settings, now=now).written
    with open_test_ca(ca_home) as ca:
        issued = sign_batch(ca, issue_file.read_bytes(), now=now, workers=1)
    link.import_result(database.factory, settings, issued, now=now)
    with database.factory() as s, s.begin():
        request_revocation(s, listed, now=now)
        # As if its revocation had been sent in an earlier batch the CA has not answered yet.
        s.execute(
            update(Application)
            .where(Application.id == unlisted)
            .values(status=Status.AWAITING_REVOCATION, version=Application.version + 1)
        )
    (revoke_file,) = link.dispatch(database.factory, settings, now=now).written
    with open_test_ca(ca_home) as ca:
        answered = sign_batch(ca, revoke_file.read_bytes(), now=now, workers=1)
    crl_der = read_result_batch(answered, ca_certificate=ca_home.ca_certificate).crl_der

    with database.factory() as s, s.begin():
        result = crls.register_crl(s, crl_der, ca_certificate=ca_home.ca_certificate, now=now)
    assert result.registered and result.revoked == (listed,)
    with database.factory() as s:
        assert status_of(s, listed) is Status.REVOKED
        assert status_of(s, unlisted) is Status.AWAITING_REVOCATION
        cert = s.execute(
            select(Certificate).where(Certificate.application_id == listed)
        ).scalar_one()
        entry = load_crl(crl_der, issuer=ca_home.ca_certificate).index.lookup(
            int(cert.serial_hex, 16)
        )
        assert entry is not None and cert.revoked_at == entry.revoked_at
        assert cert.revocation_crl_number == str(result.number)
        before = counts(s)

    # The same CRL again: a no-op.  The result batch carrying it: imported, nothing moves.
    with database.factory() as s, s.begin():
        again = crls.register_crl(s, crl_der, ca_certificate=ca_home.ca_certificate, now=now)
    assert not again.registered and again.revoked == ()
    imported = link.import_result(database.factory, settings, answered, now=now)
    assert imported.revoked == 1 and not imported.crl_registered
    with database.factory() as s:
        assert counts(s)["certificates"] == before["certificates"]
        assert status_of(s, unlisted) is Status.AWAITING_REVOCATION


def test_a_crl_number_going_backwards_is_refused(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    now = _now()
    older = fresh_crl(ca_home, now)
    newer = fresh_crl(ca_home, now + dt.timedelta(seconds=1))
    with database.factory() as s, s.begin():
        crls.register_crl(s, newer, ca_certificate=ca_home.ca_certificate, now=now)
    with pytest.raises(Refused) as caught, database.factory() as s, s.begin():
        crls.register_crl(s, older, ca_certificate=ca_home.ca_certificate, now=now)
    assert "not greater than" in caught.value.message and "古い CRL" in caught.value.message_ja
    with database.factory() as s, s.begin():
        skipped = crls.register_crl(
            s, older, ca_certificate=ca_home.ca_certificate, now=now, older="skip"
        )
        assert skipped.skipped_older and not skipped.registered
    with database.factory() as s:
        assert s.execute(select(func.count()).select_from(CrlRecord)).scalar_one() == 1


def test_foreign_and_malformed_crls_are_refused(
    database: Database, ca_home: CaHome, pki: Pki
) -> None:
    now = _now()
    with pytest.raises(VerificationFailed), database.factory() as s, s.begin():
        crls.register_crl(s, pki.crl_der, ca_certificate=ca_home.ca_certificate, now=now)
    with pytest.raises(MalformedInput), database.factory() as s, s.begin():
        crls.register_crl(s, b"\x30\x82garbage", ca_certificate=ca_home.ca_certificate, now=now)
    good = fresh_crl(ca_home, now)
    with pytest.raises((VerificationFailed, MalformedInput)), database.factory() as s, s.begin():
        crls.register_crl(
            s, good[:-3] + b"\x00\x00\x00", ca_certificate=ca_home.ca_certificate, now=now
        )
    with database.factory() as s:
        assert s.execute(select(func.count()).select_from(CrlRecord)).scalar_one() == 0


def test_publish_is_atomic_and_never_goes_backwards(ca_home: CaHome, tmp_path: Path) -> None:
    now = _now()
    older = fresh_crl(ca_home, now)
    newer = fresh_crl(ca_home, now + dt.timedelta(seconds=1))
    cert = ca_home.ca_certificate
    target = crls.publish(tmp_path, "issuing.crl", newer, ca_certificate=cert)
    assert target == tmp_path / "publish" / "issuing.crl" and target.read_bytes() == newer
    assert crls.publish(tmp_path, "issuing.crl", older, ca_certificate=cert) is None
    assert crls.publish(tmp_path, "issuing.crl", newer, ca_certificate=cert) is None
    assert target.read_bytes() == newer
    assert [p.name for p in (tmp_path / "publish").iterdir()] == ["issuing.crl"]
    with pytest.raises(MalformedInput):
        crls.publish(tmp_path, "../escape.crl", newer, ca_certificate=cert)


def test_register_crl_file_and_its_command(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    crl_file = tmp_path / "upload.crl"
    pem = load_crl(fresh_crl(ca_home, now), issuer=ca_home.ca_certificate)
    from cryptography import x509

    der = fresh_crl(ca_home, now + dt.timedelta(seconds=1))
    crl_file.write_bytes(x509.load_der_x509_crl(der).public_bytes(Encoding.PEM))
    result = crls.register_crl_file(database.factory, settings, crl_file, now=now)
    assert result.registered and result.number > (pem.number or 0)
    published = tmp_path / "data" / "publish"
    (name,) = [p.name for p in published.iterdir()]
    # No certificate issued yet, so no distribution point to follow: named by the issuer.
    assert name == f"{crls.issuer_digest(ca_home.ca_certificate)[:16]}.crl"
    assert (published / name).read_bytes() == der  # stored and published as DER
    with pytest.raises(NotFound):
        crls.register_crl_file(database.factory, settings, tmp_path / "missing.crl", now=now)

    toml = tmp_path / "ra.toml"
    toml.write_text(
        "[ra]\n"
        f'database_url = "{database.url}"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        f"{RA_REQUIRED}\n"
        "[ra.link]\n"
        'mode = "offline"\n'
        f'ca_certificate = "{ca_home.issuing_cert}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    outcome = runner.invoke(register_crl_command, [str(crl_file), "--settings", str(toml)])
    assert outcome.exit_code == 0, outcome.output
    assert "already registered" in outcome.output
    crl_file.write_bytes(b"not a crl")
    outcome = runner.invoke(register_crl_command, [str(crl_file), "--settings", str(toml)])
    assert outcome.exit_code == 2 and "shomei:" in outcome.output


def test_the_holder_of_a_revoked_certificate_is_told(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    """The CRL that revokes a certificate brings its holder the 失効 notice and mail."""
    from ra.store.models import Notice, OutboxMail

    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = _now()
    with database.factory() as s, s.begin():
        app_id = requested(s, now=now, email="office@example.jp")
    (issue_file,) = link.dispatch(database.factory, settings, now=now).written
    with open_test_ca(ca_home) as ca:
        issued = sign_batch(ca, issue_file.read_bytes(), now=now, workers=1)
    link.import_result(database.factory, settings, issued, now=now)
    with database.factory() as s, s.begin():
        request_revocation(s, app_id, now=now)
    (revoke_file,) = link.dispatch(database.factory, settings, now=now).written
    with open_test_ca(ca_home) as ca:
        answered = sign_batch(ca, revoke_file.read_bytes(), now=now, workers=1)
    link.import_result(database.factory, settings, answered, now=now)  # registers the CRL
    with database.factory() as s:
        assert status_of(s, app_id) is Status.REVOKED
        notices = s.execute(
            select(Notice.kind, Notice.title).where(Notice.application_id == app_id)
        ).all()
        assert ("certificate_revoked", "証明書が失効しました") in notices
        mails = s.execute(
            select(OutboxMail.subject).where(OutboxMail.kind == "certificate_revoked")
        )
        assert list(mails.scalars()) == ["証明書が失効しました"]


def test_the_publish_folder_holds_the_ca_certificate_beside_the_crl(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    """A plain web server serving data_dir/publish answers the caIssuers URL too."""
    import dataclasses

    from ra.settings import load_certificate_profiles
    from tests.ra_profile import OFFICE_PROFILE

    settings = dataclasses.replace(
        ra_settings(ca_home, database.url, tmp_path / "data", mode="offline"),
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
    )
    now = _now()
    with database.factory() as s, s.begin():
        crls.register_crl(
            s, fresh_crl(ca_home, now), ca_certificate=ca_home.ca_certificate, now=now
        )
    crls.publish_latest(database.factory, settings, ca_certificate=ca_home.ca_certificate)
    published = tmp_path / "data" / "publish" / "issuing.cer"  # conf/profiles/office.toml's URL
    assert published.read_bytes() == ca_home.ca_certificate.public_bytes(Encoding.DER)
    assert crls.publish_ca_certificate(settings, ca_home.ca_certificate) == []  # unchanged
