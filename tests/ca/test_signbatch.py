"""sign_batch: verify first, never twice, refuse bad requests one by one, revoke, issue a CRL."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from ca.context import CA
from ca.ledger_record import record_path
from ca.signbatch import results_dir, sign_batch
from contract.batch import (
    Issued,
    IssueItem,
    IssueRefused,
    RequestItem,
    Revoked,
    RevokeItem,
    RevokeRefused,
    make_link_identity,
    read_result_batch,
    write_request_batch,
)
from crl.reader import load_crl
from shomei.errors import ConfigError, MalformedInput, Refused, StateError, VerificationFailed
from signer.keys import KeyType, PublicKey, SigningKey
from tests.ca.test_batch_home import NOW, CaHome, build_ca_home
from tests.pki import Pki


class CountingKey:
    """A SigningKey that counts its signatures (to prove that nothing was signed)."""

    def __init__(self, inner: SigningKey, fail_after: int | None = None) -> None:
        self.inner = inner
        self.count = 0
        self.fail_after = fail_after

    @property
    def public_key(self) -> PublicKey:
        return self.inner.public_key

    @property
    def key_type(self) -> KeyType:
        return self.inner.key_type

    def sign(self, data: bytes) -> bytes:
        if self.fail_after is not None and self.count >= self.fail_after:
            raise RuntimeError("simulated crash of the CA process")
        self.count += 1
        return self.inner.sign(data)


def csr(*, key: object | None = None, tamper: bool = False) -> bytes:
    private = key or ec.generate_private_key(ec.SECP256R1())
    der = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "applicant")]))
        .sign(private, hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(Encoding.DER)
    )
    if tamper:  # flip a bit of the signature: the self-signature no longer verifies
        der = der[:-3] + bytes([der[-3] ^ 0x01]) + der[-2:]
    return der


def issue(n: int, office: str | None = None) -> IssueItem:
    return IssueItem(f"iss-{n}", csr(), office or f"{1310000000 + n:010d}", f"事業所{n}")


def request_batch(home: CaHome, items: Sequence[RequestItem], **kw: object) -> bytes:
    return write_request_batch(
        items,
        ra_name="Test RA",
        key=home.link_key,
        certificate=home.link_cert,
        now=NOW,
        **kw,  # type: ignore[arg-type]
    )


def serial_rows(ca: CA) -> int:
    db = sqlite3.connect(ca.settings.ledger)
    count = int(db.execute("SELECT count(*) FROM serials").fetchone()[0])
    db.close()
    return count


@pytest.fixture
def home(tmp_path: Path, pki: Pki) -> CaHome:
    return build_ca_home(tmp_path / "home", pki)


def test_round_trip_with_refusals_and_revocations(home: CaHome) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key to refuse
    items: list[RequestItem] = [
        issue(1),
        IssueItem("garbage", b"\x30\x82 not a CSR", "1310000002", "ゴミ"),
        IssueItem("badsig", csr(tamper=True), "1310000003", "署名不正"),
        IssueItem("weak", csr(key=weak), "1310000004", "弱い鍵"),
        IssueItem("badnum", csr(), "13-0001", "番号不正"),
        IssueItem("noprofile", csr(), "1310000006", "事業所", profile="nosuch"),
        issue(7),
    ]
    progress: list[tuple[int, int]] = []
    with home.open() as ca:
        out = sign_batch(
            ca,
            request_batch(home, items),
            now=NOW,
            workers=1,
            progress=lambda *a: progress.append(a),
        )
        result = read_result_batch(out, ca_certificate=ca.certificate)
        assert [r.request_id for r in result.results] == [i.request_id for i in items]
        codes = {r.request_id: r.code for r in result.results if isinstance(r, IssueRefused)}
        assert codes == {
            "garbage": "bad_csr",
            "badsig": "bad_csr",
            "weak": "weak_key",
            "badnum": "subject",
            "noprofile": "profile",
        }
        refused = [r for r in result.results if isinstance(r, IssueRefused)]
        assert all(r.message and r.message_ja != r.message for r in refused)
        issued = [r for r in result.results if isinstance(r, Issued)]
        assert len(issued) == 2
        for item in issued:
            item.certificate.verify_directly_issued_by(ca.certificate)
            record = ca.ledger.serial(item.certificate.serial_number)
            assert record is not None and record.state == "signed"
        assert result.chain == ca.full_chain
        assert progress[-1] == (7, 7)
        assert (results_dir(ca) / f"{result.batch_id}.p7m").read_bytes() == out
        assert ca.ledger.find_batch(result.batch_id).outcome == "done"  # type: ignore[union-attr]

        # The next batch revokes one of them (and tries two it must not).
        victim = issued[0].certificate.serial_number
        revokes: list[RequestItem] = [
            RevokeItem("rv-1", victim, "keyCompromise", NOW, "office"),
            RevokeItem("rv-2", 0xDEADBEEF, "superseded", NOW, "agent"),
            RevokeItem("rv-3", victim, "superseded", NOW, "prefecture"),
        ]
        later = NOW + dt.timedelta(minutes=5)
        second = read_result_batch(
            sign_batch(ca, request_batch(home, revokes), now=later, workers=1),
            ca_certificate=ca.certificate,
        )
        assert second.results[0] == Revoked("rv-1", victim, NOW)
        assert isinstance(second.results[1], RevokeRefused)
        assert second.results[1].code == "unknown_serial"
        assert isinstance(second.results[2], RevokeRefused)
        assert second.results[2].code == "already_revoked"
        crl = load_crl(second.crl_der, issuer=ca.certificate, now=later)
        assert victim in crl.index
        assert issued[1].certificate.serial_number not in crl.index
        first_crl = load_crl(result.crl_der, issuer=ca.certificate)
        assert crl.number > first_crl.number  # type: ignore[operator]


def test_replayed_and_altered_batches_sign_nothing(home: CaHome) -> None:
    data = request_batch(home, [issue(1), issue(2)])
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        first = sign_batch(ca, data, now=NOW, workers=1)
        signatures, serials = counter.count, serial_rows(ca)
        assert signatures == 4  # two certificates, the CRL, the result batch
        # The same file again is answered with the very same result, and signs nothing.
        assert sign_batch(ca, data, now=NOW + dt.timedelta(hours=1), workers=1) == first
        altered = bytearray(data)
        altered[len(altered) // 2] ^= 0x01
        with pytest.raises((VerificationFailed, MalformedInput)):
            sign_batch(ca, bytes(altered), now=NOW, workers=1)
        assert counter.count == signatures and serial_rows(ca) == serials
        assert ca.ledger.stats().batch_refusals == 1
        assert ca.ledger.stats().batches == {"done": 1}


def test_same_batch_id_with_other_content_is_a_replay(home: CaHome) -> None:
    batch_id = str(uuid.uuid4())
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        sign_batch(ca, request_batch(home, [issue(1)], batch_id=batch_id), now=NOW, workers=1)
        before = counter.count
        with pytest.raises(Refused):
            sign_batch(ca, request_batch(home, [issue(2)], batch_id=batch_id), now=NOW, workers=1)
        assert counter.count == before and serial_rows(ca) == 1


def test_untrusted_link_certificate_is_refused(home: CaHome) -> None:
    key, cert = make_link_identity("Test RA", now=NOW)  # same name, not the pinned one
    data = write_request_batch([issue(1)], ra_name="Test RA", key=key, certificate=cert, now=NOW)
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        with pytest.raises(VerificationFailed, match="not a RA link certificate this CA trusts"):
            sign_batch(ca, data, now=NOW, workers=1)
        assert counter.count == 0 and serial_rows(ca) == 0
        assert ca.ledger.stats().batch_refusals == 1


def test_no_trusted_ra_configured(home: CaHome, pki: Pki) -> None:
    from ca.context import open_ca_with_key

    (home.folder / "trusted-ra" / "ra.pem").unlink()
    with open_ca_with_key(home.settings, home.key) as ca, pytest.raises(ConfigError):
        sign_batch(ca, request_batch(home, [issue(1)]), now=NOW, workers=1)


def test_crash_half_way_is_finished_by_the_same_file(home: CaHome) -> None:
    data = request_batch(home, [issue(1), issue(2), issue(3)])
    # The CA key "crashes" after the first certificate was signed and recorded.
    with home.open(CountingKey(home.key, fail_after=1)) as ca:
        with pytest.raises(RuntimeError):
            sign_batch(ca, data, now=NOW, workers=1)
        batch_id = ca.ledger.stats().batches
        assert batch_id == {"failed": 1}
        first = ca.ledger.signed_for_request("iss-1")
        assert first is not None
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        # The same file finishes the batch: iss-1 keeps its certificate (from the ledger),
        # the two others are signed now, each exactly once.
        resumed = read_result_batch(
            sign_batch(ca, data, now=NOW, workers=1), ca_certificate=ca.certificate
        )
        certs = [r.certificate for r in resumed.results if isinstance(r, Issued)]
        assert len(certs) == 3
        assert certs[0].public_bytes(Encoding.DER) == first.certificate_der
        assert counter.count == 2 + 2  # two new certificates, the CRL, the result
        assert ca.ledger.stats().batches == {"done": 1}
        assert ca.ledger.stats().signed == 3
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        # The RA sends the same requests again in a new batch: each gets the certificate
        # it already has (no second one).
        again = read_result_batch(
            sign_batch(ca, request_batch(home, [issue(1), issue(2), issue(3)]), now=NOW, workers=1),
            ca_certificate=ca.certificate,
        )
        again_certs = [r.certificate for r in again.results if isinstance(r, Issued)]
        assert again_certs == certs
        assert counter.count == 2  # the CRL and the result; no certificate


def test_process_killed_while_processing(home: CaHome) -> None:
    data = request_batch(home, [issue(1)])
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        from contract.batch import read_request_batch

        parsed = read_request_batch(data, trusted=ca.trusted_ra)
        # What the ledger says after a kill -9 between "received" and "done".
        ca.ledger.begin_batch(
            batch_id=parsed.batch_id,
            sha256=parsed.sha256,
            ra_name="Test RA",
            request_count=1,
            now=NOW,
        )
        reserved = ca.ledger.reserve("iss-1")
        stats = ca.ledger.stats()
        assert len(stats.unfinished_batches) == 1 and len(stats.reserved_unsigned) == 1
        # Nobody holds the work lock: the process that began the batch is dead, and the
        # same file finishes it.  The serial it reserved is voided, never used.
        result = read_result_batch(
            sign_batch(ca, data, now=NOW, workers=1), ca_certificate=ca.certificate
        )
        (issued,) = result.results
        assert isinstance(issued, Issued) and issued.certificate.serial_number != reserved
        assert counter.count == 3
        stats = ca.ledger.stats()
        assert not stats.unfinished_batches and not stats.reserved_unsigned
        void = ca.ledger.serial(reserved)
        assert void is not None and void.state == "refused" and void.certificate_der is None


def test_revocation_resent_after_a_lost_result_is_answered_again(home: CaHome) -> None:
    with home.open() as ca:
        first = read_result_batch(
            sign_batch(ca, request_batch(home, [issue(1)]), now=NOW, workers=1),
            ca_certificate=ca.certificate,
        )
        serial = first.results[0].certificate.serial_number  # type: ignore[union-attr]
        revoke = RevokeItem("rv-1", serial, "unspecified", NOW + dt.timedelta(days=1), "federation")
        for _ in range(2):
            answer = read_result_batch(
                sign_batch(ca, request_batch(home, [revoke]), now=NOW, workers=1),
                ca_certificate=ca.certificate,
            )
            # A revocation date in the future is clamped to the time of signing.
            assert answer.results == (Revoked("rv-1", serial, NOW),)
        entry = x509.load_der_x509_crl(answer.crl_der).get_revoked_certificate_by_serial_number(
            serial
        )
        assert entry is not None and len(entry.extensions) == 0  # unspecified: no reasonCode


def test_a_thousand_requests(home: CaHome) -> None:
    rng = random.Random(5)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key to refuse
    items: list[RequestItem] = []
    expected: dict[str, str | None] = {}
    for n in range(1000):
        kind = rng.choices(["good", "garbage", "badsig", "weak", "badnum"], [90, 3, 3, 2, 2])[0]
        office = f"{1300000000 + n:010d}"
        if kind == "good":
            items.append(IssueItem(f"r{n}", csr(), office, f"事業所{n}"))
        elif kind == "garbage":
            items.append(IssueItem(f"r{n}", rng.randbytes(200), office, "x"))
        elif kind == "badsig":
            items.append(IssueItem(f"r{n}", csr(tamper=True), office, "x"))
        elif kind == "weak":
            items.append(IssueItem(f"r{n}", csr(key=weak), office, "x"))
        else:
            items.append(IssueItem(f"r{n}", csr(), "1234", "x"))
        expected[f"r{n}"] = {
            "good": None,
            "garbage": "bad_csr",
            "badsig": "bad_csr",
            "weak": "weak_key",
            "badnum": "subject",
        }[kind]
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        out = sign_batch(ca, request_batch(home, items), now=NOW, workers=2)
        result = read_result_batch(out, ca_certificate=ca.certificate)
        got = {
            r.request_id: (r.code if isinstance(r, IssueRefused) else None) for r in result.results
        }
        assert got == expected
        good = sum(1 for v in expected.values() if v is None)
        assert counter.count == good + 2
        assert ca.ledger.stats().signed == good
        serials = {r.certificate.serial_number for r in result.results if isinstance(r, Issued)}
        assert len(serials) == good


def test_replay_after_an_older_ledger_was_restored(home: CaHome) -> None:
    data = request_batch(home, [issue(1)])
    backup = home.folder / "backup.sqlite"
    with home.open() as ca:
        source = sqlite3.connect(ca.settings.ledger)
        target = sqlite3.connect(backup)
        source.backup(target)
        source.close()
        target.close()
        record = record_path(ca.settings.ledger).read_bytes()
        first = sign_batch(ca, data, now=NOW, workers=1)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{home.settings.ledger}{suffix}").unlink(missing_ok=True)
    backup.rename(home.settings.ledger)
    # The ledger alone from the backup is older than its record: it is not even opened.
    with pytest.raises(StateError, match="older than its record"):
        home.open()
    # Ledger and record restored together (a whole older CA home): the kept result in
    # results/ is newer evidence: the ledger that forgot its batch may not sign anything, and
    # the kept result is not answered from it either.
    record_path(home.settings.ledger).write_bytes(record)
    counter = CountingKey(home.key)
    with home.open(counter) as ca:
        assert ca.ledger.stats().batches == {}  # the restored ledger forgot the batch ...
        kept = (
            results_dir(ca)
            / f"{read_result_batch(first, ca_certificate=ca.certificate).batch_id}.p7m"
        )
        with pytest.raises(StateError, match="older than its results"):
            sign_batch(ca, data, now=NOW, workers=1)
        assert kept.read_bytes() == first  # the evidence is kept as it was
        assert counter.count == 0  # ... and nothing was signed


def test_check_request_needs_no_key(home: CaHome) -> None:
    from ca.signbatch import check_request

    data = request_batch(home, [issue(1)])
    checked = check_request(home.settings, data, now=NOW)
    assert checked.request.requests[0].request_id == "iss-1"
    assert checked.known is None and checked.result is None
    with home.open() as ca:
        result = sign_batch(ca, data, now=NOW, workers=1)
    # A finished batch: its kept result, for which nobody needs to open the key.
    again = check_request(home.settings, data, now=NOW)
    assert again.result == result and again.known is not None and again.known.outcome == "done"
    altered = data.replace(b"iss-1", b"iss-2")
    with pytest.raises(VerificationFailed):
        check_request(home.settings, altered, now=NOW)
    with home.open() as ca:
        assert ca.ledger.stats().batch_refusals == 1
