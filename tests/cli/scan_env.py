"""The federation the input scan runs against, and how the scan feeds each command.

:func:`build_template` makes a whole demonstration federation (``shomei demo``) and adds what
the commands read that the demo does not leave: a request batch signed with the RA's link
key, an accounts CSV, a sealed notice, a PEM key, ceremony files for a dry run.  Each case of
the scan works on a copy of it (:func:`copy_env`).

:data:`SCENARIOS` says, per command of the ``shomei`` tree, one or more command lines that
work on the template (their exit code when nothing is mutated) and what each path parameter
is: an input file, a folder read, an output file, an output folder; and, for an input, a
valid file of another kind ("wrong format").  A command with a path parameter that no
scenario names fails ``test_every_file_parameter_is_fed``: a new command comes with its line
here.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import click

Role = Literal["input", "folder", "output", "out_folder"]
# What an input's content may be: "structured" (a certificate, a CRL, a batch: anything else
# is bad input, exit 2), "verified" (a claim under verification: any change is found, exit 1)
# or "opaque" (a claim to sign, a document to seal: any bytes are a valid value).
Content = Literal["structured", "verified", "opaque"]

MUTATIONS: dict[Role, tuple[str, ...]] = {
    "input": (
        "empty",
        "random",
        "truncated",
        "wrong",
        "huge",
        "directory",
        "fifo",
        "unreadable",
        "badname",
    ),
    "folder": ("file", "empty", "fifo", "unreadable", "badname"),
    "output": ("exists", "directory", "fifo", "parent_file", "unwritable"),
    "out_folder": ("file", "fifo", "nonempty", "unwritable"),
}
CONTENT_MUTATIONS = frozenset({"empty", "random", "truncated", "wrong", "badname"})
HUGE = 8 << 30  # a sparse file far over every cap; it costs no disk
BADNAME = os.fsdecode(b"\xff\xfe-")  # a prefix that is not UTF-8 (PEP 383 surrogates)


@dataclass(frozen=True)
class Slot:
    """One path the scan mutates: a parameter of the command, or a file it reads inside."""

    role: Role
    path: str  # relative to the environment
    wrong: str | None = None  # a valid file of another kind, for "wrong"
    content: Content = "structured"
    # Outcomes other than "one line, exit 2, nothing changed", with the reason why.
    expect: dict[str, tuple[int | None, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A command line that works on the template; ``{name}`` stands for slot ``name``."""

    argv: tuple[str, ...]
    slots: dict[str, Slot]
    inner: dict[str, Slot] = field(default_factory=dict)  # files read that are not parameters
    base_exit: int | None = 0  # None: the unmutated line is not run (say why in skip_base)
    skip_base: str = ""
    # Outputs the command writes whatever the verdict (a verification report): not "changes".
    writes: tuple[str, ...] = ()

    def args(self, env: Path, override: dict[str, str] | None = None) -> list[str]:
        values = {name: str(env / slot.path) for name, slot in self.slots.items()}
        values.update(override or {})
        return [re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], a) for a in self.argv]


VERIFIED_CLAIM = {
    "huge": (2, "a claim over the cap is refused before it is read"),
}
BROKEN_PROFILE = {
    m: (1, "status checks the CA and finds that it cannot issue (a broken profile): exit 1")
    for m in MUTATIONS["input"]
}
ANY_TEXT_IS_A_PIN = {
    m: (None, "any line of text is a PIN, and this CA's key takes none: as without mutation")
    for m in ("truncated", "wrong")
}
TRANSCRIPT_EXPECT = {
    "truncated": (1, "a transcript cut short is tampering evidence: checked and found bad"),
}


UNKNOWN_BATCH = "00000000-0000-4000-8000-000000000000"


def _after_batch(slot: Slot) -> Slot:
    """A key input (share, PIN) of a command that looks the batch up first: with the unknown
    batch of the scan it is refused for that, in one line, before the key input is read
    (the same reading of shares and PINs is scanned through ``ca sign-batch``)."""
    reason = (2, "the unknown batch is refused before the key input is read")
    return dataclasses.replace(slot, expect={m: reason for m in MUTATIONS["input"]})


