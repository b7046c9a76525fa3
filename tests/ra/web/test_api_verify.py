"""The API's verification gives the verdict ``shomei verify`` gives, on both databases.

A real certificate issued through the link (the session's CA home, inline), a claim signed by
``shomei sign`` (and a PDF signed with ``--pades``); the API checks against the RA's current
registered CRL with the issuing CA certificate as the trust anchor, and the CLI is run with
exactly those (``--trust issuing.pem --crl current.crl``).  Valid, tampered, revoked, and
"could not decide" before any CRL: the same status, reason codes, messages in both languages,
signer, serial and signing time, one claim at a time and as a batch (the CLI on a folder).
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from reportlab.pdfgen import canvas
from sqlalchemy import select

from ca.crls import issue_crl
from ra.ca_link import crls, link
from ra.party import Scope
from ra.store.models import Certificate, CrlRecord
from tests.ra.ca_fixture import CaHome, ca_home_fixture, open_test_ca  # noqa: F401
from tests.ra.ca_link.test_link import request_revocation, requested
from tests.ra.conftest import Database
from tests.ra.web.api_fixture import API, api_app, bearer, make_token
from tests.ra.web.helpers import Clock

SHOMEI = str(Path(sys.executable).with_name("shomei"))
ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "SHOMEI_LANG": "en"}


@pytest.fixture
def now() -> dt.datetime:
    """Real time: the CA was made a day ago, and ``shomei sign`` stamps the real time."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def api(ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock) -> Flask:
    return api_app(ca_home, database, tmp_path / "ra", clock)


@dataclass
class Office:
    folder: Path
    app_id: int
    cert: Path
    key: Path


def _issue(api: Flask, database: Database, folder: Path, now: dt.datetime) -> Office:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test office")]))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.DER)
    )
    with database.factory() as s, s.begin():
        app_id = requested(s, now=now, csr=csr)
    link.dispatch(database.factory, api.extensions["shomei"].settings, now=now)
    with database.factory() as s:
        der = s.execute(
            select(Certificate.der).where(Certificate.application_id == app_id)
        ).scalar_one()
    folder.mkdir(parents=True, exist_ok=True)
    cert = folder / "office.pem"
    cert.write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
    key_file = folder / "office.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return Office(folder, app_id, cert, key_file)


