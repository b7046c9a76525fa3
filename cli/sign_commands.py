"""``shomei sign``, ``shomei verify`` and ``shomei notice``: the signer library on the command line.

Thin commands: parse the options, call one function of :mod:`signer`, print one line.  Exit
codes follow :mod:`cli.errors`: 0 valid, 1 invalid (tampered, revoked, untrusted, expired),
2 could not decide (no current CRL, malformed input).  Library imports are deferred into the
commands so that ``shomei --help`` stays quick.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.errors import handle_errors, language, naming
from shomei import files
from shomei.errors import MalformedInput, NotFound

if TYPE_CHECKING:
    from signer.credentials import Credentials
    from signer.verifier import Verifier

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
ANY_PATH = click.Path(exists=True, path_type=Path)
OUT = click.Path(dir_okay=False, path_type=Path)


def _read(path: Path, what: str, what_ja: str, *, limit: int = files.MAX_OBJECT) -> bytes:
    """A file the user named, through the one input layer (:mod:`shomei.files`): refused
    before reading when it is a folder, a FIFO or device, or larger than ``limit``."""
    return files.read_bytes(path, what=what, what_ja=what_ja, limit=limit)


def _certificates(
    path: Path, what: str = "certificate file", what_ja: str = "証明書ファイル"
) -> bytes:
    """A file of certificates (PEM or DER), checked to hold at least one: an error names it."""
    from signer.credentials import load_certificates

    data = _read(path, what, what_ja)
    with naming(path):
        load_certificates(data)
    return data


def _write(path: Path, data: bytes, *, force: bool) -> None:
    files.write_file(path, data, overwrite=force)


def _secret(
    file: Path | None,
    prompt: str,
    *,
    what: str = "password file",
    what_ja: str = "パスワードファイル",
) -> str:
    """A password or PIN from the first line of ``file``, else asked at the prompt."""
    if file is not None:
        text = files.read_text(file, what=what, what_ja=what_ja, limit=files.MAX_SECRET)
        lines = text.splitlines()
        return lines[0] if lines else ""
    return str(click.prompt(prompt, hide_input=True, err=True))


def _credentials(
    *,
    p12: Path | None,
    key: Path | None,
    cert: Path | None,
    chain: tuple[Path, ...],
    password_file: Path | None,
    pkcs11_module: Path | None,
    token_label: str | None,
    key_label: str | None,
    pin_file: Path | None,
) -> Credentials:
    from signer import credentials as creds

    chosen = [p12 is not None, key is not None, pkcs11_module is not None]
    if sum(chosen) != 1:
        raise MalformedInput(
            "give exactly one key source: --p12, --key with --cert, or --pkcs11-module",
            message_ja="鍵の指定は --p12、--key と --cert、--pkcs11-module の"
            "いずれか 1 つにしてください",
        )
    extra = [_certificates(p) for p in chain]
    if p12 is not None:
        p12_data = _read(p12, "PKCS#12 file", "PKCS#12 ファイル")
        password = _secret(password_file, "PKCS#12 password")
        # "Wrong password, or not a PKCS#12 file": either file may be the one to check.
        with naming(p12 if password_file is None else f"{p12} (password in {password_file})"):
            loaded = creds.load_pkcs12(p12_data, password)
        # --chain adds to the chain the PKCS#12 file brings (it was ignored before).
        extra_certificates = tuple(c for data in extra for c in creds.load_certificates(data))
        return dataclasses.replace(loaded, chain=loaded.chain + extra_certificates)
    if cert is None:
        raise MalformedInput(
            "--cert is required with --key and --pkcs11-module",
            message_ja="--key と --pkcs11-module には --cert が必要です",
        )
    if key is not None:
        key_data = _read(key, "key file", "鍵ファイル")
        cert_data = _certificates(cert)
        key_password = None
        if password_file is not None or b"ENCRYPTED" in key_data:
            key_password = _secret(password_file, "Key password")
        with naming(key):
            return creds.load_pem(key_data, cert_data, password=key_password, chain=extra)
    if not token_label or not key_label:
        raise MalformedInput(
            "--token-label and --key-label are required with --pkcs11-module",
            message_ja="--pkcs11-module には --token-label と --key-label が必要です",
        )
    assert pkcs11_module is not None
    # The dynamic linker opens the module itself: check it is a plain file first.
    files.check_file(pkcs11_module, what="PKCS#11 module", what_ja="PKCS#11 モジュール")
    pin = _secret(pin_file, "Token PIN", what="PIN file", what_ja="PIN ファイル")
    if not pin.strip() and pin_file is not None:
        raise MalformedInput(
            f"the PIN file {pin_file} is empty", message_ja=f"PIN ファイル {pin_file} が空です"
        )
    cert_data = _certificates(cert)
    return creds.load_pkcs11(
        module=pkcs11_module,
        token_label=token_label,
        key_label=key_label,
        pin=pin,
        cert_data=cert_data,
        chain=extra,
    )


@click.command("sign")
@click.argument("claim", type=FILE)
@click.option("--p12", type=FILE, help="PKCS#12 file with the key and certificate.")
@click.option("--key", type=FILE, help="PEM private key (with --cert).")
@click.option("--cert", type=FILE, help="PEM certificate (with --key or --pkcs11-module).")
@click.option("--chain", type=FILE, multiple=True, help="Extra CA certificates to attach.")
@click.option("--password-file", type=FILE, help="File whose first line is the password.")
@click.option("--pkcs11-module", type=FILE, help="PKCS#11 module (.so) of the token.")
@click.option("--token-label", help="Label of the PKCS#11 token.")
@click.option("--key-label", help="Label of the key on the token.")
@click.option("--pin-file", type=FILE, help="File whose first line is the token PIN.")
@click.option("--pades", is_flag=True, help="Sign a PDF claim inside the PDF (PAdES).")
@click.option("-o", "--output", type=OUT, help="Output file (default CLAIM.p7s).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@handle_errors
def sign_command(
    claim: Path,
    p12: Path | None,
    key: Path | None,
    cert: Path | None,
    chain: tuple[Path, ...],
    password_file: Path | None,
    pkcs11_module: Path | None,
    token_label: str | None,
    key_label: str | None,
    pin_file: Path | None,
    pades: bool,
    output: Path | None,
    force: bool,
) -> None:
    """Sign CLAIM: a detached CMS signature CLAIM.p7s, or PAdES inside a PDF (--pades)."""
    from signer.claims import sign_file

    default = claim.with_name(claim.stem + "-signed.pdf" if pades else claim.name + ".p7s")
    out = output or default
    files.check_new_file(out, what="output file", what_ja="出力ファイル", overwrite=force)
    credentials = _credentials(
        p12=p12,
        key=key,
        cert=cert,
        chain=chain,
        password_file=password_file,
        pkcs11_module=pkcs11_module,
        token_label=token_label,
        key_label=key_label,
        pin_file=pin_file,
    )
    if pades:
        from signer.pades import sign_pdf

        claim_data = _read(claim, "claim", "請求ファイル", limit=files.MAX_INPUT)
        _write(out, sign_pdf(claim_data, credentials=credentials), force=force)
    else:
        sign_file(claim, credentials=credentials, output=out, overwrite=force)
    click.echo(f"signed: {out}" if language() != "ja" else f"署名しました: {out}")


@click.command("verify")
@click.argument("path", type=ANY_PATH)
@click.option("--signature", type=FILE, help="Detached signature (default PATH.p7s).")
@click.option("--trust", type=FILE, multiple=True, required=True, help="Trusted root (PEM).")
@click.option("--crl", type=FILE, multiple=True, help="CRL (DER or PEM); repeatable.")
@click.option("--untrusted", type=FILE, multiple=True, help="Extra intermediate certificates.")
@click.option(
    "--fetch", is_flag=True, help="Fetch each signer's CRL from the URL in its certificate."
)
@click.option("--report", type=OUT, help="CSV report for Excel (UTF-8 with BOM).")
@click.option("--workers", type=click.IntRange(1, 256), help="Processes (default: all cores).")
@handle_errors
def verify_command(
    path: Path,
    signature: Path | None,
    trust: tuple[Path, ...],
    crl: tuple[Path, ...],
    untrusted: tuple[Path, ...],
    fetch: bool,
    report: Path | None,
    workers: int | None,
) -> None:
    """Verify a claim (PATH with PATH.p7s, or a signed PDF) or every claim of a folder."""
    from signer import batch
    from signer.fetch import CrlFetcher
    from signer.verifier import load_verifier

    if report is not None:  # refused now, not after an hour of verifying
        files.check_new_file(report, what="report", what_ja="レポート")

    trusted = [_certificates(p, "trust anchor file", "信頼点のファイル") for p in trust]
    verifier = load_verifier(
        trust=trusted,
        untrusted=[_certificates(p) for p in untrusted],
        fetcher=CrlFetcher() if fetch else None,
    )
    for crl_path in crl:
        data = _read(crl_path, "CRL file", "CRL ファイル", limit=files.MAX_INPUT)
        with naming(crl_path):  # which of several --crl files it was
            verifier.add_crl(data)
    lang = language()
    if path.is_dir():
        sys.exit(_verify_folder(verifier, path, report, workers, lang))
    detached = signature or path.with_name(path.name + ".p7s")
    sig_path: Path | None = detached
    if signature is None and not detached.exists():
        # No detached signature: a PDF carries its own (PAdES); anything else is unsigned
        # (INVALID, exit 1), as in a folder.
        from signer.pades import is_pdf

        head = files.read_head(path, 1024, what="claim", what_ja="請求ファイル")
        sig_path = None if is_pdf(head) else detached
    verdict = batch.check(verifier, batch.Item(path, sig_path))
    if report is not None:
        batch.write_report([batch.Row(batch.Item(path, sig_path), verdict)], report)
    with naming(path):  # the one line names the claim, as a valid verdict's line does
        verdict.raise_for_status()
    click.echo(batch.printable(f"{path}: {verdict.summary(lang)}"))


def _verify_folder(
    verifier: Verifier, folder: Path, report: Path | None, workers: int | None, lang: str
) -> int:
    from rich.console import Console
    from rich.progress import Progress

    from signer import batch

    items = batch.find_claims(folder)
    if not items:
        raise NotFound(f"no claims in {folder}", message_ja=f"{folder} に請求ファイルがありません")
    console = Console(stderr=True)  # stdout: results
    # Only at a terminal: elsewhere a bar leaves blank lines among the one-line reasons.
    with Progress(transient=True, console=console, disable=not console.is_terminal) as bar:
        task = bar.add_task("verifying", total=len(items))
        rows = batch.verify_items(
            verifier, items, workers=workers, progress=lambda n: bar.advance(task, n)
        )
    if report is not None:
        batch.write_report(rows, report)
    counts = {
        s: sum(1 for r in rows if r.verdict.status.value == s)
        for s in ("valid", "invalid", "undecided")
    }
    line = f"{counts['valid']} valid, {counts['invalid']} invalid, {counts['undecided']} undecided"
    if lang == "ja":
        line = (
            f"有効 {counts['valid']} 件、無効 {counts['invalid']} 件、"
            f"判定不能 {counts['undecided']} 件"
        )
    click.echo(line + (f"; report: {report}" if report else ""))
    for row in rows:
        if not row.verdict.ok:
            click.echo(batch.printable(f"{row.item.name}: {row.verdict.summary(lang)}"), err=True)
    return batch.exit_code(rows)


@click.group("notice")
def notice_group() -> None:
    """Sealed notices (暗号化されたお知らせ): seal a document to a certificate, open it."""


@notice_group.command("seal")
@click.argument("document", type=FILE)
@click.option("--to", "to", type=FILE, required=True, help="Recipient certificate (PEM).")
@click.option("-o", "--output", type=OUT, required=True, help="Sealed output (DER .p7m).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@handle_errors
def seal_command(document: Path, to: Path, output: Path, force: bool) -> None:
    """Encrypt DOCUMENT to the holder of the certificate --to (CMS AuthEnvelopedData, AES-GCM)."""
    files.check_new_file(output, what="output file", what_ja="出力ファイル", overwrite=force)
    from signer.credentials import load_certificates
    from signer.notices import MAX_NOTICE_BYTES, seal

    document_data = _read(document, "document", "文書", limit=MAX_NOTICE_BYTES)
    recipient = load_certificates(_certificates(to, "recipient certificate", "受取人の証明書"))[0]
    sealed = seal(document_data, recipient=recipient)
    _write(output, sealed, force=force)
    click.echo(f"sealed: {output}" if language() != "ja" else f"暗号化しました: {output}")


@notice_group.command("open")
@click.argument("sealed", type=FILE)
@click.option("--p12", type=FILE, help="PKCS#12 file with your key and certificate.")
@click.option("--key", type=FILE, help="PEM private key (with --cert).")
@click.option("--cert", type=FILE, help="PEM certificate (with --key).")
@click.option("--password-file", type=FILE, help="File whose first line is the password.")
@click.option("-o", "--output", type=OUT, help="Write the document here (default: stdout).")
@handle_errors
def open_command(
    sealed: Path,
    p12: Path | None,
    key: Path | None,
    cert: Path | None,
    password_file: Path | None,
    output: Path | None,
) -> None:
    """Decrypt a sealed notice with your key (e.g. the reissued issuance password)."""
    if output is not None:
        files.check_new_file(output, what="output file", what_ja="出力ファイル")
    from signer.notices import open_notice

    credentials = _credentials(
        p12=p12,
        key=key,
        cert=cert,
        chain=(),
        password_file=password_file,
        pkcs11_module=None,
        token_label=None,
        key_label=None,
        pin_file=None,
    )
    sealed_data = _read(sealed, "sealed notice", "お知らせ")
    with naming(sealed):
        document = open_notice(sealed_data, credentials=credentials)
    if output is None:
        click.echo(document, nl=False)
    else:
        _write(output, document, force=False)
        click.echo(f"opened: {output}" if language() != "ja" else f"復号しました: {output}")


COMMANDS = (sign_command, verify_command, notice_group)
