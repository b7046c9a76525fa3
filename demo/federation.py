"""The demonstration federation: a whole lifecycle through the real code paths, in a folder.

What a newcomer runs to see the product work (``make run``, ``shomei demo DIR``), and what
tests and outside checks use.  A key ceremony from the example config (demo custodian shares
in files), an RA on SQLite with the CA inline, demo accounts, and then the lifecycle as people
would drive it: offices apply, an agent applies for an office and pays, staff register the issue
requests and the payment and reject one application, the dispatch job sends the
batch to the CA, the offices download their PKCS#12 and sign claims, staff register a
revocation, and the next dispatch brings back the CRL that moves it to 失効済み.

Fixed file names (PEM unless said): ``root.pem``, ``issuing.pem``, ``office.pem``,
``revoked.pem``, ``issuing.crl`` (DER), ``office.p12`` + ``office.p12.password``,
``claim.txt`` + ``claim.txt.p7s``, ``revoked-claim.txt`` + ``.p7s``, ``ra.sqlite``,
``ra.toml`` and ``demo-accounts.txt`` (the demo logins).  Files that hold a password or a key
(``demo-accounts.txt``, the PKCS#12 files and their passwords, the RA database and its secrets
key, the custodian shares) are readable by their owner only (0600).
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyotp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from ca import ceremony
from ca.ceremony_config import load_ceremony
from ca.home import toml_string
from ca.trust import pin_ra_certificate
from demo.population import populate
from ra.ca_link.identity import create_link_identity
from ra.lifecycle import LABELS_JA, Status
from ra.party import Party, party_of
from ra.people.accounts import AccountInput, NewAccount, add_console_user, add_portal_account
from ra.people.auth import confirm_enrolment
from ra.settings import load_ra_settings
from ra.store.db import make_engine, session_factory, transaction
from ra.store.initdb import init_database
from ra.store.models import Account, AccountKind, Application, Certificate, CrlRecord
from ra.tasks import jobs
from ra.workflow import applications, downloads, revocations
from shomei.clock import utcnow
from shomei.errors import AlreadyExists, Refused
from shomei.files import write_new
from signer.claims import sign_claim
from signer.credentials import load_pkcs12

Echo = Callable[[str], None]
MARKER = ".shomei-demo"
SECRET = 0o600  # files holding a password or a private key
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "conf" / "ceremonies" / "example.toml"
PROFILES = REPO / "conf" / "profiles"

OFFICES = {
    "office": ("1310000001", "証明ケアサービス 中央事業所"),
    "revoked": ("1310000002", "証明ケアサービス 廃止事業所"),
}
AGENT = ("9910000001", "株式会社デモ請求ソフト")
REJECTED = ("1310000003", "証明ケアサービス 誤登録事業所")
# An office whose certificate its software vendor (the agent) applies for (docs/product.md §1).
BY_AGENT = ("1310000004", "証明ケアサービス 代理申請事業所")
# The names in kana the first sign-in asks for (docs/office-guide.md §2).
KANA = {
    "office": "ショウメイケアサービス チュウオウジギョウショ",
    "revoked": "ショウメイケアサービス ハイシジギョウショ",
    "rejected": "ショウメイケアサービス ゴトウロクジギョウショ",
    "by-agent": "ショウメイケアサービス ダイリシンセイジギョウショ",
    "agent": "カブシキガイシャデモセイキュウソフト",
}
CLAIM = (
    "請求年月,事業所番号,受給者証番号,サービス種類,単位数\n"
    "202610,{number},0000012345,居宅介護,1200\n"
)


@dataclass
class DemoResult:
    folder: Path
    files: dict[str, str]


def _fresh_folder(folder: Path, fresh: bool) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not (fresh and (folder / MARKER).is_file()):
            raise AlreadyExists(
                f"{folder} is not empty; use an empty folder (or --fresh on an earlier demo)",
                message_ja=f"{folder} は空ではありません(空のフォルダを指定してください)",
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("made by `shomei demo`; --fresh may delete this folder\n")


def _ceremony_file(folder: Path) -> Path:
    text = EXAMPLE.read_text(encoding="utf-8")
    replacements = {
        "name": "demo-ceremony",
        "ca_home": "../ca-home",
        "shares_dir": "../custodians",
        "profiles": str(PROFILES),
        "operator": "demo operator",
    }
    for key, value in replacements.items():
        text = _set_line(text, key, f"{key} = {toml_string(value)}")
    target = folder / "conf" / "ceremony.toml"
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")
    return target


def _set_line(text: str, key: str, line: str) -> str:
    # A function as the replacement, so a backslash in a path is never read as an escape.
    return re.sub(rf"(?m)^{key}\s*=.*$", lambda _match: line, text, count=1)


def _ra_settings_file(folder: Path) -> Path:
    # Demo only: the CA is inline and two custodians' share files open its key unattended.
    text = """# RA settings of the demonstration federation (made by `shomei demo`).