def _share(name: str) -> Slot:
    return Slot("input", f"custodians/issuing-share-{name}.txt", wrong="pin.txt")


SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "ca sign-batch": (
        Scenario(
            (
                "ca",
                "sign-batch",
                "{in_file}",
                "{out_file}",
                "--ca-home",
                "{ca_home}",
                "--share-file",
                "{share_files}",
                "--share-file",
                "{share2}",
            ),
            {
                "in_file": Slot("input", "batch.p7m", wrong="issuing.crl"),
                "out_file": Slot("output", "result.p7m"),
                "ca_home": Slot("folder", "ca-home"),
                "share_files": _share("1-of-3"),
                "share2": _share("3-of-3"),
            },
            inner={"ca.toml": Slot("input", "ca-home/ca.toml", wrong="ra.toml")},
            # The CA records every batch it refuses before processing (docs/batch-format.md).
            writes=(
                "ca-home/ledger.sqlite#batch_refusals",
                "ca-home/ledger.sqlite#sqlite_sequence",
            ),
        ),
        Scenario(
            (
                "ca",
                "sign-batch",
                "{in_file}",
                "{out_file}",
                "--ca-home",
                "{ca_home}",
                "--pin-file",
                "{pin_file}",
            ),
            {
                "in_file": Slot("input", "batch.p7m"),
                "out_file": Slot("output", "result.p7m"),
                "ca_home": Slot("folder", "ca-home"),
                "pin_file": Slot("input", "pin.txt", wrong="ra.toml"),
            },
            base_exit=2,  # refused: the demo CA's key is opened with shares, not a PIN
        ),
    ),
    **{
        f"ca {verb}": (
            Scenario(
                (
                    "ca",
                    verb,
                    UNKNOWN_BATCH,
                    "{out_file}",
                    *extra,
                    "--ca-home",
                    "{ca_home}",
                    "--request",
                    "{request_file}",
                    "--share-file",
                    "{share_files}",
                    "--share-file",
                    "{share2}",
                ),
                {
                    "out_file": Slot("output", "result.p7m"),
                    "ca_home": Slot("folder", "ca-home"),
                    "request_file": Slot("input", "batch.p7m", wrong="issuing.crl"),
                    "share_files": _after_batch(_share("1-of-3")),
                    "share2": _after_batch(_share("3-of-3")),
                },
                base_exit=2,  # the template's CA has no unfinished batch: refused, one line
                # A request that is refused is recorded, as for sign-batch (docs/batch-format.md).
                writes=(
                    "ca-home/ledger.sqlite#batch_refusals",
                    "ca-home/ledger.sqlite#sqlite_sequence",
                ),
            ),
            Scenario(
                (
                    "ca",
                    verb,
                    UNKNOWN_BATCH,
                    "{out_file}",
                    *extra,
                    "--ca-home",
                    "{ca_home}",
                    "--pin-file",
                    "{pin_file}",
                ),
                {
                    "out_file": Slot("output", "result.p7m"),
                    "ca_home": Slot("folder", "ca-home"),
                    "pin_file": _after_batch(Slot("input", "pin.txt", wrong="ra.toml")),
                },
                base_exit=2,
            ),
        )
        for verb, extra in (("resume-batch", ()), ("abandon-batch", ("--yes",)))
    },
    "ca issue-crl": (
        Scenario(
            ("ca", "issue-crl", "--ca-home", "{ca_home}", "--pin-file", "{pin_file}"),
            {
                "ca_home": Slot("folder", "ca-home"),
                "pin_file": Slot("input", "pin.txt", wrong="ra.toml"),
            },
            base_exit=2,  # refused: the demo CA's key is opened with shares, not a PIN
        ),
        Scenario(
            (
                "ca",
                "issue-crl",
                "--ca-home",
                "{ca_home}",
                "--share-file",
                "{share_files}",
                "--share-file",
                "{share2}",
            ),
            {
                "ca_home": Slot("folder", "ca-home"),
                "share_files": _share("1-of-3"),
                "share2": _share("3-of-3"),
            },
            inner={
                "issuing key": Slot("input", "ca-home/issuing/issuing.key.p8", wrong="root.pem"),
                "ledger": Slot("input", "ca-home/ledger.sqlite", wrong="ra.sqlite"),
            },
        ),
    ),
    "ca status": (
        Scenario(
            ("ca", "status", "--ca-home", "{ca_home}"),
            {"ca_home": Slot("folder", "ca-home")},
            inner={
                "ca.toml": Slot("input", "ca-home/ca.toml", wrong="ra.toml"),
                "profile": Slot(
                    "input", "ca-home/profiles/office.toml", wrong="ra.toml", expect=BROKEN_PROFILE
                ),
            },
        ),
    ),
    "ca ceremony": (
        Scenario(
            ("ca", "ceremony", "{config_file}", "--dry-run"),
            {"config_file": Slot("input", "conf/new.toml", wrong="ra.toml")},
        ),
        Scenario(
            (
                "ca",
                "ceremony",
                "{config_file}",
                "--dry-run",
                "--share-file",
                "{share_files}",
                "--share-file",
                "{share2}",
                "--pin-file",
                "{pin_file}",
            ),
            {
                "config_file": Slot("input", "conf/crl.toml", wrong="ca-home/ca.toml"),
                "share_files": _share("1-of-3"),
                "share2": _share("3-of-3"),
                "pin_file": Slot("input", "pin.txt", wrong="ra.toml", expect=ANY_TEXT_IS_A_PIN),
            },
        ),
    ),
    "ca verify-log": (
        Scenario(
            ("ca", "verify-log", "--ca-home", "{ca_home}", "{transcripts}"),
            {
                "ca_home": Slot("folder", "ca-home"),
                "transcripts": Slot(
                    "input", "transcript.log", wrong="ra.toml", expect=TRANSCRIPT_EXPECT
                ),
            },
        ),
    ),
    "ca trust-ra": (
        Scenario(
            ("ca", "trust-ra", "--ca-home", "{ca_home}", "{certificate}"),
            {
                "ca_home": Slot("folder", "ca-home"),
                "certificate": Slot("input", "ra-link/link.pem", wrong="issuing.crl"),
            },
        ),
    ),
    "demo": (
        Scenario(
            ("demo", "{folder}"),
            {"folder": Slot("out_folder", "new-demo")},
            base_exit=None,
            skip_base="the template is a demo already (it takes a while)",
        ),
    ),
    "sign": (
        Scenario(
            (
                "sign",
                "{claim}",
                "--p12",
                "{p12}",
                "--password-file",
                "{password_file}",
                "--chain",
                "{chain}",
                "-o",
                "{output}",
            ),
            {
                "claim": Slot("input", "claim.txt", content="opaque"),
                "p12": Slot("input", "office.p12", wrong="office.pem"),
                "password_file": Slot("input", "office.p12.password", wrong="office.p12"),
                "chain": Slot("input", "issuing.pem", wrong="issuing.crl"),
                "output": Slot("output", "out.p7s"),
            },
        ),
        Scenario(
            ("sign", "{claim}", "--key", "{key}", "--cert", "{cert}", "-o", "{output}"),
            {
                "claim": Slot("input", "claim.txt", content="opaque"),
                "key": Slot("input", "office.key", wrong="office.pem"),
                "cert": Slot("input", "office.pem", wrong="office.key"),
                "output": Slot("output", "out.p7s"),
            },
        ),
        Scenario(
            (
                "sign",
                "{claim}",
                "--pkcs11-module",
                "{pkcs11_module}",
                "--cert",
                "{cert}",
                "--token-label",
                "t",
                "--key-label",
                "k",
                "--pin-file",
                "{pin_file}",
                "-o",
                "{output}",
            ),
            {
                "claim": Slot("input", "claim.txt", content="opaque"),
                "output": Slot("output", "out.p7s"),
                "pkcs11_module": Slot("input", "module.so", wrong="office.pem"),
                "cert": Slot("input", "office.pem"),
                "pin_file": Slot("input", "pin.txt", wrong="ra.toml", expect=ANY_TEXT_IS_A_PIN),
            },
            base_exit=2,  # the stand-in module is not a PKCS#11 library: one line, exit 2
        ),
    ),
    "verify": (
        Scenario(
            (
                "verify",
                "{path}",
                "--signature",
                "{signature}",
                "--trust",
                "{trust}",
                "--crl",
                "{crl}",
                "--untrusted",
                "{untrusted}",
                "--report",
                "{report}",
            ),
            {
                "path": Slot(
                    "input",
                    "claim.txt",
                    content="verified",
                    wrong="issuing.crl",
                    expect={
                        **VERIFIED_CLAIM,
                        "directory": (1, "PATH may be a folder: its unsigned file is invalid"),
                    },
                ),
                "signature": Slot("input", "claim.txt.p7s", wrong="issuing.crl"),
                "trust": Slot("input", "root.pem", wrong="issuing.crl"),
                "crl": Slot("input", "issuing.crl", wrong="root.pem"),
                "untrusted": Slot("input", "issuing.pem", wrong="issuing.crl"),
                "report": Slot("output", "report.csv"),
            },
            writes=("report.csv",),  # the report of whatever was found is the output
        ),
    ),
    "notice seal": (
        Scenario(
            ("notice", "seal", "{document}", "--to", "{to}", "-o", "{output}"),
            {
                "document": Slot("input", "doc.txt", content="opaque"),
                "to": Slot("input", "office.pem", wrong="issuing.crl"),
                "output": Slot("output", "sealed.p7m"),
            },
        ),
    ),
    "notice open": (
        Scenario(
            (
                "notice",
                "open",
                "{sealed}",
                "--p12",
                "{p12}",
                "--password-file",
                "{password_file}",
                "-o",
                "{output}",
            ),
            {
                "sealed": Slot("input", "notice.p7m", wrong="claim.txt.p7s"),
                "p12": Slot("input", "office.p12", wrong="office.pem"),
                "password_file": Slot("input", "office.p12.password", wrong="office.p12"),
                "output": Slot("output", "opened.txt"),
            },
        ),
        Scenario(
            ("notice", "open", "{sealed}", "--key", "{key}", "--cert", "{cert}"),
            {
                "sealed": Slot("input", "notice.p7m"),
                "key": Slot("input", "office.key", wrong="office.pem"),
                "cert": Slot("input", "office.pem", wrong="office.key"),
            },
        ),
    ),
    "ra init-db": (Scenario(("ra", "init-db", "--settings", "{settings_path}"), {}),),
    "ra load-demo": (
        Scenario(
            ("ra", "load-demo", "--settings", "{settings_path}"),
            {},
            base_exit=2,  # refused: the demo federation has its demo accounts already
        ),
    ),
    "ra import-accounts": (
        Scenario(
            ("ra", "import-accounts", "{csv_file}", "--settings", "{settings_path}"),
            {"csv_file": Slot("input", "accounts.csv", wrong="issuing.crl")},
        ),
    ),
    "ra show": (Scenario(("ra", "show", "1", "--settings", "{settings_path}"), {}),),
    "ra verify-audit": (
        Scenario(
            ("ra", "verify-audit", "--settings", "{settings_path}"),
            {},
            inner={"link certificate": Slot("input", "ra-link/link.pem", wrong="issuing.crl")},
        ),
    ),
    "ra export-list": (
        Scenario(
            ("ra", "export-list", "--settings", "{settings_path}", "{out_file}"),
            {"out_file": Slot("output", "list.csv")},
        ),
    ),
    "ra run-job": (
        Scenario(("ra", "run-job", "audit-anchor", "--settings", "{settings_path}"), {}),
    ),
    "ra scheduler": (
        Scenario(
            ("ra", "scheduler", "--settings", "{settings_path}"),
            {},
            base_exit=None,
            skip_base="the scheduler runs until it is stopped",
        ),
    ),
    "ra serve": (
        Scenario(
            ("ra", "serve", "--settings", "{settings_path}", "--bind", "127.0.0.1:0"),
            {},
            base_exit=None,
            skip_base="the web server runs until it is stopped",
        ),
    ),
    "ra register-crl": (
        Scenario(
            ("ra", "register-crl", "{crl_file}", "--settings", "{settings_path}"),
            {"crl_file": Slot("input", "issuing.crl", wrong="root.pem")},
        ),
    ),
    "ra add-staff": (
        Scenario(
            (
                "ra",
                "add-staff",
                "scanadmin",
                "--name",
                "走査 管理者",
                "--email",
                "scan@example.jp",
                "--admin",
                "--settings",
                "{settings_path}",
            ),
            {},
        ),
    ),
    "ra link-status": (Scenario(("ra", "link-status", "--settings", "{settings_path}"), {}),),
    "ra re-request": (
        Scenario(
            ("ra", "re-request", UNKNOWN_BATCH, "--settings", "{settings_path}"),
            {},
            base_exit=2,  # no such batch: the files are read before it is looked up
        ),
    ),
    "ra resend-batch": (
        Scenario(
            ("ra", "resend-batch", UNKNOWN_BATCH, "--settings", "{settings_path}"),
            {},
            base_exit=2,  # no such batch: the files are read before it is looked up
        ),
    ),
    "ra link-identity": (
        Scenario(
            ("ra", "link-identity", "{folder}", "--name", "Scan RA"),
            {
                "folder": Slot(
                    "out_folder",
                    "new-link",
                    expect={"nonempty": (0, "the link files join the others; none is replaced")},
                )
            },
        ),
    ),
}

