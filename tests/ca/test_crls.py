"""CRL issuance from the ledger: entries, numbering (also after a restored ledger), files."""

from __future__ import annotations

import datetime as dt
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ca.context import CA
from ca.crls import current_crl, issue_crl, next_crl_number, time_number
from ca.ledger_record import record_path
from crl.builder import RevokedEntry, build_crl, encode_entry
from crl.reader import load_crl
from shomei.errors import Refused, StateError
from tests.ca.test_batch_home import CaHome, build_ca_home
from tests.pki import Pki

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def home(tmp_path: Path, pki: Pki) -> CaHome:
    return build_ca_home(tmp_path / "home", pki)


def _signed(ca: CA, home: CaHome, *, not_after: dt.datetime) -> int:
    """A certificate entered in the ledger as the CA would (reserve, sign, record)."""
    serial = ca.ledger.reserve("direct")
    subject_key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .issuer_name(ca.certificate.subject)
        .public_key(subject_key.public_key())
        .serial_number(serial)
        .not_valid_before(not_after - dt.timedelta(days=365))
        .not_valid_after(not_after)
        .sign(home.key.private_key, hashes.SHA256())
    )
    ca.ledger.record_signed(serial, cert)
    return serial


def _revoke(ca: CA, serial: int, reason: x509.ReasonFlags | None) -> None:
    at = NOW - dt.timedelta(hours=1)
    ca.ledger.revoke(
        serial,
        revoked_at=at,
        reason=None if reason is None else reason.value,
        request_id=f"rv-{serial:x}",
        crl_entry=encode_entry(RevokedEntry(serial, at, reason)),
    )


def test_empty_crl(home: CaHome) -> None:
    with home.open() as ca:
        der = issue_crl(ca, now=NOW)
        crl = x509.load_der_x509_crl(der)
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        assert number == time_number(NOW)
        assert crl.last_update_utc == NOW and crl.next_update_utc == NOW + dt.timedelta(days=7)
        assert crl.is_signature_valid(ca.certificate.public_key())  # type: ignore[arg-type]
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
        ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        assert aki.key_identifier == ski.value.digest
        assert (ca.crl_dir / f"{number}.crl").read_bytes() == der == current_crl(ca)
        last = ca.ledger.last_crl()
        assert last is not None and (last.number, last.entry_count) == (number, 0)


def test_revocations_appear_with_reasons(home: CaHome) -> None:
    with home.open() as ca:
        compromised = _signed(ca, home, not_after=NOW + dt.timedelta(days=300))
        superseded = _signed(ca, home, not_after=NOW + dt.timedelta(days=300))
        plain = _signed(ca, home, not_after=NOW + dt.timedelta(days=300))
        recently_expired = _signed(ca, home, not_after=NOW - dt.timedelta(days=10))
        long_expired = _signed(ca, home, not_after=NOW - dt.timedelta(days=31))
        kept = _signed(ca, home, not_after=NOW + dt.timedelta(days=300))  # not revoked
        _revoke(ca, compromised, x509.ReasonFlags.key_compromise)
        _revoke(ca, superseded, x509.ReasonFlags.superseded)
        _revoke(ca, plain, None)
        _revoke(ca, recently_expired, x509.ReasonFlags.cessation_of_operation)
        _revoke(ca, long_expired, x509.ReasonFlags.key_compromise)
        der = issue_crl(ca, now=NOW)
        loaded = load_crl(der, issuer=ca.certificate, now=NOW)
        for serial in (compromised, superseded, plain, recently_expired):
            assert serial in loaded.index
        # Expired more than keep_after_expiry (30 days) ago: dropped (RFC 5280 §3.3).
        assert long_expired not in loaded.index and kept not in loaded.index
        crl = x509.load_der_x509_crl(der)
        entry = crl.get_revoked_certificate_by_serial_number(compromised)
        assert entry is not None
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        assert reason == x509.ReasonFlags.key_compromise
        entry = crl.get_revoked_certificate_by_serial_number(plain)
        assert entry is not None and len(entry.extensions) == 0
        text = subprocess.run(
            ["openssl", "crl", "-inform", "DER", "-noout", "-text"],
            input=der,
            capture_output=True,
            check=True,
        ).stdout.decode()
        assert f"{compromised:X}" in text.replace(":", "").upper()
        assert "Key Compromise" in text and "Superseded" in text
        assert ca.ledger.last_crl().entry_count == 4  # type: ignore[union-attr]


