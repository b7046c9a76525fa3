"""The portal after applying: 状況照会 (A4), ダウンロード (A5), renewal and 失効依頼.

Real keys and certificates (:mod:`tests.ra.web.portal_world`): each PKCS#12 the portal answers
is opened with ``openssl pkcs12 -info -noout -passin`` (with ``-legacy`` for the legacy one,
as openssl 3 wants for old files; its 3DES opens without it too) and with NSS's
``pk12util -l``, using the issuance password as printed.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs7
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from contract.profile import Profile
from ra.lifecycle import Status
from ra.party import party_of
from ra.settings import LinkSettings, RASettings, WebSettings, load_certificate_profiles
from ra.store.models import (
    Account,
    AccountKind,
    Application,
    AuditRecord,
    Notice,
    RevocationRequest,
)
from ra.store.vault import Vault, create_key_file
from ra.tasks import jobs
from ra.workflow import applications, revocations
from tests.pki import Pki
from tests.ra.conftest import Database
from tests.ra.web import portal_world as world
from tests.ra.web.helpers import Clock, add_staff, assert_no_mojibake, sign_in, token
from tests.ra_profile import FEES, OFFICE_PROFILE


@pytest.fixture
def web_settings(tmp_path: Path, database: Database, pki: Pki) -> RASettings:
    """The web settings with the certificate profile and the CA chain a download carries."""
    create_key_file(tmp_path / "ra-secrets.key")
    issuing, root = world.chain_files(pki, tmp_path / "ca")
    return RASettings(
        fees=FEES,
        database_url=database.url,
        data_dir=tmp_path / "data",
        secrets_key_file=tmp_path / "ra-secrets.key",
        web=WebSettings(secret_key_file=tmp_path / "ra-web.key", base_url="https://ra.example"),
        profile_files=[OFFICE_PROFILE],
        profiles=load_certificate_profiles([OFFICE_PROFILE], default="office"),
        link=LinkSettings(mode="offline", ca_certificate=issuing, ca_chain=[root]),
    )


@pytest.fixture
def profile(web_settings: RASettings) -> Profile:
    return web_settings.certificate_profile()


def portal_sign_in(client: FlaskClient, holder: world.Holder) -> None:
    answer = client.post(
        "/portal/sign-in",
        data={
            "csrf_token": token(client, "/portal/sign-in"),
            "user_id": holder.user_id,
            "password": holder.password,
        },
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)


def _csrf(client: FlaskClient, path: str) -> str:
    return token(client, path)


def _download(
    client: FlaskClient, app_id: int, password: str, encryption: str = "aes"
) -> TestResponse:
    path = f"/portal/applications/{app_id}/download"
    return client.post(
        f"{path}/pkcs12",
        data={
            "csrf_token": _csrf(client, path),
            "issuance_password": password,
            "encryption": encryption,
        },
    )


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, errors="replace", check=False
    )


def open_pkcs12(path: Path, password: str, *, legacy: bool) -> str:
    """``openssl pkcs12 -info -noout`` and ``pk12util -l`` on the file; openssl's report."""
    args: list[str | Path] = ["openssl", "pkcs12", "-info", "-noout", "-in", path]
    if legacy:
        args.append("-legacy")
    out = _run(*args, "-passin", f"pass:{password}")
    assert out.returncode == 0, out.stderr
    wrong = _run(*args, "-passin", "pass:WRONG-PASS-WORD")
    assert wrong.returncode != 0
    if not shutil.which("pk12util"):
        pytest.skip("pk12util missing: apt-get install libnss3-tools")
    listed = _run("pk12util", "-l", path, "-W", password)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "Certificate" in listed.stdout and "Key" in listed.stdout
    refused = _run("pk12util", "-l", path, "-W", "WRONG-PASS-WORD")
    assert refused.returncode != 0
    return out.stderr


def _audits(database: Database, action: str) -> list[AuditRecord]:
    with database.factory() as s:
        return list(
            s.execute(
                select(AuditRecord).where(AuditRecord.action == action).order_by(AuditRecord.seq)
            ).scalars()
        )


def _count(database: Database, model: type) -> int:
    with database.factory() as s:
        return int(s.execute(select(func.count()).select_from(model)).scalar_one())


# -- 状況照会 ----------------------------------------------------------------------------------


