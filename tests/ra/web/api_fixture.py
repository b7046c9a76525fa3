"""The JSON API's tests: an RA whose link is a real CA home, and tokens made by the service.

:func:`api_app` builds the web application around the session's CA home
(tests/ra/ca_fixture.py, inline mode: a dispatch issues and revokes for real, and registers
the CA's CRLs); :func:`make_token` makes a token as an admin would in the console and returns
the token itself (shown once).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from flask import Flask

from ra.party import Party, Scope
from ra.people import api_tokens
from ra.settings import ApiSettings, RASettings, WebSettings, load_certificate_profiles
from ra.store.vault import create_key_file
from ra.web import create_app
from tests.ra.ca_fixture import CaHome, ra_settings
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock
from tests.ra_profile import OFFICE_PROFILE

API = "/api/v1"
ALL_SCOPES = tuple(Scope)


def api_settings(
    ca: CaHome, database: Database, folder: Path, *, api: ApiSettings | None = None
) -> RASettings:
    key = folder / "ra-secrets.key"
    if not key.exists():
        create_key_file(key)
    return dataclasses.replace(
        ra_settings(ca, database.url, folder / "data"),
        secrets_key_file=key,
        web=WebSettings(secret_key_file=folder / "ra-web.key"),
        api=api or ApiSettings(),
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
    )


def api_app(
    ca: CaHome, database: Database, folder: Path, clock: Clock, *, api: ApiSettings | None = None
) -> Flask:
    settings = api_settings(ca, database, folder, api=api)
    return create_app(settings, session_factory=database.factory, now=clock)


def make_token(
    database: Database,
    scopes: Iterable[Scope] = ALL_SCOPES,
    *,
    name: str = "reception",
    now: dt.datetime | None = None,
) -> str:
    """A new token with ``scopes``, made by the operator; the token itself."""
    with database.factory() as s, s.begin():
        made = api_tokens.create_token(
            s,
            Party.operator("test"),
            name=name,
            scopes=list(scopes),
            now=now or dt.datetime.now(dt.UTC),
        )
        return made.secret


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
