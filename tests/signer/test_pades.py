"""PDF claims (PAdES): our signed PDF validates with pyHanko, changes after signing are reported."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import PdfFileWriter
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from shomei.errors import MalformedInput
from signer.pades import is_pdf, sign_pdf, verify_pdf
from signer.verdict import Status
from signer.verifier import Verifier
from tests.pki import Pki
from tests.signer.conftest import credentials, make_crl

MakeVerifier = Callable[..., Verifier]


def small_pdf() -> bytes:
    writer = PdfFileWriter()
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject(
                [generic.NumberObject(n) for n in (0, 0, 595, 842)]
            ),
        }
    )
    writer.insert_page(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def signed(pki: Pki) -> bytes:
    return sign_pdf(small_pdf(), credentials=credentials(pki, "office"))


def test_signed_pdf_validates_with_pyhanko(pki: Pki, signed: bytes) -> None:
    root = ax509.Certificate.load(pki.certs["root"].public_bytes(Encoding.DER))
    context = ValidationContext(
        trust_roots=[root],
        crls=[pki.crl_der, make_crl(pki, issuer="root")],
        revocation_mode="require",
    )
    emb = PdfFileReader(BytesIO(signed)).embedded_signatures[0]
    status = asyncio.run(async_validate_pdf_signature(emb, signer_validation_context=context))
    assert status.bottom_line, status.pretty_print_details()


def test_we_verify_our_signed_pdf(signed: bytes, make_verifier: MakeVerifier) -> None:
    assert is_pdf(signed)
    verdict = verify_pdf(signed, verifier=make_verifier())
    assert verdict.status is Status.VALID, verdict.reasons


def test_revoked_pdf_signer(pki: Pki, make_verifier: MakeVerifier) -> None:
    pdf = sign_pdf(small_pdf(), credentials=credentials(pki, "revoked"))
    assert verify_pdf(pdf, verifier=make_verifier()).reasons[0].code == "revoked"


def test_pdf_changed_after_signing(signed: bytes, make_verifier: MakeVerifier) -> None:
    writer = IncrementalPdfFileWriter(BytesIO(signed))
    writer.root["/ShomeiTampered"] = generic.TextStringObject("金額を変更")
    writer.update_root()
    out = BytesIO()
    writer.write(out)
    verdict = verify_pdf(out.getvalue(), verifier=make_verifier())
    assert verdict.status is Status.INVALID and verdict.reasons[0].code == "modified"
    assert "modified after it was signed" in verdict.summary()


def test_pdf_bytes_changed_in_signed_range(signed: bytes, make_verifier: MakeVerifier) -> None:
    at = signed.index(b"/MediaBox")
    tampered = signed[:at] + b"/MediaBoy" + signed[at + 9 :]
    verdict = verify_pdf(tampered, verifier=make_verifier())
    assert verdict.status is not Status.VALID


def test_unsigned_and_garbage_pdf(make_verifier: MakeVerifier, pki: Pki) -> None:
    assert verify_pdf(small_pdf(), verifier=make_verifier()).reasons[0].code == "unsigned"
    assert verify_pdf(b"%PDF-1.7 junk", verifier=make_verifier()).status is Status.UNDECIDED
    with pytest.raises(MalformedInput, match="not a readable PDF"):
        sign_pdf(b"not a pdf", credentials=credentials(pki, "office"))


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_pyhanko_logs_only_at_debug(signed: bytes, make_verifier: MakeVerifier) -> None:
    # pyHanko, asked about integrity only, logs a warning and a traceback about the trust path
    # it could not build; the verdict is the one place for reasons, the log gets it at DEBUG.
    # (A handler of our own on the root logger sees what an application's handlers would;
    # pytest's caplog also listens on loggers that do not propagate.)
    # The CLI's logging set-up (run in-process by other tests) may have left the ``shomei``
    # logger at another level or not propagating: this test sets both for itself.
    root, ours = logging.getLogger(), logging.getLogger("shomei")
    seen, saved = _Collect(), (root.level, ours.level, ours.propagate)
    root.addHandler(seen)
    root.setLevel(logging.DEBUG)
    ours.setLevel(logging.NOTSET)
    ours.propagate = True
    try:
        assert verify_pdf(signed, verifier=make_verifier()).ok
    finally:
        root.removeHandler(seen)
        root.setLevel(saved[0])
        ours.setLevel(saved[1])
        ours.propagate = saved[2]
    assert [r.name for r in seen.records if r.levelno >= logging.INFO] == []
    routed = [r for r in seen.records if r.name == "shomei.signer.pades"]
    assert routed and "pyhanko" in routed[0].getMessage()


def test_the_command_prints_one_line_and_nothing_else(
    signed: bytes, pki_dir: Path, tmp_path: Path
) -> None:
    (tmp_path / "signed.pdf").write_bytes(signed)
    shomei = Path(sys.executable).with_name("shomei")
    args = ["verify", tmp_path / "signed.pdf", "--trust", pki_dir / "root.pem"]
    proc = subprocess.run(
        [shomei, *args, "--crl", pki_dir / "issuing.crl"],
        capture_output=True,
        env={**os.environ, "SHOMEI_LANG": "en"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == b"" and proc.stdout.decode().count("\n") == 1
    unchecked = subprocess.run(
        [shomei, *args], capture_output=True, env={**os.environ, "SHOMEI_LANG": "en"}, check=False
    )
    assert unchecked.returncode == 2
    assert unchecked.stderr.decode().count("\n") == 1, unchecked.stderr  # no CRL: one line