def test_status_list_and_page_show_the_history_as_an_office_sees_it(
    app: Flask, database: Database, vault: Vault, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    office = world.add_holder(database.factory, clock.now)
    staff = add_staff(database, vault, clock.now)
    with database.factory() as s:
        staff_party = party_of(s.get(Account, staff.id))  # type: ignore[arg-type]
    app_id = world.issued(
        database.factory,
        office,
        clock.now,
        pki,
        settings=web_settings,
        profile=profile,
        staff=staff_party,
    )
    client = app.test_client()
    portal_sign_in(client, office)
    listing = client.get("/portal/applications/").get_data(as_text=True)
    assert_no_mojibake(listing)
    assert "状況照会" in listing and f"/portal/applications/{app_id}" in listing
    assert "5 発行済み" in listing
    page = client.get(f"/portal/applications/{app_id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert_no_mojibake(text)
    assert "次にすること" in text and "証明書が発行されました" in text
    assert f"/portal/applications/{app_id}/download" in text
    for shown in ("発行申請", "発行依頼登録", "証明書登録", "連合会", "事業所"):
        assert shown in text
    # No member of staff by name or user ID, no job or operator, no network address.
    history = text[text.index('id="history-title"') :]
    for hidden in (staff.user_id, "連合 花子", "システム", "職員", "cli:", "127.0.0.1"):
        assert hidden not in text, hidden
    assert history.count("連合会") >= 3  # 発行依頼登録, 証明書発行依頼, 証明書登録
    # English, when chosen in the header.
    client.post(
        "/auth/language",
        data={"csrf_token": token(client, "/portal/applications/"), "value": "en"},
    )
    english = client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    assert "What to do next" in english and "Federation" in english
    main = english.split("<main>")[1].split("</main>")[0]
    assert "Download the certificate" in main and "連合会" not in main


def test_a_rejected_application_shows_its_reason_and_what_to_do(
    app: Flask, database: Database, vault: Vault, clock: Clock, web_settings, profile
) -> None:
    office = world.add_holder(database.factory, clock.now)
    app_id = world.apply(
        database.factory, office, clock.now, settings=web_settings, profile=profile
    )
    staff = add_staff(database, vault, clock.now)
    with database.factory() as s, s.begin():
        applications.reject(
            s,
            party_of(s.get(Account, staff.id)),  # type: ignore[arg-type]
            app_id,
            reason="事業所番号が登録内容と一致しません。",
            now=clock.now,
        )
    client = app.test_client()
    portal_sign_in(client, office)
    text = client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    assert "却下理由" in text and "事業所番号が登録内容と一致しません。" in text
    assert "連合会により却下されました" in text
    assert staff.user_id not in text
    assert "/download" not in text  # nothing to download


# -- ダウンロード -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encryption", "expect"),
    [("aes", "AES-256-CBC"), ("legacy", "pbeWithSHA1And3-KeyTripleDES-CBC")],
)
def test_download_the_pkcs12_with_the_issuance_password(
    app: Flask,
    database: Database,
    clock: Clock,
    pki: Pki,
    web_settings,
    profile,
    tmp_path: Path,
    encryption: str,
    expect: str,
) -> None:
    office = world.add_holder(database.factory, clock.now, name="証明ケア:中央/本店*")
    app_id = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile
    )
    client = app.test_client()
    portal_sign_in(client, office)
    form = client.get(f"/portal/applications/{app_id}/download").get_data(as_text=True)
    assert_no_mojibake(form)
    assert "証明書発行用パスワード" in form and "標準(AES)" in form and "従来方式(3DES)" in form
    for guide in ("/portal/install/windows", "/portal/install/macos", "/portal/install/firefox"):
        assert guide in form
    before = len(_audits(database, "download_pkcs12"))
    # Typed in lower case without hyphens: the portal forgives it, the file has the printed form.
    typed = office.issuance_password.lower().replace("-", " ")
    answer = _download(client, app_id, typed, encryption)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.mimetype == "application/x-pkcs12"
    disposition = answer.headers["Content-Disposition"]
    fallback = re.search(r'filename="([^"]+)"', disposition)
    own = re.search(r"filename\*=UTF-8''(\S+)", disposition)
    assert fallback and own
    assert fallback.group(1) == f"shomei-{office.number}-{app_id}.p12"
    assert unquote(own.group(1)) == f"証明ケア_中央_本店__{office.number}_{app_id}.p12"
    path = tmp_path / fallback.group(1)
    path.write_bytes(answer.data)
    report = open_pkcs12(path, office.issuance_password, legacy=encryption == "legacy")
    assert expect in report
    audits = _audits(database, "download_pkcs12")
    assert len(audits) == before + 1
    last = audits[-1]
    assert (last.actor_id, last.object_id, last.details["encryption"]) == (
        office.user_id,
        str(app_id),
        encryption,
    )
    # The download shows in the application's history.
    history = client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    assert "PKCS#12 のダウンロード" in history


