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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from contract.profile import Profile, load_profile
from shomei import config
from shomei.errors import ConfigError, ShomeiError
from shomei.jatext import is_bank_kana_name, looks_like_placeholder

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
    # The CA certificates above the issuing CA (the root), PEM, which an office's download
    # carries with its certificate; in inline mode the CA home's chain when left empty.
    ca_chain: list[Path] = field(default_factory=list)
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


# What an office agrees to when it applies (docs/product.md §6): shown on the confirmation
# screen of A1 and recorded with the application.  ``[ra.fees] offset_consent`` replaces it.
DEFAULT_OFFSET_CONSENT = (
    "本申請により発行される電子証明書の発行手数料を、連合会が当事業所に支払う請求の支払額から"
    "差し引いて(相殺して)精算することに同意します。申請が却下された場合、手数料は差し引かれません。"
)


def _fee_problem(key: str, problem: str, problem_ja: str) -> ConfigError:
    """A bad fee setting; :func:`load_ra_settings` adds the file's name in front."""
    return ConfigError(f"ra.{key}: {problem}", message_ja=f"ra.{key}: {problem_ja}", key=key)


@dataclass(frozen=True)
class BankAccountSettings:
    """The account agents pay the fee into, printed on every invoice (A3).  All required.

    There is no default and no sample: a settings file without it does not start, and blank
    values or template marks such as ``○○銀行`` are refused, so no invoice ever prints a
    made-up account.  (:class:`ra.documents.BankAccount` checks the same rules again when an
    invoice is printed.)
    """

    bank: str  # 金融機関名, e.g. "みずほ銀行"
    branch: str  # 支店名, e.g. "霞が関支店"
    account_type: Literal["普通", "当座"]
    number: str  # 口座番号, seven digits
    holder_kana: str  # 口座名義 in katakana, as the bank registers it

    def __post_init__(self) -> None:
        for name, label in (
            ("bank", "金融機関名"),
            ("branch", "支店名"),
            ("holder_kana", "口座名義"),
        ):
            value = getattr(self, name)
            key = f"fees.bank_account.{name}"
            if not value.strip():
                raise _fee_problem(key, "must not be empty", f"{label}が空です")
            if looks_like_placeholder(value):
                raise _fee_problem(
                    key,
                    f"{value!r} is a template's fill-in mark, not a real account",
                    f"{label} {value!r} は記入例のままです。実際の振込先を設定してください",
                )
        if not re.fullmatch(r"[0-9]{7}", self.number):
            raise _fee_problem(
                "fees.bank_account.number",
                f"{self.number!r} is not a seven-digit account number",
                f"口座番号 {self.number!r} は 7 桁の数字ではありません",
            )
        if not is_bank_kana_name(self.holder_kana):
            raise _fee_problem(
                "fees.bank_account.holder_kana",
                "must be written in katakana, as the bank registers the account name",
                "口座名義は銀行に登録されたとおりカタカナで書いてください",
            )


@dataclass(frozen=True)
class FeeSettings:
    """The certificate fee and how it is paid (docs/product.md §6).  Required: no defaults.

    An office's fee is offset against the federation's payments for its claims; an agent pays
    by bank transfer into ``bank_account``.  ``tax`` is printed next to every amount on
    quotes and invoices: ``"exempt"`` (非課税) or ``"included"`` (税込).
    """

    office_fee_yen: int
    agent_fee_yen: int
    tax: Literal["exempt", "included"]
    bank_account: BankAccountSettings
    offset_consent: str = DEFAULT_OFFSET_CONSENT  # the text an office agrees to (A1)
    quote_valid_days: int = 30  # a quote (A2) holds this many days
    invoice_due_days: int = 30  # an invoice (A3) is due this many days after it is printed

    def __post_init__(self) -> None:
        for key in ("office_fee_yen", "agent_fee_yen"):
            if getattr(self, key) < 0:
                raise _fee_problem(
                    f"fees.{key}", "must not be negative", "0 以上の金額(円)にしてください"
                )
        for key in ("quote_valid_days", "invoice_due_days"):
            if getattr(self, key) < 1:
                raise _fee_problem(f"fees.{key}", "must be at least 1", "1 以上にしてください")
        if not self.offset_consent.strip():
            raise _fee_problem(
                "fees.offset_consent",
                "must not be empty (leave it out for the default text)",
                "空にできません(既定の文を使うときは書かないでください)",
            )


# What to set, for the one line a settings file without its fees stops with.
_FEE_HINTS: dict[str, tuple[str, str]] = {
    "fees": (
        "the certificate fees (office_fee_yen, agent_fee_yen, tax) and, in "
        "[ra.fees.bank_account], the account agents pay into (bank, branch, account_type, "
        "number, holder_kana); see docs/ra-operator-guide.md",
        "証明書の手数料(office_fee_yen、agent_fee_yen、tax)と、[ra.fees.bank_account] に代理人の"
        "振込先口座(bank、branch、account_type、number、holder_kana)を設定してください"
        "(docs/ra-operator-guide.md)",
    ),
    "fees.office_fee_yen": ("the fee in yen for an office's certificate", "事業所の手数料(円)"),
    "fees.agent_fee_yen": ("the fee in yen for an agent's application", "代理人の手数料(円)"),
    "fees.tax": (
        'how quotes and invoices print the tax: "exempt" (非課税) or "included" (税込)',
        '見積書・請求書の消費税の表示: "exempt"(非課税)か "included"(税込)',
    ),
    "fees.bank_account": (
        "the account agents pay the fee into, printed on invoices: [ra.fees.bank_account] "
        "with bank, branch, account_type, number and holder_kana",
        "請求書に印刷する振込先口座: [ra.fees.bank_account] に bank、branch、account_type、"
        "number、holder_kana を設定してください",
    ),
    "fees.bank_account.bank": ("the bank's name (金融機関名)", "金融機関名"),
    "fees.bank_account.branch": ("the branch's name (支店名)", "支店名"),
    "fees.bank_account.account_type": ('"普通" or "当座"', '"普通" か "当座"'),
    "fees.bank_account.number": ("the seven-digit account number", "7 桁の口座番号"),
    "fees.bank_account.holder_kana": (
        "the account name in katakana (口座名義)",
        "カタカナの口座名義",
    ),
}


