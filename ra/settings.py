"""Settings of the RA, one typed, frozen object loaded and validated once at start-up.

``conf/ra.toml`` holds the embedded defaults (SQLite, inline CA, demo data); a deployment
copies it and changes what differs.  Unknown keys are errors that name the key.  Nothing else
in the RA reads environment variables: ``create_app(settings)``, the scheduler and the CLI
receive this object.

Every relative path in the file is relative to the file's folder, never to the folder a command
was started from: the ``Path`` settings (:mod:`shomei.config`) and the file of a
``sqlite:///`` database URL alike, so a command run from elsewhere opens the same database (and
never a new empty one).  The database URL is checked here, once: SQLite (``sqlite:///PATH``) or
PostgreSQL through psycopg 3 (``postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME``;
``postgresql://`` means the same); anything else is one clear line.  The certificate profiles
the RA checks applications against are files of their own (``ra.profile_files``), read here
too, so a missing or broken profile stops the RA at start-up with one line.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from contract.profile import Profile, load_profile
from shomei import config
from shomei.errors import ConfigError, ShomeiError

# The key that seals the secrets the RA must read back (TOTP secrets), beside the settings file
# unless ``secrets_key_file`` says otherwise; ``shomei ra init-db`` creates it (ra.store.vault).
DEFAULT_SECRETS_KEY = "ra-secrets.key"
# The key that signs the web application's session cookies, beside the settings file too.
DEFAULT_WEB_KEY = "ra-web.key"
URL_FORMS = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME"


@dataclass(frozen=True)
class LinkSettings:
    """The RA↔CA batch link (docs/product.md §10)."""

    # inline: batches are handed to the CA in this process (embedded default, tests);
    # offline: written to outbox/ and read back from inbox/, carried by hand.
    mode: Literal["inline", "offline"] = "inline"
    ca_home: Path | None = None  # inline mode: the CA home to sign with
    ca_share_files: list[Path] = field(default_factory=list)  # inline mode: M shares (demo)
    ca_pin_file: Path | None = None  # inline mode with a PKCS#11 CA key
    ca_certificate: Path | None = None  # the issuing CA certificate results are checked with
    link_key: Path | None = None  # the RA's link key (PEM PKCS#8, encrypted with the passphrase)
    link_key_passphrase_file: Path | None = None
    link_certificate: Path | None = None
    outbox: Path | None = None
    inbox: Path | None = None
    ra_name: str = "Shomei RA"
    # The console warns this many days before the current CRL's nextUpdate: the CA is offline
    # and signing the next CRL needs a ceremony booked with the key custodians.
    crl_warning_days: int = 7


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    sender: str = "shomei@localhost"
    message_id_domain: str = "shomei.localhost"
    starttls: bool = False
    username: str | None = None
    password_file: Path | None = None
    batch_size: int = 50


@dataclass(frozen=True)
class FeeSettings:
    office_fee_yen: int = 5000  # offset against the office's claim payments
    agent_fee_yen: int = 5000  # paid by bank transfer
    bank_account: str = "○○銀行 本店 普通 1234567 シヨウメイレンゴウカイ"


@dataclass(frozen=True)
class ScheduleSettings:
    dispatch_minutes: int = 10
    import_minutes: int = 10
    mail_minutes: int = 1
    rejection_minutes: int = 10
    daily_at: str = "02:00"  # Japan time: expiry notices, deletion, fee export, anchor
    expiry_notice_days: list[int] = field(default_factory=lambda: [60, 30, 7])
    retention: dt.timedelta = dt.timedelta(days=365)  # B6: revoked/expired kept this long
    lock_lease: dt.timedelta = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class WebSettings:
    """The web application (``ra.web``)."""

    # The key that signs session cookies; beside the settings file unless set here.  Created
    # (mode 0600) by ``shomei ra init-db`` or at the first start, never kept in the repository.
    secret_key_file: Path | None = None
    base_url: str = "http://127.0.0.1:8080"
    max_upload_bytes: int = 2 * 1024 * 1024
    # Behind a TLS reverse proxy: session cookies get the Secure flag.
    behind_tls: bool = False
    idle_timeout_minutes: int = 30  # a session unused this long is signed out
    date_style: Literal["western", "wareki"] = "western"  # 2026/12/01 or 令和8年12月1日
    # Demo only (`shomei demo serve`): the folder where the local SMTP sink keeps each mail as
    # a .eml file; when set, admins see them at /console/mailbox.  Never set in production.
    demo_mailbox: Path | None = None


@dataclass(frozen=True)
class ApiSettings:
    """The JSON API for the federation's other systems (``/api/v1``, ``ra.web.api``)."""

    # Calls allowed per API token (a limits string: "120 per minute", "10 per second", ...).
    rate_limit: str = "120 per minute"
    # Where the counters live: "memory://" keeps them in each worker process (so with N
    # workers a token gets up to N times the limit); a shared store such as
    # "redis://host:6379" counts across workers and hosts.
    rate_limit_storage_uri: str = "memory://"
    # The largest request body the API accepts (a claim and its signature, base64 in JSON).
    max_request_bytes: int = 16 * 1024 * 1024
    # The most claims one batch verification call may carry.
    batch_max_items: int = 100


