"""Benchmark 2: build a 1,000,000-entry CRL (RSA-2048) vs a hand-encoded bound and openssl ca.

Figures (all measured in this run, on this machine):

* ``crl_build_1M_ledger``: :func:`crl.builder.build_crl` with ``encoded_entries`` (the CA
  ledger's path: entries stored pre-encoded) against the lower bound "join the pre-encoded
  entries, wrap, sign once"; target ours/bound <= 1.5.
* ``crl_build_1M_vs_hand_encoder``: ``build_crl(entries=...)`` end to end, encoding included,
  against the same bound plus the most direct hand encoding of every entry (no checks at all);
  target ours/bound <= 1.5.

The hand-encoded lower bound of the issue ("entries concatenated plus one signature", measured
there at 3.8 s) includes encoding the entries; the first two figures compare like with like
(pre-encoded with pre-encoded, encoding with encoding).
* ``crl_build_1M_vs_openssl``: ``build_crl(entries=...)`` end to end against
  ``openssl ca -gencrl`` over an index.txt of the same million revocations; the ratio is
  openssl/ours and must be >= 3.
"""

from __future__ import annotations

import datetime as dt
import random
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.common import Figure, judged, timed
from crl import der
from crl.builder import SIGNATURE_ALGORITHMS, RevokedEntry, build_crl, encode_entry, subject_der
from crl.reader import load_crl
from signer.keys import SoftwareKey

COUNT = 1_000_000
NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
REASONS = [
    None,
    x509.ReasonFlags.key_compromise,
    x509.ReasonFlags.superseded,
    x509.ReasonFlags.cessation_of_operation,
    x509.ReasonFlags.affiliation_changed,
]