def test_numbers_strictly_increase(home: CaHome) -> None:
    with home.open() as ca:
        first = load_crl(issue_crl(ca, now=NOW), issuer=ca.certificate).number
        same_second = load_crl(issue_crl(ca, now=NOW), issuer=ca.certificate).number
        clock_went_back = load_crl(
            issue_crl(ca, now=NOW - dt.timedelta(days=1)), issuer=ca.certificate
        ).number
        assert first is not None and same_second is not None and clock_went_back is not None
        assert first < same_second < clock_went_back
        assert len(list(ca.crl_dir.glob("*.crl"))) == 3


def _backup(ledger_path: Path, copy: Path) -> None:
    """The ledger and its record, as a backup of the CA home holds them."""
    source = sqlite3.connect(ledger_path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    target.close()
    shutil.copy(record_path(ledger_path), record_path(copy))


def _restore(backup: Path, ledger_path: Path, *, record: bool = True) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{ledger_path}{suffix}").unlink(missing_ok=True)
    shutil.copy(backup, ledger_path)
    if record:
        shutil.copy(record_path(backup), record_path(ledger_path))


def test_numbers_increase_after_the_ca_home_is_restored(home: CaHome) -> None:
    backup = home.folder / "backup" / "ledger.sqlite"
    backup.parent.mkdir()
    with home.open() as ca:
        issue_crl(ca, now=NOW)
        _backup(ca.settings.ledger, backup)
        for minutes in (1, 2):
            issue_crl(ca, now=NOW + dt.timedelta(minutes=minutes))
        highest = ca.ledger.last_crl().number  # type: ignore[union-attr]
    # The ledger alone put back from yesterday's backup: older than its record, refused.
    _restore(backup, home.settings.ledger, record=False)
    with pytest.raises(StateError, match="older than its record"):
        home.open()
    # Ledger and record restored together (the CRL folder kept the later CRLs): the numbers
    # go on from the folder, even at the same instant as the last CRL.
    _restore(backup, home.settings.ledger)
    with home.open() as ca:
        assert ca.ledger.last_crl().number < highest  # type: ignore[union-attr]
        number = load_crl(
            issue_crl(ca, now=NOW + dt.timedelta(minutes=2)), issuer=ca.certificate
        ).number
        assert number is not None and number > highest
    # The CRL folder lost as well: refused, and not started again from nothing.
    shutil.rmtree(home.folder / "crl")
    _restore(backup, home.settings.ledger)
    with pytest.raises(StateError, match=r"CRL folder .* is missing"):
        home.open()
    assert not (home.folder / "crl").exists()


def _planted_crl(ca: CA, home: CaHome, number: int) -> bytes:
    """A genuine CRL of this CA numbered ``number`` (as another writer would have made)."""
    return build_crl(
        issuer=ca.certificate,
        key=home.key,
        number=number,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=7),
    )


def test_a_crl_file_is_never_overwritten(home: CaHome) -> None:
    with home.open() as ca:
        number = next_crl_number(ca, NOW)
        ca.crl_dir.mkdir(parents=True, exist_ok=True)
        planted = ca.crl_dir / f"{number}.crl"
        planted.write_bytes(_planted_crl(ca, home, number))
        kept = planted.read_bytes()
        # The folder now has a higher number than the ledger: the next CRL goes past it.
        issue_crl(ca, now=NOW)
        assert planted.read_bytes() == kept
        numbers = sorted(int(p.stem) for p in ca.crl_dir.glob("*.crl"))
        assert numbers == [number, number + 1]


