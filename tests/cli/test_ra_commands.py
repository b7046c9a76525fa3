"""``shomei ra …``: init-db, load-demo, import-accounts, show, verify-audit, exit codes."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cli.main import main
from contract.profile import load_profiles
from ra.party import party_of
from ra.people.accounts import get_account
from ra.people.passwords import check_issuance_password
from ra.settings import load_ra_settings
from ra.store.db import make_engine, session_factory, transaction
from ra.store.vault import totp_context
from ra.workflow import applications
from tests.ra_profile import RA_REQUIRED

REPO = Path(__file__).resolve().parents[2]
CSV = (
    "種別,番号,名称,住所,電話番号,メールアドレス\r\n"
    "事業所,1320000001,港ケア事業所,東京都港区1-1,03-1111-2222,m@example.jp\r\n"
    "代理人,9920000001,代行株式会社,東京都港区1-2,03-1111-3333,d@example.jp\r\n"
)


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "ra.toml"
    path.write_text(
        f'[ra]\ndatabase_url = "sqlite:///{tmp_path / "ra.sqlite"}"\ndata_dir = "data"\n'
        f"{RA_REQUIRED}\n",
        encoding="utf-8",
    )
    return path


def run(*args: str | Path) -> object:
    return CliRunner().invoke(main, ["ra", *map(str, args)], catch_exceptions=False)


def test_init_db_and_load_demo(settings_file: Path) -> None:
    first = run("init-db", "--settings", settings_file)
    assert first.exit_code == 0, first.output  # type: ignore[attr-defined]
    assert run("init-db", "--settings", settings_file).exit_code == 0  # type: ignore[attr-defined]
    demo = run("load-demo", "--settings", settings_file)
    assert demo.exit_code == 0, demo.output  # type: ignore[attr-defined]
    out = demo.output  # type: ignore[attr-defined]
    assert out.count("login password:") == 5 and out.count("issuance password") == 3
    assert out.count("TOTP secret:") == 2
    user_id, password = re.search(
        r"office\t(of\d{8})\t1310000001\t.*\n  issuance password \S+: (\S+)", out
    ).groups()  # type: ignore[union-attr]
    settings = load_ra_settings(settings_file)
    with transaction(session_factory(make_engine(settings.database_url))) as s:
        check_issuance_password(get_account(s, user_id).issuance_password_hash, password)
    again = run("load-demo", "--settings", settings_file)
    assert again.exit_code == 2 and "already loaded" in again.output  # type: ignore[attr-defined]


def test_import_accounts_all_or_nothing(settings_file: Path, tmp_path: Path) -> None:
    run("init-db", "--settings", settings_file)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(
        (CSV + "事業所,123,番号誤り,東京都,03-1111-4444,x@example.jp\r\n").encode("cp932")
    )
    result = CliRunner().invoke(
        main, ["ra", "import-accounts", str(bad), "--settings", str(settings_file)]
    )
    assert result.exit_code == 2
    assert "row 4, number: must be 10 digits" in result.output
    assert "nothing was imported" in result.output
    good = tmp_path / "good.csv"
    good.write_bytes(CSV.encode("utf-8-sig"))
    result = run("import-accounts", good, "--settings", settings_file)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "Imported 2 account(s)" in result.output  # type: ignore[attr-defined]
    assert "港ケア事業所" in result.output and "1320000001" in result.output  # type: ignore[attr-defined]
    again = run("import-accounts", good, "--settings", settings_file)  # already registered
    assert again.exit_code == 2  # type: ignore[attr-defined]


def test_show_and_verify_audit(settings_file: Path) -> None:
    run("init-db", "--settings", settings_file)
    out = run("load-demo", "--settings", settings_file).output  # type: ignore[attr-defined]
    user_id, password = re.search(
        r"office\t(of\d{8})\t1310000001\t.*\n  issuance password \S+: (\S+)", out
    ).groups()  # type: ignore[union-attr]
    settings = load_ra_settings(settings_file)
    profile = load_profiles(REPO / "conf" / "profiles")["office"]
    now = dt.datetime(2026, 11, 2, 15, 30, tzinfo=dt.UTC)
    with transaction(session_factory(make_engine(settings.database_url))) as s:
        office = get_account(s, user_id)
        app = applications.apply(
            s,
            party_of(office),
            settings=settings,
            profile=profile,
            now=now,
            issuance_password=password,
            consent_fee_offset=True,
            source_address="192.0.2.1",
        )
        app_id = app.id
    shown = run("show", app_id, "--settings", settings_file)
    assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
    body = shown.output  # type: ignore[attr-defined]
    assert f"application {app_id}: awaiting_issue_request (1 発行依頼待ち)" in body
    # 15:30 UTC is 00:30 the next day in Japan.
    assert "2026-11-03 00:30:00 JST apply - -> awaiting_issue_request" in body
    assert f"by office:{user_id} from 192.0.2.1" in body
    # The history comes from ra.desk.queries.application_history, with the action in Japanese.
    assert f"by office:{user_id} from 192.0.2.1  発行申請" in body
    missing = run("show", 999, "--settings", settings_file)
    assert missing.exit_code == 2 and "no application 999" in missing.output  # type: ignore[attr-defined]

    ok = run("verify-audit", "--settings", settings_file)
    assert ok.exit_code == 0 and "6 record(s)" in ok.output, ok.output  # type: ignore[attr-defined]
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor_id = 'intruder' WHERE seq = 3"))
    engine.dispose()
    tampered = run("verify-audit", "--settings", settings_file)
    assert tampered.exit_code == 1  # type: ignore[attr-defined]
    assert "audit record 3 was altered" in tampered.output  # type: ignore[attr-defined]


def test_bad_settings_file(tmp_path: Path) -> None:
    result = run("init-db", "--settings", tmp_path / "missing.toml")
    assert result.exit_code == 2 and "not found" in result.output  # type: ignore[attr-defined]
    broken = tmp_path / "ra.toml"
    broken.write_text('[ra]\ndatabase_url = "sqlite://"\ndata_dir = "."\ncolour = 1\n')
    result = run("verify-audit", "--settings", broken)
    assert result.exit_code == 2 and "colour" in result.output  # type: ignore[attr-defined]


def test_export_list_writes_excel_csv_and_refuses_bad_input(tmp_path: Path) -> None:
    from demo.federation import build_demo

    demo = tmp_path / "demo"
    build_demo(demo, echo=lambda _: None, crowd=False)
    runner = CliRunner()
    out = tmp_path / "list.csv"
    result = runner.invoke(
        main,
        [
            "ra",
            "export-list",
            "--settings",
            str(demo / "ra.toml"),
            str(out),
            "--status",
            "issued",
            "--status",
            "revoked",
        ],
    )
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    # CP932 by default: no byte-order mark, and the Japanese header reads back.
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r\n" in data
    assert data.decode("cp932").startswith("申請番号,ユーザID,事業所名")
    assert "3 row(s)" in result.output
    again = runner.invoke(
        main, ["ra", "export-list", "--settings", str(demo / "ra.toml"), str(out)]
    )
    assert again.exit_code == 2 and out.read_bytes() == data  # never overwritten
    bad = runner.invoke(
        main,
        [
            "ra",
            "export-list",
            "--settings",
            str(demo / "ra.toml"),
            str(tmp_path / "x.csv"),
            "--status",
            "nonsense",
        ],
    )
    assert bad.exit_code == 2 and not (tmp_path / "x.csv").exists()


def test_add_staff_creates_the_first_admin_once(settings_file: Path, tmp_path: Path) -> None:

    from ra.store.models import AccountKind, AuditRecord
    from ra.store.vault import load_vault

    assert run("init-db", "--settings", settings_file).exit_code == 0  # type: ignore[attr-defined]
    args = ["add-staff", "tanaka", "--name", "田中 一郎", "--email", "tanaka@fed.example"]
    made = run(*args, "--admin", "--settings", settings_file)
    out = made.output  # type: ignore[attr-defined]
    assert made.exit_code == 0, out  # type: ignore[attr-defined]
    assert "admin\ttanaka\t-\t田中 一郎" in out and "shown only now" in out
    login = re.search(r"login password: (\S+)", out).group(1)  # type: ignore[union-attr]
    secret = re.search(r"TOTP secret: (\S+)", out).group(1)  # type: ignore[union-attr]
    uri = re.search(r"TOTP URI \(for an authenticator app\): (\S+)", out).group(1)  # type: ignore[union-attr]
    assert uri.startswith("otpauth://totp/") and f"secret={secret}" in uri and "tanaka" in uri
    settings = load_ra_settings(settings_file)
    engine = make_engine(settings.database_url)
    with transaction(session_factory(engine)) as s:
        admin = get_account(s, "tanaka")
        assert admin.kind is AccountKind.ADMIN and admin.active
        from ra.people.passwords import check_password

        check_password(admin.password_hash, login, what="login password", what_ja="x")
        assert admin.totp_secret_sealed and secret not in admin.totp_secret_sealed
        vault = load_vault(settings.secrets_key_file)
        assert vault.open(admin.totp_secret_sealed, context=totp_context("tanaka")) == secret
        record = s.execute(
            text(
                "SELECT actor, actor_id, action, details FROM audit_log WHERE object_id = 'tanaka'"
            )
        ).one()
        assert record[:3] == ("system", "cli:add-staff", "create_account")
        assert login not in str(record) and secret not in str(record)
        assert s.query(AuditRecord).count() == 1
    engine.dispose()
    # The same user ID again: refused, nothing printed but the reason.
    again = run(*args, "--settings", settings_file)
    assert again.exit_code == 2  # type: ignore[attr-defined]
    assert "'tanaka' is already taken" in again.output  # type: ignore[attr-defined]
    assert "password" not in again.output  # type: ignore[attr-defined]
    staff = run(
        "add-staff",
        "sato",
        "--name",
        "佐藤",
        "--email",
        "sato@fed.example",
        "--settings",
        settings_file,
    )
    assert staff.exit_code == 0 and "staff\tsato" in staff.output  # type: ignore[attr-defined]
    bad = run(
        "add-staff", "Bad ID", "--name", "x", "--email", "x@f.example", "--settings", settings_file
    )
    assert bad.exit_code == 2 and "3-32 characters" in bad.output  # type: ignore[attr-defined]
    bad = run("add-staff", "kato", "--name", "加藤", "--email", "nope", "--settings", settings_file)
    assert bad.exit_code == 2 and "not a mail address" in bad.output  # type: ignore[attr-defined]


def test_import_accounts_shows_progress_and_checks_before_hashing(
    settings_file: Path, tmp_path: Path
) -> None:
    run("init-db", "--settings", settings_file)
    rows = ["種別,番号,名称,住所,電話番号,メールアドレス"] + [
        f"事業所,{1330000000 + i},事業所{i},東京都港区1-{i},03-1111-{i:04d},o{i}@example.jp"
        for i in range(12)
    ]
    path = tmp_path / "many.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    result = CliRunner().invoke(
        main, ["ra", "import-accounts", str(path), "--settings", str(settings_file)]
    )
    assert result.exit_code == 0, result.output
    progress = [line for line in result.output.splitlines() if line.startswith("hashing")]
    assert progress and progress[-1].startswith("hashing passwords: 12/12 accounts (100%")
    assert "Imported 12 account(s)" in result.output
    big = tmp_path / "big.csv"
    with big.open("wb") as out:
        out.truncate(11 * 1024 * 1024)
    result = CliRunner().invoke(
        main, ["ra", "import-accounts", str(big), "--settings", str(settings_file)]
    )
    assert result.exit_code == 2 and "more than the 10.0 MiB" in result.output


def test_show_an_id_out_of_range_is_a_usage_error(settings_file: Path) -> None:
    run("init-db", "--settings", settings_file)
    result = CliRunner().invoke(
        main, ["ra", "show", "99999999999999999999", "--settings", str(settings_file)]
    )
    assert result.exit_code == 2 and "is not in the range" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