# Relative paths are relative to this file, so the folder may be moved.
[ra]
database_url = "sqlite:///ra.sqlite"
data_dir = "ra-data"
federation_name = "Shomei Demo Federation"
# The RA's own copy of the CA's certificate profile.
profile = "office"
profile_files = ["ra-profiles/office.toml"]

[ra.link]
mode = "inline"
ra_name = "Shomei Demo RA"
ca_home = "ca-home"
ca_share_files = ["custodians/issuing-share-1-of-3.txt", "custodians/issuing-share-3-of-3.txt"]
ca_certificate = "ca-home/issuing/issuing.pem"
link_key = "ra-link/link.key"
link_key_passphrase_file = "ra-link/link.passphrase"
link_certificate = "ra-link/link.pem"

[ra.mail]
# `shomei demo serve` starts a local SMTP sink on a free port and writes that port here.
smtp_host = "127.0.0.1"
smtp_port = 8025
sender = "shomei@federation.example"
message_id_domain = "federation.example"

[ra.fees]
office_fee_yen = 5000
agent_fee_yen = 5000
tax = "exempt"

# A demo account that exists at no bank: plainly marked, so no one pays into it.
[ra.fees.bank_account]
bank = "デモ銀行(架空・振込不可)"
branch = "デモ支店"
account_type = "普通"
number = "0000000"
holder_kana = "デモ シヨウメイレンゴウカイ"

[ra.documents]
# The sender printed on letters, quotes and invoices (a demo address).
issuer_postal_code = "100-0000"
issuer_address = "東京都千代田区デモ町1-1-1(デモ用の住所)"
issuer_phone = "03-0000-0000"

[ra.schedule]
# Short intervals, so that apply → approve → dispatch → issued mail can be watched.
dispatch_minutes = 1
import_minutes = 1
rejection_minutes = 1
mail_minutes = 1

