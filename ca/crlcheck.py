"""A CRL never goes backwards: the CRL folder is evidence the ledger must agree with.

Every CRL the CA issued is kept as ``NUMBER.crl`` in its CRL folder.  Before anything is
signed, :func:`newest_crl` checks the folder against the ledger:

- once the ledger has issued a CRL, the folder must exist and hold that CRL unchanged (a lost
  or older CRL folder is restored, never silently started again);
- the newest CRL in the folder must be a CRL of this CA (signature checked, RFC 5280 §5.1.1.3);
- every serial it lists must be revoked in the ledger.  A ledger that forgot one is older than
  the folder (restored from an older backup) and would leave the revocation off the next CRL.

When a CRL is issued, :func:`require_listed` then checks the new list against that newest CRL:
each serial listed there is listed again, unless the ledger shows that its certificate expired
more than ``keep_after_expiry`` before the new thisUpdate (RFC 5280 §3.3 lets the CA drop it
then).  The first CRL after the ceremony has nothing before it, and expired entries dropping
off is the only way a CRL gets shorter.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

from cryptography import x509

from ca.ledger import Ledger
from ca.ledger_record import GUIDE, GUIDE_JA
from ca.settings import CASettings
from crl.index import some_serials as some
from crl.reader import LoadedCrl, load_crl
from shomei.errors import ShomeiError, StateError


def crl_folder(settings: CASettings) -> Path:
    """Where every CRL is kept as ``NUMBER.crl`` (``crl/`` beside the ledger by default)."""
    return settings.crl_dir or settings.ledger.parent / "crl"


def highest_on_disk(folder: Path) -> int:
    """The highest ``NUMBER`` of the ``NUMBER.crl`` files in ``folder`` (0 if none)."""
    numbers = [int(p.stem) for p in folder.glob("*.crl") if p.stem.isdigit()]
    return max(numbers, default=0)


def _restore_folder(folder: Path, why: str, why_ja: str) -> StateError:
    return StateError(
        f"{why}; restore the CRL folder {folder} from the newest backup ({GUIDE})",
        message_ja=f"{why_ja}。CRL フォルダ {folder} を最新のバックアップから復元してください"
        f"({GUIDE_JA})",
        path=str(folder),
    )


def newest_crl(ledger: Ledger, folder: Path, issuer: x509.Certificate) -> LoadedCrl | None:
    """The newest CRL in ``folder``, after checking the folder against ``ledger``.

    None before the first CRL.  Raises :class:`StateError` (see the module docstring).
    """
    last = ledger.last_crl()
    if last is None and not folder.exists():
        return None
    if folder.exists() and not folder.is_dir():
        raise _restore_folder(
            folder,
            f"the CRL folder {folder} is not a folder",
            f"CRL フォルダ {folder} がフォルダではありません",
        )
    if not folder.is_dir():
        assert last is not None  # no folder and no CRL returned above
        raise _restore_folder(
            folder,
            f"the CRL folder {folder} is missing, but the ledger issued CRL number {last.number}",
            f"CRL フォルダ {folder} がありませんが、台帳には CRL 番号 {last.number} の発行が"
            "記録されています",
        )
    if last is not None:
        kept = folder / f"{last.number}.crl"
        try:
            digest = hashlib.sha256(kept.read_bytes()).hexdigest()
        except OSError:
            digest = None
        if digest != last.sha256:
            state, state_ja = (
                ("differs", "内容が違います") if digest else ("is missing", "ありません")
            )
            raise _restore_folder(
                folder,
                f"CRL number {last.number} that the ledger issued {state} in {kept}",
                f"台帳が発行した CRL 番号 {last.number} が {kept} に{state_ja}",
            )
    number = highest_on_disk(folder)
    if number == 0:
        return None
    path = folder / f"{number}.crl"
    try:
        loaded = load_crl(path.read_bytes(), issuer=issuer)
    except (OSError, ShomeiError) as exc:
        why = exc.message if isinstance(exc, ShomeiError) else exc.strerror
        raise StateError(
            f"{path}, the newest file in the CRL folder, is not a readable CRL of this CA "
            f"({why}); move it out of the folder or restore the folder from the newest backup",
            message_ja=f"CRL フォルダの最新ファイル {path} はこの CA の CRL として読めません。"
            "フォルダから移すか、最新のバックアップから復元してください",
            path=str(path),
        ) from exc
    revoked = ledger.revoked_serials()
    unknown = sorted(s for s in loaded.index if s not in revoked)
    if unknown:
        raise StateError(
            f"the CA ledger {ledger.path} does not know {len(unknown)} revocation(s) listed "
            f"on CRL number {loaded.number} ({some(unknown)}): it is older than the CRL folder; "
            f"restore the newest ledger backup ({GUIDE})",
            message_ja=f"CA 台帳 {ledger.path} は CRL 番号 {loaded.number} に載っている "
            f"{len(unknown)} 件の失効({some(unknown)})を知りません。台帳が CRL フォルダより"
            f"古い状態です。最新の台帳バックアップから復元してください({GUIDE_JA})",
            path=str(ledger.path),
            serials=[format(s, "x") for s in unknown],
        )
    return loaded


def require_listed(
    listed: set[int], newest: LoadedCrl | None, ledger: Ledger, *, cutoff: dt.datetime
) -> None:
    """Refuse a new CRL listing fewer unexpired serials than ``newest`` did.

    ``cutoff`` is the new thisUpdate minus ``keep_after_expiry``: a serial whose certificate
    expired before it may be left off.
    """
    if newest is None:
        return
    dropped = [s for s in newest.index if s not in listed]
    kept: list[int] = []
    for serial in dropped:
        record = ledger.serial(serial)
        if record is None or record.not_after is None or record.not_after >= cutoff:
            kept.append(serial)
    if kept:
        kept.sort()
        raise StateError(
            f"the new CRL would leave out {len(kept)} serial(s) listed on CRL number "
            f"{newest.number} whose certificates have not expired ({some(kept)}); nothing was "
            f"signed; restore the newest ledger backup ({GUIDE})",
            message_ja=f"新しい CRL は、CRL 番号 {newest.number} に載っている有効期限内の "
            f"{len(kept)} 件({some(kept)})を落としてしまうため署名しません。最新の台帳"
            f"バックアップから復元してください({GUIDE_JA})",
            serials=[format(s, "x") for s in kept],
        )


__all__ = ["crl_folder", "highest_on_disk", "newest_crl", "require_listed"]
