"""The mails of docs/product.md §13 through a real SMTP server (aiosmtpd on 127.0.0.1).

The events happen through the real code paths: the inline CA issues a certificate (the
dispatch job), the rejection job, the daily expiry job, and A7's sealed reissue.  Every mail
arrives 7-bit clean (RFC 2047 encoded words in the headers, the UTF-8 body in base64), parses
back to its Japanese subject and body with the footer, and none carries a password or any
other secret.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import email
import email.policy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from ra.ca_link import link
from ra.lifecycle import Status
from ra.mailing import mail, texts
from ra.party import party_of
from ra.settings import DocumentSettings, MailSettings, WebSettings
from ra.store.models import Account, Application, Certificate, OutboxMail
from ra.tasks import jobs
from ra.workflow import reissue
from signer.credentials import load_pem
from signer.notices import open_notice
from tests.ra.ca_fixture import CaHome, ca_home_fixture, make_application, ra_settings  # noqa: F401
from tests.ra.ca_link.test_link import requested
from tests.ra.conftest import Database
from tests.ra.mailing.test_mail import Recorder, _free_port

PASSWORD_SHAPE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}\b")
PORTAL = "https://shomei.example.jp/portal/"


class RawRecorder(Recorder):
    """Keeps each message as the server received it, besides parsing it."""

    def __init__(self) -> None:
        super().__init__()
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(bytes(envelope.content))
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp() -> Iterator[tuple[RawRecorder, int]]:
    recorder = RawRecorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


def _rsa_csr(name: str) -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.DER)


def test_issued_rejected_expiring_and_reissued_mails_in_japanese_without_secrets(
    database: Database, ca_home: CaHome, tmp_path: Path, smtp: tuple[RawRecorder, int]
) -> None:
    recorder, port = smtp
    base = ra_settings(ca_home, database.url, tmp_path / "data", smtp_port=port)
    settings = dataclasses.replace(
        base,
        federation_name="証明連合会",
        mail=MailSettings(
            smtp_port=port, sender="証明連合会 <shomei@example.jp>", message_id_domain="ra.test"
        ),
        web=WebSettings(base_url="https://shomei.example.jp/"),
        documents=DocumentSettings(issuer_phone="03-0000-0000"),
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    key, csr = _rsa_csr("中央ケア事業所")
    with database.factory() as s, s.begin():
        issued_id = requested(s, now=now, email="issued@example.jp", csr=csr)
        rejected = make_application(
            s, status=Status.REJECTION_PENDING, now=now, email="rejected@example.jp"
        )
        rejected.status_reason = "事業所番号が確認できません"

    # Issued (the dispatch job and the inline CA), rejected (the rejection job).
    assert link.dispatch(database.factory, settings, now=now).imported[0].issued == 1
    assert jobs.process_rejections(database.factory, settings, now).processed == 1
    with database.factory() as s:
        cert = s.execute(
            select(Certificate).where(Certificate.application_id == issued_id)
        ).scalar_one()
        serial, not_after = cert.serial_hex, cert.not_after
    # Expiring: the daily job, 20 days before the end (the 30-day notice).
    assert (
        jobs.expiry_notices(database.factory, settings, not_after - dt.timedelta(days=20)).notices
        == 1
    )
    # A7: the office asks for a new issuance password, sealed to that certificate.
    with database.factory() as s, s.begin():
        app = s.get(Application, issued_id)
        assert app is not None
        account = s.get(Account, app.account_id)
        assert account is not None
        notice = reissue.reissue_sealed(
            s,
            party_of(account),
            now=now,
            message_id_domain=settings.mail.message_id_domain,
            footer=texts.signature(settings),
        )
        sealed = notice.sealed
    assert sealed is not None
    certificate = x509.load_der_x509_certificate(cert.der)
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    document = open_notice(
        sealed,
        credentials=load_pem(pem_key, certificate.public_bytes(serialization.Encoding.PEM)),
    ).decode()
    new_password = document.split("新しい証明書発行用パスワード: ")[1].split()[0]

    summary = jobs.send_mail(database.factory, settings, now)
    assert (summary.sent, summary.failed, summary.remaining) == (4, 0, 0)
    with database.factory() as s:
        rows = {r.kind: r for r in s.execute(select(OutboxMail)).scalars()}
    assert set(rows) == {
        "certificate_issued",
        "application_rejected",
        "certificate_expiring",
        "password_reissue",
    }

    received = dict(
        zip([str(m["Message-ID"]) for m in recorder.messages], recorder.raw, strict=True)
    )
    expected = {
        "certificate_issued": (
            "証明書が発行されました",
            ["お申し込みの証明書が発行されました", f"シリアル番号: {serial}", "次にすること"],
        ),
        "application_rejected": (
            "証明書のお申し込みが却下されました",
            ["理由: 事業所番号が確認できません", "改めてお申し込みください"],
        ),
        "certificate_expiring": (
            "証明書の有効期限が近づいています(残り 30 日以内)",
            [f"シリアル番号 {serial}", "新しい証明書をお申し込みください"],
        ),
        "password_reissue": (
            "証明書発行用パスワードを再発行しました(暗号化されたお知らせ)",
            ["「お知らせ」にお届けしています", "このメールにパスワードは記載していません"],
        ),
    }
    for kind, (subject, phrases) in expected.items():
        raw = received[rows[kind].message_id]
        head, _sep, _body = (
            raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
        )
        # 7-bit clean: the Japanese only as encoded words and base64.
        raw.decode("ascii")
        assert b"=?utf-8?b?" in head and b"Content-Transfer-Encoding: base64" in head
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert str(message["Subject"]) == subject, kind
        assert message["From"].addresses[0].display_name == "証明連合会"
        assert message.get_content_charset() == "utf-8"
        content = message.get_content()
        for phrase in phrases:
            assert phrase in content, (kind, phrase)
        # The footer: who sends it, the portal, whom to ask.
        assert PORTAL in content and "送信専用" in content and "電話 03-0000-0000" in content
        # No secret: no issuance password, nothing of the sealed notice.
        assert new_password not in content and new_password.encode() not in raw
        assert PASSWORD_SHAPE.search(content) is None, kind
        assert base64.b64encode(sealed)[:40] not in raw


def test_a_mail_of_short_japanese_lines_is_7_bit_clean_too() -> None:
    """Short lines would pass as raw 8-bit UTF-8, which a server without 8BITMIME may
    mangle: the body is always base64."""
    row = OutboxMail(
        message_id="<short@ra.test>",
        to_address="office@example.jp",
        subject="証明書が発行されました",
        body="中央ケア事業所 様\n\n発行しました。\n",
        kind="certificate_issued",
        created_at=dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
    )
    raw = mail.build_message(row, sender="証明連合会 <shomei@example.jp>").as_bytes()
    raw.decode("ascii")
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(parsed["Subject"]) == "証明書が発行されました"
    assert parsed.get_content() == "中央ケア事業所 様\n\n発行しました。\n"