# Every `shomei ra` command takes the settings file: one slot, added to each of their lines.
for _name, _scenarios in SCENARIOS.items():
    for _scenario in _scenarios:
        if "{settings_path}" in _scenario.argv:
            _scenario.slots.setdefault(
                "settings_path", Slot("input", "ra.toml", wrong="ca-home/ca.toml")
            )

# Failures the scan finds in parts other work is changing, by case id, with where they go.
# Each is an expected failure (strict): when it is fixed the case passes, and the entry goes.
KNOWN: dict[str, str] = {}

# The names of parameters that take a path even when declared as plain strings.
PATHLIKE = re.compile(r"(^|_)(file|files|path|dir|home|folder|settings|output|report)$")


def commands(group: click.Group, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command of the tree under ``group``, by its path (``"ca sign-batch"``)."""
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            yield from commands(command, path + " ")
        else:
            yield path, command


def file_parameters(command: click.Command) -> set[str]:
    """The parameters of ``command`` that name a file or a folder."""
    return {
        p.name
        for p in command.params
        if p.name and (isinstance(p.type, click.Path | click.File) or PATHLIKE.search(p.name))
    }


# -- the environment ------------------------------------------------------------------------


def build_template(folder: Path) -> None:
    """A demo federation in ``folder`` with the extra files the scan's lines read."""
    import datetime as dt

    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        pkcs12,
    )

    from contract.batch import IssueItem, write_request_batch
    from demo.federation import build_demo
    from ra.ca_link.identity import load_link_identity
    from ra.settings import load_ra_settings
    from signer.notices import seal
    from tests.ca.test_signbatch import csr

    build_demo(folder, echo=lambda _line: None, crowd=False)
    settings = load_ra_settings(folder / "ra.toml")
    link = load_link_identity(settings.link)
    now = dt.datetime.now(dt.UTC)
    batch = write_request_batch(
        [IssueItem("scan-1", csr(), "1310000009", "スキャン事業所")],
        ra_name="Shomei Demo RA",
        key=link.key,
        certificate=link.certificate,
        now=now,
    )
    (folder / "batch.p7m").write_bytes(batch)
    password = (folder / "office.p12.password").read_text().strip().encode()
    key, cert, _ = pkcs12.load_key_and_certificates((folder / "office.p12").read_bytes(), password)
    assert key is not None and cert is not None
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    (folder / "office.key").write_bytes(pem)
    (folder / "doc.txt").write_text("新しい証明書発行用パスワード: ABCD-EFGH\n", encoding="utf-8")
    (folder / "notice.p7m").write_bytes(seal((folder / "doc.txt").read_bytes(), recipient=cert))
    (folder / "accounts.csv").write_text(
        "種別,番号,名称,住所,電話番号,メールアドレス\n"
        "事業所,1310000042,スキャン事業所,東京都千代田区1-1,03-0000-0000,scan@office.example\n",
        encoding="utf-8",
    )
    pin = folder / "pin.txt"
    pin.write_text("1234\n")
    pin.chmod(0o600)
    (folder / "module.so").write_bytes(b"\x7fELF not really a PKCS#11 module\n")
    transcript = next((folder / "ca-home" / "transcripts").glob("*.log"))
    shutil.copyfile(transcript, folder / "transcript.log")
    shutil.copyfile(transcript.with_name(transcript.name + ".p7s"), folder / "transcript.log.p7s")
    ceremony = (folder / "conf" / "ceremony.toml").read_text(encoding="utf-8")
    new = re.sub(r"(?m)^ca_home = .*$", 'ca_home = "../new-home"', ceremony)
    new = re.sub(r"(?m)^shares_dir = .*$", 'shares_dir = "../new-shares"', new)
    (folder / "conf" / "new.toml").write_text(new, encoding="utf-8")
    crl = re.sub(r"(?m)^actions = .*$", 'actions = ["issuing-crl"]', ceremony)
    (folder / "conf" / "crl.toml").write_text(crl, encoding="utf-8")