def test_refuses_to_overwrite_when_the_name_is_taken(
    home: CaHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ca.crls as crls

    with home.open() as ca:
        number = next_crl_number(ca, NOW)
        ca.crl_dir.mkdir(parents=True, exist_ok=True)
        (ca.crl_dir / f"{number}.crl").write_bytes(_planted_crl(ca, home, number))
        # Simulate a second writer that took the name between numbering and writing.
        monkeypatch.setattr(crls, "next_crl_number", lambda _ca, _t: number)
        with pytest.raises(Refused, match="never overwritten"):
            issue_crl(ca, now=NOW)
        assert ca.ledger.last_crl() is None  # nothing recorded


def test_naive_time_is_a_programming_error(home: CaHome) -> None:
    with home.open() as ca, pytest.raises(TypeError):
        issue_crl(ca, now=dt.datetime(2026, 1, 1))


def test_crl_status() -> None:
    from ca.crls import crl_status
    from ca.ledger import CrlRecord

    week = dt.timedelta(days=7)
    record = CrlRecord(1, NOW, NOW + week, "ab", 0)
    assert crl_status(None, validity=week, now=NOW).state == "none"
    fresh = crl_status(record, validity=week, now=NOW + dt.timedelta(days=1))
    assert fresh.state == "ok" and fresh.remaining == dt.timedelta(days=6)
    assert crl_status(record, validity=week, now=NOW + dt.timedelta(days=6)).state == "due"
    late = crl_status(record, validity=week, now=NOW + dt.timedelta(days=8))
    assert late.state == "expired" and late.remaining == -dt.timedelta(days=1)


def test_a_ledger_that_forgot_a_revocation_signs_no_crl(home: CaHome) -> None:
    # The whole CA home but the CRL folder put back from a backup taken before a revocation:
    # ledger and record agree, but the newest CRL in the folder lists what the ledger forgot.
    backup = home.folder / "backup" / "ledger.sqlite"
    backup.parent.mkdir()
    with home.open() as ca:
        serial = _signed(ca, home, not_after=NOW + dt.timedelta(days=300))
        issue_crl(ca, now=NOW)
        _backup(ca.settings.ledger, backup)
        _revoke(ca, serial, x509.ReasonFlags.key_compromise)
        issue_crl(ca, now=NOW + dt.timedelta(minutes=1))
    _restore(backup, home.settings.ledger)
    files = sorted(p.name for p in (home.folder / "crl").iterdir())
    with pytest.raises(StateError) as caught:
        home.open()
    assert f"does not know 1 revocation(s) listed on CRL number {files[-1][:-4]}" in str(
        caught.value
    )
    assert f"({serial:x})" in caught.value.message and "restore the newest ledger" in str(
        caught.value
    )
    assert sorted(p.name for p in (home.folder / "crl").iterdir()) == files


def test_the_last_crl_of_the_ledger_must_be_in_the_folder(home: CaHome) -> None:
    with home.open() as ca:
        der = issue_crl(ca, now=NOW)
        path = ca.crl_dir / f"{load_crl(der, issuer=ca.certificate).number}.crl"
    path.write_bytes(der + b"\x00")
    with pytest.raises(StateError, match=r"differs in .*restore the CRL folder"):
        home.open()
    path.unlink()
    with pytest.raises(StateError, match=r"is missing in .*restore the CRL folder"):
        home.open()
    path.write_bytes(der)
    home.open().close()


def test_a_foreign_file_as_the_newest_crl_is_refused(home: CaHome, pki: Pki) -> None:
    with home.open() as ca:
        issue_crl(ca, now=NOW)
        planted = ca.crl_dir / f"{next_crl_number(ca, NOW) + 5}.crl"
    planted.write_bytes(pki.crl_der)  # a genuine CRL, of another CA
    with pytest.raises(StateError, match="is not a readable CRL of this CA"):
        home.open()
    planted.write_bytes(b"junk")
    with pytest.raises(StateError, match="move it out of the folder"):
        home.open()


def test_expired_entries_drop_off_and_nothing_else(
    home: CaHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    with home.open() as ca:
        soon = _signed(ca, home, not_after=NOW + dt.timedelta(days=1))
        later = _signed(ca, home, not_after=NOW + dt.timedelta(days=300))
        _revoke(ca, soon, None)
        _revoke(ca, later, None)
        first = load_crl(issue_crl(ca, now=NOW), issuer=ca.certificate)
        assert soon in first.index and later in first.index
        # Expired for more than keep_after_expiry (30 days): it may drop off, and does.
        after = NOW + dt.timedelta(days=40)
        second = load_crl(issue_crl(ca, now=after), issuer=ca.certificate)
        assert soon not in second.index and later in second.index
        # Anything else that would leave the CRL is refused, with nothing signed.
        real = ca.ledger.crl_listing
        monkeypatch.setattr(
            ca.ledger,
            "crl_listing",
            lambda **kw: [(s, e) for s, e in real(**kw) if s != later],
        )
        count = len(list(ca.crl_dir.glob("*.crl")))
        with pytest.raises(StateError, match=f"would leave out 1 serial.*\\({later:x}\\)"):
            issue_crl(ca, now=after + dt.timedelta(days=1))
        assert len(list(ca.crl_dir.glob("*.crl"))) == count


def test_a_file_where_the_crl_folder_should_be_is_refused(home: CaHome) -> None:
    (home.folder / "crl").write_bytes(b"not a folder")
    with pytest.raises(StateError, match="is not a folder"):
        home.open()
