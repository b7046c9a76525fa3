"""The RA's web application: the app factory, the extensions and the per-request plumbing.

:func:`create_app` builds a Flask application from the RA settings.  Its parts:

- blueprints ``auth`` (``/auth/…``: sign-in, TOTP, enrolment, sign-out, own password,
  language and date style), ``portal_auth`` (``/portal/sign-in``, the portal's TOTP step and
  forgotten password), the console's screens (``/console/…``, federation staff), the
  portal's (``/portal/…``, offices and agents, the first sign-in first) and the JSON API for
  the federation's other systems (``/api/v1``, :mod:`ra.web.api`);
- one SQLAlchemy session per request (:mod:`ra.web.db`), opened when a view first needs it;
- Flask-WTF (CSRF on every POST), Flask-Login (an account id and its session epoch, so a
  password change or a disable ends the other sessions), Flask-Babel (Japanese by default,
  English when chosen in the header; the choice is kept in the session);
- one error table (:mod:`ra.web.errors`), the security headers and the cookie flags
  (:mod:`ra.web.security`), Jinja filters for Japan time, dates and yen (:mod:`ra.web.text`).

Time comes from the injected ``now`` (a callable), so tests can move the clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from flask_babel import Babel
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from ra.party import MAX_ID
from ra.settings import RASettings
from ra.store.db import make_engine
from ra.store.db import session_factory as make_session_factory
from ra.store.vault import Vault, ensure_session_key, load_vault
from shomei.clock import utcnow
from shomei.errors import ConfigError

PACKAGE = Path(__file__).resolve().parent


class IdConverter(IntegerConverter):
    """``<int:...>`` in this application: an id, 1 to :data:`ra.party.MAX_ID` (the largest an
    INTEGER column holds).  A larger number matches no route (404): it must never reach the
    database, where PostgreSQL refuses it with an error (a 500) and SQLite finds nothing.
    Explicit bounds in a route still win."""

    def __init__(
        self,
        url_map: Map,
        fixed_digits: int = 0,
        min: int | None = None,  # werkzeug's argument names
        max: int | None = None,
        signed: bool = False,
    ) -> None:
        super().__init__(
            url_map,
            fixed_digits=fixed_digits,
            min=1 if min is None else min,
            max=MAX_ID if max is None else max,
            signed=signed,
        )


@dataclass(frozen=True)
class WebContext:
    """What views need beside the request: settings, the database, the vault and the clock."""

    settings: RASettings
    factory: sessionmaker[Session]
    vault: Vault
    now: Callable[[], dt.datetime]


def create_app(
    settings: RASettings,
    *,
    session_factory: sessionmaker[Session] | None = None,
    now: Callable[[], dt.datetime] | None = None,
) -> Flask:
    """The web application for ``settings`` (the database opened unless a factory is given)."""
    from ra.ca_link import publication
    from ra.web import (
        api,
        auth_views,
        console,
        db,
        errors,
        health,
        links,
        metrics,
        portal,
        portal_auth,
        publish,
        security,
        text,
    )

    key_file = settings.web.secret_key_file
    if key_file is None:
        raise ConfigError(
            "the RA settings name no web session key file ([ra.web] secret_key_file)",
            message_ja="RA 設定に Web のセッション鍵ファイル([ra.web] secret_key_file)が"
            "指定されていません",
        )
    app = Flask(
        __name__,
        template_folder=str(PACKAGE / "templates"),
        static_folder=str(PACKAGE / "static"),
    )
    # Before any route is added: every <int:...> of every route is an id the database can hold.
    app.url_map.converters["int"] = IdConverter
    app.config.update(
        SECRET_KEY=ensure_session_key(key_file),
        SESSION_COOKIE_NAME="shomei_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.web.behind_tls,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.web.behind_tls,
        MAX_CONTENT_LENGTH=settings.web.max_upload_bytes,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(minutes=settings.web.idle_timeout_minutes),
        BABEL_DEFAULT_LOCALE="ja",
        BABEL_DEFAULT_TIMEZONE="Asia/Tokyo",
        BABEL_TRANSLATION_DIRECTORIES=str(PACKAGE / "translations"),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session (idle timeout)
    )
    if settings.web.behind_tls:
        # The proxy in front terminates TLS: the client address (for the audit log) and the
        # scheme come from its X-Forwarded-For / X-Forwarded-Proto, one proxy deep.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)  # type: ignore[method-assign]
    factory = session_factory or make_session_factory(make_engine(settings.database_url))
    app.config["FEDERATION_NAME"] = settings.federation_name
    app.config["ISSUER_PHONE"] = settings.documents.issuer_phone  # the phone path's number
    app.extensions["shomei"] = WebContext(
        settings=settings,
        factory=factory,
        vault=load_vault(settings.secrets_key_file),
        now=now or utcnow,
    )
    security.init_app(app)  # first: the request id and the idle timeout come before CSRF
    csrf = CSRFProtect(app)
    Babel(app, locale_selector=text.locale)
    login = LoginManager(app)
    login.login_view = "auth.sign_in"
    login.login_message = ""  # the sign-in page says why by itself
    login.session_protection = None  # the epoch and the idle timeout do this job
    login.user_loader(security.load_user)
    db.init_app(app)
    text.init_app(app)
    links.init_app(app)
    errors.init_app(app)
    app.register_blueprint(auth_views.blueprint)
    app.register_blueprint(portal_auth.blueprint)
    app.register_blueprint(health.blueprint)
    metrics.init_app(app)
    publish.register(app, publication.paths(settings))
    api.init_app(app, csrf)
    for blueprint in [*console.blueprints(), *portal.blueprints()]:
        app.register_blueprint(blueprint)
    app.jinja_env.globals["console_menu"] = console.menu
    app.jinja_env.globals["portal_menu"] = portal.menu
    app.jinja_env.globals["first_sign_in_pending"] = portal.first_sign_in_pending
    return app


__all__ = ["WebContext", "create_app"]
