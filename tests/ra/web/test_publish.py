"""The CRL and the CA certificate at the paths of the URLs in the certificates (public)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from flask import Flask

from crl.reader import load_crl
from ra.ca_link import crls
from ra.settings import RASettings, WebSettings, load_certificate_profiles
from ra.store.vault import create_key_file
from ra.web import create_app
from shomei.errors import ConfigError
from tests.ra.ca_fixture import CaHome, ca_home_fixture, open_test_ca, ra_settings  # noqa: F401
from tests.ra.conftest import Database
from tests.ra.web.helpers import Clock
from tests.ra_profile import OFFICE_PROFILE

CRL_PATH = "/crl/issuing.crl"  # conf/profiles/office.toml
CA_PATH = "/ca/issuing.cer"


def _settings(ca_home: CaHome, database: Database, tmp_path: Path) -> RASettings:
    create_key_file(tmp_path / "ra-secrets.key")
    return dataclasses.replace(
        ra_settings(ca_home, database.url, tmp_path / "data", mode="offline"),
        secrets_key_file=tmp_path / "ra-secrets.key",
        web=WebSettings(secret_key_file=tmp_path / "ra-web.key"),
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
    )


@pytest.fixture
def served(ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock) -> Flask:
    return create_app(
        _settings(ca_home, database, tmp_path), session_factory=database.factory, now=clock
    )


def _register(ca_home: CaHome, database: Database, at: dt.datetime) -> bytes:
    from ca.crls import issue_crl

    with open_test_ca(ca_home) as ca:
        der = issue_crl(ca, now=at)
    with database.factory() as s, s.begin():
        crls.register_crl(s, der, ca_certificate=ca_home.ca_certificate, now=at)
    return der


def test_no_crl_yet_is_404_and_the_ca_certificate_is_served(served: Flask, ca_home: CaHome) -> None:
    client = served.test_client()
    assert client.get(CRL_PATH).status_code == 404
    answer = client.get(CA_PATH)
    assert answer.status_code == 200
    assert answer.mimetype == "application/pkix-cert"
    assert x509.load_der_x509_certificate(answer.data) == ca_home.ca_certificate
    assert "public" in answer.headers["Cache-Control"]
    assert "set-cookie" not in {k.lower() for k in answer.headers.keys()}


def test_the_newest_registered_crl_with_caching_headers(
    served: Flask, ca_home: CaHome, database: Database, clock: Clock
) -> None:
    first = _register(ca_home, database, clock.now - dt.timedelta(hours=2))
    second = _register(ca_home, database, clock.now - dt.timedelta(hours=1))
    client = served.test_client()
    answer = client.get(CRL_PATH)
    assert answer.status_code == 200 and answer.mimetype == "application/pkix-crl"
    assert answer.data == second != first
    loaded = load_crl(answer.data, issuer=ca_home.ca_certificate)  # signature checked
    assert answer.headers["ETag"] == f'"{hashlib.sha256(second).hexdigest()}"'
    assert answer.last_modified == loaded.this_update
    max_age = answer.cache_control.max_age
    assert max_age is not None and 0 < max_age <= 3600
    assert loaded.next_update is not None
    assert clock.now + dt.timedelta(seconds=max_age) <= loaded.next_update
    # Conditional GET and HEAD.
    again = client.get(CRL_PATH, headers={"If-None-Match": answer.headers["ETag"]})
    assert again.status_code == 304 and again.data == b""
    head = client.head(CRL_PATH)
    assert head.status_code == 200 and head.data == b""
    assert int(head.headers["Content-Length"]) == len(second)


def test_max_age_never_reaches_past_next_update(
    served: Flask, ca_home: CaHome, database: Database, clock: Clock
) -> None:
    _register(ca_home, database, clock.now)
    client = served.test_client()
    loaded = load_crl(client.get(CRL_PATH).data, issuer=ca_home.ca_certificate)
    assert loaded.next_update is not None
    clock.now = loaded.next_update - dt.timedelta(seconds=90)
    assert client.get(CRL_PATH).cache_control.max_age == 90
    clock.now = loaded.next_update + dt.timedelta(days=1)
    assert client.get(CRL_PATH).cache_control.max_age == 0


def test_a_profile_url_into_the_application_is_refused(
    ca_home: CaHome, database: Database, tmp_path: Path
) -> None:
    settings = _settings(ca_home, database, tmp_path)
    profile = settings.profiles[0]
    bad = dataclasses.replace(
        profile,
        extensions=dataclasses.replace(
            profile.extensions, crl_distribution_point="http://ra.example/console/x.crl"
        ),
    )
    with pytest.raises(ConfigError) as caught:
        create_app(dataclasses.replace(settings, profiles=(bad,)))
    assert "/console/x.crl" in caught.value.message and caught.value.message_ja