@dataclass(frozen=True)
class LockoutPolicy:
    """After ``attempts`` failed sign-ins in a row an account is locked for ``minutes``."""

    attempts: int
    minutes: int


@dataclass(frozen=True)
class SignInSettings:
    """Lockout of the two sign-in pages (the e-claims offices' practice)."""

    console: LockoutPolicy = field(default_factory=lambda: LockoutPolicy(5, 30))
    portal: LockoutPolicy = field(default_factory=lambda: LockoutPolicy(3, 30))


@dataclass(frozen=True)
class DocumentSettings:
    """Printed documents (letters, quotes, invoices): the TrueType fonts they embed, and the
    federation's address as its letters print it (required before the console prints one).

    The default fonts are Debian's fonts-ipaexfont (see ``ra.documents.fonts``).
    """

    gothic_font: Path = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
    mincho_font: Path = Path("/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf")
    issuer_address: str = ""
    issuer_postal_code: str = ""
    issuer_phone: str = ""


@dataclass(frozen=True)
class RASettings:
    database_url: str
    data_dir: Path  # CRLs published, fee exports, batch copies, anchors
    # The certificate profile new applications are made under, one of ``profile_files``.
    profile: str = "office"
    # The RA's own copies of the CA's certificate profiles (docs/certificate-profile.md): what
    # it checks applications and CSRs against and shows to applicants.  Required in a settings
    # file; load_ra_settings reads them once, into ``profiles``.
    profile_files: list[Path] = field(default_factory=list)
    profiles: tuple[Profile, ...] = config.derived(())
    federation_name: str = "証明連合会"
    link: LinkSettings = field(default_factory=LinkSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    fees: FeeSettings = field(default_factory=FeeSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    web: WebSettings = field(default_factory=WebSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    signin: SignInSettings = field(default_factory=SignInSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    # PKCS#12 downloads: "aes" (AES-256-CBC + PBKDF2-SHA256) or "legacy" (3DES, old Windows).
    pkcs12_encryption: Literal["aes", "legacy"] = "aes"
    # The AES-256-GCM key of the secrets kept in the database (ra.store.vault); when the file does
    # not set it, ``ra-secrets.key`` beside the settings file.
    secrets_key_file: Path | None = None

    def certificate_profile(self, name: str | None = None) -> Profile:
        """The loaded profile ``name`` (by default ``profile``, the one new applications use).

        Raises :class:`ConfigError` when no such profile was loaded from ``profile_files``.
        """
        wanted = name or self.profile
        for profile in self.profiles:
            if profile.name == wanted:
                return profile
        loaded = ", ".join(p.name for p in self.profiles) or "none"
        raise ConfigError(
            f"the RA has no certificate profile {wanted!r} (ra.profile_files loaded: {loaded})",
            message_ja=f"RA に証明書プロファイル {wanted!r} がありません"
            f"(ra.profile_files で読み込んだもの: {loaded})",
            key="profile_files",
        )


def load_ra_settings(path: str | Path) -> RASettings:
    """Read an RA settings file (table ``[ra]``) strictly; relative paths follow the file."""
    path = Path(path)
    settings = config.load(path, RASettings, section="ra")
    base = path.parent.resolve()
    for name, policy in (("console", settings.signin.console), ("portal", settings.signin.portal)):
        if policy.attempts < 1 or policy.minutes < 1:
            raise ConfigError(
                f"{path}: ra.signin.{name}: attempts and minutes must be at least 1",
                message_ja=f"{path}: ra.signin.{name}: attempts と minutes は 1 以上です",
                key=f"signin.{name}",
            )
    check_api_settings(settings.api, where=str(path))
    if settings.web.idle_timeout_minutes < 1:
        raise ConfigError(
            f"{path}: ra.web.idle_timeout_minutes must be at least 1",
            message_ja=f"{path}: ra.web.idle_timeout_minutes は 1 以上です",
            key="web.idle_timeout_minutes",
        )
    return dataclasses.replace(
        settings,
        database_url=resolve_database_url(settings.database_url, base=base, where=str(path)),
        secrets_key_file=settings.secrets_key_file or base / DEFAULT_SECRETS_KEY,
        profiles=load_certificate_profiles(
            settings.profile_files, default=settings.profile, where=str(path)
        ),
        web=dataclasses.replace(
            settings.web, secret_key_file=settings.web.secret_key_file or base / DEFAULT_WEB_KEY
        ),
    )


def check_api_settings(api: ApiSettings, *, where: str = "settings") -> None:
    """Refuse API settings the web application could not run with (one line naming the key)."""
    from limits import parse_many

    try:
        ok = bool(parse_many(api.rate_limit))
    except ValueError:
        ok = False
    if not ok:
        raise ConfigError(
            f"{where}: ra.api.rate_limit = {api.rate_limit!r}: not a rate such as '120 per minute'",
            message_ja=f"{where}: ra.api.rate_limit = {api.rate_limit!r}: "
            "'120 per minute' のような回数の指定ではありません",
            key="api.rate_limit",
        )
    if "://" not in api.rate_limit_storage_uri:
        raise ConfigError(
            f"{where}: ra.api.rate_limit_storage_uri must be a storage URI such as "
            "'memory://' or 'redis://host:6379'",
            message_ja=f"{where}: ra.api.rate_limit_storage_uri には 'memory://' や "
            "'redis://host:6379' のような URI を書いてください",
            key="api.rate_limit_storage_uri",
        )
    if api.max_request_bytes < 1024 or api.batch_max_items < 1:
        raise ConfigError(
            f"{where}: ra.api.max_request_bytes must be at least 1024 and "
            "ra.api.batch_max_items at least 1",
            message_ja=f"{where}: ra.api.max_request_bytes は 1024 以上、"
            "ra.api.batch_max_items は 1 以上です",
            key="api",
        )


def _bad_profiles(where: str, key: str, problem: str, problem_ja: str) -> ConfigError:
    return ConfigError(
        f"{where}: ra.{key}: {problem}", message_ja=f"{where}: ra.{key}: {problem_ja}", key=key
    )


def load_certificate_profiles(
    files: list[Path], *, default: str, where: str = "settings"
) -> tuple[Profile, ...]:
    """Load the RA's certificate profiles strictly, once, at start-up.

    Every file must exist and be a valid profile (:func:`contract.profile.load_profile`), no two
    may have the same name, and ``default`` (``ra.profile``) must be one of them.  Any problem
    is one :class:`ConfigError` that names the setting and the file.
    """
    if not files:
        raise _bad_profiles(
            where,
            "profile_files",
            "required: list the certificate profile files the RA checks applications against "
            "(copies of the CA's profiles/*.toml)",
            "必須です。RA が申請を照合する証明書プロファイルのファイル(CA の profiles/*.toml の"
            "写し)を指定してください",
        )
    profiles: dict[str, Profile] = {}
    for i, file in enumerate(files):
        key = f"profile_files[{i}]"
        if not file.exists():
            raise _bad_profiles(
                where,
                key,
                f"certificate profile not found: {file}",
                f"証明書プロファイルが見つかりません: {file}",
            )
        try:
            profile = load_profile(file)
        except ShomeiError as exc:
            raise _bad_profiles(where, key, exc.message, exc.message_ja) from exc
        if profile.name in profiles:
            raise _bad_profiles(
                where,
                key,
                f"{file} defines profile {profile.name!r} a second time",
                f"{file} はプロファイル {profile.name!r} を重ねて定義しています",
            )
        profiles[profile.name] = profile
    if default not in profiles:
        raise _bad_profiles(
            where,
            "profile",
            f"{default!r} is not among the profiles of ra.profile_files ({', '.join(profiles)})",
            f"{default!r} は ra.profile_files のプロファイル({', '.join(profiles)})にありません",
        )
    return tuple(profiles.values())


def _bad_url(where: str, problem: str, problem_ja: str) -> ConfigError:
    return ConfigError(
        f"{where}: ra.database_url: {problem} (use {URL_FORMS})",
        message_ja=f"{where}: ra.database_url: {problem_ja}({URL_FORMS} の形式で書いてください)",
        key="database_url",
    )


def resolve_database_url(value: str, *, base: Path, where: str = "settings") -> str:
    """``value`` checked and made absolute: a relative SQLite file is relative to ``base``.

    Raises :class:`ConfigError` for a URL that does not parse, a database other than SQLite or
    PostgreSQL (psycopg 3), or an SQLite URL without a file.  The message never repeats the
    URL, which may hold a password.
    """
    try:
        url = make_url(value)
    except (ArgumentError, ValueError) as exc:
        raise _bad_url(where, "not a database URL", "データベース URL として読めません") from exc
    backend, _, driver = url.drivername.partition("+")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return _sqlite_url(url, base=base, where=where)
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        # psycopg 3 is the one PostgreSQL driver Shomei installs; a bare postgresql:// would
        # make SQLAlchemy look for psycopg2.
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    shown = backend if not driver else f"{backend}+{driver}"
    raise _bad_url(
        where,
        f"database {shown!r} is not supported",
        f"データベース {shown!r} には対応していません",
    )


def _sqlite_url(url: URL, *, base: Path, where: str) -> str:
    name = url.database or ""
    if not name or name == ":memory:" or name.startswith("file:"):
        raise _bad_url(
            where,
            "an SQLite URL must name a file",
            "SQLite の URL にはファイルを指定してください",
        )
    if url.query or url.host or url.username or url.password or url.port:
        raise _bad_url(
            where,
            "an SQLite URL takes only a file path",
            "SQLite の URL にはファイルのパスだけを書いてください",
        )
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = base / path
    return URL.create("sqlite", database=str(path.resolve())).render_as_string()
