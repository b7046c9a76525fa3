"""Verify 50 KB claims at month-end volume: per-core rate, CRL size, pyHanko, both cores.

Setup (not timed): an RSA-2048 root and issuing CA, 20 RSA-2048 office certificates, 300
claims of 50 KB signed by them (detached CMS, :func:`signer.claims.sign_claim`), and CRLs of
the issuing CA with 1,000, 10,000 and 1,000,000 random serials (:func:`crl.builder.build_crl`).

Figures, each against a reference measured in the same run:

* rate per core with the 1,000,000-entry CRL, against ``openssl speed -seconds 2 rsa2048``'s
  RSA-2048 verify rate (target: at least 10%);
* rate per core with the 10,000-entry CRL, against pyHanko's detached-CMS validation of a
  20-file sample with one shared ValidationContext and hard-fail revocation (target: 100x);
* rate with 1,000,000 CRL entries against the rate with 1,000 (target: at least 0.9);
* batch mode on all cores against one core (target: at least 1.7x on two cores), and that
  speed-up against the machine's own for pure CPU work measured alongside (reported so that
  a miss caused by other jobs on shared cores can be told apart from a fault of batch mode).

Rates read each claim and its signature from disk and are steady-state: the verifier is built
and the CRL loaded before timing, and each signer certificate's chain is validated on first
sight (one warm-up pass over the files, not timed), as it is once per CRL version in service.
Per-core rates are claims per CPU-second of the process (``time.process_time``), as
``openssl speed`` divides by user CPU time, because five engineers share this machine's two
cores; each is the best of seven interleaved passes.  Batch mode is judged on wall-clock time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import multiprocessing
import os
import re
import secrets
import subprocess
import time
from pathlib import Path

from asn1crypto import cms as acms
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bench.common import Figure, judged
from crl.builder import RevokedEntry, build_crl
from signer import batch
from signer.claims import sign_claim
from signer.credentials import Credentials
from signer.keys import SoftwareKey
from signer.verifier import Verifier

OFFICES = 20
CLAIMS = 300
CLAIM_BYTES = 50 * 1024
PYHANKO_SAMPLE = 20
PASSES = 7
CDP = "http://crl.example.jp/issuing.crl"


def _cert(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    now: dt.datetime,
    *,
    ca: bool,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Shomei Bench Federation"),
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
        ]
    )
    usage = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    usage.update(
        {"key_cert_sign": True, "crl_sign": True}
        if ca
        else {"digital_signature": True, "content_commitment": True}
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(**usage), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
        )
    )
    if not ca:
        # A distribution point, so that pyHanko's hard-fail mode really checks the CRL.
        point = x509.DistributionPoint([x509.UniformResourceIdentifier(CDP)], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _openssl_verify_rate() -> float:
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "rsa2048"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"^rsa\s+2048 bits\s+\S+\s+\S+\s+\S+\s+(\S+)\s*$", out, re.MULTILINE)
    if not match:
        raise RuntimeError(f"cannot parse openssl speed output:\n{out}")
    return float(match.group(1))


def _warm(verifier: Verifier, pairs: list[tuple[Path, Path]]) -> Verifier:
    for claim, sig in pairs:  # one chain validation per signer certificate, CRL loaded
        verdict = verifier.verify_files(claim, sig)
        if not verdict.ok:
            raise AssertionError(f"{claim}: {verdict.summary()}")
    return verifier


def _pass(verifier: Verifier, pairs: list[tuple[Path, Path]]) -> float:
    """Claims per CPU-second of this process over one pass (what "per core" means here)."""
    start = time.process_time()
    for claim, sig in pairs:
        verdict = verifier.verify_files(claim, sig)
        if not verdict.ok:
            raise AssertionError(f"{claim}: {verdict.summary()}")
    return len(pairs) / (time.process_time() - start)


def _best_rates(verifiers: list[Verifier], pairs: list[tuple[Path, Path]]) -> list[float]:
    """Best pass of each verifier, passes interleaved so that load from elsewhere hits all."""
    best = [0.0] * len(verifiers)
    for _ in range(PASSES):
        for i, verifier in enumerate(verifiers):
            best[i] = max(best[i], _pass(verifier, pairs))
    return best


def _pyhanko_rate(
    root: x509.Certificate, crl_der: bytes, pairs: list[tuple[Path, Path]], now: dt.datetime
) -> float:
    from pyhanko.sign.validation import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    context = ValidationContext(
        trust_roots=[ax509.Certificate.load(root.public_bytes(Encoding.DER))],
        crls=[crl_der],
        revocation_mode="hard-fail",
        allow_fetching=False,
        moment=now,
    )

    async def run_all() -> None:
        for claim, sig in pairs:
            signed_data = acms.ContentInfo.load(sig.read_bytes())["content"]
            status = await async_validate_detached_cms(
                claim.read_bytes(), signed_data, signer_validation_context=context
            )
            if not status.bottom_line:
                raise AssertionError(f"pyHanko did not validate {claim}: {status}")

    start = time.process_time()
    asyncio.run(run_all())
    return len(pairs) / (time.process_time() - start)


def _burn(_: int) -> float:
    """A fixed amount of pure CPU work (SHA-256 over 64 MB)."""
    block = b"\x00" * (1 << 20)
    for _ in range(64):
        hashlib.sha256(block).digest()
    return 0.0


def _machine_speedup(cores: int) -> float:
    """How much faster ``cores`` processes do ``cores`` units of pure CPU work than one does.

    On an idle machine this is about ``cores``; when other people's jobs share the cores it
    is less, and no batch mode can beat it.
    """
    start = time.perf_counter()
    for i in range(cores):
        _burn(i)
    one = time.perf_counter() - start
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        start = time.perf_counter()
        pool.map(_burn, range(cores), chunksize=1)
        many = time.perf_counter() - start
    return one / many


def run(workdir: Path) -> list[Figure]:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _cert("Bench Root CA", root_key, None, root_key, now, ca=True)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuing = _cert("Bench Issuing CA", ca_key, root, root_key, now, ca=True)
    offices = []
    for i in range(OFFICES):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _cert(f"事業所 {i:02}", key, issuing, ca_key, now, ca=False)
        offices.append(Credentials(SoftwareKey(key), cert, (issuing,), key))
    claims = workdir / "claims"
    claims.mkdir()
    pairs = []
    for i in range(CLAIMS):
        content = os.urandom(CLAIM_BYTES)
        claim = claims / f"claim-{i:04}.dat"
        claim.write_bytes(content)
        sig = claim.with_name(claim.name + ".p7s")
        sig.write_bytes(sign_claim(content, credentials=offices[i % OFFICES], signing_time=now))
        pairs.append((claim, sig))

    def crl(size: int) -> bytes:
        entries = [
            RevokedEntry(serial=secrets.randbits(126) | 1 << 125, revoked_at=now, reason=None)
            for _ in range(size)
        ]
        return build_crl(
            issuer=issuing,
            key=SoftwareKey(ca_key),
            number=size,
            this_update=now - dt.timedelta(hours=1),
            next_update=now + dt.timedelta(days=7),
            entries=entries,
        )

    def verifier(crl_der: bytes) -> Verifier:
        return Verifier(trust_anchors=[root], crls=[crl_der], clock=lambda: now)

    crl_10k = crl(10_000)
    pyhanko = _pyhanko_rate(root, crl_10k, pairs[:PYHANKO_SAMPLE], now)
    small, medium, big = (
        _warm(verifier(data), pairs) for data in (crl(1_000), crl_10k, crl(1_000_000))
    )
    rate_1k, rate_10k, rate_1m = _best_rates([small, medium, big], pairs)
    openssl = _openssl_verify_rate()  # user CPU time per operation, like our rates

    # Batch mode, wall clock: the same files many times over (30,000 claims, still far below a
    # month-end's hundreds of thousands), so that the work dwarfs forking the pool; best of
    # two interleaved runs each, as other processes share the machine.
    items = [batch.Item(c, s) for c, s in pairs] * 100
    cores = os.cpu_count() or 1
    one = both = machine = 0.0
    for _ in range(2):
        machine = max(machine, _machine_speedup(cores))
        for workers in (1, cores):
            start = time.perf_counter()
            rows = batch.verify_items(big, items, workers=workers)
            rate = len(items) / (time.perf_counter() - start)
            if not all(r.verdict.ok for r in rows):
                raise AssertionError("batch mode found a claim not valid")
            if workers == 1:
                one = max(one, rate)
            else:
                both = max(both, rate)

    return [
        judged(
            "verify per core, 1,000,000-entry CRL",
            rate_1m,
            "claims/s",
            "openssl speed rsa2048 verify",
            openssl,
            target_op=">=",
            target=0.10,
        ),
        judged(
            "verify per core vs pyHanko, 10,000-entry CRL",
            rate_10k,
            "claims/s",
            f"pyHanko detached CMS, hard-fail, {PYHANKO_SAMPLE} files",
            pyhanko,
            target_op=">=",
            target=100.0,
        ),
        judged(
            "verify per core, 1,000,000 vs 1,000 CRL entries",
            rate_1m,
            "claims/s",
            "same with a 1,000-entry CRL",
            rate_1k,
            target_op=">=",
            target=0.9,
        ),
        judged(
            f"batch mode on {cores} cores vs 1 (1,000,000-entry CRL)",
            both,
            "claims/s",
            f"batch mode on 1 core (load average {os.getloadavg()[0]:.1f} at the end)",
            one,
            target_op=">=",
            target=1.7 if cores >= 2 else 0.9,
        ),
        # Not a target of the issue: what the machine allowed in the same minute, so that a
        # miss of the figure above can be told apart from a fault of batch mode.
        judged(
            f"batch mode speed-up vs the machine's own on {cores} cores",
            both / one if one else 0.0,
            "x",
            "pure-CPU speed-up of the machine (SHA-256 on 1 vs all cores)",
            machine,
            target_op=">=",
            target=0.85,
        ),
    ]