def test_a_wrong_password_is_one_line_and_records_nothing(
    app: Flask, database: Database, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    office = world.add_holder(database.factory, clock.now)
    app_id = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile
    )
    client = app.test_client()
    portal_sign_in(client, office)
    before = _count(database, AuditRecord)
    answer = _download(client, app_id, "AAAA-BBBB-CCCC")
    assert answer.status_code == 422
    text = answer.get_data(as_text=True)
    assert "証明書発行用パスワードが正しくありません" in text and 'id="download-form"' in text
    assert _count(database, AuditRecord) == before
    empty = _download(client, app_id, "")
    assert empty.status_code == 400 and _count(database, AuditRecord) == before


def test_after_a_reissue_the_password_applied_with_still_downloads(
    app: Flask, database: Database, vault: Vault, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    from ra.people import accounts

    office = world.add_holder(database.factory, clock.now)
    app_id = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile
    )
    staff = add_staff(database, vault, clock.now)
    with database.factory() as s, s.begin():
        new = accounts.reset_issuance_password(
            s,
            party_of(s.get(Account, staff.id)),  # type: ignore[arg-type]
            office.user_id,
            now=clock.now,
            federation_name="連合会",
        )
    client = app.test_client()
    portal_sign_in(client, office)
    refused = _download(client, app_id, new.issuance_password)
    assert refused.status_code == 422 and "申請時" in refused.get_data(as_text=True)
    assert _download(client, app_id, office.issuance_password).status_code == 200


def test_own_csr_gets_the_certificate_as_pem_and_p7b(
    app: Flask, database: Database, clock: Clock, pki: Pki, web_settings, profile, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ra.crypto import keys

    office = world.add_holder(database.factory, clock.now)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = keys.make_csr(key, office_number=office.number, office_name=office.name)
    app_id = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile, csr=csr
    )
    client = app.test_client()
    portal_sign_in(client, office)
    path = f"/portal/applications/{app_id}/download"
    form = client.get(path).get_data(as_text=True)
    assert 'id="download-pem"' in form and 'id="download-p7b"' in form
    assert 'id="download-form"' not in form  # no PKCS#12: the RA holds no key
    pem = client.post(
        f"{path}/certificate", data={"csrf_token": _csrf(client, path), "format": "pem"}
    )
    assert pem.status_code == 200 and pem.mimetype == "application/x-pem-file"
    certs = x509.load_pem_x509_certificates(pem.data)
    assert certs[0].public_key() == key.public_key()
    assert certs[1:] == [pki.certs["issuing"], pki.certs["root"]]
    assert f'filename="shomei-{office.number}-{app_id}.pem"' in pem.headers["Content-Disposition"]
    p7b = client.post(
        f"{path}/certificate", data={"csrf_token": _csrf(client, path), "format": "p7b"}
    )
    assert p7b.status_code == 200 and p7b.mimetype == "application/x-pkcs7-certificates"
    assert set(pkcs7.load_der_pkcs7_certificates(p7b.data)) == set(certs)  # a DER SET OF
    (tmp_path / "c.p7b").write_bytes(p7b.data)
    printed = _run("openssl", "pkcs7", "-inform", "DER", "-in", tmp_path / "c.p7b", "-print_certs")
    assert printed.returncode == 0 and printed.stdout.count("BEGIN CERTIFICATE") == 3
    formats = [a.details.get("format") for a in _audits(database, "download_certificate")]
    assert formats == ["pem", "p7b"]
    bad = client.post(
        f"{path}/certificate", data={"csrf_token": _csrf(client, path), "format": "exe"}
    )
    assert bad.status_code == 400 and "PEM か P7B" in bad.get_data(as_text=True)
    refused = _download(client, app_id, office.issuance_password)
    assert refused.status_code == 409 and "CSR" in refused.get_data(as_text=True)


