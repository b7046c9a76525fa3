"""The ledger-loss scenario of issue 7, end to end, as the operators would run it.

A demonstration federation is built (``shomei demo``: a real ceremony, an RA with the CA
inline, one office revoked and its revocation on the published CRL).  Then, on a copy of its
CA home, as the review did: the ledger is deleted and ``shomei ca issue-crl`` is run with two
custodian shares; a ledger restored from an older backup is tried; and a CRL that leaves the
revoked serial out, signed with the issuing key directly, is handed to ``shomei ra
register-crl``.  Nothing may be signed, registered or published, and the revoked office's
claim must stay revoked under ``shomei verify``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography import x509

from ca.crls import time_number
from ca.custody import open_ca_key
from ca.custody.shares import parse_share
from ca.settings import load_ca_settings
from cli.main import main
from crl.builder import build_crl
from demo.federation import build_demo

SHARES = ("issuing-share-1-of-3.txt", "issuing-share-3-of-3.txt")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("loss") / "demo"
    build_demo(folder, echo=lambda _: None, crowd=False)
    return folder


def _run(args: list[str]) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _share_args(demo: Path) -> list[str]:
    return [arg for name in SHARES for arg in ("--share-file", str(demo / "custodians" / name))]


def _one_line_refusal(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shomei: "), result.stderr
    return lines[0]


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*"))}


def _copy_ledger(source: Path, target: Path) -> None:
    # The SQLite backup API: what `sqlite3 ledger.sqlite .backup ...` does.
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    src.backup(dst)
    src.close()
    dst.close()


def _remove_ledger(home: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home / 'ledger.sqlite'}{suffix}").unlink(missing_ok=True)


def _verify(demo: Path, claim: str, crl: Path) -> Result:
    return _run(
        [
            "verify",
            demo / claim,
            "--signature",
            demo / f"{claim}.p7s",
            "--trust",
            demo / "root.pem",
            "--crl",
            crl,
        ]
    )


def test_a_lost_or_older_ledger_signs_nothing_and_the_ra_keeps_the_revocation(
    demo: Path, tmp_path: Path
) -> None:
    home = tmp_path / "ca-home"
    shutil.copytree(demo / "ca-home", home)
    crl_folder = home / "crl" / "issuing"
    revoked_cert = x509.load_pem_x509_certificate((demo / "revoked.pem").read_bytes())
    published = demo / "ra-data" / "publish" / "issuing.crl"
    assert _verify(demo, "revoked-claim.txt", published).exit_code == 1

    # 1. The ledger is lost: issue-crl with two shares refuses, and signs and creates nothing.
    backup = tmp_path / "ledger-backup.sqlite"
    _copy_ledger(home / "ledger.sqlite", backup)
    _remove_ledger(home)
    before = _files(crl_folder)
    line = _one_line_refusal(_run(["ca", "issue-crl", "--ca-home", home, *_share_args(demo)]))
    assert "restore" in line and "backup" in line
    assert _files(crl_folder) == before
    assert not (home / "ledger.sqlite").exists()
    assert _one_line_refusal(_run(["ca", "status", "--ca-home", home])).count("restore") == 1

    # 2. The newest backup put back: the CA works again (a CRL that still lists the serial).
    _copy_ledger(backup, home / "ledger.sqlite")
    done = _run(["ca", "issue-crl", "--ca-home", home, *_share_args(demo)])
    assert done.exit_code == 0, done.output
    assert "1 entry" in done.stdout

    # 3. The backup is now older than what the CA did since: it is refused, nothing signed.
    _remove_ledger(home)
    _copy_ledger(backup, home / "ledger.sqlite")
    before = _files(crl_folder)
    line = _one_line_refusal(_run(["ca", "issue-crl", "--ca-home", home, *_share_args(demo)]))
    assert "older" in line and "restore" in line
    assert _files(crl_folder) == before

    # 4. A backup from before the revocation (the serial signed, not yet revoked): refused.
    db = sqlite3.connect(home / "ledger.sqlite")
    db.execute("UPDATE serials SET revoked_at = NULL, crl_entry = NULL")
    db.commit()
    db.close()
    line = _one_line_refusal(_run(["ca", "issue-crl", "--ca-home", home, *_share_args(demo)]))
    assert "restore" in line
    assert _files(crl_folder) == before

    # 5. A CRL that leaves the revoked serial out, signed with the issuing key directly, is
    # handed to the RA anyway: refused, nothing registered or published.
    settings = load_ca_settings(home / "ca.toml")
    shares = [parse_share((demo / "custodians" / n).read_text(encoding="utf-8")) for n in SHARES]
    key = open_ca_key(settings.key, shares=shares)
    issuer = x509.load_pem_x509_certificate(settings.certificate.read_bytes())
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    empty = tmp_path / "empty.crl"
    empty.write_bytes(
        build_crl(
            issuer=issuer,
            key=key,
            number=time_number(now) + 10**12,
            this_update=now,
            next_update=now + dt.timedelta(days=7),
        )
    )
    assert _verify(demo, "revoked-claim.txt", empty).exit_code == 0  # what was at stake
    published_before = published.read_bytes()
    db = sqlite3.connect(demo / "ra.sqlite")
    crls_before = db.execute("SELECT count(*) FROM crls").fetchone()[0]
    db.close()
    line = _one_line_refusal(
        _run(["ra", "register-crl", empty, "--settings", demo / "ra.toml"]), code=1
    )
    assert f"{revoked_cert.serial_number:x}" in line
    db = sqlite3.connect(demo / "ra.sqlite")
    assert db.execute("SELECT count(*) FROM crls").fetchone()[0] == crls_before
    db.close()
    assert published.read_bytes() == published_before

    # 6. The revoked office's claim stays revoked with what the RA publishes.
    assert _verify(demo, "revoked-claim.txt", published).exit_code == 1
    assert _verify(demo, "claim.txt", published).exit_code == 0
