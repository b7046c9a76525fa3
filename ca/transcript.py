"""Ceremony transcripts: an append-only, hash-chained log, signed when the ceremony ends.

Every step of a key ceremony (who was present, which key was made, which certificate or CRL
was signed, with the SHA-256 of every file written) is one JSON line.  Each line carries the
SHA-256 of the previous line's canonical form, so editing, deleting, reordering or truncating
lines breaks the chain.  At the end the whole file is signed with a CA key of the ceremony as a
detached CMS SignedData (RFC 5652, through :mod:`signer.cms`) next to it (``.p7s``), so a
truncation at a line boundary is caught as well.  :func:`verify_transcript` checks both and
names the first bad line.

The transcripts of one CA home form a chain too: the ``begin`` line of each (format 2) names
the transcript before it and the SHA-256 of that file, which its signature covers.
:func:`verify_chain` walks the home's transcripts in order and reports one that is missing,
moved or replaced.  Transcripts of format 1 (before the link existed) carry no link; they can
only come before the first linked one, which links to the last of them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from shomei.errors import AlreadyExists, MalformedInput, NotFound, VerificationFailed
from shomei.files import read_bytes
from signer import cms
from signer.keys import SigningKey

GENESIS = "0" * 64
# A transcript is a few dozen lines (the ceremony file included); far larger is not one.
MAX_SIZE = 16 << 20
FORMAT = "shomei-ceremony-transcript/2"
FORMAT_1 = "shomei-ceremony-transcript/1"


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def file_digest(path: Path) -> str:
    """SHA-256 of a file, hex, for the transcript."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Transcript:
    """An open transcript file to which ceremony steps are appended as they happen.

    Lines are flushed and fsynced one by one: if the machine dies mid-ceremony the transcript
    still shows how far it got (unsigned, which :func:`verify_transcript` reports).
    """

    def __init__(
        self,
        path: Path,
        *,
        ceremony: str,
        now: dt.datetime,
        previous: dict[str, str] | None = None,
    ) -> None:
        """Start the transcript ``path``; ``previous`` is :func:`link_to` the one before it."""
        if path.exists():
            raise AlreadyExists(
                f"transcript already exists: {path}",
                message_ja=f"記録ファイルが既に存在します: {path}",
                path=str(path),
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._prev = GENESIS
        self._seq = 0
        self._file = path.open("x", encoding="utf-8")
        self.append("begin", now=now, format=FORMAT, ceremony=ceremony, previous=previous)

    def append(self, event: str, *, now: dt.datetime, **details: Any) -> None:
        """Add one step; ``details`` must be JSON-serialisable."""
        record: dict[str, Any] = {
            "seq": self._seq,
            "time": now.astimezone(dt.UTC).isoformat(),
            "event": event,
            "details": details,
            "prev": self._prev,
        }
        # Each line carries its own hash (over the line without it) and the previous line's,
        # so an edit is named at the edited line, a removal or a move where the chain breaks.
        record["hash"] = hashlib.sha256(_canonical(record)).hexdigest()
        self._file.write(_canonical(record).decode() + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._prev = record["hash"]
        self._seq += 1

    def sign_and_close(
        self, *, key: SigningKey, certificate: x509.Certificate, now: dt.datetime
    ) -> Path:
        """Append the end line, close the file and write its detached signature (``.p7s``)."""
        self.append("end", now=now, signer=certificate.subject.rfc4514_string(), head=self._prev)
        self._file.close()
        signature = cms.sign(
            self.path.read_bytes(),
            key=key,
            certificate=certificate,
            detached=True,
            signing_time=now,
        )
        sig_path = self.path.with_name(self.path.name + ".p7s")
        with sig_path.open("xb") as f:
            f.write(signature)
        return sig_path

    def abandon(self, *, now: dt.datetime, reason: str) -> None:
        """Record why the ceremony stopped and close the transcript unsigned."""
        if not self._file.closed:
            self.append("abandoned", now=now, reason=reason)
            self._file.close()


def link_to(path: Path) -> dict[str, str]:
    """What a new transcript records about the one before it: its name and SHA-256."""
    return {"file": path.name, "sha256": file_digest(path)}


def transcripts_in(folder: Path) -> list[Path]:
    """The transcripts in ``folder``, in the order they were made (their names start with
    the time, and a ceremony refuses to run with a clock behind the last transcript)."""
    return sorted(folder.glob("*.log")) if folder.is_dir() else []


@dataclass(frozen=True)
class TranscriptReport:
    """What :func:`verify_transcript` established."""

    path: Path
    lines: int
    ceremony: str
    signer: x509.Certificate
    started: dt.datetime
    ended: dt.datetime
    format: str = FORMAT
    previous: dict[str, str] | None = None
    records: tuple[dict[str, Any], ...] = ()


# Every line of a transcript has these keys; a first line without them is not a transcript.
_RECORD_KEYS = frozenset({"seq", "prev", "hash", "event"})


def _not_a_transcript(path: Path) -> MalformedInput:
    """The input is not a transcript at all, so nothing could be checked (exit 2); damage to
    a transcript after its first line is tampering (VerificationFailed, exit 1)."""
    return MalformedInput(
        f"{path.name} is not a ceremony transcript (empty, or its first line is not a "
        "transcript line)",
        message_ja=f"{path.name} は儀式の記録ではありません"
        "(空、または 1 行目が記録の行ではありません)",
        path=str(path),
    )


def verify_transcript(
    path: Path, *, trusted: list[x509.Certificate] | None = None
) -> TranscriptReport:
    """Check the hash chain and the signature of a transcript; raise on any problem.

    ``trusted``: the CA certificates allowed to have signed it (the CA home's certificates);
    ``None`` accepts any signer whose signature is valid (the chain is still checked).
    """
    # A folder, a FIFO or a file over MAX_SIZE is refused before it is read.
    data = read_bytes(path, what="transcript", what_ja="儀式の記録", limit=MAX_SIZE)
    if not data.strip():
        raise _not_a_transcript(path)
    prev = GENESIS
    records: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            if number == 1:  # not a transcript at all: nothing could be checked (exit 2)
                raise _not_a_transcript(path) from exc
            # A transcript damaged after its first line was altered or cut (exit 1), as a
            # line changed into other valid JSON is.
            raise VerificationFailed(
                f"{path.name}: line {number} was altered (it is no longer JSON)",
                message_ja=f"{path.name}: {number} 行目が改変されています(JSON ではありません)",
                line=number,
            ) from exc
        if number == 1 and not (isinstance(record, dict) and _RECORD_KEYS <= record.keys()):
            raise _not_a_transcript(path)
        if not isinstance(record, dict) or _canonical(record) != line:
            raise VerificationFailed(
                f"{path.name}: line {number} was altered",
                message_ja=f"{path.name}: {number} 行目が改変されています",
                line=number,
            )
        body = {k: v for k, v in record.items() if k != "hash"}
        if record.get("hash") != hashlib.sha256(_canonical(body)).hexdigest():
            raise VerificationFailed(
                f"{path.name}: line {number} was altered",
                message_ja=f"{path.name}: {number} 行目が改変されています",
                line=number,
            )
        if record.get("prev") != prev or record.get("seq") != number - 1:
            raise VerificationFailed(
                f"{path.name}: the chain breaks at line {number} (a line before it was "
                "removed, or lines were moved)",
                message_ja=f"{path.name}: {number} 行目で連鎖が途切れています(行の削除・入替)",
                line=number,
            )
        prev = record["hash"]
        records.append(record)
    if not records or records[0].get("event") != "begin":
        raise VerificationFailed(
            f"{path.name}: does not start with a begin line",
            message_ja=f"{path.name}: 開始行がありません",
        )
    if records[-1].get("event") != "end":
        raise VerificationFailed(
            f"{path.name}: the ceremony did not end (truncated or abandoned transcript)",
            message_ja=f"{path.name}: 儀式が完了していません(切り詰め、または中断)",
        )
    sig_path = path.with_name(path.name + ".p7s")
    if not sig_path.is_file():
        raise VerificationFailed(
            f"{path.name}: its signature {sig_path.name} is missing",
            message_ja=f"{path.name}: 署名ファイル {sig_path.name} がありません",
        )
    signature = read_bytes(
        sig_path, what="transcript signature", what_ja="記録の署名", limit=MAX_SIZE
    )
    result = cms.verify(signature, content=data)
    if trusted is not None and result.signer not in trusted:
        raise VerificationFailed(
            f"{path.name}: signed by {result.signer.subject.rfc4514_string()}, not by a CA of "
            "this CA home",
            message_ja=f"{path.name}: この認証局以外の鍵で署名されています",
        )
    begin = records[0].get("details")
    begin = begin if isinstance(begin, dict) else {}
    previous = begin.get("previous")
    if begin.get("format") not in (FORMAT, FORMAT_1) or (
        previous is not None
        and not (
            isinstance(previous, dict)
            and isinstance(previous.get("file"), str)
            and isinstance(previous.get("sha256"), str)
        )
    ):
        raise MalformedInput(
            f"{path.name}: unknown transcript format {begin.get('format')!r}",
            message_ja=f"{path.name}: 不明な記録形式です: {begin.get('format')!r}",
        )
    try:
        started = dt.datetime.fromisoformat(records[0]["time"])
        ended = dt.datetime.fromisoformat(records[-1]["time"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedInput(
            f"{path.name}: a line has no valid time",
            message_ja=f"{path.name}: 時刻が不正な行があります",
        ) from exc
    return TranscriptReport(
        path=path,
        lines=len(records),
        ceremony=str(begin.get("ceremony")),
        signer=result.signer,
        started=started,
        ended=ended,
        format=str(begin["format"]),
        previous=previous,
        records=tuple(records),
    )


def verify_chain(
    folder: Path, *, trusted: list[x509.Certificate] | None = None
) -> list[TranscriptReport]:
    """Verify every transcript in ``folder`` and the links between them; raise on any problem.

    Each transcript must be valid (:func:`verify_transcript`), and each one of format 2 must
    name the transcript just before it, with that file's SHA-256 (or none, if it is the
    first).  A deleted, moved, added or replaced transcript breaks a link and is reported.
    """
    paths = transcripts_in(folder)
    if not paths:
        raise NotFound(f"no transcripts in {folder}", message_ja="儀式の記録がありません")
    reports: list[TranscriptReport] = []
    for path in paths:
        report = verify_transcript(path, trusted=trusted)
        before = reports[-1] if reports else None
        named = f"{report.started.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}-{report.ceremony}.log"
        if report.format != FORMAT_1 and path.name != named:
            raise VerificationFailed(
                f"{path.name} was renamed: its transcript is {named}",
                message_ja=f"{path.name} は改名されています(本来の名前は {named})",
            )
        if report.format == FORMAT_1:
            if before is not None and before.format != FORMAT_1:
                raise VerificationFailed(
                    f"{path.name}: an unlinked (format 1) transcript after the linked "
                    f"{before.path.name}: it was added or renamed",
                    message_ja=f"{path.name}: 連結のない旧形式の記録が {before.path.name} の"
                    "後にあります(追加または改名されています)",
                )
        elif before is None:
            if report.previous is not None:
                raise VerificationFailed(
                    f"{path.name} follows {report.previous['file']}, which is missing",
                    message_ja=f"{path.name} の前の記録 {report.previous['file']} がありません",
                )
        elif report.previous is None:
            raise VerificationFailed(
                f"{path.name} says it is the first transcript, but {before.path.name} comes "
                "before it (a transcript was added or renamed)",
                message_ja=f"{path.name} は最初の記録のはずですが、前に {before.path.name} が"
                "あります(記録の追加または改名)",
            )
        elif report.previous["file"] != before.path.name:
            raise VerificationFailed(
                f"{path.name} follows {report.previous['file']}, but {before.path.name} comes "
                "before it (a transcript is missing, or files were renamed)",
                message_ja=f"{path.name} の前の記録は {report.previous['file']} のはずですが、"
                f"{before.path.name} があります(記録の欠落または改名)",
            )
        elif report.previous["sha256"] != file_digest(before.path):
            raise VerificationFailed(
                f"{path.name} follows another {before.path.name} than the one present "
                "(it was replaced)",
                message_ja=f"{path.name} の前の記録 {before.path.name} が差し替えられています",
            )
        reports.append(report)
    return reports


def recorded_digests(reports: list[TranscriptReport], event: str, **match: str) -> set[str]:
    """The ``sha256`` values of every ``event`` line (whose details include ``match``)."""
    found: set[str] = set()
    for report in reports:
        for record in report.records:
            details = record.get("details")
            if record.get("event") != event or not isinstance(details, dict):
                continue
            if all(details.get(k) == v for k, v in match.items()) and "sha256" in details:
                found.add(str(details["sha256"]))
    return found


def unrecorded_files(home: Path, reports: list[TranscriptReport]) -> list[Path]:
    """CA certificates and root CRLs of CA home ``home`` that no transcript records.

    Only ceremonies make them, so one that no transcript names means the transcript of the
    ceremony that made it is gone: this catches the deletion of the *last* transcript, which
    no later link could.
    """
    certificates = recorded_digests(reports, "certificate-signed")
    root_crls = recorded_digests(reports, "crl-signed", ca="root")
    missing = [
        path
        for which in ("root", "issuing")
        if (path := home / which / f"{which}.crt").is_file()
        and file_digest(path) not in certificates
    ]
    missing += [
        p for p in sorted((home / "crl" / "root").glob("*.crl")) if file_digest(p) not in root_crls
    ]
    return missing
