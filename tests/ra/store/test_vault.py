"""Secrets at rest: the database and the key are 0600, TOTP secrets are sealed (AES-256-GCM)
under a key of the RA's own, and a copied database alone gives none of them away."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, text, update

from ra.party import Party
from ra.people import accounts
from ra.settings import RASettings
from ra.store.db import alembic_config, make_engine, session_factory, transaction
from ra.store.initdb import init_database
from ra.store.models import Account, AccountKind
from ra.store.vault import Vault, create_key_file, load_vault, totp_context
from shomei.errors import ConfigError, Refused
from tests.ra.conftest import VAULT, Database
from tests.ra_profile import FEES


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _settings(tmp_path: Path, url: str) -> RASettings:
    return RASettings(
        fees=FEES,
        database_url=url,
        data_dir=tmp_path / "data",
        secrets_key_file=tmp_path / "ra.key",
    )


def test_seal_and_open() -> None:
    sealed = VAULT.seal("JBSWY3DPEHPK3PXP", context="accounts.totp_secret/st1")
    assert sealed.startswith("v1:") and "JBSWY3DPEHPK3PXP" not in sealed
    assert VAULT.open(sealed, context="accounts.totp_secret/st1") == "JBSWY3DPEHPK3PXP"
    assert VAULT.seal("x", context="c") != VAULT.seal("x", context="c")  # a fresh nonce
    with pytest.raises(ConfigError, match="does not open"):  # moved to another account
        VAULT.open(sealed, context="accounts.totp_secret/ad1")
    with pytest.raises(ConfigError, match="does not open"):  # another key
        Vault(bytes(32)).open(sealed, context="accounts.totp_secret/st1")
    raw = bytearray(base64.b64decode(sealed[3:]))
    raw[-1] ^= 1
    with pytest.raises(ConfigError, match="altered"):
        VAULT.open(
            "v1:" + base64.b64encode(bytes(raw)).decode(), context="accounts.totp_secret/st1"
        )
    with pytest.raises(ConfigError, match=r"stored in clear.*init-db"):
        VAULT.open("JBSWY3DPEHPK3PXP", context="accounts.totp_secret/st1")


def test_key_file_problems_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"ra\.key is missing: restore it from the backup"):
        load_vault(tmp_path / "ra.key")
    with pytest.raises(ConfigError, match="name no secrets key file"):
        load_vault(None)
    key = create_key_file(tmp_path / "ra.key")
    assert _mode(tmp_path / "ra.key") == 0o600
    assert load_vault(tmp_path / "ra.key").key == key.key
    with pytest.raises(Refused, match="never overwritten"):
        create_key_file(tmp_path / "ra.key")
    (tmp_path / "ra.key").chmod(0o644)
    with pytest.raises(ConfigError, match=r"can be read by other users \(mode 0644\).*chmod 600"):
        load_vault(tmp_path / "ra.key")
    (tmp_path / "bad.key").write_text("not a key\n")
    (tmp_path / "bad.key").chmod(0o600)
    with pytest.raises(ConfigError, match="is not an RA secrets key file"):
        load_vault(tmp_path / "bad.key")
    (tmp_path / "dir.key").mkdir(mode=0o700)
    with pytest.raises(ConfigError, match="cannot read"):
        load_vault(tmp_path / "dir.key")


def test_init_db_makes_the_database_and_key_readable_by_the_owner_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ra.sqlite'}"
    report = init_database(_settings(tmp_path, url))
    assert report.created_database == tmp_path / "ra.sqlite"
    assert report.created_key == tmp_path / "ra.key"
    engine = make_engine(url)
    with transaction(session_factory(engine)) as s:  # WAL mode: -wal and -shm appear now
        s.execute(text("SELECT 1"))
        for name in ("ra.sqlite", "ra.sqlite-wal", "ra.sqlite-shm", "ra.key"):
            assert _mode(tmp_path / name) == 0o600, name
    engine.dispose()
    again = init_database(_settings(tmp_path, url))
    assert (again.created_database, again.created_key, again.restricted) == (None, None, ())


def test_init_db_narrows_an_existing_world_readable_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ra.sqlite'}"
    init_database(_settings(tmp_path, url))
    (tmp_path / "ra.sqlite").chmod(0o644)
    report = init_database(_settings(tmp_path, url))
    assert report.restricted == (tmp_path / "ra.sqlite",)
    assert _mode(tmp_path / "ra.sqlite") == 0o600


def _staff(database: Database, vault: Vault, now: dt.datetime) -> accounts.NewAccount:
    with transaction(database.factory) as s:
        return accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.ADMIN,
            name="管理者",
            email="a@f.example",
            now=now,
            vault=vault,
            user_id="admin1",
        )


def test_a_copied_database_alone_gives_no_totp_secret_away(
    database: Database, now: dt.datetime, tmp_path: Path
) -> None:
    new = _staff(database, VAULT, now)
    assert new.totp_secret is not None
    with database.factory() as s:
        stored = s.execute(select(Account.totp_secret_sealed)).scalar_one()
        columns = s.execute(select(Account)).scalar_one().__table__.columns.keys()
    assert stored is not None and new.totp_secret not in stored
    assert "totp_secret" not in columns  # no clear column left
    if not database.is_postgres:
        path = Path(database.url.removeprefix("sqlite:///"))
        database.engine.dispose()
        blob = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert new.totp_secret.encode() not in blob
    sealed = new.account.totp_secret_sealed
    assert sealed is not None
    context = totp_context(new.account.user_id)
    assert VAULT.open(sealed, context=context) == new.totp_secret
    with pytest.raises(ConfigError, match="does not open"):  # the wrong key is not a wrong code
        Vault(bytes(32)).open(sealed, context=context)


def test_upgrading_clear_secrets_needs_the_key(database: Database, now: dt.datetime) -> None:
    """A database of revision 0005 held TOTP secrets in clear: no upgrade leaves them so."""
    cfg = alembic_config(database.url)
    command.downgrade(cfg, "0005")
    with database.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO accounts (user_id, kind, name, totp_secret, failed_logins, active, "
                "created_at) VALUES ('st00000001', 'staff', '職員', 'JBSWY3DPEHPK3PXP', 0, "
                ":t, :now)"
            ),
            {"t": True, "now": now.replace(tzinfo=None)},
        )
    with pytest.raises(ConfigError, match=r"TOTP secret.*no secrets key"):
        command.upgrade(cfg, "head")  # no key: refused, nothing changed
    with database.engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0005"
        assert c.execute(text("SELECT totp_secret FROM accounts")).scalar() == "JBSWY3DPEHPK3PXP"


def test_init_db_seals_clear_secrets_and_downgrade_opens_them(
    database: Database, now: dt.datetime
) -> None:
    cfg = alembic_config(database.url)
    command.downgrade(cfg, "0005")
    with database.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO accounts (user_id, kind, name, totp_secret, failed_logins, active, "
                "created_at) VALUES ('st00000001', 'staff', '職員', 'JBSWY3DPEHPK3PXP', 0, "
                ":t, :now)"
            ),
            {"t": True, "now": now.replace(tzinfo=None)},
        )
    cfg.attributes["vault"] = VAULT
    command.upgrade(cfg, "head")
    with database.factory() as s:
        account = s.execute(select(Account)).scalar_one()
    assert account.totp_secret_sealed is not None
    assert "JBSWY3DPEHPK3PXP" not in account.totp_secret_sealed
    opened = VAULT.open(account.totp_secret_sealed, context=totp_context("st00000001"))
    assert opened == "JBSWY3DPEHPK3PXP"
    command.downgrade(cfg, "0005")
    with database.engine.connect() as c:
        assert c.execute(text("SELECT totp_secret FROM accounts")).scalar() == "JBSWY3DPEHPK3PXP"


def test_init_db_will_not_replace_a_lost_key(tmp_path: Path, now: dt.datetime) -> None:
    url = f"sqlite:///{tmp_path / 'ra.sqlite'}"
    settings = _settings(tmp_path, url)
    report = init_database(settings)
    engine = make_engine(url)
    with transaction(session_factory(engine)) as s:
        accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.ADMIN,
            name="管理者",
            email="a@f.example",
            now=now,
            vault=report.vault,
        )
    engine.dispose()
    (tmp_path / "ra.key").unlink()
    with pytest.raises(ConfigError, match=r"ra\.key is missing and the database holds secrets"):
        init_database(settings)
    assert not (tmp_path / "ra.key").exists()
    create_key_file(tmp_path / "ra.key")  # a different key
    with pytest.raises(ConfigError, match="does not open"):
        init_database(settings)


def test_a_failed_init_db_leaves_nothing_behind(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ra.sqlite'}"
    settings = _settings(tmp_path, url)
    (tmp_path / "ra.key").write_text("not a key\n")
    (tmp_path / "ra.key").chmod(0o600)
    with pytest.raises(ConfigError, match="not an RA secrets key file"):
        init_database(settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ra.key"]


def test_a_sealed_secret_does_not_open_in_another_row(database: Database, now: dt.datetime) -> None:
    admin = _staff(database, VAULT, now)
    with transaction(database.factory) as s:
        other = accounts.add_console_user(
            s,
            Party.operator(),
            kind=AccountKind.STAFF,
            name="職員",
            email="s@f.example",
            now=now,
            vault=VAULT,
            user_id="staff1",
        )
        s.execute(
            update(Account)
            .where(Account.id == other.account.id)
            .values(totp_secret_sealed=admin.account.totp_secret_sealed)
        )
    with database.factory() as s:
        moved = s.execute(select(Account).where(Account.user_id == "staff1")).scalar_one()
    assert admin.totp_secret is not None
    with pytest.raises(ConfigError, match="does not open"):
        VAULT.open(moved.totp_secret_sealed or "", context=totp_context(moved.user_id))