def _sign(office: Office, ca: CaHome, claim: Path, *, pades: bool = False) -> None:
    signed = subprocess.run(
        [
            *(SHOMEI, "sign", str(claim)),
            *("--key", str(office.key), "--cert", str(office.cert)),
            *("--chain", str(ca.issuing_cert)),
            *(("--pades", "-o", str(claim.with_name("signed.pdf"))) if pades else ()),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=ENV,
    )
    assert signed.returncode == 0, signed.stderr


def _current_crl(database: Database, folder: Path) -> Path | None:
    """The RA's current CRL (highest number) as a file, for the CLI."""
    with database.factory() as s:
        rows = s.execute(select(CrlRecord.number, CrlRecord.der)).all()
    if not rows:
        return None
    path = folder / "current.crl"
    path.write_bytes(max(rows, key=lambda r: int(r.number)).der)
    return path


def _cli(
    target: Path, ca: CaHome, crl: Path | None, report: Path, **opts: str
) -> list[dict[str, str]]:
    report.unlink(missing_ok=True)
    args = [SHOMEI, "verify", str(target), "--trust", str(ca.issuing_cert), "--report", str(report)]
    if crl is not None:
        args += ["--crl", str(crl)]
    if "signature" in opts:
        args += ["--signature", opts["signature"]]
    args += ["--workers", "1"]
    done = subprocess.run(args, capture_output=True, text=True, check=False, env=ENV)
    assert done.returncode in (0, 1, 2), done.stderr
    with report.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    statuses = {r["status"] for r in rows}
    expected = 1 if "invalid" in statuses else 2 if "undecided" in statuses else 0
    assert done.returncode == expected, (done.returncode, rows)
    return rows


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _same(api_verdict: dict[str, Any], row: dict[str, str]) -> None:
    """The API's verdict and the CLI's report row say the same."""
    assert api_verdict["status"] == row["status"], (api_verdict, row)
    assert ",".join(r["code"] for r in api_verdict["reasons"]) == row["reason_code"]
    if row["reason_code"] == "unsigned":
        # The CLI names the .p7s it looked for; the API says none was sent.
        assert api_verdict["summary"].startswith("the claim is not signed (")
        assert row["reason_en"].startswith("the claim is not signed (")
        assert api_verdict["summary_ja"].startswith("請求ファイルに署名がありません(")
        assert row["reason_ja"].startswith("請求ファイルに署名がありません(")
    elif row["status"] != "valid":
        assert api_verdict["summary"] == row["reason_en"]
        assert api_verdict["summary_ja"] == row["reason_ja"]
    assert (api_verdict["signer_subject"] or "") == row["signer"]
    assert (api_verdict["signer_serial"] or "") == row["serial_hex"]
    cli_time = (
        dt.datetime.fromisoformat(row["signing_time_utc"]) if row["signing_time_utc"] else None
    )
    api_time = api_verdict["signing_time"]
    assert (dt.datetime.fromisoformat(api_time) if api_time else None) == cli_time


def _verify(client: FlaskClient, token: str, claim: Path, signature: Path | None) -> dict[str, Any]:
    body = {"name": claim.name, "claim": _b64(claim)}
    if signature is not None:
        body["signature"] = _b64(signature)
    answer = client.post(f"{API}/verify", json=body, headers=bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    result: dict[str, Any] = answer.get_json()
    assert result["name"] == claim.name
    return result


def test_the_api_agrees_with_shomei_verify(
    api: Flask, ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock
) -> None:
    office = _issue(api, database, tmp_path / "office", clock.now)
    claim = office.folder / "claim.csv"
    claim.write_text("事業所番号,金額\n1300000001,5000\n", encoding="utf-8")
    _sign(office, ca_home, claim)
    signature = claim.with_name("claim.csv.p7s")
    tampered = office.folder / "tampered.csv"
    tampered.write_text("事業所番号,金額\n1300000001,9000\n", encoding="utf-8")
    shutil.copy(signature, office.folder / "tampered.csv.p7s")
    client = api.test_client()
    token = make_token(database, [Scope.VERIFY_CLAIMS])
    report = tmp_path / "report.csv"

    # The link registered the CA's CRL with the certificate; it does not list it: valid.
    crl = _current_crl(database, tmp_path)
    assert crl is not None
    valid = _verify(client, token, claim, signature)
    assert valid["status"] == "valid" and valid["reasons"] == [] and valid["status_ja"] == "有効"
    assert valid["signer_subject"].startswith("CN=テストoffice")
    crl_hash = hashlib.sha256(crl.read_bytes()).hexdigest()
    assert valid["basis"]["crl_sha256"] == crl_hash
    _same(valid, _cli(claim, ca_home, crl, report, signature=str(signature))[0])

    # Could not decide: an unreadable signature (the CLI names the file it could not read).
    cut = office.folder / "cut.p7s"
    cut.write_bytes(signature.read_bytes()[:40])
    unread = _verify(client, token, claim, cut)
    assert unread["status"] == "undecided" and unread["status_ja"] == "判定不能"
    row = _cli(claim, ca_home, crl, report, signature=str(cut))[0]
    assert row["reason_en"] == f"cut.p7s: {unread['summary']}"
    assert row["reason_ja"] == f"cut.p7s: {unread['summary_ja']}"
    _same(unread, {**row, "reason_en": unread["summary"], "reason_ja": unread["summary_ja"]})

    # Tampered: the digest differs.
    bad = _verify(client, token, tampered, office.folder / "tampered.csv.p7s")
    assert bad["status"] == "invalid" and bad["reasons"][0]["code"] == "digest"
    _same(bad, _cli(tampered, ca_home, crl, report)[0])

    # Revoked: the federation revokes it, the CA's new CRL is registered by the link.
    later = clock.now + dt.timedelta(seconds=5)
    with database.factory() as s, s.begin():
        request_revocation(s, office.app_id, now=later)
    link.dispatch(database.factory, api.extensions["shomei"].settings, now=later)
    crl = _current_crl(database, tmp_path)
    revoked = _verify(client, token, claim, signature)
    assert revoked["status"] == "invalid" and revoked["reasons"][0]["code"] == "revoked"
    assert (
        revoked["reasons"][0]["message_ja"]
        and revoked["basis"]["crl_sha256"] != valid["basis"]["crl_sha256"]
    )
    _same(revoked, _cli(claim, ca_home, crl, report, signature=str(signature))[0])


def _pdf(path: Path) -> None:
    pdf = canvas.Canvas(str(path))
    pdf.drawString(72, 720, "claim 1300000001 5000 yen")
    pdf.save()


def test_a_batch_gets_one_verdict_per_item_as_the_cli_on_a_folder(
    api: Flask, ca_home: CaHome, database: Database, tmp_path: Path, clock: Clock
) -> None:
    office = _issue(api, database, tmp_path / "office", clock.now)
    with open_test_ca(ca_home) as ca:
        der = issue_crl(ca, now=clock.now)
    with database.factory() as s, s.begin():
        crls.register_crl(s, der, ca_certificate=ca_home.ca_certificate, now=clock.now)
    claims = tmp_path / "claims"
    claims.mkdir()
    (claims / "a.csv").write_text("a,1\n", encoding="utf-8")
    _sign(office, ca_home, claims / "a.csv")
    (claims / "b.csv").write_text("b,2\n", encoding="utf-8")
    _sign(office, ca_home, claims / "b.csv")
    (claims / "b.csv").write_text("b,3\n", encoding="utf-8")  # changed after signing
    (claims / "c.txt").write_text("not signed\n", encoding="utf-8")
    _pdf(tmp_path / "claim.pdf")
    _sign(office, ca_home, tmp_path / "claim.pdf", pades=True)
    shutil.move(tmp_path / "signed.pdf", claims / "d.pdf")
    rows = {
        r["claim"]: r
        for r in _cli(claims, ca_home, _current_crl(database, tmp_path), tmp_path / "r.csv")
    }
    assert set(rows) == {"a.csv", "b.csv", "c.txt", "d.pdf"}

    items: list[dict[str, str]] = []
    for name in sorted(rows):
        item = {"name": name, "claim": _b64(claims / name)}
        if (claims / f"{name}.p7s").exists():
            item["signature"] = _b64(claims / f"{name}.p7s")
        items.append(item)
    client = api.test_client()
    token = make_token(database, [Scope.VERIFY_CLAIMS])
    answer = client.post(f"{API}/verify/batch", json={"items": items}, headers=bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)
    result = answer.get_json()
    assert [v["name"] for v in result["verdicts"]] == sorted(rows)
    for verdict in result["verdicts"]:
        _same(verdict, rows[verdict["name"]])
    assert {v["name"]: v["status"] for v in result["verdicts"]} == {
        "a.csv": "valid",
        "b.csv": "invalid",
        "c.txt": "invalid",
        "d.pdf": "valid",
    }
    assert (result["valid"], result["invalid"], result["undecided"]) == (2, 2, 0)

    # Bounded: more items than [ra.api] batch_max_items, or none, is a 400 problem.
    too_many = client.post(f"{API}/verify/batch", json={"items": items * 26}, headers=bearer(token))
    assert too_many.status_code == 400 and "100" in too_many.get_json()["detail_ja"]
    empty = client.post(f"{API}/verify/batch", json={"items": []}, headers=bearer(token))
    assert empty.status_code == 400 and empty.mimetype == "application/problem+json"
    # One broken item does not fail the others.
    broken = [*items[:1], {"name": "junk", "claim": "AAAA", "signature": "AAAA"}]
    mixed = client.post(f"{API}/verify/batch", json={"items": broken}, headers=bearer(token))
    assert [v["status"] for v in mixed.get_json()["verdicts"]] == ["valid", "undecided"]
