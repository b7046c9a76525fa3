"""Everything a ceremony needs, checked before any key is made (the dry run prints it all).

A ceremony must never fail after it has generated a key, so :func:`check` tries, without
writing anything, what each step will need:

* the CA home: new or empty for a ceremony that creates a root, else present and writable;
  no unfinished ceremony left in it (:mod:`ca.staging`); a clock not behind the last
  transcript (transcripts are ordered and linked by time, :mod:`ca.transcript`);
* what earlier ceremonies made: the root certificate and key reference, or ``ca.toml``; and no
  ``ca.toml`` yet when this ceremony writes one;
* the custodians' shares folder: outside the CA home, writable, no share file there yet;
* each PKCS#11 token: module, token, key-pair mechanism and size, key label still free;
* the profiles the ceremony copies: the folder exists, every profile loads with the
  federation's values set, ``office`` is among them, and a throwaway office certificate
  built from each lints clean (so the new CA can issue);
* throwaway drafts of every CA certificate and CRL the ceremony signs, linted with pkilint
  exactly as the real ones will be (RFC 5280; a warning is a problem);
* with the shares or PIN given, that the existing CA keys the ceremony needs open and belong
  to their certificates.

Each check gives a :class:`Finding`; the real run refuses to start on the first problem.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ca import lint
from ca.cacert import build_ca_certificate
from ca.ceremony_config import CASpec, CeremonyConfig
from ca.certasm import throwaway_key
from ca.custody import open_ca_key
from ca.custody.keyfile import key_file_info
from ca.custody.shares import Share
from ca.home import HomePaths, check_profile_text, federation_profile, profile_copies
from ca.issue import IssueRequest, Refusal, prepare
from ca.serials import new_serial
from ca.settings import CASettings, KeyRef, load_ca_settings
from ca.staging import leftovers
from ca.transcript import transcripts_in
from contract.profile import Profile
from crl.builder import build_crl
from shomei import config
from shomei.errors import ConfigError, Refused, ShomeiError
from shomei.files import MAX_TEXT, read_bytes
from signer.keys import PrivateKey, SigningKey, SoftwareKey

STAMP = "%Y%m%dT%H%M%SZ"
T = TypeVar("T")


@dataclass(frozen=True)
class Finding:
    """One check: passed (``ok``) or a problem, said in English and Japanese."""

    ok: bool
    message: str
    message_ja: str


@dataclass
class Preflight:
    """The findings, notes for the plan, and the existing CA keys opened with the credentials."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    keys: dict[str, SigningKey] = field(default_factory=dict)
    certificates: dict[str, x509.Certificate] = field(default_factory=dict)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok]

    def ok(self, message: str, message_ja: str | None = None) -> None:
        self.findings.append(Finding(True, message, message_ja or message))

    def problem(self, message: str, message_ja: str | None = None) -> None:
        self.findings.append(Finding(False, message, message_ja or message))

    def attempt(
        self, ok_message: str, action: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T | None:
        """``action(*args, **kwargs)``; a Shomei error becomes a problem (and None), success
        the finding ``ok_message`` (and the result)."""
        try:
            result = action(*args, **kwargs)
        except ShomeiError as exc:
            self.problem(exc.message, exc.message_ja)
            return None
        self.ok(ok_message)
        return result

    def raise_if_bad(self) -> None:
        """Refuse to start (nothing has been written) when any check found a problem."""
        problems = self.problems
        if not problems:
            return
        more = len(problems) - 1
        tail = f" (and {more} more: see the dry run)" if more else ""
        tail_ja = f"(他に {more} 件: ドライランで確認してください)" if more else ""
        raise Refused(
            f"the ceremony cannot start, nothing was done: {problems[0].message}{tail}",
            message_ja=f"儀式を開始できません(何も行っていません): {problems[0].message_ja}"
            f"{tail_ja}",
        )


def issuer_of_offices(cfg: CeremonyConfig) -> str | None:
    """Which CA this ceremony makes the issuer of office certificates, if any."""
    actions = cfg.ceremony.actions
    if "create-issuing" in actions:
        return "issuing"
    if "create-root" in actions and cfg.issuing is None:
        return "root"  # single tier
    return None


def needs_existing_root(cfg: CeremonyConfig) -> bool:
    """Whether the ceremony signs with a root key made by an earlier ceremony."""
    actions = cfg.ceremony.actions
    return "create-root" not in actions and ("create-issuing" in actions or "root-crl" in actions)


def needs_existing_issuer(cfg: CeremonyConfig) -> bool:
    """Whether the ceremony issues a CRL for the office issuer of an existing ``ca.toml``."""
    return "issuing-crl" in cfg.ceremony.actions and issuer_of_offices(cfg) is None


def check(
    cfg: CeremonyConfig,
    *,
    now: dt.datetime,
    shares: Sequence[Share] = (),
    pin: str | None = None,
    credentials: bool = False,
) -> Preflight:
    """Check everything the ceremony ``cfg`` needs at ``now``; write nothing.

    ``credentials``: the real run, which must open the existing CA keys it needs with
    ``shares``/``pin``; the dry run opens them only if shares or a PIN were given.
    """
    report = Preflight()
    paths = HomePaths(cfg.ceremony.ca_home)
    home_ok = _check_home(cfg, paths, now, report)
    existing_ok = _check_existing(cfg, paths, report)
    _check_shares_dir(cfg, report)
    _check_tokens(cfg, pin, report, credentials=credentials)
    issuer = _check_drafts(cfg, now, report) if existing_ok else None
    which = issuer_of_offices(cfg)
    if which is not None:
        _check_profiles(cfg, which, issuer, now, report)
    if existing_ok and home_ok and (credentials or shares or pin):
        _open_existing(cfg, paths, shares, pin, report)
    return report


# -- the CA home --------------------------------------------------------------------------


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _creatable(path: Path) -> Path | None:
    """The nearest existing folder above ``path`` if it is writable, else None."""
    for parent in path.parents:
        if parent.exists():
            return parent if parent.is_dir() and _writable(parent) else None
    return None


def _check_home(cfg: CeremonyConfig, paths: HomePaths, now: dt.datetime, report: Preflight) -> bool:
    home = paths.home
    start = len(report.problems)
    if home.exists() and not home.is_dir():
        report.problem(
            f"the CA home {home} exists and is not a folder",
            f"CA ホーム {home} はフォルダではありません",
        )
        return False
    for left in leftovers(home):
        report.problem(
            f"an earlier ceremony did not finish: {left} holds what it made and its abandoned "
            "transcript; keep the transcript with the minutes, then delete that folder (and "
            "any share files its transcript lists) and run again",
            f"以前の儀式が完了していません: {left} の記録を議事録に保管してから、そのフォルダ"
            "(と記録にある分割鍵ファイル)を削除して再実行してください",
        )
    if "create-root" in cfg.ceremony.actions:
        if home.is_dir() and any(home.iterdir()):
            report.problem(
                f"the CA home {home} is not empty: a ceremony that creates a root starts from "
                "a new or empty folder",
                f"CA ホーム {home} が空ではありません(ルートを作る儀式は空のフォルダで行います)",
            )
        elif home.is_dir() and not _writable(home):
            report.problem(f"cannot write in the CA home {home}", f"{home} に書き込めません")
        elif not home.exists() and _creatable(home) is None:
            report.problem(
                f"cannot create the CA home {home} (its parent folder is missing or not writable)",
                f"CA ホーム {home} を作成できません(親フォルダがないか書き込めません)",
            )
    elif not home.is_dir():
        report.problem(
            f"the CA home {home} does not exist: this ceremony works on a CA home made by an "
            "earlier ceremony",
            f"CA ホーム {home} がありません(この儀式は既存の CA ホームで行います)",
        )
    elif not _writable(home):
        report.problem(f"cannot write in the CA home {home}", f"{home} に書き込めません")
    last = transcripts_in(paths.transcripts)[-1:]
    stamp = now.astimezone(dt.UTC).strftime(STAMP)
    if last and stamp <= last[0].name[: len(stamp)]:
        report.problem(
            f"this machine's clock ({now:%Y-%m-%d %H:%M:%S} UTC) is not after the last "
            f"ceremony ({last[0].name}): set the date and time first",
            f"この機械の時計({now:%Y-%m-%d %H:%M:%S} UTC)が前回の儀式({last[0].name})より"
            "後になっていません。日時を合わせてください",
        )
    if len(report.problems) == start:
        state = "existing" if home.is_dir() and any(home.iterdir()) else "new"
        report.ok(f"CA home {home} ({state}) can be written")
    return len(report.problems) == start


def _check_existing(cfg: CeremonyConfig, paths: HomePaths, report: Preflight) -> bool:
    start = len(report.problems)
    if needs_existing_root(cfg):
        report.attempt(
            f"the root CA of {paths.home} is there ({paths.cert('root')})",
            _load_existing,
            paths,
            "root",
            report,
        )
    if issuer_of_offices(cfg) is not None and paths.settings.exists():
        report.problem(
            f"{paths.settings} already exists: this ceremony makes a new issuer of office "
            "certificates and writes ca.toml, so it needs a CA home without one",
            f"{paths.settings} が既にあります(この儀式は ca.toml を書くため、ない状態で行います)",
        )
    if needs_existing_issuer(cfg):
        report.attempt(f"the settings {paths.settings} load", _load_issuer, paths, report)
    for which in cfg.new_cas():
        for path in (paths.cert(which), paths.key_ref(which), paths.key_file(which)):
            if path.exists():
                report.problem(
                    f"{path} already exists; a ceremony never overwrites files",
                    f"{path} は既に存在します(儀式はファイルを上書きしません)",
                )
    return len(report.problems) == start


def _load_existing(paths: HomePaths, which: str, report: Preflight) -> None:
    cert = _read_cert(paths.cert(which))
    ref = config.load(paths.key_ref(which), KeyRef, section="key")
    if ref.backend == "file":
        assert ref.path is not None
        info = key_file_info(ref.path)
        report.notes.append(
            f"the {which} key is opened with {info.m} of the {info.n} custodians' shares of "
            f"key {info.key_id}"
        )
    else:
        report.notes.append(f"the {which} key is opened with the PIN of token {ref.token_label}")
    report.certificates[which] = cert


def _load_issuer(paths: HomePaths, report: Preflight) -> None:
    settings = load_ca_settings(paths.settings)
    report.certificates["issuer"] = _read_cert(settings.certificate)
    if not settings.ledger.is_file():
        # Only the ceremony that made the CA makes a ledger; a lost one is restored, never
        # replaced by an empty one (which would forget every revocation).
        raise ConfigError(
            f"no CA ledger at {settings.ledger}: restore it from the last backup",
            message_ja=f"CA 台帳 {settings.ledger} がありません(バックアップから復元してください)",
        )
    if settings.key.backend == "file":
        assert settings.key.path is not None
        key_file_info(settings.key.path)


def _read_cert(path: Path) -> x509.Certificate:
    from ca.context import load_certificates

    certs = load_certificates(path)
    if len(certs) != 1:
        raise ConfigError(
            f"{path}: expected one certificate, found {len(certs)}",
            message_ja=f"{path}: 証明書が 1 つではありません",
        )
    return certs[0]


def _open_existing(
    cfg: CeremonyConfig,
    paths: HomePaths,
    shares: Sequence[Share],
    pin: str | None,
    report: Preflight,
) -> None:
    wanted: list[tuple[str, KeyRef]] = []
    if needs_existing_root(cfg):
        wanted.append(("root", config.load(paths.key_ref("root"), KeyRef, section="key")))
    if needs_existing_issuer(cfg):
        settings: CASettings = load_ca_settings(paths.settings)
        wanted.append(("issuer", settings.key))
    for which, ref in wanted:
        key = report.attempt(f"the existing {which} key opens", _open_ref, ref, shares, pin)
        if key is None:
            continue
        cert = report.certificates[which]
        if _spki(key.public_key) != _spki(cert.public_key()):
            report.problem(
                f"the opened {which} key does not belong to {cert.subject.rfc4514_string()}",
                f"開いた鍵が {which} の証明書の鍵と一致しません",
            )
            continue
        report.keys[which] = key


def _open_ref(ref: KeyRef, shares: Sequence[Share], pin: str | None) -> SigningKey:
    if ref.backend == "file":
        assert ref.path is not None
        # Custodians of several keys may hand in their shares together: pass each key its own.
        key_id = key_file_info(ref.path).key_id
        return open_ca_key(ref, shares=[s for s in shares if s.key_id == key_id])
    return open_ca_key(ref, pin=pin)


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- shares and tokens --------------------------------------------------------------------


def share_files(cfg: CeremonyConfig, which: str) -> list[Path]:
    """Where the custodians' shares of the new ``which`` key are written."""
    spec = cfg.new_cas().get(which)
    folder = cfg.ceremony.shares_dir
    if spec is None or spec.key.backend != "file" or folder is None:
        return []
    n = spec.key.n
    return [folder / f"{which}-share-{i}-of-{n}.txt" for i in range(1, n + 1)]


def _check_shares_dir(cfg: CeremonyConfig, report: Preflight) -> None:
    files = [p for which in cfg.new_cas() for p in share_files(cfg, which)]
    folder = cfg.ceremony.shares_dir
    if not files or folder is None:
        return
    start = len(report.problems)
    home = cfg.ceremony.ca_home
    if folder == home or home in folder.parents:
        report.problem(
            f"shares_dir {folder} is inside the CA home: the shares must never be kept with "
            "the key they open",
            f"shares_dir {folder} が CA ホームの中にあります(分割鍵は鍵と一緒に置けません)",
        )
    elif folder.exists() and not (folder.is_dir() and _writable(folder)):
        report.problem(f"cannot write the shares in {folder}", f"{folder} に分割鍵を書き込めません")
    elif not folder.exists() and _creatable(folder) is None:
        report.problem(
            f"cannot create the shares folder {folder}", f"分割鍵のフォルダ {folder} を作れません"
        )
    for path in files:
        if path.exists():
            report.problem(
                f"{path} already exists; a share file is never overwritten",
                f"{path} は既に存在します(分割鍵ファイルは上書きしません)",
            )
    if len(report.problems) == start:
        report.ok(f"the {len(files)} share files can be written in {folder}")


def _check_tokens(
    cfg: CeremonyConfig, pin: str | None, report: Preflight, *, credentials: bool
) -> None:
    seen: set[tuple[str, str | None, str | None]] = set()
    for which, spec in cfg.new_cas().items():
        key = spec.key
        if key.backend != "pkcs11":
            continue
        assert key.module and key.token_label and key.key_label
        if credentials and not pin:
            report.problem(
                f"the PIN of token {key.token_label!r} is needed to generate the {which} key",
                f"{which} 鍵の生成にはトークン {key.token_label!r} の PIN が必要です",
            )
            continue
        slot = (str(key.module), key.token_label, key.key_label)
        if slot in seen:
            report.problem(
                f"two keys would be labelled {key.key_label!r} on token {key.token_label!r}",
                f"トークン {key.token_label!r} に同じラベル {key.key_label!r} の鍵が 2 つできます",
            )
            continue
        seen.add(slot)
        from signer.pkcs11 import check_can_generate

        report.attempt(
            f"token {key.token_label!r} ({key.module}) can generate the {which} key "
            f"({key.algorithm}, label {key.key_label!r} free)"
            + ("" if pin else "; the PIN is checked when it is given"),
            check_can_generate,
            module=key.module,
            token_label=key.token_label,
            key_label=key.key_label,
            algorithm=key.algorithm,
            pin=pin,
        )


# -- throwaway drafts, linted -------------------------------------------------------------


def _throwaway(algorithm: str) -> PrivateKey:
    if algorithm.startswith("rsa"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(algorithm[3:]))
    return ec.generate_private_key(ec.SECP256R1() if algorithm == "p256" else ec.SECP384R1())


def _check_drafts(
    cfg: CeremonyConfig, now: dt.datetime, report: Preflight
) -> tuple[x509.Certificate, SigningKey] | None:
    """Lint throwaway drafts; return the office issuer (draft or existing) and its key."""
    drafts: dict[str, tuple[x509.Certificate, SigningKey]] = {}
    root_cert = report.certificates.get("root")
    if root_cert is not None:
        drafts["root"] = (root_cert, SoftwareKey(throwaway_key(root_cert.public_key())))
    for which, spec in cfg.new_cas().items():
        parent = drafts.get("root") if which == "issuing" else None
        if which == "issuing" and parent is None:
            return None  # the root is missing: already a problem
        draft = _draft_ca(cfg, which, spec, parent, now, report)
        if draft is None:
            return None
        drafts[which] = draft
    for which, validity in (
        ("root", cfg.crl.root_validity),
        ("issuing", cfg.crl.issuing_validity),
    ):
        action = f"{which}-crl"
        if action not in cfg.ceremony.actions:
            continue
        target = "root" if which == "root" else issuer_of_offices(cfg)
        if target is None or target not in cfg.new_cas():
            continue  # an existing CA: its CRLs are made as they always are
        cert, key = drafts[target]
        report.attempt(
            f"a draft {which} CRL (throwaway key) lints clean",
            _draft_crl,
            cert,
            key,
            now=now,
            validity=validity,
        )
    office_issuer = issuer_of_offices(cfg)
    return drafts.get(office_issuer) if office_issuer is not None else None


def _draft_crl(
    cert: x509.Certificate, key: SigningKey, *, now: dt.datetime, validity: dt.timedelta
) -> None:
    der = build_crl(issuer=cert, key=key, number=1, this_update=now, next_update=now + validity)
    lint.require_clean(lint.lint_crl(der))


def _draft_ca(
    cfg: CeremonyConfig,
    which: str,
    spec: CASpec,
    parent: tuple[x509.Certificate, SigningKey] | None,
    now: dt.datetime,
    report: Preflight,
) -> tuple[x509.Certificate, SigningKey] | None:
    subject_key = SoftwareKey(_throwaway(spec.key.algorithm))
    if parent is not None:
        end = parent[0].not_valid_after_utc
        if end <= now + dt.timedelta(days=1):
            report.problem(
                f"the root CA certificate expires on {end:%Y-%m-%d}: it cannot sign an issuing CA",
                f"ルート CA 証明書の有効期限({end:%Y-%m-%d})が切れるため発行 CA を作れません",
            )
            return None
        if now + spec.validity > end:
            report.notes.append(
                f"the issuing CA certificate ends with the root, on {end:%Y-%m-%d} "
                f"({(end - now).days} days, not the {spec.validity.days} asked)"
            )
    cert = report.attempt(
        f"a draft {which} CA certificate (throwaway key) lints clean",
        build_ca_certificate,
        common_name=spec.common_name,
        federation=cfg.federation,
        validity=spec.validity,
        subject_key=subject_key,
        issuer_key=parent[1] if parent else subject_key,
        issuer_cert=parent[0] if parent else None,
        now=now,
    )
    return (cert, subject_key) if cert is not None else None


# -- profiles -----------------------------------------------------------------------------


def _check_profiles(
    cfg: CeremonyConfig,
    which: str,
    issuer: tuple[x509.Certificate, SigningKey] | None,
    now: dt.datetime,
    report: Preflight,
) -> None:
    source = cfg.ceremony.profiles
    if source is None:
        report.problem(
            "ceremony.profiles is needed: this ceremony writes ca.toml, and the CA issues only "
            "with the profiles the ceremony copies (see conf/profiles)",
            "ceremony.profiles が必要です(CA は儀式がコピーしたプロファイルでのみ発行します)",
        )
        return
    if not source.is_dir():
        report.problem(
            f"the profiles folder {source} does not exist: without profiles the CA could not "
            "issue any certificate",
            f"プロファイルのフォルダ {source} がありません(プロファイルなしでは発行できません)",
        )
        return
    copies = profile_copies(cfg, which, cfg.ceremony.ca_home)
    if not copies:
        report.problem(
            f"no profiles (*.toml) in {source}: without profiles the CA could not issue",
            f"{source} にプロファイル(*.toml)がありません",
        )
        return
    names: list[str] = []
    for copy in copies:
        profile = report.attempt(
            f"profile {copy.source.name} loads with the federation's values",
            _load_rewritten,
            cfg,
            which,
            copy.source,
        )
        if profile is None:
            continue
        names.append(profile.name)
        if issuer is not None:
            report.attempt(
                f"a draft office certificate of profile {profile.name} lints clean",
                _draft_office,
                profile,
                issuer[0],
                now,
            )
    if names and "office" not in names:
        report.problem(
            f"no profile named office in {source}: ca.toml names it as the default profile",
            f"{source} に office プロファイルがありません(ca.toml の既定プロファイルです)",
        )


def _load_rewritten(cfg: CeremonyConfig, which: str, source: Path) -> Profile:
    raw = read_bytes(source, what="profile", what_ja="プロファイル", limit=MAX_TEXT)
    try:
        original = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{source}: not UTF-8 text", message_ja=f"{source}: UTF-8 のテキストではありません"
        ) from exc
    text = federation_profile(original, cfg.federation, which)
    problem = check_profile_text(text, cfg.federation, which)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}", message_ja=f"{source}: {problem}")
    try:
        profile = config.loads(text, Profile, where=str(source), base=source.parent)
    except ConfigError as exc:
        if exc.message.startswith(str(source)):
            raise
        raise ConfigError(
            f"{source}: {exc.message}", message_ja=f"{source}: {exc.message_ja}"
        ) from exc
    if profile.name != source.stem:
        raise ConfigError(
            f"{source}: name = {profile.name!r} must match the file name {source.stem!r}",
            message_ja=f"{source}: name はファイル名 {source.stem!r} と同じにしてください",
        )
    return profile


def _draft_office(profile: Profile, issuer: x509.Certificate, now: dt.datetime) -> None:
    key = _throwaway(profile.default_key_type)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dry run")]))
        .sign(key, hashes.SHA256())
    )
    request = IssueRequest(
        request_id="dry-run",
        csr_der=csr.public_bytes(serialization.Encoding.DER),
        office_number="1234567890",
        office_name="試験事業所",
        profile=profile.name,
    )
    outcome = prepare(request, profile=profile, issuer=issuer, serial=new_serial(), now=now)
    if isinstance(outcome, Refusal):
        raise ConfigError(
            f"profile {profile.name}: a certificate would be refused: {outcome.message}",
            message_ja=f"プロファイル {profile.name}: 証明書が拒否されます: {outcome.message_ja}",
        )


__all__ = [
    "Finding",
    "Preflight",
    "check",
    "issuer_of_offices",
    "needs_existing_issuer",
    "needs_existing_root",
    "share_files",
]
