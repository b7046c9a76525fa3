"""Batch verification: a folder of claims checked on every core, with a CSV report for Excel.

A folder holds claim files ``X`` with their detached signatures ``X.p7s`` side by side, and
PDF claims carrying their own PAdES signature, in subfolders too (at any depth, following
symbolic links): claims are named by their path relative to the folder.  Nothing in the
folder is passed over in silence: a subfolder that cannot be listed, a link to nowhere, a
symbolic-link loop, a special file (FIFO, device) each becomes one UNDECIDED row that says
what it is; only hidden names (starting with ".") are left out.  One
:class:`signer.verifier.Verifier` is built
and warmed in the parent process (CRLs loaded, the first signer's chain cached), then the
worker processes are forked from it, so a million-entry CRL is parsed once and shared
copy-on-write rather than once per worker.  Claims go to the workers in chunks; results come
back in any order and are reported in file order.

The report is CSV (RFC 4180) in UTF-8 with a byte-order mark and CRLF line ends, which Excel
opens with Japanese intact; cells that Excel would take for a formula are prefixed with an
apostrophe (CSV injection), by the product's one CSV writer, :mod:`shomei.spreadsheet`.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shomei import files
from shomei.errors import AlreadyExists, Refused, ShomeiError
from shomei.spreadsheet import excel_writer
from signer.verdict import Reason, Status, Verdict
from signer.verifier import MAX_CLAIM_BYTES, Verifier

CHUNK = 32
log = logging.getLogger("shomei.signer.batch")


@dataclass(frozen=True)
class Item:
    """One claim to check: the claim file and its signature file (None: a signed PDF).

    ``label`` is how the report names it (the path relative to the verified folder); an item
    with a ``problem`` is something found in the folder that cannot be checked at all.
    """

    claim: Path
    signature: Path | None
    label: str = ""
    problem: Reason | None = None

    @property
    def name(self) -> str:
        """The label, or the file name; printable even when the name is not UTF-8."""
        return printable(self.label or self.claim.name)


@dataclass(frozen=True)
class Row:
    item: Item
    verdict: Verdict


def printable(text: str) -> str:
    """``text`` with the bytes of any file name that is not UTF-8 shown as ``\\xNN``.

    Such names arrive with surrogate escapes (PEP 383), which neither a UTF-8 report nor a
    terminal can take.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _problem(path: Path, label: str, code: str, en: str, ja: str) -> Item:
    return Item(path, None, label, Reason(code, en, ja))


def find_claims(folder: Path) -> list[Item]:
    """Claims in ``folder`` and its subfolders, sorted by their path relative to ``folder``.

    ``X`` with ``X.p7s`` is a detached claim; a ``.pdf`` without ``.p7s`` is a PAdES claim;
    any other file without ``.p7s`` is an unsigned claim (reported INVALID), and a ``.p7s``
    without its claim is reported UNDECIDED.  Symbolic links are followed; a folder reached a
    second time (a link loop, or two links to one folder) is reported once and not walked
    again.  Whatever cannot be checked is an item with a ``problem`` (see the module).
    """
    if not folder.is_dir():
        raise Refused(f"{folder} is not a folder", message_ja=f"{folder} はフォルダではありません")
    items: list[Item] = []
    seen: set[tuple[int, int]] = set()
    # Real folders are walked before linked ones, so that a folder reached both ways is
    # reported under its own path and the link is the one called "already reached".
    pending: list[Path] = [folder]
    linked: list[Path] = []
    while pending or linked:
        directory = pending.pop() if pending else linked.pop()
        label = directory.relative_to(folder).as_posix()
        try:
            status = directory.stat()
            entries = list(os.scandir(directory))
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            items.append(
                _problem(
                    directory,
                    label,
                    "unreadable_folder",
                    f"the folder cannot be read ({why}); its claims were not checked",
                    f"フォルダを読み取れないため、中の請求ファイルは確認していません({why})",
                )
            )
            continue
        if (status.st_dev, status.st_ino) in seen:
            items.append(
                _problem(
                    directory,
                    label,
                    "folder_seen",
                    "this folder was already reached by another path (symbolic link loop or "
                    "second link); not checked again",
                    "このフォルダは別の経路で既に確認しています(シンボリックリンクのループ"
                    "または重複)。再確認していません",
                )
            )
            continue
        seen.add((status.st_dev, status.st_ino))
        files: dict[str, Path] = {}
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            try:
                # Both follow symbolic links; both are False for a broken link or a loop.
                is_dir, is_file = entry.is_dir(), entry.is_file()
            except OSError:
                is_dir = is_file = False
            if is_dir:
                (linked if entry.is_symlink() else pending).append(path)
            elif is_file:
                files[entry.name] = path
            else:
                items.append(_odd_entry(entry, path, path.relative_to(folder).as_posix()))
        items.extend(_pair(files, folder))
    return sorted(items, key=lambda item: item.label)


