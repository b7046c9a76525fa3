"""CRL issuance from the CA ledger (RFC 5280 §5): numbered, dated, kept, never overwritten.

:func:`issue_crl` lists every serial the ledger has revoked, except those whose certificate
expired more than ``crl.keep_after_expiry`` ago (RFC 5280 §3.3 lets a CA drop an entry once
the certificate has expired), using the DER entries stored at revocation time so that a CRL
with a million entries costs a join and one signature.  thisUpdate is ``now`` and nextUpdate
``now + crl.validity`` (§5.1.2.4-5).

The cRLNumber (§5.2.3) must increase strictly, also when the ledger is restored from an older
backup, which would forget the last numbers.  Like Let's Encrypt's Boulder, the number is
derived from the issue time: ``max(last + 1, nanoseconds of thisUpdate since the epoch)``,
where "last" is the highest number in the ledger *or* in the CRL folder.  A CRL written
later therefore always has a higher number as long as the clock does not go backwards, and
even then the ledger and the folder carry the sequence on.  The CRL is written as
``NUMBER.crl`` in the CA home's CRL folder, never over an existing file, before the ledger
records it, so a crash in between still leaves the number taken.

A CRL never lists less than the one before it, except entries past ``keep_after_expiry``:
before signing, the CRL folder is checked against the ledger and the new list against the
newest CRL in the folder (:mod:`ca.crlcheck`), so a ledger restored from an older backup
stops here instead of dropping a revocation.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Literal

from ca.context import CA
from ca.crlcheck import highest_on_disk, newest_crl, require_listed
from ca.ledger import CrlRecord
from ca.lint import lint_crl, require_clean
from crl.builder import build_crl
from shomei.clock import UTC, require_aware
from shomei.files import write_new

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
# pkilint reads the whole CRL into Python objects; above this many entries the CRL is not
# linted (every entry is the output of one encoder, linted at smaller sizes in the tests).
LINT_LIMIT = 20_000


def time_number(this_update: dt.datetime) -> int:
    """Nanoseconds from the Unix epoch to ``this_update`` (fits 20 octets until far beyond)."""
    delta = require_aware(this_update) - _EPOCH
    return (delta // dt.timedelta(microseconds=1)) * 1000


def next_crl_number(ca: CA, this_update: dt.datetime) -> int:
    """The cRLNumber for a CRL issued at ``this_update`` (see the module docstring)."""
    last = ca.ledger.last_crl()
    previous = max(last.number if last else 0, highest_on_disk(ca.crl_dir))
    return max(previous + 1, time_number(this_update))


def issue_crl(ca: CA, *, now: dt.datetime) -> bytes:
    """Sign, lint, store and record a fresh CRL of ``ca`` at ``now``; return its DER."""
    # RFC 5280 §4.1.2.5 (to which §5.1.2.4 refers) has no fractional seconds.
    this_update = require_aware(now, "now").replace(microsecond=0)
    next_update = this_update + ca.settings.crl.validity
    keep = ca.settings.crl.keep_after_expiry
    newest = newest_crl(ca.ledger, ca.crl_dir, ca.certificate)
    listing = ca.ledger.crl_listing(now=this_update, keep_after_expiry=keep)
    require_listed({serial for serial, _ in listing}, newest, ca.ledger, cutoff=this_update - keep)
    entries = [entry for _, entry in listing]
    number = next_crl_number(ca, this_update)
    der = build_crl(
        issuer=ca.certificate,
        key=ca.key,
        number=number,
        this_update=this_update,
        next_update=next_update,
        encoded_entries=entries,
    )
    if len(entries) <= LINT_LIMIT:
        # Signed but not yet published: a finding stops it before it is written anywhere.
        require_clean(lint_crl(der))
    write_new(ca.crl_dir / f"{number}.crl", der)
    ca.ledger.record_crl(
        number=number,
        this_update=this_update,
        next_update=next_update,
        sha256=hashlib.sha256(der).hexdigest(),
        entry_count=len(entries),
    )
    return der


@dataclass(frozen=True)
class CrlStatus:
    """How the CA's current CRL stands at ``now`` (for ``shomei ca status``)."""

    last: CrlRecord | None
    remaining: dt.timedelta | None  # until nextUpdate; negative once expired
    state: Literal["none", "ok", "due", "expired"]


def crl_status(last: CrlRecord | None, *, validity: dt.timedelta, now: dt.datetime) -> CrlStatus:
    """``due`` once less than a quarter of ``validity`` is left, ``expired`` after nextUpdate.

    Relying parties treat a CRL past its nextUpdate as unknown status (RFC 5280 §6.3.3), so
    every claim verification fails from then on; the warning leaves time for a ceremony.
    """
    if last is None:
        return CrlStatus(None, None, "none")
    remaining = last.next_update - require_aware(now)
    if remaining <= dt.timedelta(0):
        return CrlStatus(last, remaining, "expired")
    return CrlStatus(last, remaining, "due" if remaining <= validity / 4 else "ok")


def current_crl(ca: CA) -> bytes | None:
    """The DER of the highest-numbered CRL in the CRL folder, or None before the first."""
    number = highest_on_disk(ca.crl_dir)
    return (ca.crl_dir / f"{number}.crl").read_bytes() if number else None
