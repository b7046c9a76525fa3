"""``shomei ra init-db``: create or upgrade the RA database, and the key its secrets need.

The one command that creates things on the RA's side of the disk:

- the SQLite file, mode 0600, when it does not exist (:func:`ra.store.db.upgrade`); a PostgreSQL
  database is created on the server by its administrator, init-db creates the schema;
- the secrets key file (:mod:`ra.store.vault`), mode 0600, when it does not exist and the database
  holds no sealed secret yet.  When it does, a missing key is an error that says to restore it
  from the backup: a new key would make the sealed secrets unreadable;
- the schema, by the Alembic migrations, which seal secrets still kept in clear by an older
  version (TOTP secrets before revision 0006) in the same transaction;
- the web application's session key (``[ra.web] secret_key_file``), mode 0600, if missing.

Then it checks that the key opens a sealed secret of the database, and narrows an SQLite file
(and its ``-wal``/``-shm``/``-journal`` companions) that others could read to 0600.  When the
work fails, what this run created (a new database file, a new key file) is removed again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import inspect, select

from ra.settings import RASettings
from ra.store.db import (
    COMPANIONS,
    create_sqlite_file,
    make_engine,
    restrict_sqlite_files,
    sqlite_path,
)
from ra.store.db import upgrade as upgrade_schema
from ra.store.models import Account
from ra.store.vault import Vault, create_key_file, ensure_session_key, load_vault, totp_context
from shomei.errors import ConfigError


@dataclass(frozen=True)
class InitReport:
    """What :func:`init_database` did."""

    created_database: Path | None  # the SQLite file made now
    created_key: Path | None  # the secrets key file made now
    restricted: tuple[Path, ...]  # files whose permissions were narrowed to 0600
    vault: Vault = field(repr=False)


def _sealed_secret(url: str) -> tuple[str, str] | None:
    """One sealed TOTP secret of the database and its user ID, if it has any."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("accounts"):
                return None
            columns = {c["name"] for c in inspect(connection).get_columns("accounts")}
            if "totp_secret_sealed" not in columns:
                return None
            row = connection.execute(
                select(Account.user_id, Account.totp_secret_sealed)
                .where(Account.totp_secret_sealed.is_not(None))
                .limit(1)
            ).first()
            return None if row is None or row[1] is None else (row[0], row[1])
    finally:
        engine.dispose()


def _remove_database(path: Path) -> None:
    for candidate in [path, *(path.with_name(path.name + s) for s in COMPANIONS)]:
        candidate.unlink(missing_ok=True)


def init_database(settings: RASettings) -> InitReport:
    """Create or upgrade the database of ``settings`` and its secrets key (see the module)."""
    url = settings.database_url
    key_path = settings.secrets_key_file
    if key_path is None:
        raise ConfigError(
            "the RA settings name no secrets key file (ra.secrets_key_file)",
            message_ja="RA 設定に暗号鍵ファイル(ra.secrets_key_file)が指定されていません",
        )
    new_file = sqlite_path(url) if create_sqlite_file(url) else None
    created_key: Path | None = None
    try:
        if key_path.exists() or key_path.is_symlink():
            vault = load_vault(key_path)
        else:
            if new_file is None and _sealed_secret(url) is not None:
                raise ConfigError(
                    f"the RA secrets key file {key_path} is missing and the database holds "
                    "secrets sealed with it: restore the key file from the backup made with the "
                    "database (a new key would not open them)",
                    message_ja=f"RA の暗号鍵ファイル {key_path} がありませんが、データベースには"
                    "その鍵で暗号化された値があります。バックアップから鍵ファイルを戻してください",
                    path=str(key_path),
                )
            vault = create_key_file(key_path)
            created_key = key_path
        upgrade_schema(url, vault=vault)
        sample = _sealed_secret(url)
        if sample is not None:
            vault.open(sample[1], context=totp_context(sample[0]))  # the key fits this database
    except BaseException:
        if new_file is not None:
            _remove_database(new_file)
        if created_key is not None:
            created_key.unlink(missing_ok=True)
        raise
    if settings.web.secret_key_file is not None:
        ensure_session_key(settings.web.secret_key_file)  # the web's cookie key, 0600
    restricted = tuple(restrict_sqlite_files(url))
    return InitReport(new_file, created_key, restricted, vault)
