"""The RA link identity (encrypted key at rest) and inline delivery after a crash."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from ra.ca_link import link
from ra.ca_link.identity import create_link_identity, load_ca_certificate, load_link_identity
from ra.lifecycle import Status
from ra.settings import LinkSettings
from ra.store.models import CaBatch
from shomei.errors import ConfigError, NotFound, Refused
from tests.ra.ca_fixture import CaHome, ca_home_fixture, ra_settings  # noqa: F401
from tests.ra.ca_link.test_link import requested, results_dir_of, status_of
from tests.ra.conftest import Database


def test_create_and_load_a_link_identity(tmp_path: Path, now: dt.datetime) -> None:
    identity, files = create_link_identity("RA one", tmp_path / "id", now=now)
    assert b"ENCRYPTED PRIVATE KEY" in files.key.read_bytes()  # never in the clear
    assert files.passphrase.stat().st_mode & 0o077 == 0
    assert files.key.stat().st_mode & 0o077 == 0
    settings = LinkSettings(
        link_key=files.key,
        link_key_passphrase_file=files.passphrase,
        link_certificate=files.certificate,
    )
    loaded = load_link_identity(settings)
    assert loaded.certificate == identity.certificate
    with pytest.raises(Refused):
        create_link_identity("RA one", tmp_path / "id", now=now)
    assert load_link_identity(settings).certificate == identity.certificate  # untouched


def test_bad_link_identities_are_clear_errors(tmp_path: Path, now: dt.datetime) -> None:
    _, a = create_link_identity("RA a", tmp_path / "a", now=now)
    _, b = create_link_identity("RA b", tmp_path / "b", now=now)
    with pytest.raises(ConfigError) as caught:
        load_link_identity(LinkSettings())
    assert "ra.link" in caught.value.message and caught.value.message_ja != caught.value.message
    with pytest.raises(NotFound):
        load_link_identity(
            LinkSettings(
                link_key=tmp_path / "none.key",
                link_key_passphrase_file=a.passphrase,
                link_certificate=a.certificate,
            )
        )
    with pytest.raises(ConfigError, match="wrong passphrase"):
        load_link_identity(
            LinkSettings(
                link_key=a.key,
                link_key_passphrase_file=b.passphrase,
                link_certificate=a.certificate,
            )
        )
    with pytest.raises(ConfigError, match="does not belong"):
        load_link_identity(
            LinkSettings(
                link_key=a.key,
                link_key_passphrase_file=a.passphrase,
                link_certificate=b.certificate,
            )
        )
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        load_link_identity(
            LinkSettings(
                link_key=a.key, link_key_passphrase_file=a.passphrase, link_certificate=a.key
            )
        )


def test_load_ca_certificate(ca_home: CaHome, tmp_path: Path) -> None:
    inline = LinkSettings(mode="inline", ca_home=ca_home.home)
    assert load_ca_certificate(inline) == ca_home.ca_certificate
    assert load_ca_certificate(LinkSettings(ca_certificate=ca_home.issuing_cert)) == (
        ca_home.ca_certificate
    )
    with pytest.raises(ConfigError):
        load_ca_certificate(LinkSettings(mode="offline"))
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(ConfigError):
        load_ca_certificate(LinkSettings(ca_certificate=junk))


def test_inline_delivery_after_a_crash_imports_the_copy_the_ca_kept(
    database: Database, ca_home: CaHome, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        app = requested(s, now=now)
    real = link.import_result

    def crash(*args: object, **kwargs: object) -> link.ImportSummary:
        raise KeyboardInterrupt  # the process dies after the CA signed, before the import

    monkeypatch.setattr(link, "import_result", crash)
    with pytest.raises(KeyboardInterrupt):
        link.dispatch(database.factory, settings, now=now)
    monkeypatch.setattr(link, "import_result", real)
    with database.factory() as s:
        assert status_of(s, app) is Status.AWAITING_ISSUANCE
        batch_id = s.execute(select(CaBatch.batch_id)).scalar_one()
    assert (results_dir_of(ca_home) / f"{batch_id}.p7m").exists()
    recovered = link.deliver_pending(database.factory, settings, now=now)
    assert [i.issued for i in recovered.imported] == [1] and recovered.attention == ()
    with database.factory() as s:
        assert status_of(s, app) is Status.ISSUED
    # Nothing pending any more.
    assert link.deliver_pending(database.factory, settings, now=now).imported == ()


def test_an_offline_batch_needs_its_folders(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    settings = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    broken = dataclasses.replace(settings, link=dataclasses.replace(settings.link, outbox=None))
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        requested(s, now=now)
    with pytest.raises(ConfigError, match="outbox"):
        link.dispatch(database.factory, broken, now=now)
    # Refused before any batch was made; once configured, the next run makes and writes it.
    assert link.deliver_pending(database.factory, settings, now=now).written == ()
    assert len(link.dispatch(database.factory, settings, now=now).written) == 1
    no_inbox = dataclasses.replace(settings, link=dataclasses.replace(settings.link, inbox=None))
    with pytest.raises(ConfigError, match="inbox"):
        link.import_inbox(database.factory, no_inbox, now=now)


def test_a_batch_the_ca_began_but_never_finished_is_finished_by_the_next_delivery(
    database: Database, ca_home: CaHome, tmp_path: Path
) -> None:
    from tests.ra.ca_fixture import open_test_ca

    offline = ra_settings(ca_home, database.url, tmp_path / "data", mode="offline")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with database.factory() as s, s.begin():
        app = requested(s, now=now)
    link.dispatch(database.factory, offline, now=now)  # committed, written, not signed
    with database.factory() as s:
        batch = s.execute(select(CaBatch)).scalar_one()
    with open_test_ca(ca_home) as ca:  # as if the CA crashed half-way through this batch
        ca.ledger.begin_batch(
            batch_id=batch.batch_id,
            sha256=batch.request_sha256,
            ra_name="Shomei Test RA",
            request_count=1,
            now=now,
        )
    inline = ra_settings(ca_home, database.url, tmp_path / "data")
    summary = link.deliver_pending(database.factory, inline, now=now)
    # Nobody holds the CA's work lock, so the process that began it is gone; the ledger says
    # nothing was signed yet, and the batch is finished now (it was "stuck" for good before).
    assert summary.attention == () and [i.issued for i in summary.imported] == [1]
    with database.factory() as s:
        assert status_of(s, app) is Status.ISSUED


def test_a_folder_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        main, ["ra", "link-identity", str(blocker / "link"), "--name", "Shomei RA"]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)
    assert "is not a folder" in result.output and len(result.output.splitlines()) == 1
    assert "is not a folder" in result.output and "Traceback" not in result.output


def test_an_identity_left_half_made_by_a_crash_says_what_to_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ra.ca_link.identity

    real = ra.ca_link.identity.write_new
    written: list[Path] = []

    def die_before_the_certificate(path: Path, data: bytes, *, mode: int = 0o644) -> None:
        if path.suffix == ".pem":
            raise KeyboardInterrupt  # the process dies here
        real(path, data, mode=mode)
        written.append(path)

    monkeypatch.setattr(ra.ca_link.identity, "write_new", die_before_the_certificate)
    now = dt.datetime.now(dt.UTC)
    with pytest.raises(KeyboardInterrupt):
        create_link_identity("RA", tmp_path / "link", now=now)
    monkeypatch.undo()
    with pytest.raises(Refused, match="stopped part-way") as info:
        create_link_identity("RA", tmp_path / "link", now=now)
    assert all(str(p) in info.value.message for p in written) and len(written) == 2
    for path in written:
        path.unlink()
    _, files = create_link_identity("RA", tmp_path / "link", now=now)
    assert files.certificate.exists()
    with pytest.raises(Refused, match="never overwritten"):
        create_link_identity("RA", tmp_path / "link", now=now)