def test_a_revoked_or_expired_certificate_cannot_be_downloaded(
    app: Flask, database: Database, vault: Vault, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    office = world.add_holder(database.factory, clock.now)
    revoked = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile
    )
    staff = add_staff(database, vault, clock.now)
    with database.factory() as s, s.begin():
        revocations.register_revocation(
            s,
            party_of(s.get(Account, staff.id)),  # type: ignore[arg-type]
            revoked,
            reason="cessationOfOperation",
            requested_by="office",
            requested_at=clock.now,
            now=clock.now,
        )
    short = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile, days=10
    )
    client = app.test_client()
    portal_sign_in(client, office)
    page = client.get(f"/portal/applications/{revoked}/download")
    assert page.status_code == 409
    assert "この証明書は失効の手続き中のため、ダウンロードできません" in page.get_data(as_text=True)
    answer = _download(client, revoked, office.issuance_password)
    assert answer.status_code == 409
    assert "失効の手続き中のため" in answer.get_data(as_text=True)
    assert client.get(f"/portal/applications/{short}/download").status_code == 200
    clock.advance(days=11)
    client = app.test_client()  # the idle timeout signed the other session out
    portal_sign_in(client, office)
    page = client.get(f"/portal/applications/{short}/download")
    assert page.status_code == 409
    text = page.get_data(as_text=True)
    assert "有効期限" in text and "過ぎているため、ダウンロードできません" in text
    assert _download(client, short, office.issuance_password).status_code == 409
    assert _audits(database, "download_pkcs12") == []  # nothing handed out, nothing recorded


# -- 更新 (renewal) ----------------------------------------------------------------------------


def test_renewal_from_the_notice_while_the_current_certificate_stays_valid(
    app: Flask, database: Database, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    office = world.add_holder(database.factory, clock.now)
    current = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile, days=90
    )
    client = app.test_client()
    portal_sign_in(client, office)
    page = client.get(f"/portal/applications/{current}").get_data(as_text=True)
    assert f"/portal/applications/{current}/renew" not in page  # 90 days left: not yet
    assert client.get(f"/portal/applications/{current}/renew").status_code == 409

    clock.advance(days=31)  # 59 days left: the 60-day notice goes out
    summary = jobs.expiry_notices(database.factory, web_settings, clock.now)
    assert summary.notices == 1
    with database.factory() as s:
        notice = s.execute(select(Notice).where(Notice.kind == "certificate_expiring")).scalar_one()
        body = notice.body
    url = f"https://ra.example/portal/applications/{current}/renew"
    assert url in body and "次の証明書を申し込む" in body

    client = app.test_client()  # the idle timeout signed the other session out
    portal_sign_in(client, office)
    page = client.get(f"/portal/applications/{current}").get_data(as_text=True)
    assert "いまのうちに次の証明書をお申し込みください" in page
    assert f"/portal/applications/{current}/renew" in page
    path = f"/portal/applications/{current}/renew"
    form = client.get(path)
    assert form.status_code == 200 and "手数料相殺" in form.get_data(as_text=True)
    wrong = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "issuance_password": "AAAA-BBBB-CCCC",
            "consent_fee_offset": "y",
        },
    )
    assert wrong.status_code == 422
    answer = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "issuance_password": office.issuance_password,
            "consent_fee_offset": "y",
        },
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    new_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    assert new_id != current
    with database.factory() as s:
        old, new = s.get(Application, current), s.get(Application, new_id)
        assert old is not None and new is not None
        assert old.status is Status.ISSUED  # the current certificate is untouched
        assert new.status is Status.AWAITING_ISSUE_REQUEST
        assert new.office_number == old.office_number and new.wrapped_key is not None
    renewed = _audits(database, "apply_renewal")
    assert [(a.object_id, a.details["new_application"]) for a in renewed] == [
        (str(current), new_id)
    ]
    # Still valid and downloadable until the new one is issued (and after, until it expires).
    assert _download(client, current, office.issuance_password).status_code == 200
    page = client.get(f"/portal/applications/{current}").get_data(as_text=True)
    assert f"/portal/applications/{new_id}" in page and "更新の申込" in page
    again = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "issuance_password": office.issuance_password,
            "consent_fee_offset": "y",
        },
    )
    assert again.status_code == 409 and f"申請番号 {new_id}" in again.get_data(as_text=True)