def _odd_entry(entry: os.DirEntry[str], path: Path, label: str) -> Item:
    """The problem item for a directory entry that is neither a folder nor a file."""
    if entry.is_symlink():
        return _problem(
            path,
            label,
            "broken_link",
            "a symbolic link whose target does not exist or loops; not checked",
            "リンク先が存在しないかループしているシンボリックリンクです。確認していません",
        )
    return _problem(
        path,
        label,
        "not_a_file",
        "not a regular file (FIFO, socket or device); not checked",
        "通常のファイルではありません(FIFO、ソケット、デバイス)。確認していません",
    )


def _pair(files: dict[str, Path], root: Path) -> list[Item]:
    """Claims and signatures of one folder paired by name (``X`` with ``X.p7s``)."""
    items = []
    for name in sorted(files):
        path = files[name]
        label = path.relative_to(root).as_posix()
        if name.endswith(".p7s"):
            if name[: -len(".p7s")] not in files:
                claim = path.with_name(name[: -len(".p7s")])
                items.append(Item(claim, path, label[: -len(".p7s")]))
            continue
        sig = files.get(name + ".p7s")
        if sig is None and name.lower().endswith(".pdf"):
            items.append(Item(path, None, label))
        else:
            items.append(Item(path, sig or path.with_name(name + ".p7s"), label))
    return items


def check(verifier: Verifier, item: Item) -> Verdict:
    """The verdict on one item (claim file missing or unsigned included).

    One broken file must not stop a batch of a hundred thousand: an unexpected error becomes
    an UNDECIDED row (and a log entry with the traceback) instead of ending the run.
    """
    try:
        return _check(verifier, item)
    except Exception as exc:
        log.exception("unexpected error verifying %s", item.claim)
        return _verdict(
            Status.UNDECIDED,
            "internal_error",
            f"could not be checked (internal error {type(exc).__name__}); please report it",
            f"内部エラー({type(exc).__name__})のため確認できませんでした。ご連絡ください",
        )


def _check(verifier: Verifier, item: Item) -> Verdict:
    if item.problem is not None:
        return Verdict(Status.UNDECIDED, (item.problem,))
    if item.signature is None:
        from signer.pades import verify_pdf

        try:
            data = files.read_bytes(
                item.claim, what="claim", what_ja="請求ファイル", limit=MAX_CLAIM_BYTES
            )
        except ShomeiError as exc:
            return _verdict(Status.UNDECIDED, "malformed", exc.message, exc.message_ja)
        return verify_pdf(data, verifier=verifier)
    if not item.claim.exists():
        return _verdict(
            Status.UNDECIDED,
            "no_claim",
            f"the claim file {item.claim.name} is missing beside its signature",
            f"署名に対応する請求ファイル {item.claim.name} がありません",
        )
    if not item.signature.exists():
        return _verdict(
            Status.INVALID,
            "unsigned",
            f"the claim is not signed ({item.signature.name} is missing)",
            f"請求ファイルに署名がありません({item.signature.name} がありません)",
        )
    return verifier.verify_files(item.claim, item.signature)


def _verdict(status: Status, code: str, en: str, ja: str) -> Verdict:
    return Verdict(status, (Reason(code, en, ja),))


# What the forked workers inherit (set in the parent just before the pool starts): only the
# bounds of each chunk travel to a worker, not the items.
_WORKER: tuple[Verifier, Sequence[Item]] | None = None


