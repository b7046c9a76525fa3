"""Key ceremonies: create the root and issuing CAs and issue their CRLs, scripted and logged.

One reviewed ceremony file (:mod:`ca.ceremony_config`) drives one run.  :func:`plan` says
what would happen and which files would be written (the dry run prints it); :func:`run`
refuses to start if any output exists (nothing is ever overwritten), then performs the
actions in order and records every step in a hash-chained transcript
(:mod:`ca.transcript`) signed at the end with the last CA key used.

CA certificates are issued in the same two steps as office certificates (STYLE.md): the
certificate is built and signed with a throwaway key of the issuer's key type, linted with
pkilint (RFC 5280 §4; warnings are failures), and only then is its TBS signed with the real
key (:func:`ca.certasm.certificate_from_tbs`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca import lint
from ca.cacert import build_ca_certificate
from ca.ceremony_config import Action, CASpec, CeremonyConfig, KeySpec
from ca.custody import open_ca_key
from ca.custody.keyfile import create_key_file, key_file_info
from ca.custody.shares import Share, share_fingerprint
from ca.home import HomePaths, federation_profile, settings_text
from ca.ledger import Ledger
from ca.ledger_record import record_path
from ca.profile import load_profile
from ca.settings import KeyRef
from ca.transcript import Transcript, file_digest
from shomei import config
from shomei.errors import Refused
from shomei.files import write_new
from signer.keys import SigningKey

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    action: Action
    description: str
    outputs: tuple[Path, ...]


@dataclass
class CeremonyResult:
    steps: list[Step]
    written: list[Path] = field(default_factory=list)
    share_files: list[Path] = field(default_factory=list)
    transcript: Path | None = None


def plan(cfg: CeremonyConfig) -> list[Step]:
    """The steps of the ceremony and the files each one writes (nothing is touched)."""
    paths = HomePaths(cfg.ceremony.ca_home)
    steps: list[Step] = []
    for action in cfg.ceremony.actions:
        if action in ("create-root", "create-issuing"):
            which = "root" if action == "create-root" else "issuing"
            spec = cfg.root if which == "root" else cfg.issuing
            assert spec is not None  # checked by CeremonyConfig
            outputs = [paths.cert(which), paths.cert_der(which), paths.key_ref(which)]
            custody = f"PKCS#11 token {spec.key.token_label!r}, key {spec.key.key_label!r}"
            if spec.key.backend == "file":
                outputs += [paths.key_file(which), paths.key_file(which).with_suffix(".json")]
                outputs += _share_files(cfg, which, spec.key)
                custody = (
                    f"encrypted PKCS#8, passphrase split {spec.key.m}-of-{spec.key.n} "
                    "among custodians"
                )
            issuer = "self-signed" if which == "root" else "signed by the root"
            steps.append(
                Step(
                    action,
                    (
                        f"generate a {spec.key.algorithm} key ({custody}); {issuer} CA "
                        f"certificate CN={spec.common_name}, O={cfg.federation.name}, "
                        f"valid {spec.validity.days} days"
                    ),
                    tuple(outputs),
                )
            )
        elif action == "root-crl":
            steps.append(
                Step(
                    action,
                    (f"issue the root's CRL (ARL), valid {cfg.crl.root_validity.days} days"),
                    (paths.crl_dir("root"),),
                )
            )
        else:
            steps.append(
                Step(
                    action,
                    (
                        f"issue the issuing CA's CRL from the ledger, valid "
                        f"{cfg.crl.issuing_validity.days} days"
                    ),
                    (paths.crl_dir("issuing"),),
                )
            )
    if not paths.settings.exists() and _issuer_of_offices(cfg) is not None:
        steps[-1] = Step(
            steps[-1].action,
            steps[-1].description,
            (
                *steps[-1].outputs,
                paths.settings,
                paths.ledger,
                record_path(paths.ledger),
                paths.profiles,
            ),
        )
    return steps


def _share_files(cfg: CeremonyConfig, which: str, key: KeySpec) -> list[Path]:
    folder = cfg.ceremony.shares_dir
    if folder is None:
        return []
    return [folder / f"{which}-share-{i}-of-{key.n}.txt" for i in range(1, key.n + 1)]


def _issuer_of_offices(cfg: CeremonyConfig) -> str | None:
    """Which CA this ceremony makes the issuer of office certificates, if any."""
    actions = cfg.ceremony.actions
    if "create-issuing" in actions:
        return "issuing"
    if "create-root" in actions and cfg.issuing is None:
        return "root"  # single tier
    return None


def _check_free(steps: Sequence[Step]) -> None:
    for step in steps:
        for out in step.outputs:
            if out.suffix and out.exists():
                raise Refused(
                    f"{out} already exists; a ceremony never overwrites files",
                    message_ja=f"{out} は既に存在します(儀式はファイルを上書きしません)",
                    path=str(out),
                )


def run(
    cfg: CeremonyConfig,
    *,
    config_path: Path,
    now: dt.datetime,
    shares: Sequence[Share] = (),
    pin: str | None = None,
    echo: Echo = print,
) -> CeremonyResult:
    """Perform the ceremony.  ``shares``/``pin`` open CA keys made by an earlier ceremony."""
    steps = plan(cfg)
    _check_free(steps)
    paths = HomePaths(cfg.ceremony.ca_home)
    result = CeremonyResult(steps=steps)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    transcript = Transcript(
        _free_transcript_path(paths, cfg.ceremony.name, stamp), ceremony=cfg.ceremony.name, now=now
    )
    result.transcript = transcript.path
    transcript.append(
        "present", now=now, operator=cfg.ceremony.operator, witnesses=cfg.ceremony.witnesses
    )
    transcript.append(
        "config",
        now=now,
        file=str(config_path),
        sha256=file_digest(config_path),
        text=config_path.read_text(encoding="utf-8"),
    )
    keys: dict[str, SigningKey] = {}
    certs: dict[str, x509.Certificate] = {}
    try:
        for step in steps:
            echo(f"== {step.action}: {step.description}")
            if step.action == "create-root":
                assert cfg.root is not None
                key = _new_key("root", cfg.root.key, cfg, paths, pin, transcript, result, now)
                keys["root"] = key
                certs["root"] = _write_ca_cert(
                    "root",
                    cfg,
                    cfg.root,
                    subject_key=key,
                    issuer_key=key,
                    issuer_cert=None,
                    paths=paths,
                    transcript=transcript,
                    result=result,
                    now=now,
                )
            elif step.action == "create-issuing":
                assert cfg.issuing is not None
                root_key = keys.get("root") or _open_existing("root", paths, shares, pin)
                root_cert = certs.get("root") or _read_cert(paths.cert("root"))
                key = _new_key("issuing", cfg.issuing.key, cfg, paths, pin, transcript, result, now)
                keys["issuing"] = key
                keys.setdefault("root", root_key)
                certs.setdefault("root", root_cert)
                certs["issuing"] = _write_ca_cert(
                    "issuing",
                    cfg,
                    cfg.issuing,
                    subject_key=key,
                    issuer_key=root_key,
                    issuer_cert=root_cert,
                    paths=paths,
                    transcript=transcript,
                    result=result,
                    now=now,
                )
            elif step.action == "root-crl":
                key = keys.get("root") or _open_existing("root", paths, shares, pin)
                keys.setdefault("root", key)
                cert = certs.setdefault("root", _read_cert(paths.cert("root")))
                _write_root_crl(cfg, cert, key, paths, transcript, result, now)
        which = _issuer_of_offices(cfg)
        if which is not None and not paths.settings.exists():
            _write_settings(cfg, which, paths, transcript, result, now)
        if "issuing-crl" in cfg.ceremony.actions:
            which = "issuing" if paths.cert("issuing").exists() else "root"
            key = keys.get(which) or _open_existing(which, paths, shares, pin)
            keys.setdefault(which, key)
            _write_issuing_crl(paths, key, transcript, result, now)
    except BaseException as exc:
        transcript.abandon(now=now, reason=str(exc) or type(exc).__name__)
        raise
    signer_name = "issuing" if "issuing" in keys else "root"
    signer_cert = certs.get(signer_name) or _read_cert(paths.cert(signer_name))
    transcript.sign_and_close(key=keys[signer_name], certificate=signer_cert, now=now)
    echo(f"transcript: {transcript.path} (signed)")
    return result


def _free_transcript_path(paths: HomePaths, name: str, stamp: str) -> Path:
    # An abandoned attempt in the same second keeps its transcript; the retry gets a new one.
    folder = paths.home / "transcripts"
    candidate = folder / f"{stamp}-{name}.log"
    attempt = 1
    while candidate.exists():
        attempt += 1
        candidate = folder / f"{stamp}-{name}-{attempt}.log"
    return candidate


# -- keys ---------------------------------------------------------------------------------


def _new_key(
    which: str,
    spec: KeySpec,
    cfg: CeremonyConfig,
    paths: HomePaths,
    pin: str | None,
    transcript: Transcript,
    result: CeremonyResult,
    now: dt.datetime,
) -> SigningKey:
    (paths.home / which).mkdir(parents=True, exist_ok=True)
    ref_text: str
    key: SigningKey
    if spec.backend == "file":
        key, shares = create_key_file(
            paths.key_file(which), algorithm=spec.algorithm, m=spec.m, n=spec.n
        )
        result.written += [paths.key_file(which), paths.key_file(which).with_suffix(".json")]
        share_paths = _share_files(cfg, which, spec)
        for share, share_path in zip(shares, share_paths, strict=False):
            share_path.parent.mkdir(parents=True, exist_ok=True)
            with share_path.open("x", encoding="utf-8") as f:
                f.write(share.encode() + "\n")
            share_path.chmod(0o600)
            result.share_files.append(share_path)
        ref_text = f'[key]\nbackend = "file"\npath = "{paths.key_file(which).name}"\n'
        transcript.append(
            "key-generated",
            now=now,
            ca=which,
            backend="file",
            algorithm=spec.algorithm,
            m=spec.m,
            n=spec.n,
            public_key_sha256=_spki_sha256(key),
            share_fingerprints=[share_fingerprint(s) for s in shares],
            share_files=[str(p) for p in share_paths],
        )
    else:
        from signer.pkcs11 import Pkcs11Algorithm, generate_pkcs11_key

        if pin is None:
            raise Refused(
                "the token PIN is needed to generate a PKCS#11 key",
                message_ja="PKCS#11 鍵の生成にはトークンの PIN が必要です",
            )
        assert spec.module and spec.token_label and spec.key_label
        key = generate_pkcs11_key(
            module=spec.module,
            token_label=spec.token_label,
            key_label=spec.key_label,
            pin=pin,
            algorithm=typing.cast(Pkcs11Algorithm, spec.algorithm),  # checked by KeySpec
        )
        ref_text = (
            f'[key]\nbackend = "pkcs11"\nmodule = "{spec.module}"\n'
            f'token_label = "{spec.token_label}"\nkey_label = "{spec.key_label}"\n'
        )
        transcript.append(
            "key-generated",
            now=now,
            ca=which,
            backend="pkcs11",
            algorithm=spec.algorithm,
            token_label=spec.token_label,
            key_label=spec.key_label,
            public_key_sha256=_spki_sha256(key),
        )
    _write_new(paths.key_ref(which), ref_text.encode(), result)
    return key


def _open_existing(
    which: str, paths: HomePaths, shares: Sequence[Share], pin: str | None
) -> SigningKey:
    ref = config.load(paths.key_ref(which), KeyRef, section="key")
    if ref.backend == "file":
        assert ref.path is not None
        # Custodians of several keys may hand in their shares together: pass each key its own.
        key_id = key_file_info(ref.path).key_id
        return open_ca_key(ref, shares=[s for s in shares if s.key_id == key_id])
    return open_ca_key(ref, pin=pin)


def _spki_sha256(key: SigningKey) -> str:
    spki = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


# -- certificates -------------------------------------------------------------------------


def _write_ca_cert(
    which: str,
    cfg: CeremonyConfig,
    spec: CASpec,
    *,
    subject_key: SigningKey,
    issuer_key: SigningKey,
    issuer_cert: x509.Certificate | None,
    paths: HomePaths,
    transcript: Transcript,
    result: CeremonyResult,
    now: dt.datetime,
) -> x509.Certificate:
    cert = build_ca_certificate(
        common_name=spec.common_name,
        federation=cfg.federation,
        validity=spec.validity,
        subject_key=subject_key,
        issuer_key=issuer_key,
        issuer_cert=issuer_cert,
        now=now,
    )
    _write_new(paths.cert(which), cert.public_bytes(serialization.Encoding.PEM), result)
    _write_new(paths.cert_der(which), cert.public_bytes(serialization.Encoding.DER), result)
    transcript.append(
        "certificate-signed",
        now=now,
        ca=which,
        subject=cert.subject.rfc4514_string(),
        serial=format(cert.serial_number, "x"),
        not_after=cert.not_valid_after_utc.isoformat(),
        sha256=file_digest(paths.cert_der(which)),
        lint="clean",
    )
    return cert


def _read_cert(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError as exc:
        from shomei.errors import NotFound

        raise NotFound(
            f"{path} not found: create that CA first",
            message_ja=f"{path} がありません(先にその認証局を作成してください)",
        ) from exc


def _write_new(path: Path, data: bytes, result: CeremonyResult, *, mode: int = 0o644) -> None:
    write_new(path, data, mode=mode)
    result.written.append(path)


# -- CRLs and settings --------------------------------------------------------------------


def _write_root_crl(
    cfg: CeremonyConfig,
    cert: x509.Certificate,
    key: SigningKey,
    paths: HomePaths,
    transcript: Transcript,
    result: CeremonyResult,
    now: dt.datetime,
) -> None:
    from ca.crlcheck import highest_on_disk
    from ca.crls import time_number
    from crl.builder import build_crl

    folder = paths.crl_dir("root")
    # Derived from the issue time, so numbers go up even after a restore (RFC 5280 §5.2.3).
    number = max(highest_on_disk(folder) + 1, time_number(now))
    der = build_crl(
        issuer=cert,
        key=key,
        number=number,
        this_update=now,
        next_update=now + cfg.crl.root_validity,
    )
    lint.require_clean(lint.lint_crl(der))
    target = folder / f"{number}.crl"
    _write_new(target, der, result)
    transcript.append(
        "crl-signed",
        now=now,
        ca="root",
        number=number,
        entries=0,
        next_update=(now + cfg.crl.root_validity).isoformat(),
        file=str(target),
        sha256=file_digest(target),
        lint="clean",
    )


def _write_issuing_crl(
    paths: HomePaths,
    key: SigningKey,
    transcript: Transcript,
    result: CeremonyResult,
    now: dt.datetime,
) -> None:
    from ca.context import open_ca_with_key
    from ca.crls import issue_crl
    from ca.settings import load_ca_settings

    ca = open_ca_with_key(load_ca_settings(paths.settings), key)
    der = issue_crl(ca, now=now)
    written = sorted(paths.crl_dir("issuing").glob("*.crl"))
    if written:
        result.written.append(written[-1])
    transcript.append("crl-signed", now=now, ca="issuing", sha256=hashlib.sha256(der).hexdigest())


def _write_settings(
    cfg: CeremonyConfig,
    which: str,
    paths: HomePaths,
    transcript: Transcript,
    result: CeremonyResult,
    now: dt.datetime,
) -> None:
    key_ref = config.load(paths.key_ref(which), KeyRef, section="key")
    text = settings_text(cfg, which, key_ref, now=now)
    _write_new(paths.settings, text.encode(), result)
    paths.profiles.mkdir(parents=True, exist_ok=True)
    source = cfg.ceremony.profiles
    for profile in sorted(source.glob("*.toml")) if source else []:
        target = paths.profiles / profile.name
        text = federation_profile(profile.read_text(encoding="utf-8"), cfg.federation, which)
        _write_new(target, text.encode(), result)
        load_profile(target)  # strict: the ceremony stops on a profile that does not load
    transcript.append(
        "settings-written", now=now, file=str(paths.settings), sha256=file_digest(paths.settings)
    )
    # The one place a ledger is made: with the CA that will issue office certificates.
    with Ledger.create(paths.ledger, clock=lambda: now) as ledger:
        ledger_id = ledger.marks().ledger_id
        result.written += [paths.ledger, ledger.record_path]
    transcript.append("ledger-created", now=now, file=str(paths.ledger), ledger_id=ledger_id)


__all__ = ["CeremonyResult", "Step", "plan", "run"]