def copy_env(template: Path, target: Path) -> Path:
    """A copy of the template at ``target`` whose settings point into the copy."""
    shutil.copytree(template, target, symlinks=True)
    settings = target / "ra.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace(str(template), str(target)),
        encoding="utf-8",
    )
    return target


SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def _tables(path: Path) -> dict[str, str] | None:
    """A SQLite database as what it holds: each table's rows, hashed (read-only)."""
    import hashlib
    import sqlite3

    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:  # a damaged database (a mutation): compared as bytes
        db.close()
        return None
    try:
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        tables = {}
        for name in names:
            rows = sorted(repr(r) for r in db.execute(f'SELECT * FROM "{name}"'))  # noqa: S608
            tables[name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()
        return tables
    finally:
        db.close()


def snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """What is in ``folder``: each entry's kind, mode and (for files) SHA-256.

    A SQLite database is compared by what it holds, table by table (``path#table``): the
    side files a connection leaves (``-wal``, ``-shm``) are not changes in themselves, while
    rows still in a write-ahead log are.
    """
    import hashlib

    state: dict[str, tuple[str, str]] = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root) / name
            rel = os.fsdecode(path.relative_to(folder))
            if name.endswith(SQLITE_SIDE_FILES):
                continue
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_size > 64 << 20:
                # The sparse files of the "huge" cases: their size and time say enough.
                state[rel] = (f"file {info.st_size} {info.st_mode:o}", str(info.st_mtime_ns))
            elif stat.S_ISREG(info.st_mode):
                data = path.read_bytes()
                tables = _tables(path) if data.startswith(SQLITE_MAGIC) else None
                if tables is not None:
                    state[rel] = (f"sqlite {info.st_mode:o}", "")
                    for table, digest in tables.items():
                        state[f"{rel}#{table}"] = ("table", digest)
                else:
                    state[rel] = (
                        f"file {info.st_size} {info.st_mode:o}",
                        hashlib.sha256(data).hexdigest(),
                    )
            elif stat.S_ISDIR(info.st_mode):
                state[rel] = (f"dir {info.st_mode:o}", "")
            else:
                state[rel] = (f"other {info.st_mode:o}", "")
    return state