# -- 失効依頼 ----------------------------------------------------------------------------------


def test_a_revocation_request_reaches_the_console_and_staff_register_it(
    app: Flask, database: Database, vault: Vault, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    office = world.add_holder(database.factory, clock.now)
    app_id = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile
    )
    client = app.test_client()
    portal_sign_in(client, office)
    path = f"/portal/applications/{app_id}/revocation-request"
    assert f'href="{path}"' in client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    form = client.get(path).get_data(as_text=True)
    assert "廃業・事業所の閉鎖" in form and "元に戻せません" in form
    unconfirmed = client.post(
        path, data={"csrf_token": _csrf(client, path), "reason": "cessationOfOperation"}
    )
    assert unconfirmed.status_code == 400 and _count(database, RevocationRequest) == 0
    other = client.post(
        path, data={"csrf_token": _csrf(client, path), "reason": "unspecified", "understood": "y"}
    )
    assert other.status_code == 400 and "理由を書いてください" in other.get_data(as_text=True)
    answer = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "reason": "cessationOfOperation",
            "note": "2026年12月末で廃業します。",
            "understood": "y",
        },
    )
    assert answer.status_code == 303
    page = client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    assert "失効依頼を受け付けました" in page
    assert "2026年12月末で廃業します。" in page and "5 発行済み" in page  # no status change
    twice = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "reason": "cessationOfOperation",
            "understood": "y",
        },
    )
    assert twice.status_code == 409 and _count(database, RevocationRequest) == 1
    requested = _audits(database, "request_revocation")
    assert len(requested) == 1 and requested[0].status_before == requested[0].status_after
    assert requested[0].actor_id == office.user_id
    with database.factory() as s:
        assert s.get(Application, app_id).status is Status.ISSUED  # type: ignore[union-attr]

    staff = add_staff(database, vault, clock.now)
    console = app.test_client()
    sign_in(console, staff, clock.now)
    waiting = console.get("/console/revocation-requests/").get_data(as_text=True)
    assert f"/console/applications/{app_id}" in waiting and "廃業・業務停止" in waiting
    listing = console.get(f"/console/list/?search=1&uid={office.user_id}&match=exact")
    assert "失効依頼あり" in listing.get_data(as_text=True)
    detail = console.get(f"/console/applications/{app_id}").get_data(as_text=True)
    assert 'id="holder-request"' in detail and "2026年12月末で廃業します。" in detail
    # The 失効申請 form starts from the request.
    assert re.search(r'<option selected value="cessationOfOperation">', detail)
    assert re.search(r'<option selected value="office">', detail)
    with database.factory() as s, s.begin():
        revocations.register_revocation(
            s,
            party_of(s.get(Account, staff.id)),  # type: ignore[arg-type]
            app_id,
            reason="cessationOfOperation",
            requested_by="office",
            requested_at=clock.now,
            now=clock.now,
        )
    with database.factory() as s:
        request = s.execute(select(RevocationRequest)).scalar_one()
        assert request.closed_at == clock.now and request.closed_by == staff.user_id
    assert "失効依頼あり" not in console.get(
        f"/console/list/?search=1&uid={office.user_id}&match=exact"
    ).get_data(as_text=True)
    page = client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    assert "6 失効依頼中" in page and "失効依頼を受け付けました" not in page
    assert "失効依頼" in page  # the history keeps the request


def test_installation_guides_in_japanese(app: Flask, database: Database, clock: Clock) -> None:
    office = world.add_holder(database.factory, clock.now)
    client = app.test_client()
    portal_sign_in(client, office)
    expected = {
        "windows": "証明書のインポート ウィザード",
        "macos": "キーチェーンアクセス",
        "firefox": "あなたの証明書",
    }
    for platform, words in expected.items():
        page = client.get(f"/portal/install/{platform}")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert_no_mojibake(text)
        assert words in text and "K7QM-3XTP-9AHD" in text