@dataclass(frozen=True)
class ScheduleSettings:
    # Minutes between runs; fractions are allowed down to 0.05 (3 s) for fail-over drills and
    # their tests, a production RA keeps whole minutes.
    dispatch_minutes: float = 10
    import_minutes: float = 10
    mail_minutes: float = 1
    rejection_minutes: float = 10
    daily_at: str = "02:00"  # Japan time: expiry notices, deletion, fee export, anchor
    expiry_notice_days: list[int] = field(default_factory=lambda: [60, 30, 7])
    retention: dt.timedelta = dt.timedelta(days=365)  # B6: revoked/expired kept this long
    lock_lease: dt.timedelta = dt.timedelta(minutes=2)
    # How often the scheduler looks for CSV imports of accounts queued in the console.
    import_poll_seconds: int = 5


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


# The terms of use an office or agent accepts at its first sign-in to the portal, unless the
# settings give their own (``[ra.signin] terms_of_use``).
DEFAULT_TERMS_OF_USE = "\n".join(
    [
        "第1条(目的)",
        "この規約は、連合会が提供する電子証明書ポータル(以下「ポータル」)を事業所・代理人の皆さまが"
        "利用するときの約束ごとを定めます。",
        "",
        "第2条(ユーザーIDとパスワード)",
        "1. ユーザーID、ログイン用パスワード、証明書発行用パスワードは、利用する事業所"
        "(または代理人)が責任をもって管理してください。他の人に教えたり、見える所に貼ったりしないでください。",
        "2. パスワードが他の人に知られたおそれがあるときは、すぐにパスワードを変更し、連合会に"
        "連絡してください。",
        "",
        "第3条(メールアドレス)",
        "登録したメールアドレスには、証明書の発行・有効期限のお知らせや、パスワード再設定の確認コードなど、"
        "大切なお知らせが届きます。受け取れるアドレスを登録し、変わったときは変更してください。",
        "",
        "第4条(証明書の利用)",
        "発行された証明書は、連合会への請求ファイルへの電子署名にのみ使ってください。廃業したとき、"
        "パソコンを紛失したときなど、証明書が不正に使われるおそれがあるときは、すぐに連合会に"
        "連絡してください。",
        "",
        "第5条(記録)",
        "連合会は、サインインや申請などの操作を記録し、不正な利用の調査のために使うことがあります。",
        "",
        "第6条(変更)",
        "連合会はこの規約を変更することがあります。変更したときは、次のサインインのときに改めて"
        "同意をお願いします。",
    ]
)


@dataclass(frozen=True)
class SignInSettings:
    """Sign-in of the two pages: lockouts (the e-claims offices' practice), the portal's TOTP
    and the terms of use accepted at an office's first sign-in (docs/office-guide.md)."""

    console: LockoutPolicy = field(default_factory=lambda: LockoutPolicy(5, 30))
    portal: LockoutPolicy = field(default_factory=lambda: LockoutPolicy(3, 30))
    # Offices and agents enrol an authenticator app at their first sign-in and enter its code
    # at every sign-in (as staff always do).
    portal_totp: bool = False
    # The terms of use shown at the first sign-in, and their version: a new version is
    # accepted again at the next sign-in.
    terms_of_use: str = DEFAULT_TERMS_OF_USE
    terms_version: str = "1"


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
    # The fees and the bank account of invoices: required, no defaults ([ra.fees]).
    fees: FeeSettings
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
    try:
        settings = config.load(path, RASettings, section="ra")
    except ConfigError as exc:
        raise _explained(exc, path) from exc
    base = path.parent.resolve()
    for name, policy in (("console", settings.signin.console), ("portal", settings.signin.portal)):
        if policy.attempts < 1 or policy.minutes < 1:
            raise ConfigError(
                f"{path}: ra.signin.{name}: attempts and minutes must be at least 1",
                message_ja=f"{path}: ra.signin.{name}: attempts と minutes は 1 以上です",
                key=f"signin.{name}",
            )
    if not settings.signin.terms_of_use.strip() or not settings.signin.terms_version.strip():
        raise ConfigError(
            f"{path}: ra.signin.terms_of_use and terms_version must not be empty",
            message_ja=f"{path}: ra.signin.terms_of_use と terms_version は空にできません",
            key="signin.terms_of_use",
        )
    if len(settings.signin.terms_version) > 32:
        raise ConfigError(
            f"{path}: ra.signin.terms_version has at most 32 characters",
            message_ja=f"{path}: ra.signin.terms_version は 32 文字以内です",
            key="signin.terms_version",
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


def _explained(exc: ConfigError, path: Path) -> ConfigError:
    """``exc`` with the file named and, for a missing fee setting, what to set."""
    key = str(exc.fields.get("key", ""))
    hint = _FEE_HINTS.get(key)
    if hint is not None and exc.message.endswith("required key is missing"):
        return ConfigError(
            f"{path}: ra.{key} is required: {hint[0]}",
            message_ja=f"{path}: ra.{key} は必須です: {hint[1]}",
            key=key,
        )
    if exc.message.startswith("ra.fees"):  # raised by FeeSettings itself, without the file
        return ConfigError(
            f"{path}: {exc.message}", message_ja=f"{path}: {exc.message_ja}", key=key
        )
    return exc


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
