"""Benchmark 3: load and check a 1,000,000-entry CRL, its peak memory, and lookups.

Figures (all measured in this run, on this machine, against the same CRL):

* ``crl_load_1M``: :func:`crl.reader.load_crl` (signature checked, index built) against
  cryptography's ``load_der_x509_crl`` plus a set of every entry's serial (no signature
  check); target ours/theirs <= 1.0.
* ``crl_load_1M_peak_tracemalloc`` and ``crl_load_1M_peak_rss``: peak memory of one
  ``load_crl`` in a fresh process, the DER already in memory: the tracemalloc peak, and the
  growth of the resident set's high-water mark (VmHWM); target <= 150 MB each.
* ``crl_lookup_rate``: 100,000 ``index.lookup()`` calls, half of them hits, per second,
  against ``get_revoked_certificate_by_serial_number`` of cryptography on 100 lookups;
  ratio ours/theirs, target >= 1000.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import random
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bench.bench_crl_build import NOW, make_ca, make_entries
from bench.common import Figure, judged, timed
from crl.builder import build_crl
from crl.reader import load_crl
from signer.keys import SoftwareKey

BUDGET_MB = 150.0
_MEMORY_PROBE = """
import gc, json, sys, tracemalloc
from pathlib import Path
from cryptography import x509
from crl.reader import load_crl

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise SystemExit(f"no {field} in /proc/self/status")

data = Path(sys.argv[1]).read_bytes()
issuer = x509.load_pem_x509_certificate(Path(sys.argv[2]).read_bytes())
gc.collect()
Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
before = status("VmRSS")
loaded = load_crl(data, issuer=issuer)
rss = status("VmHWM") - before
count = len(loaded.index)
del loaded
gc.collect()
tracemalloc.start()
loaded = load_crl(data, issuer=issuer)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"rss": rss, "traced": traced, "count": count}))
"""


def theirs(data: bytes) -> set[int]:
    """cryptography's way: parse, then iterate every entry into a set (no signature check)."""
    crl = x509.load_der_x509_crl(data)
    return {r.serial_number for r in crl}


def run(workdir: Path) -> list[Figure]:
    print("  making a throwaway RSA-2048 CA and a 1,000,000-entry CRL ...", flush=True)
    cert, private_key = make_ca()
    entries = make_entries()
    serials = [e.serial for e in entries]
    data = build_crl(
        issuer=cert,
        key=SoftwareKey(private_key),
        number=1,
        this_update=NOW,
        next_update=NOW + dt.timedelta(days=7),
        entries=entries,
    )
    del entries
    crl_path = workdir / "big.crl"
    crl_path.write_bytes(data)
    cert_path = workdir / "issuer.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    print(f"    {len(data) / 1e6:.1f} MB of DER", flush=True)
    gc.collect()

    # Alternate the two, twice each, and keep each one's best: the machine is shared.
    ours_s: list[float] = []
    theirs_s: list[float] = []
    loaded = None
    for round_ in range(2):
        print(f"  round {round_ + 1}: load_crl (signature checked) ...", flush=True)
        loaded = None
        gc.collect()
        seconds, loaded = timed(lambda: load_crl(data, issuer=cert))
        ours_s.append(seconds)
        print(f"    {seconds:.3f} s, {len(loaded.index)} serials", flush=True)
        print(
            f"  round {round_ + 1}: cryptography load_der_x509_crl + set of serials ...", flush=True
        )
        seconds, serial_set = timed(lambda: theirs(data))
        theirs_s.append(seconds)
        print(f"    {seconds:.3f} s, {len(serial_set)} serials", flush=True)
        if len(serial_set) != len(loaded.index) or len(serial_set) != len(serials):
            raise RuntimeError("the two parsers disagree on the number of serials")
        del serial_set
    assert loaded is not None

    print("  peak memory of load_crl in a fresh process ...", flush=True)
    probe = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(crl_path), str(cert_path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    memory = json.loads(probe.stdout)
    rss_mb = memory["rss"] / 1e6
    traced_mb = memory["traced"] / 1e6
    print(f"    tracemalloc peak {traced_mb:.1f} MB, RSS high-water growth {rss_mb:.1f} MB")

    rnd = random.Random(7)
    hits = rnd.sample(serials, 50_000)
    probes = hits + [(1 << 127) | rnd.getrandbits(127) for _ in range(50_000)]
    rnd.shuffle(probes)
    index = loaded.index
    print("  100,000 lookups (half hits) ...", flush=True)
    seconds, found = timed(lambda: sum(index.lookup(p) is not None for p in probes))
    if found != 50_000:
        raise RuntimeError(f"{found} hits instead of 50,000")
    ours_rate = len(probes) / seconds
    print(f"    {ours_rate:,.0f} lookups/s", flush=True)
    crl = x509.load_der_x509_crl(data)
    few = probes[:100]
    print("  cryptography get_revoked_certificate_by_serial_number, 100 lookups ...", flush=True)
    their_seconds, their_found = timed(
        lambda: sum(crl.get_revoked_certificate_by_serial_number(p) is not None for p in few)
    )
    if their_found != sum(index.lookup(p) is not None for p in few):
        raise RuntimeError("the two lookups disagree")
    their_rate = len(few) / their_seconds
    print(f"    {their_rate:,.1f} lookups/s", flush=True)

    return [
        judged(
            "crl_load_1M",
            min(ours_s),
            "s",
            "cryptography load + set of serials (no signature check)",
            min(theirs_s),
            target_op="<=",
            target=1.0,
        ),
        judged(
            "crl_load_1M_peak_tracemalloc",
            traced_mb,
            "MB",
            "budget",
            BUDGET_MB,
            target_op="<=",
            target=1.0,
        ),
        judged(
            "crl_load_1M_peak_rss",
            rss_mb,
            "MB",
            "budget",
            BUDGET_MB,
            target_op="<=",
            target=1.0,
        ),
        judged(
            "crl_lookup_rate (ratio = ours/theirs)",
            ours_rate,
            "lookups/s",
            "cryptography get_revoked_certificate_by_serial_number",
            their_rate,
            target_op=">=",
            target=1000.0,
        ),
    ]
