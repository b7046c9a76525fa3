"""Helpers for the crash and recovery tests of the RA↔CA link.

:func:`private_ca_home` copies the session's CA home (made once by a real ceremony) so that a
test may crash its CA, fill its disk or read its ledger without meeting other tests;
:func:`write_ra_toml` writes the RA settings as the ``ra.toml`` that ``shomei ra …`` reads;
:func:`ledger_facts` and :func:`check_ca_and_ra` state the invariants every recovery must
reach: one signed serial per request, none lost, nothing unfinished.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select

from ra.ca_link.identity import load_link_identity
from ra.lifecycle import Status
from ra.settings import RASettings
from ra.store import audit
from ra.store.models import Application, CaBatch, Certificate
from tests.ra.ca_fixture import CaHome
from tests.ra.conftest import Database
from tests.ra_profile import RA_REQUIRED


def private_ca_home(ca: CaHome, folder: Path) -> CaHome:
    """A copy of the CA home ``ca`` (and its shares and link identity) inside ``folder``."""
    shutil.copytree(ca.folder, folder)

    def moved(path: Path) -> Path:
        return folder / path.relative_to(ca.folder)

    return replace(
        ca,
        folder=folder,
        home=moved(ca.home),
        shares=tuple(moved(p) for p in ca.shares),
        issuing_cert=moved(ca.issuing_cert),
        link=replace(
            ca.link,
            key=moved(ca.link.key),
            passphrase=moved(ca.link.passphrase),
            certificate=moved(ca.link.certificate),
        ),
    )


def write_ra_toml(settings: RASettings, path: Path) -> Path:
    """``settings`` as an ``ra.toml`` file (the parts the link tests use)."""
    link = settings.link

    def text(value: object) -> str:
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines = [
        "[ra]",
        f"database_url = {text(settings.database_url)}",
        f"data_dir = {text(settings.data_dir)}",
        RA_REQUIRED,
        "",
        "[ra.link]",
        f"mode = {text(link.mode)}",
        f"ra_name = {text(link.ra_name)}",
    ]
    for key in ("ca_home", "ca_certificate", "link_key", "link_key_passphrase_file"):
        if getattr(link, key) is not None:
            lines.append(f"{key} = {text(getattr(link, key))}")
    for key in ("link_certificate", "outbox", "inbox"):
        if getattr(link, key) is not None:
            lines.append(f"{key} = {text(getattr(link, key))}")
    if link.ca_share_files:
        lines.append("ca_share_files = [" + ", ".join(text(p) for p in link.ca_share_files) + "]")
    lines += ["", "[ra.mail]", f"message_id_domain = {text(settings.mail.message_id_domain)}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class LedgerFacts:
    signed: dict[str, list[str]]  # request id -> signed serials (hex)
    revoked: set[str]
    reserved: int  # serials reserved and never signed nor voided
    unfinished: int  # batches begun and never finished


def ledger_facts(ca: CaHome) -> LedgerFacts:
    """What the CA ledger of ``ca`` says, read straight from the file."""
    db = sqlite3.connect(f"file:{ca.home / 'ledger.sqlite'}?mode=ro", uri=True)
    try:
        signed: dict[str, list[str]] = {}
        for request_id, serial in db.execute(
            "SELECT request_id, serial FROM serials WHERE state = 'signed'"
        ):
            signed.setdefault(request_id, []).append(format(int(serial, 16), "x"))
        revoked = {
            format(int(s, 16), "x")
            for (s,) in db.execute("SELECT serial FROM serials WHERE revoked_at IS NOT NULL")
        }
        reserved = db.execute("SELECT count(*) FROM serials WHERE state = 'reserved'")
        unfinished = db.execute("SELECT count(*) FROM batches WHERE outcome != 'done'")
        return LedgerFacts(signed, revoked, reserved.fetchone()[0], unfinished.fetchone()[0])
    finally:
        db.close()


def check_ca_and_ra(
    database: Database, settings: RASettings, ca: CaHome, issued: list[int]
) -> None:
    """Every application of ``issued`` is 発行済み with one certificate; the CA signed each
    request once (one signed serial per request id), and every signed serial is in the RA or
    revoked; nothing is left reserved, unfinished or waiting; the audit chain is whole."""
    facts = ledger_facts(ca)
    assert facts.reserved == 0 and facts.unfinished == 0
    twice = {r: s for r, s in facts.signed.items() if len(s) > 1}
    assert not twice, f"signed twice: {twice}"
    with database.factory() as s:
        apps = s.execute(
            select(Application.id, Application.request_id, Application.status).where(
                Application.id.in_(issued)
            )
        ).all()
        assert Counter(st for _, _, st in apps) == Counter({Status.ISSUED: len(issued)})
        certs = dict(s.execute(select(Certificate.application_id, Certificate.serial_hex)).all())
        for app_id, request_id, _ in apps:
            assert facts.signed[request_id] == [certs[app_id]]
        in_ra = set(certs.values())
        lost = {x for xs in facts.signed.values() for x in xs} - in_ra - facts.revoked
        assert not lost, f"signed but neither in the RA nor revoked: {lost}"
        pending = s.execute(select(CaBatch.batch_id).where(CaBatch.imported_at.is_(None))).all()
        assert not pending
        audit.verify(s, trusted=[load_link_identity(settings.link).certificate])


__all__ = [
    "LedgerFacts",
    "check_ca_and_ra",
    "ledger_facts",
    "private_ca_home",
    "write_ra_toml",
]
