"""Key ceremonies: create the root and issuing CAs and issue their CRLs, scripted and logged.

One reviewed ceremony file (:mod:`ca.ceremony_config`) drives one run.  :func:`plan` says
what would happen, which files would be written (absolute paths) and what the ceremony sets
in the profiles it copies; the dry run prints it with the checks of :mod:`ca.ceremony_check`.
:func:`run` makes the same checks and refuses to start on any problem, so that it never
fails for a reason it could have seen before generating a key.  It then performs the actions
in order and records every step in a hash-chained transcript (:mod:`ca.transcript`), linked
to the CA home's previous transcript and signed at the end with the last CA key used.

Everything is built in a staging folder inside the CA home (:mod:`ca.staging`) and put in
place only when every step has succeeded, ``ca.toml`` last; the custodians' shares are
written just before that.  A ceremony that stops part-way therefore leaves nothing that looks
like a usable CA: the home is as it was, the shares of a key that will never be used are
removed, a key it made on a token is deleted, and the message says which folder to delete.

CA certificates are issued in the same two steps as office certificates (docs/product.md §2): the
certificate is built and signed with a throwaway key of the issuer's key type, linted with
pkilint (RFC 5280 §4; warnings are failures), and only then is its TBS signed with the real
key (:func:`ca.certasm.certificate_from_tbs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca import ceremony_check, lint
from ca.cacert import build_ca_certificate
from ca.ceremony_check import STAMP, issuer_of_offices, needs_existing_issuer, share_files
from ca.ceremony_config import Action, CASpec, CeremonyConfig, KeySpec
from ca.custody.keyfile import create_key_file
from ca.custody.shares import Share, share_fingerprint
from ca.home import HomePaths, ProfileCopy, federation_profile, profile_copies, settings_text
from ca.home import toml_string as q
from ca.ledger import Ledger
from ca.ledger_record import record_path
from ca.settings import KeyRef, load_ca_settings
from ca.staging import Staging
from ca.transcript import Transcript, file_digest, link_to, transcripts_in
from contract.profile import load_profile
from shomei import config
from shomei.errors import Refused, ShomeiError
from shomei.files import MAX_TEXT, read_bytes, write_new
from signer.keys import SigningKey

Echo = Callable[[str], None]


@dataclass(frozen=True)
class Step:
    action: Action
    description: str
    outputs: tuple[Path, ...]


@dataclass(frozen=True)
class Plan:
    """What a ceremony would do, with every path absolute (nothing is touched to make it)."""

    home: Path
    steps: list[Step]
    settings: tuple[Path, ...]  # ca.toml and the ledger, when this ceremony makes the issuer
    profiles: list[ProfileCopy]
    transcript: Path
    previous: Path | None  # the transcript the new one links to


@dataclass
class CeremonyResult:
    steps: list[Step]
    written: list[Path] = field(default_factory=list)
    share_files: list[Path] = field(default_factory=list)
    transcript: Path | None = None


def plan(cfg: CeremonyConfig, *, now: dt.datetime) -> Plan:
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
                outputs += share_files(cfg, which)
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
                        + (
                            f"; CRL distribution point {_url(cfg, 'crl', 'root')}, CA issuers "
                            f"{_url(cfg, 'ca', 'root')}, policy {cfg.federation.policy_oid}"
                            if which == "issuing"
                            else ""
                        )
                    ),
                    tuple(outputs),
                )
            )
        elif action == "root-crl":
            steps.append(
                Step(
                    action,
                    f"issue the root's CRL (ARL), valid {cfg.crl.root_validity.days} days",
                    (paths.crl_dir("root"),),
                )
            )
        else:
            steps.append(
                Step(
                    action,
                    (
                        "issue the office certificates' CRL from the ledger, valid "
                        f"{cfg.crl.issuing_validity.days} days"
                    ),
                    (paths.crl_dir(issuer_of_offices(cfg) or "issuing"),),
                )
            )
    office_issuer = issuer_of_offices(cfg)
    previous = transcripts_in(paths.transcripts)[-1:]
    return Plan(
        home=paths.home,
        steps=steps,
        settings=(paths.settings, paths.ledger, record_path(paths.ledger)) if office_issuer else (),
        profiles=profile_copies(cfg, office_issuer, paths.home) if office_issuer else [],
        transcript=paths.transcripts
        / f"{now.astimezone(dt.UTC).strftime(STAMP)}-{cfg.ceremony.name}.log",
        previous=previous[0] if previous else None,
    )


def _url(cfg: CeremonyConfig, kind: str, which: str) -> str:
    if kind == "crl":
        return f"{cfg.federation.crl_base_url.rstrip('/')}/{which}.crl"
    return f"{cfg.federation.ca_base_url.rstrip('/')}/{which}.crt"


def run(
    cfg: CeremonyConfig,
    *,
    config_path: Path,
    now: dt.datetime,
    shares: Sequence[Share] = (),
    pin: str | None = None,
    echo: Echo = print,
) -> CeremonyResult:
    """Perform the ceremony.  ``shares``/``pin`` open CA keys made by an earlier ceremony.

    Raises :class:`Refused` before anything is done when a check fails, and, when a step
    fails, :class:`Refused` saying what stopped it and what to delete (the CA home itself is
    as it was).
    """
    the_plan = plan(cfg, now=now)
    preflight = ceremony_check.check(cfg, now=now, shares=shares, pin=pin, credentials=True)
    preflight.raise_if_bad()
    config_bytes = read_bytes(
        config_path, what="ceremony file", what_ja="儀式ファイル", limit=MAX_TEXT
    )
    stage = Staging(the_plan.home, now.astimezone(dt.UTC).strftime(STAMP))
    stage.create()
    work = _Run(cfg, stage, now=now, pin=pin, echo=echo, preflight=preflight)
    result = CeremonyResult(steps=the_plan.steps, transcript=the_plan.transcript)
    previous = link_to(the_plan.previous) if the_plan.previous else None
    try:
        work.transcript = Transcript(
            work.staged.transcripts / the_plan.transcript.name,
            ceremony=cfg.ceremony.name,
            now=now,
            previous=previous,
        )
        work.perform(the_plan, config_path, config_bytes, result)
    except BaseException as exc:
        error = work.fail(exc)
        if error is exc:
            raise
        raise error from exc
    finally:
        work.close_keys()
    result.written = stage.commit() + result.written
    echo(f"transcript: {the_plan.transcript} (signed)")
    return result


class _Run:
    """The state of one ceremony run: where it writes, the keys it holds, what it made."""

    def __init__(
        self,
        cfg: CeremonyConfig,
        stage: Staging,
        *,
        now: dt.datetime,
        pin: str | None,
        echo: Echo,
        preflight: ceremony_check.Preflight,
    ) -> None:
        self.cfg = cfg
        self.stage = stage
        self.home = HomePaths(stage.home)
        self.staged = HomePaths(stage.folder)
        self.now = now
        self.pin = pin
        self.echo = echo
        self.keys: dict[str, SigningKey] = dict(preflight.keys)
        self.certs: dict[str, x509.Certificate] = dict(preflight.certificates)
        self.shares: dict[str, list[Share]] = {}
        self.tokens: list[KeySpec] = []  # keys generated on a token by this run
        self.shares_written: list[Path] = []
        self.transcript: Transcript | None = None
        self.step = "start"

    def log(self, event: str, **details: object) -> None:
        assert self.transcript is not None
        self.transcript.append(event, now=self.now, **details)

    def final(self, staged: Path) -> str:
        """The path a staged file will have in the CA home, for the transcript."""
        return str(self.stage.final(staged))

    def perform(
        self, the_plan: Plan, config_path: Path, config_bytes: bytes, result: CeremonyResult
    ) -> None:
        cfg, now = self.cfg, self.now
        self.log("present", operator=cfg.ceremony.operator, witnesses=cfg.ceremony.witnesses)
        self.log(
            "config",
            file=str(config_path.resolve()),
            sha256=hashlib.sha256(config_bytes).hexdigest(),
            text=config_bytes.decode("utf-8", errors="replace"),
        )
        steps = {step.action: step for step in the_plan.steps}
        for step in the_plan.steps:
            if step.action == "issuing-crl":
                continue  # after the settings, below
            self.step = step.action
            self.echo(f"== {step.action}: {step.description}")
            if step.action in ("create-root", "create-issuing"):
                which = "root" if step.action == "create-root" else "issuing"
                spec = cfg.root if which == "root" else cfg.issuing
                assert spec is not None
                self._create(which, spec)
            elif step.action == "root-crl":
                self._root_crl()
        issuer = issuer_of_offices(cfg)
        if issuer is not None:
            self.step = "settings"
            self.echo("== settings: ca.toml, the ledger and the profiles")
            self._settings(issuer, the_plan.profiles)
        crl_step = steps.get("issuing-crl")
        if crl_step is not None and issuer is not None:
            self.step = "issuing-crl"
            self.echo(f"== issuing-crl: {crl_step.description}")
            self._issuing_crl(self.staged.settings, self.keys[issuer], result)
        self.step = "shares"
        self._write_shares(result)
        if crl_step is not None and needs_existing_issuer(cfg):
            # An existing CA: its ledger and CRL folder are updated in place, as by
            # `shomei ca issue-crl`; this is the last thing before the transcript is signed.
            self.step = "issuing-crl"
            self.echo(f"== issuing-crl: {crl_step.description}")
            self._issuing_crl(self.home.settings, self.keys["issuer"], result)
        self.step = "signing the transcript"
        name = next(n for n in ("issuing", "issuer", "root") if n in self.keys)
        assert self.transcript is not None
        self.transcript.sign_and_close(key=self.keys[name], certificate=self.certs[name], now=now)

    # -- keys and certificates -------------------------------------------------------------

    def _create(self, which: str, spec: CASpec) -> None:
        key = self._new_key(which, spec.key)
        self.keys[which] = key
        parent = None if which == "root" else (self.keys["root"], self.certs["root"])
        cert = build_ca_certificate(
            common_name=spec.common_name,
            federation=self.cfg.federation,
            validity=spec.validity,
            subject_key=key,
            issuer_key=parent[0] if parent else key,
            issuer_cert=parent[1] if parent else None,
            now=self.now,
        )
        self.certs[which] = cert
        pem, der = self.staged.cert(which), self.staged.cert_der(which)
        write_new(pem, cert.public_bytes(serialization.Encoding.PEM))
        write_new(der, cert.public_bytes(serialization.Encoding.DER))
        self.log(
            "certificate-signed",
            ca=which,
            subject=cert.subject.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_after=cert.not_valid_after_utc.isoformat(),
            file=self.final(der),
            sha256=file_digest(der),
            lint="clean",
        )

    def _new_key(self, which: str, spec: KeySpec) -> SigningKey:
        key: SigningKey
        if spec.backend == "file":
            key_path = self.staged.key_file(which)
            key_path.parent.mkdir(parents=True, exist_ok=True)
            key, shares = create_key_file(
                key_path, algorithm=spec.algorithm, m=spec.m, n=spec.n, now=self.now
            )
            self.shares[which] = shares
            ref_text = f'[key]\nbackend = "file"\npath = {q(key_path.name)}\n'
            self.log(
                "key-generated",
                ca=which,
                backend="file",
                algorithm=spec.algorithm,
                m=spec.m,
                n=spec.n,
                public_key_sha256=_spki_sha256(key),
                share_fingerprints=[share_fingerprint(s) for s in shares],
                share_files=[str(p) for p in share_files(self.cfg, which)],
            )
        else:
            from signer.pkcs11 import Pkcs11Algorithm, generate_pkcs11_key

            assert spec.module and spec.token_label and spec.key_label
            if self.pin is None:
                raise Refused(
                    "the token PIN is needed to generate a PKCS#11 key",
                    message_ja="PKCS#11 鍵の生成にはトークンの PIN が必要です",
                )
            key = generate_pkcs11_key(
                module=spec.module,
                token_label=spec.token_label,
                key_label=spec.key_label,
                pin=self.pin,
                algorithm=typing.cast(Pkcs11Algorithm, spec.algorithm),  # checked by KeySpec
            )
            self.tokens.append(spec)
            ref_text = (
                f'[key]\nbackend = "pkcs11"\nmodule = {q(str(spec.module))}\n'
                f"token_label = {q(spec.token_label)}\nkey_label = {q(spec.key_label)}\n"
            )
            self.log(
                "key-generated",
                ca=which,
                backend="pkcs11",
                algorithm=spec.algorithm,
                token_label=spec.token_label,
                key_label=spec.key_label,
                public_key_sha256=_spki_sha256(key),
            )
        write_new(self.staged.key_ref(which), ref_text.encode())
        return key

    # -- CRLs, settings, shares ------------------------------------------------------------

    def _root_crl(self) -> None:
        from ca.crlcheck import highest_on_disk
        from ca.crls import time_number
        from crl.builder import build_crl

        cert, key = self.certs["root"], self.keys["root"]
        # Derived from the issue time, so numbers go up even after a restore (RFC 5280 §5.2.3).
        number = max(
            highest_on_disk(self.home.crl_dir("root")) + 1,
            highest_on_disk(self.staged.crl_dir("root")) + 1,
            time_number(self.now),
        )
        next_update = self.now + self.cfg.crl.root_validity
        der = build_crl(
            issuer=cert, key=key, number=number, this_update=self.now, next_update=next_update
        )
        lint.require_clean(lint.lint_crl(der))
        target = self.staged.crl_dir("root") / f"{number}.crl"
        write_new(target, der)
        self.log(
            "crl-signed",
            ca="root",
            number=number,
            entries=0,
            next_update=next_update.isoformat(),
            file=self.final(target),
            sha256=file_digest(target),
            lint="clean",
        )

    def _settings(self, which: str, copies: list[ProfileCopy]) -> None:
        key_ref = config.load(self.staged.key_ref(which), KeyRef, section="key")
        write_new(
            self.staged.settings, settings_text(self.cfg, which, key_ref, now=self.now).encode()
        )
        for copy in copies:
            target = self.staged.profiles / copy.source.name
            source = read_bytes(copy.source, what="profile", what_ja="プロファイル", limit=MAX_TEXT)
            text = federation_profile(source.decode("utf-8"), self.cfg.federation, which)
            write_new(target, text.encode())
            load_profile(target)  # strict: checked in the dry run, checked again here
            self.log(
                "profile-written",
                file=str(copy.target),
                source=str(copy.source),
                source_sha256=hashlib.sha256(source).hexdigest(),
                sha256=file_digest(target),
                set={c.key: c.new for c in copy.changes},
                was={c.key: c.old for c in copy.changes},
            )
        # The ledger is made here, by the ceremony that makes the CA, and nowhere else.
        with Ledger.create(self.staged.ledger, clock=lambda: self.now) as ledger:
            ledger_id = ledger.marks().ledger_id
        self.log(
            "settings-written",
            file=self.final(self.staged.settings),
            sha256=file_digest(self.staged.settings),
            ledger=self.final(self.staged.ledger),
        )
        self.log("ledger-created", file=self.final(self.staged.ledger), ledger_id=ledger_id)

    def _issuing_crl(self, settings_path: Path, key: SigningKey, result: CeremonyResult) -> None:
        from ca.context import open_ca_with_key
        from ca.crls import issue_crl

        settings = load_ca_settings(settings_path)
        # A new issuing CA under an existing root: its chain is in the home, not staged.
        chain = [
            self.stage.final(p) if self.stage.folder in p.parents and not p.exists() else p
            for p in settings.chain
        ]
        settings = dataclasses.replace(settings, chain=chain)
        with open_ca_with_key(settings, key) as ca:
            der = issue_crl(ca, now=self.now)
            last = ca.ledger.last_crl()
            assert last is not None
            written = ca.crl_dir / f"{last.number}.crl"
        staged = self.stage.folder in written.parents
        if not staged:
            result.written.append(written)
        self.log(
            "crl-signed",
            ca="issuer",
            number=last.number,
            entries=last.entry_count,
            next_update=last.next_update.isoformat(),
            file=self.final(written) if staged else str(written),
            sha256=hashlib.sha256(der).hexdigest(),
            lint="clean",
        )

    def _write_shares(self, result: CeremonyResult) -> None:
        for which, shares in self.shares.items():
            for share, path in zip(shares, share_files(self.cfg, which), strict=True):
                write_new(path, (share.encode() + "\n").encode("ascii"), mode=0o600)
                self.shares_written.append(path)
        if self.shares_written:
            self.log("shares-written", files=[str(p) for p in self.shares_written])
        result.share_files = list(self.shares_written)

    def close_keys(self) -> None:
        """Release the keys (a token session stays open until then)."""
        for key in self.keys.values():
            close = getattr(key, "close", None)
            if callable(close):
                close()

    # -- failure -----------------------------------------------------------------------------

    def fail(self, exc: BaseException) -> BaseException:
        """Undo what must not survive a stopped ceremony; return the error to raise."""
        reason = exc.message if isinstance(exc, ShomeiError) else str(exc) or type(exc).__name__
        if isinstance(exc, OSError) and exc.strerror:
            reason = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
        if self.transcript is not None:
            try:
                self.transcript.abandon(now=self.now, reason=reason)
            except OSError:
                pass  # the disk may be what failed; the message below still says it all
        leftover: list[str] = []
        for path in self.shares_written:
            # Shares of a key that is never put in place open nothing anyone should keep.
            try:
                path.unlink()
            except OSError:
                leftover.append(str(path))
        for spec in self.tokens:
            assert spec.module and spec.token_label and spec.key_label and self.pin
            from signer.pkcs11 import delete_pkcs11_key

            try:
                delete_pkcs11_key(
                    module=spec.module,
                    token_label=spec.token_label,
                    key_label=spec.key_label,
                    pin=self.pin,
                )
            except ShomeiError:
                leftover.append(f"the key {spec.key_label!r} on token {spec.token_label!r}")
        also = f"; also delete {', '.join(leftover)}" if leftover else ""
        also_ja = f"。{'、'.join(leftover)} も削除してください" if leftover else ""
        if not isinstance(exc, ShomeiError | OSError):
            self.echo(
                f"the ceremony stopped at {self.step}; the CA home is unchanged; delete "
                f"{self.stage.folder}{also}"
            )
            return exc
        return Refused(
            f"the ceremony stopped at {self.step}: {reason}. Nothing was put in the CA home; "
            f"keep the abandoned transcript in {self.stage.folder / 'transcripts'} with the "
            f"minutes, then delete {self.stage.folder}{also}",
            message_ja=f"儀式は {self.step} で停止しました: {reason}。CA ホームには何も配置して"
            f"いません。{self.stage.folder / 'transcripts'} の記録を議事録に保管してから "
            f"{self.stage.folder} を削除してください{also_ja}",
            path=str(self.stage.folder),
        )


def _spki_sha256(key: SigningKey) -> str:
    spki = key.public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).hexdigest()


__all__ = ["CeremonyResult", "Plan", "Step", "plan", "run"]
