"""API tokens (ra.people.api_tokens), on SQLite and PostgreSQL: made with a name and scopes and
shown once (only the hash kept), found by the hash on every call, refused once revoked; and
the [ra.api] settings checked at start."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select

from ra.party import Party, PartyKind, Permission, Scope, may
from ra.people import api_tokens
from ra.settings import ApiSettings, check_api_settings, load_ra_settings
from ra.store.models import AccountKind, ApiToken, AuditRecord
from shomei.errors import (
    AlreadyExists,
    AuthenticationFailed,
    ConfigError,
    Conflict,
    MalformedInput,
    NotFound,
    NotPermitted,
)
from tests.ra import factories
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED

ADMIN = Party(PartyKind.ADMIN, "admin1", 1)


def test_a_token_is_shown_once_and_only_its_hash_kept(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        made = api_tokens.create_token(
            s,
            ADMIN,
            name="  請求受付システム ",
            scopes=["verify_claims", Scope.VERIFY_CLAIMS],
            now=now,
        )
        secret = made.secret
    assert secret.startswith("shomei_") and len(secret) == len("shomei_") + 43
    with database.factory() as s:
        row = s.execute(select(ApiToken)).scalar_one()
        assert row.name == "請求受付システム" and row.scopes == ["verify_claims"]
        assert row.token_sha256 == api_tokens.digest(secret) and row.prefix == secret[:12]
        assert secret not in {str(v) for v in vars(row).values()}
        record = s.execute(select(AuditRecord)).scalar_one()
        assert (record.action, record.actor_id, record.object_id) == (
            "api_token_created",
            "admin1",
            "請求受付システム",
        )
        assert secret not in str(record.details)
        party, _ = api_tokens.authenticate(s, secret)
    assert (party.kind, party.user_id, party.audit_id) == (
        PartyKind.API,
        "請求受付システム",
        "api:請求受付システム",
    )
    assert may(party, Permission.VERIFY_CLAIMS) and not may(party, Permission.VIEW_ALL_APPLICATIONS)


@pytest.mark.parametrize(
    ("name", "scopes", "error"),
    [
        ("", ["verify_claims"], MalformedInput),
        ("x" * 61, ["verify_claims"], MalformedInput),
        ("tab\there", ["verify_claims"], MalformedInput),
        ("ok", [], MalformedInput),
        ("ok", ["write_everything"], MalformedInput),
    ],
)
def test_bad_names_and_scopes_are_refused(
    database: Database, now: dt.datetime, name: str, scopes: list[str], error: type[Exception]
) -> None:
    with database.factory() as s, s.begin():
        with pytest.raises(error) as info:
            api_tokens.create_token(s, ADMIN, name=name, scopes=scopes, now=now)
        assert info.value.message_ja  # type: ignore[attr-defined]
        assert s.execute(select(ApiToken)).first() is None


def test_revoked_unknown_and_missing_tokens_are_refused(
    database: Database, now: dt.datetime
) -> None:
    with database.factory() as s, s.begin():
        secret = api_tokens.create_token(
            s, ADMIN, name="reception", scopes=list(Scope), now=now
        ).secret
        with pytest.raises(AlreadyExists):
            api_tokens.create_token(s, ADMIN, name="reception", scopes=["verify_claims"], now=now)
    with database.factory() as s, s.begin():
        for presented in (None, "", "shomei_unknown", secret + "x"):
            with pytest.raises(AuthenticationFailed):
                api_tokens.authenticate(s, presented)
        row = s.execute(select(ApiToken)).scalar_one()
        api_tokens.revoke_token(s, ADMIN, row.id, now=now + dt.timedelta(minutes=1))
        with pytest.raises(Conflict):
            api_tokens.revoke_token(s, ADMIN, row.id, now=now)
        for missing in (row.id + 1, 0, 2**40):
            with pytest.raises(NotFound):
                api_tokens.revoke_token(s, ADMIN, missing, now=now)
    with database.factory() as s:
        with pytest.raises(AuthenticationFailed) as info:
            api_tokens.authenticate(s, secret)
        assert info.value.fields["token"] == "reception" and "失効" in info.value.message_ja
        # The name stays taken after the revocation: api:reception means one token.
        with pytest.raises(AlreadyExists):
            api_tokens.create_token(s, ADMIN, name="reception", scopes=["verify_claims"], now=now)
        actions = s.execute(select(AuditRecord.action).order_by(AuditRecord.seq)).scalars().all()
        assert actions == ["api_token_created", "api_token_revoked"]


def test_staff_and_tokens_may_not_manage_tokens(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        staff = factories.account(s, kind=AccountKind.STAFF, now=now)
        for party in (
            Party(PartyKind.STAFF, staff.user_id, staff.id),
            Party.api_token("reception", list(Scope)),
        ):
            with pytest.raises(NotPermitted):
                api_tokens.create_token(s, party, name="x", scopes=["verify_claims"], now=now)
            with pytest.raises(NotPermitted):
                api_tokens.list_tokens(s, party)


def test_a_call_is_audited_with_the_tokens_name(database: Database, now: dt.datetime) -> None:
    with database.factory() as s, s.begin():
        api_tokens.create_token(s, ADMIN, name="reception", scopes=["verify_claims"], now=now)
        api_tokens.record_call(
            s,
            "reception",
            method="POST",
            path="/api/v1/verify",
            status=200,
            now=now + dt.timedelta(seconds=1),
            source_address="192.0.2.7",
            details={"verdict": "valid"},
        )
    with database.factory() as s:
        call = s.execute(select(AuditRecord).where(AuditRecord.action == "api_call")).scalar_one()
        assert (call.actor, call.actor_id, call.source_address) == (
            "system",
            "api:reception",
            "192.0.2.7",
        )
        assert call.details == {
            "method": "POST",
            "path": "/api/v1/verify",
            "status": 200,
            "verdict": "valid",
        }
        row = s.execute(select(ApiToken)).scalar_one()
        assert row.last_used_at == now + dt.timedelta(seconds=1)


@pytest.mark.parametrize(
    "change",
    [
        {"rate_limit": "lots"},
        {"rate_limit": ""},
        {"rate_limit_storage_uri": "redis"},
        {"max_request_bytes": 10},
        {"batch_max_items": 0},
    ],
)
def test_bad_api_settings_stop_the_start(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as info:
        check_api_settings(dataclasses.replace(ApiSettings(), **change))  # type: ignore[arg-type]
    assert "ra.api" in info.value.message and "ra.api" in info.value.message_ja


def test_the_api_settings_load_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///ra.sqlite"\ndata_dir = "data"\n{RA_REQUIRED}\n'
        '[ra.api]\nrate_limit = "10 per second"\nrate_limit_storage_uri = "memory://"\n'
        "batch_max_items = 20\n",
        encoding="utf-8",
    )
    settings = load_ra_settings(path)
    assert settings.api == ApiSettings(rate_limit="10 per second", batch_max_items=20)
    path.write_text(
        path.read_text(encoding="utf-8").replace("10 per second", "often"), encoding="utf-8"
    )
    with pytest.raises(ConfigError):
        load_ra_settings(path)
