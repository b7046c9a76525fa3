"""Settings of the RA, one typed, frozen object loaded and validated once at start-up.

``conf/ra.toml`` holds the embedded defaults (SQLite, inline CA, demo data); a deployment
copies it and changes what differs.  Unknown keys are errors that name the key.  Nothing else
in the RA reads environment variables: ``create_app(settings)``, the scheduler and the CLI
receive this object.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from shomei import config


@dataclass(frozen=True)
class LinkSettings:
    """The RA↔CA batch link (SPEC §5)."""

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
    secret_key_file: Path | None = None
    base_url: str = "http://127.0.0.1:8080"
    max_upload_bytes: int = 2 * 1024 * 1024
    lockout_attempts: int = 5
    lockout_minutes: int = 30


@dataclass(frozen=True)
class DocumentSettings:
    """Printed documents (letters, quotes, invoices): the TrueType fonts they embed.

    The defaults are Debian's fonts-ipaexfont (see ``ra.documents.fonts``).
    """

    gothic_font: Path = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
    mincho_font: Path = Path("/usr/share/fonts/opentype/ipaexfont-mincho/ipaexm.ttf")


@dataclass(frozen=True)
class RASettings:
    database_url: str
    data_dir: Path  # CRLs published, fee exports, batch copies, anchors
    profile: str = "office"
    federation_name: str = "証明連合会"
    link: LinkSettings = field(default_factory=LinkSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    fees: FeeSettings = field(default_factory=FeeSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    web: WebSettings = field(default_factory=WebSettings)
    documents: DocumentSettings = field(default_factory=DocumentSettings)
    # PKCS#12 downloads: "aes" (AES-256-CBC + PBKDF2-SHA256) or "legacy" (3DES, old Windows).
    pkcs12_encryption: Literal["aes", "legacy"] = "aes"


def load_ra_settings(path: str | Path) -> RASettings:
    """Read an RA settings file (table ``[ra]``) strictly."""
    return config.load(path, RASettings, section="ra")
