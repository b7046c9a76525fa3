"""ca.issue: two-step, linted issuance of office certificates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ca import issuebatch as issue_module
from ca.issue import (
    IssueRequest,
    Prepared,
    Refusal,
    office_subject,
    prepare,
    sign_prepared,
    validity_window,
)
from ca.issuebatch import issue_many
from ca.ledger import Ledger
from contract.profile import Profile, load_profile
from shomei.errors import MalformedInput, Refused
from signer.keys import PublicKey, SoftwareKey, verify_signature
from tests.pki import Pki

CONF = Path(__file__).resolve().parents[2] / "conf" / "profiles"
BIN = Path(sys.executable).parent
DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
NAME = "テスト介護サービス事業所 さくら"
NUMBER = "1310000099"


@pytest.fixture(scope="module")
def profile() -> Profile:
    return load_profile(CONF / "office.toml")


@pytest.fixture(scope="module")
def keys() -> dict[str, object]:
    return {
        "rsa2048": rsa.generate_private_key(65537, 2048),
        "rsa3072": rsa.generate_private_key(65537, 3072),
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "rsa1024": rsa.generate_private_key(65537, 1024),  # noqa: S505 (must be refused)
        "rsa_e3": rsa.generate_private_key(3, 2048),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "dsa": dsa.generate_private_key(2048),
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }


def make_csr(key: object, cn: str = "ignored by the CA") -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    )
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(DER)  # type: ignore[arg-type]


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class CountingKey:
    """The real issuing key, counting its signatures and checking each serial was reserved."""

    def __init__(self, inner: SoftwareKey, store: RecordingStore | None = None) -> None:
        self.inner = inner
        self.store = store
        self.signatures = 0

    @property
    def public_key(self) -> PublicKey:
        return self.inner.public_key

    @property
    def key_type(self) -> str:
        return self.inner.key_type

    def sign(self, data: bytes) -> bytes:
        if self.store is not None:
            serial = ax509.TbsCertificate.load(data)["serial_number"].native
            assert serial in self.store.reserved, "signed before the serial was reserved"
        self.signatures += 1
        return self.inner.sign(data)


class RecordingStore:
    """An in-memory SerialStore that keeps what it was told."""

    def __init__(self) -> None:
        self.next = 1000
        self.reserved: dict[int, str] = {}
        self.signed: dict[int, x509.Certificate] = {}
        self.refused: list[tuple[str, int | None, str]] = []

    def reserve_many(self, request_ids: Sequence[str]) -> list[int]:
        numbers = []
        for request_id in request_ids:
            self.next += 1
            self.reserved[self.next] = request_id
            numbers.append(self.next)
        return numbers

    def record_signed_many(self, certificates: Sequence[x509.Certificate]) -> None:
        for certificate in certificates:
            serial = certificate.serial_number
            assert serial in self.reserved and serial not in self.signed
            self.signed[serial] = certificate

    def record_refused(self, request_id: str, serial: int | None, refusal: Refusal) -> None:
        self.refused.append((request_id, serial, refusal.code))


def _prepare(pki: Pki, profile: Profile, csr: bytes, **kw: object) -> Prepared | Refusal:
    request = IssueRequest(
        str(kw.pop("request_id", "req-1")),
        csr,
        str(kw.pop("office_number", NUMBER)),
        str(kw.pop("office_name", NAME)),
    )
    return prepare(
        request,
        profile=profile,
        issuer=pki.certs["issuing"],
        serial=int(kw.pop("serial", 0x1234567890ABCDEF)),  # type: ignore[call-overload]
        now=kw.pop("now", now()),  # type: ignore[arg-type]
    )


# --- happy paths -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["rsa2048", "rsa3072", "p256"])
def test_prepare_and_sign(
    pki: Pki, pki_dir: Path, profile: Profile, keys: dict[str, object], kind: str, tmp_path: Path
) -> None:
    at = now()
    prepared = _prepare(pki, profile, make_csr(keys[kind]), now=at)
    assert isinstance(prepared, Prepared), prepared
    assert prepared.not_before == at.replace(microsecond=0)
    assert prepared.not_after == prepared.not_before + dt.timedelta(days=1095)
    assert prepared.subject_text == f"CN={NAME},OU={NUMBER},O=証明連合会,C=JP"

    cert = sign_prepared(prepared, SoftwareKey(pki.keys["issuing"]))
    issuing = pki.certs["issuing"]
    assert cert.tbs_certificate_bytes == prepared.tbs_der
    verify_signature(issuing.public_key(), cert.signature, cert.tbs_certificate_bytes)  # type: ignore[arg-type]
    assert cert.serial_number == 0x1234567890ABCDEF
    assert cert.issuer == issuing.subject
    assert cert.not_valid_before_utc == prepared.not_before
    assert cert.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo) == (
        keys[kind].public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[attr-defined]
    )

    ext = cert.extensions
    ku = ext.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment
    assert not ku.value.key_encipherment and not ku.value.key_cert_sign
    eku = ext.get_extension_for_class(x509.ExtendedKeyUsage)
    assert not eku.critical
    assert list(eku.value) == [
        x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36"),
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    assert ext.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = ext.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    issuer_ski = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == issuer_ski.digest
    ski = ext.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest  # type: ignore[arg-type]
    cdp = ext.get_extension_for_class(x509.CRLDistributionPoints).value
    assert [n.value for n in cdp[0].full_name or []] == [profile.extensions.crl_distribution_point]
    aia = ext.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [a.access_location.value for a in aia] == [profile.extensions.ca_issuers]
    policies = ext.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier.dotted_string for p in policies] == list(
        profile.extensions.policies
    )

    # Independent judges: openssl's chain verification and pkilint's own console scripts.
    path = tmp_path / "office.pem"
    path.write_bytes(cert.public_bytes(PEM))
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            pki_dir / "root.pem",
            "-untrusted",
            pki_dir / "issuing.pem",
            path,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    if kind != "rsa3072":  # the console scripts take ~1 s each; two key kinds suffice
        lint = subprocess.run(
            [BIN / "lint_pkix_cert", "lint", "-s", "WARNING", path],
            capture_output=True,
            text=True,
            check=False,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
        chain = subprocess.run(
            [
                BIN / "lint_pkix_signer_signee_cert_chain",
                "lint",
                "-s",
                "WARNING",
                pki_dir / "issuing.pem",
                path,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert chain.returncode == 0, chain.stdout + chain.stderr


def test_subject_string_types_and_japanese_round_trip(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    prepared = _prepare(pki, profile, make_csr(keys["p256"]))
    assert isinstance(prepared, Prepared)
    cert = sign_prepared(prepared, SoftwareKey(pki.keys["issuing"]))
    parsed = ax509.Certificate.load(cert.public_bytes(DER))
    rdns = [rdn[0] for rdn in parsed.subject.chosen]
    got = [(atv["type"].native, atv["value"].name, atv["value"].native) for atv in rdns]
    assert got == [
        ("country_name", "printable_string", "JP"),
        ("organization_name", "utf8_string", "証明連合会"),
        ("organizational_unit_name", "utf8_string", NUMBER),
        ("common_name", "utf8_string", NAME),
    ]
    # The CSR's own subject is ignored: the RA decided the subject.
    assert "ignored" not in cert.subject.rfc4514_string()


def test_not_after_clipped_to_issuer(pki: Pki, profile: Profile, keys: dict[str, object]) -> None:
    long_lived = dataclasses.replace(profile, validity=dt.timedelta(days=4000))
    prepared = _prepare(pki, long_lived, make_csr(keys["rsa2048"]))
    assert isinstance(prepared, Prepared)
    assert prepared.not_after == pki.certs["issuing"].not_valid_after_utc


def test_name_of_exactly_64_characters_is_allowed(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    # RFC 5280's ub-common-name counts characters (pkilint agrees), not UTF-8 bytes.
    prepared = _prepare(pki, profile, make_csr(keys["rsa2048"]), office_name="事" * 64)
    assert isinstance(prepared, Prepared)
    cert = sign_prepared(prepared, SoftwareKey(pki.keys["issuing"]))
    parsed = ax509.Certificate.load(cert.public_bytes(DER))
    assert parsed.subject.native["common_name"] == "事" * 64


def test_pem_csr_is_accepted(pki: Pki, profile: Profile, keys: dict[str, object]) -> None:
    pem = x509.load_der_x509_csr(make_csr(keys["rsa2048"])).public_bytes(PEM)
    assert isinstance(_prepare(pki, profile, pem), Prepared)


# --- refusals --------------------------------------------------------------------------


def _flip_signature_byte(csr_der: bytes) -> bytes:
    signature = x509.load_der_x509_csr(csr_der).signature
    at = csr_der.rindex(signature) + len(signature) // 2
    return csr_der[:at] + bytes([csr_der[at] ^ 0x01]) + csr_der[at + 1 :]


@pytest.mark.parametrize(
    ("csr_of", "code"),
    [
        (lambda k: b"\x30\x82\x01\x00garbage", "bad_csr"),
        (lambda k: b"", "bad_csr"),
        (lambda k: _flip_signature_byte(make_csr(k["rsa2048"])), "bad_csr"),
        (lambda k: _flip_signature_byte(make_csr(k["p256"])), "bad_csr"),
        (lambda k: make_csr(k["rsa1024"]), "weak_key"),
        (lambda k: make_csr(k["rsa_e3"]), "weak_key"),
        (lambda k: make_csr(k["p384"]), "weak_key"),
        (lambda k: make_csr(k["dsa"]), "weak_key"),
        (lambda k: make_csr(k["ed25519"]), "weak_key"),
    ],
    ids=[
        "garbage",
        "empty",
        "bad-sig-rsa",
        "bad-sig-ec",
        "rsa1024",
        "e3",
        "p384",
        "dsa",
        "ed25519",
    ],
)
def test_bad_csrs_refused(
    pki: Pki, profile: Profile, keys: dict[str, object], csr_of: object, code: str
) -> None:
    refusal = _prepare(pki, profile, csr_of(keys))  # type: ignore[operator]
    assert isinstance(refusal, Refusal)
    assert (refusal.request_id, refusal.code) == ("req-1", code)
    assert refusal.message and refusal.message_ja and refusal.message != refusal.message_ja


@pytest.mark.parametrize(
    ("number", "name"),
    [
        ("131000009", NAME),  # 9 digits
        ("13100000990", NAME),  # 11 digits
        ("１３１０００００９９", NAME),  # full-width digits
        ("131000009a", NAME),
        ("1310000099\n", NAME),  # a trailing newline must not slip past the pattern
        (NUMBER, "事" * 65),
        (NUMBER, ""),
        (NUMBER, " 前に空白"),
        (NUMBER, "改行\n入り"),
    ],
)
def test_bad_subjects_refused(
    pki: Pki, profile: Profile, keys: dict[str, object], number: str, name: str
) -> None:
    refusal = _prepare(
        pki, profile, make_csr(keys["rsa2048"]), office_number=number, office_name=name
    )
    assert isinstance(refusal, Refusal)
    assert refusal.code == "subject"
    assert refusal.message_ja


def test_bad_serial_and_expired_issuer_raise(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    csr = make_csr(keys["rsa2048"])
    with pytest.raises(MalformedInput):
        _prepare(pki, profile, csr, serial=0)
    later = pki.certs["issuing"].not_valid_after_utc + dt.timedelta(days=1)
    with pytest.raises(Refused):
        _prepare(pki, profile, csr, now=later)


def test_sign_prepared_refuses_wrong_key_type(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    prepared = _prepare(pki, profile, make_csr(keys["rsa2048"]))
    assert isinstance(prepared, Prepared)
    with pytest.raises(MalformedInput):
        sign_prepared(prepared, SoftwareKey(pki.keys["office_ec"]))


# --- batches ---------------------------------------------------------------------------


def _requests(keys: dict[str, object], n: int) -> list[IssueRequest]:
    csr = make_csr(keys["rsa2048"])
    return [IssueRequest(f"r{i}", csr, f"13100{i:05d}", f"事業所{i}") for i in range(n)]


@pytest.mark.parametrize("workers", [1, 2])
def test_issue_many_mixed_batch(
    pki: Pki, profile: Profile, keys: dict[str, object], workers: int
) -> None:
    good = _requests(keys, 6)
    requests = [
        good[0],
        IssueRequest("bad-csr", b"nonsense", NUMBER, NAME),
        good[1],
        IssueRequest("weak", make_csr(keys["rsa1024"]), NUMBER, NAME),
        IssueRequest("nope", make_csr(keys["rsa2048"]), NUMBER, NAME, profile="server"),
        *good[2:],
    ]
    store = RecordingStore()
    key = CountingKey(SoftwareKey(pki.keys["issuing"]), store)
    seen: list[int] = []
    results = issue_many(
        requests,
        profiles={"office": profile},
        issuer=pki.certs["issuing"],
        key=key,
        serials=store,
        now=now(),
        workers=workers,
        progress=seen.append,
    )
    assert len(results) == len(requests)
    assert seen[-1] == len(requests) and seen == sorted(seen)
    for request, result in zip(requests, results, strict=True):
        if request in good:
            assert isinstance(result, x509.Certificate)
            cn = result.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
            assert cn == request.office_name
            assert store.signed[result.serial_number] is result
            assert store.reserved[result.serial_number] == request.request_id
        else:
            assert isinstance(result, Refusal)
            assert result.request_id == request.request_id
    codes = {r.request_id: r.code for r in results if isinstance(r, Refusal)}
    assert codes == {"bad-csr": "bad_csr", "weak": "weak_key", "nope": "profile"}
    assert key.signatures == len(good)
    refused = {(rid, code) for rid, _, code in store.refused}
    assert refused == {("bad-csr", "bad_csr"), ("weak", "weak_key"), ("nope", "profile")}
    # An unknown profile never gets a serial; the others consumed theirs.
    assert [s for rid, s, _ in store.refused if rid == "nope"] == [None]


def test_issue_many_with_the_ledger(
    pki: Pki, profile: Profile, keys: dict[str, object], tmp_path: Path
) -> None:
    ledger = Ledger.create(tmp_path / "ledger.sqlite")
    try:
        results = issue_many(
            _requests(keys, 4),
            profiles={"office": profile},
            issuer=pki.certs["issuing"],
            key=SoftwareKey(pki.keys["issuing"]),
            serials=ledger,
            now=now(),
            workers=2,
        )
        assert all(isinstance(r, x509.Certificate) for r in results)
        serials = {r.serial_number for r in results if isinstance(r, x509.Certificate)}
        assert len(serials) == 4 and all(s.bit_length() == 128 for s in serials)
        for s in serials:
            record = ledger.serial(s)
            assert record is not None and record.state == "signed"
    finally:
        ledger.close()


@pytest.mark.parametrize(
    "change",
    [
        {"extended_key_usage": ()},  # an empty SEQUENCE SIZE (1..MAX): RFC 5280 §4.2.1.12
        {"key_usage": ("digitalSignature", "keyCertSign")},  # keyCertSign on a non-CA: §4.2.1.3
        {"crl_distribution_point": "not a uri"},  # must be a URI: §4.2.1.13
        {"key_usage": ()},  # no bit set: §4.2.1.3
    ],
    ids=["empty-eku", "keycertsign", "cdp-not-uri", "no-ku"],
)
def test_broken_profile_refuses_everything_and_never_signs(
    pki: Pki, profile: Profile, keys: dict[str, object], change: dict[str, object]
) -> None:
    broken = dataclasses.replace(
        profile,
        extensions=dataclasses.replace(profile.extensions, **change),  # type: ignore[arg-type]
    )
    store = RecordingStore()
    key = CountingKey(SoftwareKey(pki.keys["issuing"]))
    results = issue_many(
        _requests(keys, 3),
        profiles={"office": broken},
        issuer=pki.certs["issuing"],
        key=key,
        serials=store,
        now=now(),
        workers=1,
    )
    assert key.signatures == 0
    assert store.signed == {}
    assert all(isinstance(r, Refusal) and r.code == "lint" for r in results)
    assert all(
        "pkix." in r.message or "itu." in r.message for r in results if isinstance(r, Refusal)
    )
    assert len(store.refused) == 3


def test_ec_key_usage_mismatch_is_caught_per_certificate(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    # keyEncipherment suits RSA subject keys but is prohibited for EC keys (RFC 5480 §3),
    # so the same profile passes for one request and is refused for the other.
    profile2 = dataclasses.replace(
        profile,
        extensions=dataclasses.replace(
            profile.extensions, key_usage=("digitalSignature", "keyEncipherment")
        ),
    )
    assert isinstance(_prepare(pki, profile2, make_csr(keys["rsa2048"])), Prepared)
    refusal = _prepare(pki, profile2, make_csr(keys["p256"]))
    assert isinstance(refusal, Refusal) and refusal.code == "lint"
    assert "pkix.key_usage_value_prohibited_for_ec" in refusal.message


def test_issue_many_refuses_mismatched_key_before_reserving(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    store = RecordingStore()
    with pytest.raises(Refused):
        issue_many(
            _requests(keys, 2),
            profiles={"office": profile},
            issuer=pki.certs["issuing"],
            key=SoftwareKey(pki.keys["root"]),
            serials=store,
            now=now(),
            workers=1,
        )
    assert store.reserved == {} and store.refused == []
    with pytest.raises(MalformedInput):
        issue_many(
            [],
            profiles={"office": profile},
            issuer=pki.certs["issuing"],
            key=SoftwareKey(pki.keys["issuing"]),
            serials=store,
            now=now(),
            workers=-1,
        )


def test_workers_start_cleanly_when_other_threads_run(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    # With another thread alive, forking could copy a lock that thread holds, so the pool
    # must use the forkserver; the batch still comes out complete and in order.
    release = threading.Event()
    neighbour = threading.Thread(target=release.wait, daemon=True)
    neighbour.start()
    try:
        assert issue_module._start_method() == "forkserver"
        store = RecordingStore()
        requests = _requests(keys, 3)
        results = issue_many(
            requests,
            profiles={"office": profile},
            issuer=pki.certs["issuing"],
            key=SoftwareKey(pki.keys["issuing"]),
            serials=store,
            now=now(),
            workers=2,
        )
    finally:
        release.set()
        neighbour.join()
    assert [r.serial_number for r in results if isinstance(r, x509.Certificate)] == sorted(
        store.signed
    )
    assert len(store.signed) == 3


def test_a_dead_worker_stops_the_batch_with_a_clear_error(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    store = RecordingStore()
    killed: list[int] = []

    def kill_a_worker(done: int) -> None:
        # After the first certificate, a worker is killed as the OOM killer would.
        if not killed:
            for child in multiprocessing.active_children():
                if child.pid is not None:
                    os.kill(child.pid, signal.SIGKILL)
                    killed.append(child.pid)

    with pytest.raises(Refused) as info:
        issue_many(
            _requests(keys, 200),
            profiles={"office": profile},
            issuer=pki.certs["issuing"],
            key=SoftwareKey(pki.keys["issuing"]),
            serials=store,
            now=now(),
            workers=2,
            progress=kill_a_worker,
        )
    assert killed
    assert "worker" in info.value.message and info.value.message_ja
    # Everything signed before the failure was recorded against a reserved serial.
    assert len(store.signed) == info.value.fields["done"] < 200
    assert set(store.signed) <= set(store.reserved)


def test_workers_die_with_a_killed_caller(
    pki: Pki, profile: Profile, keys: dict[str, object]
) -> None:
    # kill -9 of the process that runs a batch (an operator's Ctrl-\\, the OOM killer) must
    # not leave its workers behind: they hold what it had open (here the write end of a pipe,
    # whose reader sees the end of it only when every holder is gone).
    import select

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)

        def say_started(done: int) -> None:
            os.write(write_end, b"s")

        try:
            issue_many(
                _requests(keys, 400),
                profiles={"office": profile},
                issuer=pki.certs["issuing"],
                key=SoftwareKey(pki.keys["issuing"]),
                serials=RecordingStore(),
                now=now(),
                workers=2,
                progress=say_started,
            )
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        assert pipe.read(1) == b"s"  # the workers run
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([pipe], [], [], 1.0)
            if ready and pipe.read(4096) == b"":
                break  # every holder of the write end is gone: the workers died too
        else:
            pytest.fail("the workers outlived their killed caller")


def test_office_subject_and_validity_window(pki: Pki, profile: Profile) -> None:
    name = office_subject(profile, NUMBER, "さくら")
    assert name.rfc4514_string() == f"CN=さくら,OU={NUMBER},O=証明連合会,C=JP"
    issuing = pki.certs["issuing"]
    at = issuing.not_valid_before_utc + dt.timedelta(days=1, microseconds=456789)
    start, end = validity_window(profile, issuing, at)
    assert start == at.replace(microsecond=0)
    assert end == start + dt.timedelta(days=1095) < issuing.not_valid_after_utc
    before = issuing.not_valid_before_utc - dt.timedelta(seconds=1)
    with pytest.raises(Refused) as info:
        validity_window(profile, issuing, before)
    assert info.value.message_ja