def make_ca() -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A throwaway self-signed RSA-2048 issuing CA allowed to sign CRLs."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name(
        [
            x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "Shomei Bench Federation"),
            x509.NameAttribute(x509.NameOID.COMMON_NAME, "Shomei Bench Issuing CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_entries(count: int = COUNT, seed: int = 2026) -> list[RevokedEntry]:
    """``count`` revocations as the CA would list them after years of operation.

    Serials are the CA's (128 bits, top bit set, see ca/serials.py); revocation times are
    spread over three years to the second, so nearly all are distinct; a mix of reasons.
    """
    rnd = random.Random(seed)
    top = 1 << 127
    span = 3 * 365 * 86400
    return [
        RevokedEntry(
            top | rnd.getrandbits(127),
            NOW - dt.timedelta(seconds=rnd.randrange(span)),
            REASONS[i % len(REASONS)],
        )
        for i in range(count)
    ]


def bound(encoded: list[bytes], cert: x509.Certificate, key: SoftwareKey, number: int = 1) -> bytes:
    """The lower bound: the least work any builder must do with pre-encoded entries."""
    revoked = b"".join(encoded)
    algorithm = SIGNATURE_ALGORITHMS["rsa"]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    extensions = der.tlv(
        0xA0,
        der.sequence(
            der.sequence(der.encode_oid("2.5.29.35"), der.tlv(4, der.sequence(der.tlv(0x80, ski)))),
            der.sequence(der.encode_oid("2.5.29.20"), der.tlv(4, der.encode_integer(number))),
        ),
    )
    head = (
        b"\x02\x01\x01"
        + algorithm
        + subject_der(cert)
        + der.encode_time(NOW)
        + der.encode_time(NOW + dt.timedelta(days=7))
        + b"\x30"
        + der.encode_length(len(revoked))
    )
    size = len(head) + len(revoked) + len(extensions)
    # One copy of the entries into the TBS and one into the CertificateList: the minimum.
    tbs = b"".join((b"\x30", der.encode_length(size), head, revoked, extensions))
    bits = der.tlv(3, b"\x00" + key.sign(tbs))
    size = len(tbs) + len(algorithm) + len(bits)
    return b"".join((b"\x30", der.encode_length(size), tbs, algorithm, bits))


def hand_encode(entries: list[RevokedEntry]) -> list[bytes]:
    """The most direct encoding of each entry, without a single check (for the bound).

    Every serial of :func:`make_entries` is 17 octets, so the lengths are constants here.
    """
    reasons = {
        r: (b"" if r is None else bytes.fromhex("300c300a0603551d1504030a01") + bytes((code,)))
        for r, code in zip(REASONS, (0, 1, 4, 5, 3), strict=True)
    }
    encode_time = der.encode_time
    return [
        b"\x30%c\x02\x11%b%b%b"
        % (
            34 + len(reasons[e.reason]),
            e.serial.to_bytes(17, "big"),
            encode_time(e.revoked_at),
            reasons[e.reason],
        )
        for e in entries
    ]


def openssl_gencrl(
    workdir: Path, cert: x509.Certificate, key: rsa.RSAPrivateKey, entries: list[RevokedEntry]
) -> float:
    """Seconds ``openssl ca -gencrl`` takes for the same revocations (index.txt of them)."""
    ca = workdir / "openssl-ca"
    ca.mkdir()
    (ca / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (ca / "ca.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (ca / "crlnumber").write_text("01\n")
    (ca / "index.txt.attr").write_text("unique_subject = no\n")
    names = {None: "", **{r: "," + r.value for r in REASONS if r is not None}}
    expiry = (NOW + dt.timedelta(days=1000)).strftime("%y%m%d%H%M%SZ")
    with (ca / "index.txt").open("w") as index:
        for i, e in enumerate(entries):
            when = e.revoked_at.strftime("%y%m%d%H%M%SZ") + names[e.reason]
            index.write(f"R\t{expiry}\t{when}\t{e.serial:040X}\tunknown\t/CN=office{i}\n")
    (ca / "openssl.cnf").write_text(
        f"""[ ca ]
default_ca = bench
[ bench ]
dir = {ca}
database = $dir/index.txt
certificate = $dir/ca.pem
private_key = $dir/ca.key
crlnumber = $dir/crlnumber
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""
    )
    start = time.perf_counter()
    subprocess.run(
        [
            "openssl",
            "ca",
            "-config",
            str(ca / "openssl.cnf"),
            "-gencrl",
            "-out",
            str(ca / "crl.pem"),
        ],
        check=True,
        capture_output=True,
    )
    seconds = time.perf_counter() - start
    # Check that openssl really listed them all (with our own reader: -text is slow).
    made = (ca / "crl.pem").read_bytes()
    listed = len(load_crl(made, issuer=cert).index)
    if listed != len(entries):
        raise RuntimeError(f"openssl listed {listed} of {len(entries)} revocations")
    return seconds


def run(workdir: Path) -> list[Figure]:
    print("  making a throwaway RSA-2048 CA and 1,000,000 revocations ...", flush=True)
    cert, private_key = make_ca()
    key = SoftwareKey(private_key)
    entries = make_entries()
    encoded = [encode_entry(e) for e in entries]
    args = {
        "issuer": cert,
        "key": key,
        "number": 1,
        "this_update": NOW,
        "next_update": NOW + dt.timedelta(days=7),
    }

    def best(label: str, func: Callable[[], bytes], runs: int) -> float:
        print(f"  {label} ...", flush=True)
        seconds = min(timed(func)[0] for _ in range(runs))
        print(f"    {seconds:.3f} s (best of {runs})", flush=True)
        return seconds

    ours_entries = best(
        "ours, build_crl(entries=...): encoding included",
        lambda: build_crl(**args, entries=entries),
        3,
    )
    ours_ledger = best(
        "ours, build_crl(encoded_entries=...): the ledger's path",
        lambda: build_crl(**args, encoded_entries=encoded),
        3,
    )
    bound_s = best("lower bound: join + one signature", lambda: bound(encoded, cert, key), 3)
    hand_s = best(
        "unchecked hand encoding + join + one signature",
        lambda: bound(hand_encode(entries), cert, key),
        3,
    )
    encoded.clear()

    figures = [
        judged(
            "crl_build_1M_ledger",
            ours_ledger,
            "s",
            "join + sign bound",
            bound_s,
            target_op="<=",
            target=1.5,
        ),
        judged(
            "crl_build_1M_vs_hand_encoder",
            ours_entries,
            "s",
            "unchecked hand encoding + join + sign",
            hand_s,
            target_op="<=",
            target=1.5,
        ),
    ]
    if shutil.which("openssl"):
        print("  openssl ca -gencrl over index.txt (1,000,000 revoked) ...", flush=True)
        openssl_s = openssl_gencrl(workdir, cert, private_key, entries)
        print(f"    {openssl_s:.3f} s", flush=True)
        figures.append(
            judged(
                "crl_build_1M_vs_openssl (ratio = openssl/ours)",
                ours_entries,
                "s",
                "openssl ca -gencrl",
                openssl_s,
                target_op=">=",
                target=3.0,
                ratio=openssl_s / ours_entries,
            )
        )
    else:
        print("  openssl not found: the openssl figure is not measured", flush=True)
    return figures