[ra.web]
base_url = "http://127.0.0.1:8000"
# The SMTP sink's folder: the console shows its mails at /console/mailbox (demo only).
demo_mailbox = "mailbox"
"""
    path = folder / "ra.toml"
    path.write_text(text, encoding="utf-8")
    # The RA keeps its own copy of the CA's profiles (as the ceremony wrote them, with the
    # federation's URLs), as an RA on its own machine would: the RA answers those URLs.
    profiles = folder / "ra-profiles"
    profiles.mkdir()
    shutil.copyfile(folder / "ca-home" / "profiles" / "office.toml", profiles / "office.toml")
    return path


def build_demo(
    folder: Path, *, fresh: bool = False, echo: Echo = print, crowd: bool = True
) -> DemoResult:
    """Build the demonstration federation in ``folder`` and return what was made.

    ``crowd=False`` leaves out the few hundred applications of :mod:`demo.population` (for
    tests that need only the lifecycle files, quickly).
    """
    folder = folder.resolve()
    _fresh_folder(folder, fresh)
    now = utcnow()

    echo("1. key ceremony: root CA, issuing CA, their CRLs (demo custodian shares)")
    cfg = load_ceremony(_ceremony_file(folder))
    ceremony.run(cfg, config_path=folder / "conf" / "ceremony.toml", now=now, echo=echo)
    home = cfg.ceremony.ca_home

    echo("2. the RA: database, link identity (pinned by the CA), demo accounts")
    link_ids, link_files = create_link_identity("Shomei Demo RA link", folder / "ra-link", now=now)
    for src, name in (
        (link_files.key, "link.key"),
        (link_files.passphrase, "link.passphrase"),
        (link_files.certificate, "link.pem"),
    ):
        if src.name != name:
            src.rename(src.with_name(name))
    pin_ra_certificate(home, link_ids.certificate.public_bytes(serialization.Encoding.PEM))
    settings = load_ra_settings(_ra_settings_file(folder))
    vault = init_database(settings).vault
    engine = make_engine(settings.database_url)
    factory = session_factory(engine)
    profile = settings.certificate_profile()
    operator = Party.operator("demo")
    with transaction(factory) as session:
        admin = add_console_user(
            session,
            operator,
            kind=AccountKind.ADMIN,
            name="デモ管理者",
            email="admin@federation.example",
            now=now,
            vault=vault,
        )
        staff = add_console_user(
            session,
            operator,
            kind=AccountKind.STAFF,
            name="デモ職員",
            email="staff@federation.example",
            now=now,
            vault=vault,
        )
        portal: dict[str, NewAccount] = {}
        registered = {**OFFICES, "rejected": REJECTED, "by-agent": BY_AGENT, "agent": AGENT}
        for label, (number, name) in registered.items():
            kind = AccountKind.AGENT if label == "agent" else AccountKind.OFFICE
            portal[label] = add_portal_account(
                session,
                operator,
                AccountInput(
                    kind=kind,
                    number=number,
                    name=name,
                    address="東京都千代田区霞が関1-2-3",
                    phone="03-0000-0000",
                    email=f"{label}@office.example",
                    representative_number="0000000000",
                    name_kana=KANA[label],
                ),
                now=now,
            )
    staff_id, admin_id = staff.account.id, admin.account.id
    # The demo's staff enrol their authenticator at once (a code from the secret, as an app
    # would make it), so the printed otpauth URIs sign in without the enrolment page.
    with transaction(factory) as session:
        for user in (admin, staff):
            assert user.totp_secret is not None
            confirm_enrolment(
                session,
                user.account.id,
                pyotp.TOTP(user.totp_secret).at(now),
                vault=vault,
                settings=settings.signin,
                now=now,
            )

    echo(
        "3. applications: three offices and an agent apply; staff approve, register the "
        "payment, reject one"
    )
    app_ids: dict[str, int] = {}
    with transaction(factory) as session:
        for label in ("office", "revoked", "rejected", "agent"):
            app = applications.apply(
                session,
                _party(session, portal[label].account.id),
                settings=settings,
                profile=profile,
                now=now,
                issuance_password=portal[label].issuance_password,
                consent_fee_offset=label != "agent",
                for_office=BY_AGENT[0] if label == "agent" else None,
            )
            app_ids[label] = app.id
        clerk = _party(session, staff_id)
        for label in ("office", "revoked"):
            applications.register_issue_request(session, clerk, app_ids[label], now=now)
        applications.register_payment(
            session,
            clerk,
            app_ids["agent"],
            paid_on=now.date(),
            amount_yen=settings.fees.agent_fee_yen,
            payer_name=portal["agent"].account.user_id,
            now=now,
        )
        applications.reject(
            session,
            clerk,
            app_ids["rejected"],
            reason="事業所の登録内容に誤りがあるため(訂正のうえ再申請してください)",
            now=now,
        )

    echo("4. jobs: dispatch the issue requests to the CA (inline), import the certificates")
    jobs.JOBS["dispatch"](factory, settings, now)
    jobs.JOBS["process-rejections"](factory, settings, now)

    echo("5. offices download their PKCS#12 (issuance password) and sign claims")
    chain = [
        x509.load_pem_x509_certificate((home / name).read_bytes())
        for name in ("issuing/issuing.pem", "root/root.pem")
    ]
    with transaction(factory) as session:
        for label in OFFICES:
            password = portal[label].issuance_password
            assert password is not None
            p12 = downloads.download_pkcs12(
                session,
                _party(session, portal[label].account.id),
                app_ids[label],
                issuance_password=password,
                chain=chain,
                now=now,
                encryption=settings.pkcs12_encryption,
            )
            write_new(folder / f"{label}.p12", p12, mode=SECRET)
            write_new(folder / f"{label}.p12.password", (password + "\n").encode(), mode=SECRET)
            claim_name = "claim.txt" if label == "office" else "revoked-claim.txt"
            claim = CLAIM.format(number=OFFICES[label][0]).encode()
            (folder / claim_name).write_bytes(claim)
            signature = sign_claim(claim, credentials=load_pkcs12(p12, password), signing_time=now)
            (folder / f"{claim_name}.p7s").write_bytes(signature)

    echo("6. revocation: one office closed; staff register it, the job sends it, the CRL comes")
    later = now + dt.timedelta(seconds=1)
    with transaction(factory) as session:
        revocations.register_revocation(
            session,
            _party(session, staff_id),
            app_ids["revoked"],
            reason="cessationOfOperation",
            requested_by="office",
            requested_at=later,
            now=later,
        )
    jobs.JOBS["dispatch"](factory, settings, later)

    if crowd:
        echo("7. the crowd: offices and agents with applications in all ten statuses")
        crowd_start = time.monotonic()
        per_status = populate(
            factory,
            settings,
            profile,
            staff_id=staff_id,
            outbox=folder / "ra-outbox",
            start=later + dt.timedelta(seconds=1),
            echo=echo,
        )
        echo(
            f"   {sum(per_status.values())} applications in "
            f"{time.monotonic() - crowd_start:.0f} s: "
            + ", ".join(f"{LABELS_JA[s]} {n}" for s, n in per_status.items())
        )
    jobs.JOBS["audit-anchor"](factory, settings, utcnow())

    echo("8. files for offices, verifiers and outside checks")
    with transaction(factory) as session:
        for label in OFFICES:
            cert = session.execute(
                select(Certificate).where(Certificate.application_id == app_ids[label])
            ).scalar_one()
            der = x509.load_der_x509_certificate(cert.der)
            (folder / f"{label}.pem").write_bytes(der.public_bytes(serialization.Encoding.PEM))
        crl = session.execute(select(CrlRecord).order_by(CrlRecord.id.desc()).limit(1)).scalar_one()
        (folder / "issuing.crl").write_bytes(crl.der)
        states = {
            label: session.get(Application, app_id).status  # type: ignore[union-attr]
            for label, app_id in app_ids.items()
        }
    engine.dispose()
    if states["revoked"] != Status.REVOKED or states["office"] != Status.ISSUED:
        raise Refused(
            f"the demo did not reach the expected statuses: {states}",
            message_ja="デモが想定の状態になりませんでした",
        )
    for name in ("root/root.pem", "issuing/issuing.pem"):
        shutil.copyfile(home / name, folder / Path(name).name)
    accounts = [f"{'role':<8} {'user ID':<14} login password / issuance password"]
    for role, new in (("admin", admin), ("staff", staff), *portal.items()):
        accounts.append(
            f"{role:<8} {new.account.user_id:<14} {new.login_password} / "
            f"{new.issuance_password or '-'}"
        )
    accounts.append(
        "\nThe portal's first sign-in asks for the number and the name in kana "
        "(its mail code arrives in the demo mailbox):"
    )
    for role, new in portal.items():
        accounts.append(f"{role:<8} {new.account.office_number} {new.account.name_kana}")
    accounts.append("\nTOTP of the console users (add to an authenticator app):")
    for role, new in (("admin", admin), ("staff", staff)):
        accounts.append(f"{role:<8} {new.otpauth_uri(settings.federation_name)}")
    write_new(folder / "demo-accounts.txt", ("\n".join(accounts) + "\n").encode(), mode=SECRET)
    _ = admin_id
    return DemoResult(
        folder=folder,
        files={
            "root.pem": "root CA certificate (trust anchor)",
            "issuing.pem": "issuing CA certificate",
            "office.pem": "good office certificate (発行済み)",
            "revoked.pem": "revoked office certificate (失効済み)",
            "issuing.crl": "the issuing CA's CRL (DER), registered by the RA, lists revoked.pem",
            "office.p12": "the good office's PKCS#12 download (password in office.p12.password)",
            "claim.txt(.p7s)": "a claim signed with office.p12 (detached CMS)",
            "revoked-claim.txt(.p7s)": "a claim signed with the revoked certificate",
            "ra.sqlite": "the RA database (all ten statuses' history in its audit log)",
            "ra.toml": "the RA settings (inline CA)",
            "ra-profiles/": "the RA's copy of the certificate profile (ra.profile_files)",
            "ra-secrets.key": "the key that seals the RA database's TOTP secrets (0600)",
            "demo-accounts.txt": "demo logins: admin, staff, four offices, an agent",
            "ca-home/": "the CA machine's folder: keys (encrypted), ledger, CRLs, transcripts",
            "custodians/": "the demo custodian shares (2 of 3 open a CA key)",
        },
    )


def _party(session: object, account_id: int) -> Party:
    """The party a demo account acts as, as the web would build it after sign-in."""
    from sqlalchemy.orm import Session

    assert isinstance(session, Session)
    account = session.get(Account, account_id)
    assert account is not None
    return party_of(account)