def _work(bounds: tuple[int, int]) -> tuple[int, list[Verdict]]:
    assert _WORKER is not None
    verifier, items = _WORKER
    return bounds[0], [check(verifier, items[i]) for i in range(*bounds)]


def verify_items(
    verifier: Verifier,
    items: Sequence[Item],
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Row]:
    """Check ``items`` on ``workers`` processes (default: all cores); rows in input order.

    ``progress`` is called with the number of items finished since the last call.
    """
    global _WORKER
    workers = workers or os.cpu_count() or 1
    verdicts: list[Verdict | None] = [None] * len(items)
    start = 0
    if items:
        # Warm up in the parent: CRLs are loaded and the first chain cached before the fork.
        verdicts[0] = check(verifier, items[0])
        start = 1
        if progress:
            progress(1)
    methods = multiprocessing.get_all_start_methods()
    if workers <= 1 or len(items) - start < 2 * CHUNK or "fork" not in methods:
        for i in range(start, len(items)):
            verdicts[i] = check(verifier, items[i])
            if progress:
                progress(1)
    else:
        # Chunks big enough that messages stay few, small enough to balance the workers.
        size = max(CHUNK, (len(items) - start) // (workers * 16))
        chunks = [(k, min(k + size, len(items))) for k in range(start, len(items), size)]
        _WORKER = (verifier, items)
        # Objects that exist now are shared copy-on-write with the workers; keep the cycle
        # collector of each worker from walking (and so copying) them all.
        gc.freeze()
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for first, done in pool.imap_unordered(_work, chunks):
                    verdicts[first : first + len(done)] = done
                    if progress:
                        progress(len(done))
        finally:
            _WORKER = None
            gc.unfreeze()
    return [Row(item, v) for item, v in zip(items, verdicts, strict=True) if v is not None]


def verify_folder(
    verifier: Verifier,
    folder: Path,
    *,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Row]:
    """Every claim of ``folder`` (see :func:`find_claims`), checked in parallel."""
    return verify_items(verifier, find_claims(folder), workers=workers, progress=progress)


COLUMNS = (
    "claim",
    "signature",
    "status",
    "reason_code",
    "reason_ja",
    "reason_en",
    "signer",
    "serial_hex",
    "signing_time_utc",
)


def _signature_cell(item: Item) -> str:
    if item.problem is not None:
        return ""
    if item.signature is None:
        return "(PDF)"
    return printable(item.name + ".p7s" if item.label else item.signature.name)


def write_report(rows: Sequence[Row], path: Path) -> None:
    """The rows as CSV for Excel: UTF-8 with BOM, CRLF, one line per claim.

    A new file: an existing one is refused (:class:`Refused`), never overwritten.
    """
    try:
        with path.open("x", encoding="utf-8-sig", newline="") as out:
            writer = excel_writer(out)
            writer.writerow(COLUMNS)
            for row in rows:
                v = row.verdict
                writer.writerow(
                    printable(x)
                    for x in (
                        row.item.name,
                        _signature_cell(row.item),
                        v.status.value,
                        ",".join(r.code for r in v.reasons),
                        v.summary("ja") if not v.ok else "",
                        v.summary("en") if not v.ok else "",
                        v.signer_subject,
                        f"{v.signer_serial:x}" if v.signer_serial is not None else "",
                        v.signing_time.isoformat() if v.signing_time else "",
                    )
                )
    except FileExistsError as exc:
        raise AlreadyExists(
            f"the report {path} already exists; it is never overwritten",
            message_ja=f"レポート {path} は既に存在します(上書きしません)",
        ) from exc
    except OSError as exc:
        raise Refused(
            f"cannot write the report {path}: {exc.strerror}",
            message_ja=f"レポート {path} を書き込めません",
        ) from exc


def exit_code(rows: Sequence[Row]) -> int:
    """1 if any claim is INVALID, else 2 if any is UNDECIDED, else 0."""
    statuses = {row.verdict.status for row in rows}
    if Status.INVALID in statuses:
        return 1
    return 2 if Status.UNDECIDED in statuses else 0


__all__ = [
    "COLUMNS",
    "Item",
    "Row",
    "check",
    "exit_code",
    "find_claims",
    "printable",
    "verify_folder",
    "verify_items",
    "write_report",
]