def test_agent_sees_and_downloads_the_certificate_of_the_office_it_applied_for(
    app: Flask, database: Database, clock: Clock, pki: Pki, web_settings, profile, tmp_path: Path
) -> None:
    office = world.add_holder(database.factory, clock.now)
    agent = world.add_holder(database.factory, clock.now, kind=AccountKind.AGENT)
    app_id = world.issued(
        database.factory,
        agent,
        clock.now,
        pki,
        settings=web_settings,
        profile=profile,
        for_office=office.number,
    )
    client = app.test_client()
    portal_sign_in(client, agent)
    page = client.get(f"/portal/applications/{app_id}").get_data(as_text=True)
    assert office.name in page and "代理人" in page
    answer = _download(client, app_id, agent.issuance_password)
    assert answer.status_code == 200
    (tmp_path / "a.p12").write_bytes(answer.data)
    open_pkcs12(tmp_path / "a.p12", agent.issuance_password, legacy=False)
    # The office itself does not see the agent's application.
    other = app.test_client()
    portal_sign_in(other, office)
    assert other.get(f"/portal/applications/{app_id}").status_code == 404


def test_the_next_application_by_the_agent_is_named_without_a_link_the_office_cannot_open(
    app: Flask, database: Database, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    """The office's certificate, then its agent's application for the office: the office's
    status page says a next certificate is on its way, but the agent's application is not the
    office's to open (404), so the page names it without a link; and the other way round."""
    office = world.add_holder(database.factory, clock.now)
    agent = world.add_holder(database.factory, clock.now, kind=AccountKind.AGENT)
    current = world.issued(
        database.factory, office, clock.now, pki, settings=web_settings, profile=profile
    )
    later = clock.now + dt.timedelta(minutes=5)
    by_agent = world.issued(
        database.factory,
        agent,
        later,
        pki,
        settings=web_settings,
        profile=profile,
        for_office=office.number,
    )
    client = app.test_client()
    portal_sign_in(client, office)
    page = client.get(f"/portal/applications/{current}").get_data(as_text=True)
    assert f"申請番号 {by_agent}(事業所または代理人が、別のユーザーIDで申し込んだもの)" in page
    assert f'href="/portal/applications/{by_agent}"' not in page
    assert client.get(f"/portal/applications/{by_agent}").status_code == 404
    # The office's own next application is linked.
    with database.factory() as s, s.begin():
        s.get(Application, by_agent).status = Status.REVOKED  # type: ignore[union-attr]
    mine = world.apply(database.factory, office, later, settings=web_settings, profile=profile)
    page = client.get(f"/portal/applications/{current}").get_data(as_text=True)
    assert f'href="/portal/applications/{mine}">申請番号 {mine}</a>' in page


def test_an_office_with_its_own_key_renews_with_a_new_csr(
    app: Flask, database: Database, clock: Clock, pki: Pki, web_settings, profile
) -> None:
    import io

    from cryptography.hazmat.primitives.asymmetric import rsa

    from ra.crypto import keys

    office = world.add_holder(database.factory, clock.now)
    first = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    csr = keys.make_csr(first, office_number=office.number, office_name=office.name)
    current = world.issued(
        database.factory,
        office,
        clock.now,
        pki,
        settings=web_settings,
        profile=profile,
        csr=csr,
        days=30,
    )
    client = app.test_client()
    portal_sign_in(client, office)
    path = f"/portal/applications/{current}/renew"
    form = client.get(path).get_data(as_text=True)
    assert 'type="file"' in form and "CSR" in form
    second = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    new_csr = keys.make_csr(second, office_number=office.number, office_name=office.name)
    garbage = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "issuance_password": office.issuance_password,
            "consent_fee_offset": "y",
            "csr": (io.BytesIO(b"not a csr"), "new.csr"),
        },
        content_type="multipart/form-data",
    )
    assert garbage.status_code == 400 and _count(database, Application) == 1
    answer = client.post(
        path,
        data={
            "csrf_token": _csrf(client, path),
            "issuance_password": office.issuance_password,
            "consent_fee_offset": "y",
            "csr": (io.BytesIO(new_csr), "new.csr"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 303, answer.get_data(as_text=True)
    new_id = int(answer.headers["Location"].rsplit("/", 1)[1])
    with database.factory() as s:
        new = s.get(Application, new_id)
        assert new is not None and new.wrapped_key is None  # the office keeps its key
        request = x509.load_der_x509_csr(new.csr_der)
        assert request.public_key() == second.public_key()
